/**
 * `effect-rate-sync/express` on a real Express 5 server (127.0.0.1, ephemeral port), driven by
 * `fetch`: the scenarios of ./suite.ts.
 */
import express, { type Request } from "express"
import { type RateLimitOptions, rateLimit, type RefusalHandler } from "effect-rate-sync/express"
import { adapterSuite, type Served } from "./suite.js"

const serve = async (middlewares: ReadonlyArray<RateLimitOptions>): Promise<Served> => {
  const app = express()
  for (const options of middlewares) app.use(rateLimit(options))
  let hits = 0
  app.get("/{*path}", (_req, res) => {
    hits++
    res.send("ok")
  })
  const server = app.listen(0, "127.0.0.1")
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve)
    server.once("error", reject)
  })
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error(`not a TCP address: ${String(address)}`)
  return {
    base: `http://127.0.0.1:${address.port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)))
        server.closeAllConnections()
      })
  }
}

const customRefusal: RefusalHandler = (decision, _req, res) => {
  // the status is the 429 already set
  res.set({ "x-custom": "yes", "retry-after": "99" }).json({ error: "quota exceeded", limit: decision.limit })
}

adapterSuite<Request, RefusalHandler>({
  name: "Express",
  serve,
  rateLimit,
  header: (req, name) => req.get(name),
  customRefusal,
  silentRefusal: async (_decision, _req, res) => {
    res.setHeader("x-custom", "yes")
  }
})
