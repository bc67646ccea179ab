/**
 * `effect-rate-sync/hono` on a real Hono 4 app served by `@hono/node-server` (127.0.0.1,
 * ephemeral port), driven by `fetch`: the scenarios of ./suite.ts, the middleware on every path.
 */
import { serve as nodeServe } from "@hono/node-server"
import { type Context, Hono } from "hono"
import type { AddressInfo } from "node:net"
import { type RateLimitOptions, rateLimit, type RefusalHandler } from "effect-rate-sync/hono"
import { adapterSuite, type Served } from "./suite.js"

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
