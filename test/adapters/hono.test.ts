/**
 * `effect-rate-sync/hono` on a real Hono 4 app served by `@hono/node-server` (127.0.0.1,
 * ephemeral port), driven by `fetch`: the scenarios of ./suite.ts, the middleware on every path.
 */
import { serve as nodeServe } from "@hono/node-server"
import { type Context, Hono } from "hono"
import type { AddressInfo } from "node:net"
import { type RateLimitOptions, rateLimit, type RefusalHandler } from "effect-rate-sync/hono"
import { afterEach, assert, describe, it } from "@effect/vitest"
import * as RS from "effect-rate-sync/promise"
import { adapterSuite, freshId, hour, type Served, serveWith } from "./suite.js"

const serve = async (middlewares: ReadonlyArray<RateLimitOptions>): Promise<Served> => {
  const app = new Hono()
  for (const options of middlewares) app.use(rateLimit(options))
  let hits = 0
  app.get("*", (c) => {
    hits++
    return c.text("ok")
  })
  // as Hono's default, without its console.error (a test provokes a programming error)
  app.onError((_error, c) => c.text("Internal Server Error", 500))
  let port = 0
  const server = nodeServe({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => (port = info.port))
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve)
    server.once("error", reject)
  })
  return {
    base: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)))
        if ("closeAllConnections" in server) server.closeAllConnections()
      })
  }
}

const customRefusal: RefusalHandler = (decision, c) =>
  c.json({ error: "quota exceeded", limit: decision.limit }, 429, { "x-custom": "yes", "retry-after": "99" })

adapterSuite<Context, RefusalHandler>({
  name: "Hono",
  serve,
  rateLimit,
  header: (c, name) => c.req.header(name),
  customRefusal
})

describe("Hono peerAddress", () => {
  afterEach(() => RS.dispose())

  it("gives the peer on runtimes other than @hono/node-server; trusted proxies apply to it", async () => {
    const limiter = freshId("peer")
    const seen: Array<string | undefined> = []
    const key = (_c: Context, client: string | undefined) => {
      seen.push(client)
      return client ?? "none"
    }
    const peerAddress = (c: Context) => c.req.header("x-test-peer")
    await serveWith(serve, { [limiter]: hour(1) }, [{ limiter, key, peerAddress, trustedProxies: ["10.0.0.0/8"] }], async (send) => {
      assert.strictEqual((await send("/a", { "x-test-peer": "192.0.2.1", "x-forwarded-for": "203.0.113.7" })).status, 200)
      assert.strictEqual((await send("/a", { "x-test-peer": "10.1.2.3", "x-forwarded-for": "203.0.113.7" })).status, 200)
      assert.strictEqual((await send("/a", { "x-test-peer": "192.0.2.1" })).status, 429)
      assert.deepStrictEqual(seen, ["192.0.2.1", "203.0.113.7", "192.0.2.1"])
    })
  })

  it("an allowed request's headers land on any response the app answers: c.text, a raw Response, one with immutable headers", async () => {
    const limiter = freshId("raw")
    await RS.configureLimiter(limiter, hour(10))
    const app = new Hono()
    app.use(rateLimit({ limiter, headers: "draft" }))
    app.get("/text", (c) => c.text("ok"))
    app.get("/raw", () => new Response("raw", { headers: { "x-app": "1" } }))
    // Response.redirect's headers are immutable: the middleware sets them on a copy
    app.get("/redirect", () => Response.redirect("http://127.0.0.1/elsewhere", 302))
    const answers = await Promise.all(["/text", "/raw", "/redirect"].map((path) => app.request(path)))
    assert.deepStrictEqual(answers.map((r) => r.status), [200, 200, 302])
    assert.deepStrictEqual(answers.map((r) => r.headers.get("ratelimit-policy")), Array(3).fill(`"${limiter}";q=10;w=3600`))
    assert.deepStrictEqual(answers.map((r) => (r.headers.get("ratelimit") ?? "").startsWith(`"${limiter}";r=`)), [true, true, true])
    assert.strictEqual(answers[1]?.headers.get("x-app"), "1")
    assert.strictEqual(answers[2]?.headers.get("location"), "http://127.0.0.1/elsewhere")
  })

  it("a peerAddress that is not a function is a ConfigError at http.peerAddress", () => {
    try {
      rateLimit({ limiter: "api", peerAddress: JSON.parse(`"nope"`) })
      assert.fail("expected a ConfigError")
    } catch (error) {
      assert.propertyVal(error, "path", "http.peerAddress")
    }
  })
})
