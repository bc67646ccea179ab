/**
 * Rate limiting for Fastify 5, over the promise facade (`effect-rate-sync/promise`): an
 * `onRequest` hook with the options, headers, 429 and 503 of `HttpRateLimit.middleware`
 * (docs/http.md, "Express, Fastify and Hono").
 *
 * A hook, not a plugin: `app.addHook("onRequest", rateLimit(...))` limits the routes of the
 * context it is added to (the root: all of them; inside a `register`ed plugin: that plugin's), and
 * a route's own `onRequest` option limits that route. No `fastify-plugin` is needed.
 *
 * Fastify is imported for its types only: this module loads no framework at run time.
 *
 * ```ts
 * import Fastify from "fastify"
 * import { configureLimiter } from "effect-rate-sync/promise"
 * import { rateLimit } from "effect-rate-sync/fastify"
 *
 * await configureLimiter("api", { algorithm: "sliding_window", limit: 100, window: "1 minute" })
 * const app = Fastify()
 * app.addHook("onRequest", rateLimit({ limiter: "api", exclude: ["/health"] }))
 * ```
 *
 * @since 0.2.0
 */
import type { FastifyReply, FastifyRequest } from "fastify"
import type * as RateLimiter from "./RateLimiter.js"
import * as Adapters from "./internal/adapters/core.js"

/**
 * Returned by a `key` function to let a request through unlimited: no store call, no headers
 * (the same value as `HttpRateLimit.Exempt`).
 *
 * @since 0.2.0
 * @category models
 */
export { Exempt } from "./internal/adapters/core.js"

/**
 * Answers a refused request in place of the default 429, as a Fastify handler does: it sends on
 * `reply` (and answers `reply`), or answers the payload to send. The status 429, `Retry-After` and
 * the rate-limit headers are already set on `reply`; the handler may change them. If it answers
 * `undefined` without sending, the default 429 is sent. `decision` is the binding refusal (the
 * limit with the largest retry time), `combined` the answer over every limit of the call.
 *
 * @since 0.2.0
 * @category models
 */
export type RefusalHandler = (
  decision: RateLimiter.Decision,
  request: FastifyRequest,
  reply: FastifyReply,
  combined: RateLimiter.CombinedDecision
) => unknown

/**
 * The options of {@link rateLimit}: those of `HttpRateLimit.middleware` (docs/http.md,
 * "Options"), with `key(request, client)` and `cost(request)` taking Fastify's request and
 * answering a value or a promise, and `timeout` reading a number as seconds (the promise facade's
 * rule).
 *
 * @since 0.2.0
 * @category models
 */
export interface RateLimitOptions extends Adapters.AdapterOptions<FastifyRequest, RefusalHandler> {}

/**
 * The hook {@link rateLimit} builds: an async `onRequest` hook. It answers the reply when it has
 * sent the refusal or the 503, nothing when the request goes on.
 *
 * @since 0.2.0
 * @category models
 */
export type RateLimitHook = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>

/** The request as the shared code reads it: the target as sent, the socket's peer. */
const viewOf = (request: FastifyRequest): Adapters.RequestView => ({
  target: request.raw.url ?? request.url,
  // the socket, never `request.ip` (Fastify's own `trustProxy`): proxies are `trustedProxies`
  peer: request.raw.socket.remoteAddress,
  header: (name) => Adapters.headerText(request.headers[name])
})

// a Buffer: Fastify adds "; charset=utf-8" to the type of a string payload
const sendProblem = (reply: FastifyReply, status: number, body: string): FastifyReply =>
  reply.code(status).header("content-type", Adapters.PROBLEM_JSON).send(Buffer.from(body))

/**
 * A Fastify `onRequest` hook charging every request to `options.limiter` by key (the client
 * address by default). Allowed requests get the rate-limit headers and go on; refused ones get
 * 429 (or `onRefused`'s answer) and never reach the handler; a store failure lets the request
 * through or answers 503, as `failOpen` and the limiter's policy say. Programming errors (an
 * unknown limiter, an invalid cost, a throwing `key`) reject the hook, for Fastify's error
 * handler.
 *
 * `limiter` may name several limits charged as one unit (all or nothing), and `limits` choose
 * them per request (tiered plans); each request updates `rate_sync_http_requests_total` as the
 * Effect middleware does, where the limiters' own metrics are (Effect 4: the `Metric.MetricRegistry`
 * their `RateLimiter` was made with; no contextual label on either major).
 *
 * Invalid options throw their `ConfigError` here, at start-up.
 *
 * @example
 * ```ts
 * app.addHook("onRequest", rateLimit({ limiter: "api" }))
 * app.post("/login", { onRequest: rateLimit({ limiter: "login", failOpen: false }) }, login)
 * // per client and global, as one unit
 * app.post("/login", { onRequest: rateLimit({ limiter: ["login", { limiter: "login-global", key: "all" }] }) }, login)
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const rateLimit = (options: RateLimitOptions): RateLimitHook => {
  const adapter = Adapters.compileAdapter(options)
  const { onRefused } = adapter
  const existing = (reply: FastifyReply) => (name: string) => Adapters.headerText(reply.getHeader(name))

  return async (request, reply) => {
    const view = viewOf(request)
    if (!adapter.applies(view.target)) return undefined
    const outcome = await adapter.decide(request, view)
    switch (outcome._tag) {
      case "Pass":
        return undefined
      case "Allowed":
        reply.headers(adapter.headersOf(outcome, existing(reply)))
        return undefined
      case "Refused": {
        reply.headers(adapter.headersOf(outcome, existing(reply)))
        if (onRefused === undefined) return sendProblem(reply, 429, adapter.refusalBody(outcome))
        const answer = await onRefused(outcome.decision, request, reply.code(429), outcome.combined)
        if (answer === reply || reply.sent) return reply
        return answer === undefined ? sendProblem(reply, 429, adapter.refusalBody(outcome)) : reply.send(answer)
      }
      case "Unavailable":
        return sendProblem(reply, 503, Adapters.UNAVAILABLE_BODY)
    }
  }
}
