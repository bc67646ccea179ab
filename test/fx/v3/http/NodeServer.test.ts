/**
 * The middleware behind a real `NodeHttpServer` on a loopback port, driven by real HTTP requests
 * (`fetch`). The socket peer is 127.0.0.1; forwarding headers are what a proxy (or an attacker)
 * would send. Real clock: bounds are generous, never tight timings.
 *
 * Effect 3 only (test/fx/v3/): `@effect/platform` routers and `@effect/platform-node` 0.108; the
 * Effect 4 server path is tested in test/fx/v4/http.test.ts.
 */
import type { HttpApp, HttpServerRequest } from "@effect/platform"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "#test/vitest"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
import { createServer, request } from "node:http"
import { connect } from "node:net"
import { failingStoreLayer, freshId, limitersOn, rateHeadersOf, requestCount } from "../../../http/helpers.js"
import { type LimiterDefinition, type RateLimitStore, RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"

interface Reply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

type Send = (path: string, headers?: Record<string, string>) => Effect.Effect<Reply>

/** `node:http`, which sends the path as written (fetch would normalise dot segments). */
const rawGet = (base: string, path: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const url = new URL(base)
    const req = request({ host: url.hostname, port: url.port, path, headers: { connection: "close" } }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
    req.on("error", reject)
    req.end()
  })

/**
 * One request written byte for byte on a `net.Socket`, for request targets no HTTP client sends
 * (absolute form, `*login`); answers the status and the body.
 */
const socketGet = (base: string, target: string, headers: Record<string, string> = {}): Promise<RawReply> =>
  new Promise((resolve, reject) => {
    const url = new URL(base)
    const lines = [`GET ${target} HTTP/1.1`, `Host: ${url.host}`, "Connection: close"]
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
    const socket = connect(Number(url.port), url.hostname, () => socket.end(`${lines.join("\r\n")}\r\n\r\n`))
    const chunks: Array<Buffer> = []
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("error", reject)
    socket.on("close", () => {
      const response = Buffer.concat(chunks).toString("latin1")
      const status = /^HTTP\/1\.1 ([0-9]{3}) /.exec(response)?.[1]
      const bodyAt = response.indexOf("\r\n\r\n")
      resolve({ status: Number(status ?? 0), body: bodyAt === -1 ? "" : response.slice(bodyAt + 4) })
    })
  })

interface RawReply {
  readonly status: number
  readonly body: string
}

type Socket = (target: string, headers?: Record<string, string>) => Effect.Effect<RawReply>

/**
 * Serves `app` on 127.0.0.1:<ephemeral> with `limiters` on `store`, then runs `body` with a
 * function sending real requests to it. The server closes with the scope.
 */
const withServer = <A, E, R extends RateLimiter.RateLimiter | HttpServerRequest.HttpServerRequest | Scope.Scope>(
  app: HttpApp.Default<E, R>,
  limiters: Readonly<Record<string, LimiterDefinition.LimiterDefinition>>,
  body: (send: Send, raw: (path: string) => Effect.Effect<number>, socket: Socket) => Effect.Effect<A>,
  store?: Layer.Layer<RateLimitStore.RateLimitStore>
) =>
  Effect.gen(function*() {
    const base = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
    assert.match(base, /^http:\/\/127\.0\.0\.1:[0-9]+$/)
    const send: Send = (path, headers) =>
      Effect.promise(async () => {
        const response = await fetch(`${base}${path}`, { headers: { connection: "close", ...headers } })
        const out: Record<string, string> = {}
        response.headers.forEach((value, name) => {
          out[name] = value
        })
        return { status: response.status, headers: out, body: await response.text() }
      })
    return yield* body(
      send,
      (path) => Effect.promise(() => rawGet(base, path)),
      (target, headers) => Effect.promise(() => socketGet(base, target, headers))
    )
  }).pipe(
    Effect.provide(
      HttpServer.serve(app).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
        Layer.provide(limitersOn(limiters, store)),
        Layer.orDie
      )
    )
  )

const ok = HttpServerResponse.text("ok")
const hour = (limit: number): LimiterDefinition.LimiterDefinition => ({ algorithm: "sliding_window", limit, window: "1 hour" })

describe("HttpRateLimit over a real NodeHttpServer", () => {
  it.live("several limits per request, chosen per request (tiered plans): a member per limit, all or nothing", () => {
    const user = freshId("node-user")
    const global = freshId("node-global")
    const pro = freshId("node-pro")
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/things", ok),
      HttpRateLimit.middleware({
        key: (request) => Effect.succeed(request.headers["x-user"] ?? "anon"),
        limits: (request) =>
          Effect.succeed(
            request.headers["x-plan"] === "pro" ? pro : [user, { limiter: global, key: "all" }]
          ),
        headers: "draft"
      })
    )
    return withServer(app, { [user]: hour(1), [global]: hour(2), [pro]: hour(10) }, (send) =>
      Effect.gen(function*() {
        const a = yield* send("/things", { "x-user": "a" })
        assert.strictEqual(a.status, 200)
        assert.strictEqual(a.headers["ratelimit"], `"${user}";r=0;t=3600, "${global}";r=1;t=3600`)
        const again = yield* send("/things", { "x-user": "a" })
        assert.strictEqual(again.status, 429)
        assert.deepStrictEqual(JSON.parse(again.body)["violated-policies"], [user])
        // the refused call took nothing from the global limit: user b still gets its last unit
        assert.strictEqual((yield* send("/things", { "x-user": "b" })).status, 200)
        const c = yield* send("/things", { "x-user": "c" })
        assert.strictEqual(c.status, 429)
        assert.deepStrictEqual(JSON.parse(c.body)["violated-policies"], [global])
        const p = yield* send("/things", { "x-user": "a", "x-plan": "pro" })
        assert.strictEqual(p.status, 200)
        assert.strictEqual(p.headers["ratelimit"], `"${pro}";r=9;t=3600`)
        assert.strictEqual(yield* requestCount(global, "refused"), 2)
        assert.strictEqual(yield* requestCount(pro, "allowed"), 1)
      }))
  })

  it.live("the 101st request of a 100/window limit gets 429; headers are exact", () => {
    const id = freshId("node-api")
    const app = HttpRouter.empty.pipe(HttpRouter.get("/things", ok), HttpRateLimit.middleware({ limiter: id }))
    return withServer(app, { [id]: hour(100) }, (send) =>
      Effect.gen(function*() {
        const first = yield* send("/things")
        assert.strictEqual(first.status, 200)
        assert.deepStrictEqual(rateHeadersOf(first.headers), {
          "ratelimit-policy": `"${id}";q=100;w=3600`,
          "ratelimit": `"${id}";r=99;t=3600`,
          "x-ratelimit-limit": "100",
          "x-ratelimit-remaining": "99",
          "x-ratelimit-reset": "3600"
        })
        for (let i = 2; i <= 100; i++) {
          const r = yield* send("/things")
          assert.strictEqual(r.status, 200)
          assert.strictEqual(r.headers["x-ratelimit-remaining"], String(100 - i))
        }
        const refused = yield* send("/things")
        assert.strictEqual(refused.status, 429)
        assert.strictEqual(refused.headers["content-type"], "application/problem+json")
        // the oldest admitted request leaves the window an hour after it came in: a little less now
        const retryAfter = Number(refused.headers["retry-after"])
        assert.isAtLeast(retryAfter, 3600 - 120)
        assert.isAtMost(retryAfter, 3600)
        // t: until more quota comes, which is when the oldest request leaves (never after Retry-After)
        assert.strictEqual(refused.headers["ratelimit"], `"${id}";r=0;t=${retryAfter}`)
        assert.deepInclude(JSON.parse(refused.body), { status: 429, limiter: id, retryAfter })
        assert.strictEqual(yield* requestCount(id, "refused"), 1)
      }))
  })

  it.live("a spoofed X-Forwarded-For from an untrusted peer does not change the key", () => {
    const id = freshId("node-spoof")
    // only 10.0.0.0/8 is trusted; the peer is 127.0.0.1
    const app = ok.pipe(HttpRateLimit.middleware({ limiter: id, trustedProxies: ["10.0.0.0/8"] }))
    return withServer(app, { [id]: hour(3) }, (send) =>
      Effect.gen(function*() {
        for (let i = 1; i <= 3; i++) {
          const r = yield* send("/", { "x-forwarded-for": `203.0.113.${i}`, forwarded: `for=203.0.113.${i}` })
          assert.strictEqual(r.status, 200)
        }
        const r = yield* send("/", { "x-forwarded-for": "192.0.2.77" })
        assert.strictEqual(r.status, 429)
      }))
  })

  it.live("behind trusted proxies the right-most untrusted address is the key", () => {
    const id = freshId("node-chain")
    const app = ok.pipe(HttpRateLimit.middleware({ limiter: id, trustedProxies: ["loopback", "10.0.0.0/8"] }))
    return withServer(app, { [id]: hour(2) }, (send) =>
      Effect.gen(function*() {
        // client 198.51.100.7 -> proxy 10.0.0.3 -> 127.0.0.1 (peer); left-most entries are forged
        const chain = (forged: string) => ({ "x-forwarded-for": `${forged}, 198.51.100.7, 10.0.0.3` })
        assert.strictEqual((yield* send("/", chain("6.6.6.6"))).status, 200)
        assert.strictEqual((yield* send("/", chain("6.6.6.7"))).status, 200)
        assert.strictEqual((yield* send("/", chain("6.6.6.8"))).status, 429)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "198.51.100.7" })).status, 429)
        // a different client behind the same proxies has its own budget
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "198.51.100.8, 10.0.0.3" })).status, 200)
        // garbage never becomes a key: it falls back to the nearest trusted hop (here the peer)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "198.51.100.9, not-an-ip" })).status, 200)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "198.51.100.10, <script>" })).status, 200)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "unknown" })).status, 429)
        assert.deepInclude((yield* send("/")), { status: 429 })
      }))
  })

  it.live("IPv6 addresses of one /64 share a limit", () => {
    const id = freshId("node-v6")
    const app = ok.pipe(HttpRateLimit.middleware({ limiter: id, trustedProxies: ["loopback"] }))
    return withServer(app, { [id]: hour(2) }, (send) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "2001:db8:1:2::1" })).status, 200)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "[2001:db8:1:2:ffff:eeee:dddd:cccc]:443" })).status, 200)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "2001:DB8:1:2:0:0:0:9%eth0" })).status, 429)
        // the next /64 is another client
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "2001:db8:1:3::1" })).status, 200)
        // IPv4-mapped IPv6 is the IPv4 client
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "198.51.100.20" })).status, 200)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "::ffff:198.51.100.20" })).status, 200)
        assert.strictEqual((yield* send("/", { "x-forwarded-for": "::ffff:c633:6414" })).status, 429)
      }))
  })

  it.live("excluded paths are never limited", () => {
    const id = freshId("node-exclude")
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/health", ok),
      HttpRouter.get("/api/x", ok),
      HttpRouter.get("/static/*", ok),
      HttpRateLimit.middleware({ limiter: id, exclude: ["/health", "/static/**"] })
    )
    return withServer(app, { [id]: hour(1) }, (send, raw) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* send("/api/x")).status, 200)
        assert.strictEqual((yield* send("/api/x")).status, 429)
        assert.strictEqual(yield* raw("/static/app.css"), 200)
        // sent as written: a path that normalises out of the excluded tree is limited
        assert.strictEqual(yield* raw("/static/../api/x"), 429)
        assert.strictEqual(yield* raw("/static/%2e%2e/api/x"), 429)
        for (let i = 0; i < 10; i++) {
          const r = yield* send("/health")
          assert.strictEqual(r.status, 200)
          assert.deepStrictEqual(rateHeadersOf(r.headers), {})
        }
      }))
  })

  it.live("include [\"/login\"]: every spelling the router serves as /login counts against its limit", () => {
    const id = freshId("node-include")
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/login", HttpServerResponse.text("login")),
      HttpRouter.get("/other", ok),
      HttpRateLimit.middleware({ limiter: id, include: ["/login"], trustedProxies: ["loopback"] })
    )
    const spellings = ["/login", "/LOGIN", "/login/", "/login;x", "//login/", "/%6Cogin", "http://evil/login", "*login"]
    return withServer(app, { [id]: hour(1) }, (_send, _raw, socket) =>
      Effect.gen(function*() {
        for (const [i, spelling] of spellings.entries()) {
          // one client per spelling and direction (trusted loopback proxy), so each has a budget of 1
          const first = { "x-forwarded-for": `198.51.100.${i + 1}` }
          const second = { "x-forwarded-for": `203.0.113.${i + 1}` }
          // the router serves the spelling as /login, and it uses the budget
          assert.deepStrictEqual(yield* socket(spelling, first), { status: 200, body: "login" }, spelling)
          assert.strictEqual((yield* socket("/login", first)).status, 429, spelling)
          // and the spelling is refused once /login used the budget
          assert.strictEqual((yield* socket("/login", second)).status, 200, spelling)
          assert.strictEqual((yield* socket(spelling, second)).status, 429, spelling)
        }
        // paths outside `include` are not limited
        for (let i = 0; i < 3; i++) assert.strictEqual((yield* socket("/other", { "x-forwarded-for": "192.0.2.1" })).status, 200)
      }))
  })

  it.live("exclude is not widened by dot segments or \";\": what the router serves as /login is limited", () => {
    const id = freshId("node-exclude-path")
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/health", ok),
      HttpRouter.get("/login", HttpServerResponse.text("login")),
      HttpRateLimit.middleware({ limiter: id, exclude: ["/health", "/**/health"] })
    )
    return withServer(app, { [id]: hour(1) }, (send, _raw, socket) =>
      Effect.gen(function*() {
        for (let i = 0; i < 3; i++) {
          const r = yield* send("/health")
          assert.strictEqual(r.status, 200)
          assert.deepStrictEqual(rateHeadersOf(r.headers), {})
        }
        // matches "/**/health" as sent and with its dot segments resolved, but the router cuts the
        // path at ";" and serves /login: it is limited, and uses the budget
        assert.deepStrictEqual(yield* socket("/login;/../health"), { status: 200, body: "login" })
        assert.strictEqual((yield* socket("/login")).status, 429)
        assert.strictEqual((yield* socket("/health/../login")).status, 429)
        assert.strictEqual((yield* socket("/health")).status, 200)
      }))
  })

  it.live("fail-open with a failing store lets requests through; fail-closed answers 503", () => {
    const open = freshId("node-open")
    const closed = freshId("node-closed")
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/open", ok.pipe(HttpRateLimit.limit(open))),
      HttpRouter.get("/closed", ok.pipe(HttpRateLimit.limit(closed, { failOpen: false })))
    )
    return withServer(
      app,
      { [open]: hour(1), [closed]: hour(1) },
      (send) =>
        Effect.gen(function*() {
          for (let i = 0; i < 3; i++) {
            const r = yield* send("/open")
            assert.strictEqual(r.status, 200)
            assert.strictEqual(r.body, "ok")
          }
          assert.strictEqual(yield* requestCount(open, "fail_open"), 3)
          const r = yield* send("/closed")
          assert.strictEqual(r.status, 503)
          assert.strictEqual(r.headers["content-type"], "application/problem+json")
          const everything = JSON.stringify(r)
          for (const secret of ["hunter2", "redis", "10.9.8.7", "rate_limit", "127.0.0.1"]) {
            assert.notInclude(everything, secret)
          }
        }),
      failingStoreLayer
    )
  })
})

describe("HttpRateLimit.catchExceeded over a real NodeHttpServer", () => {
  it.live("a RateLimitExceeded raised in a handler answers the same 429 as a middleware refusal", () => {
    const byMiddleware = freshId("node-mw")
    const inHandler = freshId("node-handler")
    const acquiring = Effect.scoped(
      Effect.as(RateLimiter.acquire(inHandler, { key: "k", timeout: 0 }), HttpServerResponse.text("ok"))
    )
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/mw", ok.pipe(HttpRateLimit.limit(byMiddleware, { key: () => Effect.succeed("k") }))),
      HttpRouter.get("/handler", acquiring),
      HttpRouter.get("/boom", Effect.fail(new Error("not a rate limit"))),
      HttpRateLimit.catchExceeded()
    )
    return withServer(app, { [byMiddleware]: hour(1), [inHandler]: hour(1) }, (send) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* send("/mw")).status, 200)
        assert.strictEqual((yield* send("/handler")).status, 200)
        const refused = yield* send("/mw")
        const raised = yield* send("/handler")
        assert.strictEqual(refused.status, 429)
        assert.strictEqual(raised.status, 429)
        assert.strictEqual(raised.headers["content-type"], "application/problem+json")
        const retryAfter = Number(raised.headers["retry-after"])
        assert.isAtLeast(retryAfter, 3600 - 120)
        assert.isAtMost(retryAfter, 3600)
        assert.deepStrictEqual(rateHeadersOf(raised.headers), {
          "ratelimit-policy": `"${inHandler}";q=1;w=3600`,
          "ratelimit": `"${inHandler}";r=0;t=${retryAfter}`,
          "x-ratelimit-limit": "1",
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": String(retryAfter),
          "retry-after": String(retryAfter)
        })
        const same = (text: string) => text.split(byMiddleware).join(inHandler)
        assert.deepStrictEqual(JSON.parse(raised.body), JSON.parse(same(refused.body)))
        assert.deepStrictEqual(
          rateHeadersOf(raised.headers),
          JSON.parse(same(JSON.stringify(rateHeadersOf(refused.headers))))
        )
        // other failures are left alone
        assert.strictEqual((yield* send("/boom")).status, 500)
      }))
  })

  it.live("catchExceeded honours headers and policyName", () => {
    const id = freshId("node-opts")
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/", Effect.scoped(Effect.as(RateLimiter.acquire(id, { key: "k", timeout: 0 }), ok))),
      HttpRateLimit.catchExceeded({ headers: "draft", policyName: "plan" })
    )
    return withServer(app, { [id]: hour(1) }, (send) =>
      Effect.gen(function*() {
        yield* send("/")
        const raised = yield* send("/")
        assert.strictEqual(raised.status, 429)
        const retryAfter = raised.headers["retry-after"] ?? ""
        assert.deepStrictEqual(rateHeadersOf(raised.headers), {
          "ratelimit-policy": `"plan";q=1;w=3600`,
          "ratelimit": `"plan";r=0;t=${retryAfter}`,
          "retry-after": retryAfter
        })
      }))
  })
})
