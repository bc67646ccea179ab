/**
 * `effect-rate-sync/fastify` on a real Fastify 5 server (127.0.0.1, ephemeral port), driven by
 * `fetch`: the scenarios of ./suite.ts, the hook added to the root (every route, and the 404s).
 */
import Fastify, { type FastifyRequest } from "fastify"
import { type RateLimitOptions, rateLimit, type RefusalHandler } from "effect-rate-sync/fastify"
import { adapterSuite, type Served } from "./suite.js"

const serve = async (middlewares: ReadonlyArray<RateLimitOptions>): Promise<Served> => {
  const app = Fastify()
  for (const options of middlewares) app.addHook("onRequest", rateLimit(options))
  let hits = 0
  app.get("/*", async () => {
    hits++
    return "ok"
  })
  const base = await app.listen({ port: 0, host: "127.0.0.1" })
  return { base, hits: () => hits, close: () => app.close() }
}

// answers the payload, as a Fastify handler may; the status is the 429 already set
const customRefusal: RefusalHandler = (decision, _request, reply) => {
  reply.headers({ "x-custom": "yes", "retry-after": "99" })
  return { error: "quota exceeded", limit: decision.limit }
}

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name]
  return Array.isArray(value) ? value.join(", ") : value
}

adapterSuite<FastifyRequest, RefusalHandler>({
  name: "Fastify",
  serve,
  rateLimit,
  header,
  customRefusal,
  silentRefusal: (_decision, _request, reply) => {
    reply.header("x-custom", "yes")
  }
})
