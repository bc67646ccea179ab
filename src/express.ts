/**
 * Rate limiting for Express 5, over the promise facade (`effect-rate-sync/promise`): a middleware
 * `(req, res, next)` with the options, headers, 429 and 503 of `HttpRateLimit.middleware`
 * (docs/http.md, "Express, Fastify and Hono").
 *
 * Express is imported for its types only: this module loads no framework at run time, so it
 * needs `express` only where your application has it.
 *
 * ```ts
 * import express from "express"
 * import { configureLimiter } from "effect-rate-sync/promise"
 * import { rateLimit } from "effect-rate-sync/express"
 *
 * await configureLimiter("api", { algorithm: "sliding_window", limit: 100, window: "1 minute" })
 * const app = express()
 * app.use(rateLimit({ limiter: "api", exclude: ["/health"], trustedProxies: ["10.0.0.0/8"] }))
 * ```
 *
 * @since 0.2.0
 */
import type { NextFunction, Request, RequestHandler, Response } from "express"
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
 * Answers a refused request in place of the default 429, by answering on `res` before it returns
 * (or before its promise resolves). The status 429, `Retry-After` and the rate-limit headers are
 * already set on `res`; the handler may change them. If it answers nothing, the default 429 is
 * sent. `decision` is the binding refusal (the limit with the largest retry time), `combined` the
 * answer over every limit of the call.
 *
 * @since 0.2.0
 * @category models
 */
export type RefusalHandler = (
  decision: RateLimiter.Decision,
  req: Request,
  res: Response,
  combined: RateLimiter.CombinedDecision
) => unknown

/**
 * The options of {@link rateLimit}: those of `HttpRateLimit.middleware` (docs/http.md,
 * "Options"), with `key(req, client)` and `cost(req)` taking Express's request and answering a
 * value or a promise, and `timeout` reading a number as seconds (the promise facade's rule).
 *
 * @since 0.2.0
 * @category models
 */
export interface RateLimitOptions extends Adapters.AdapterOptions<Request, RefusalHandler> {}

/** The request as the shared code reads it: the target as sent, the socket's peer. */
const viewOf = (req: Request): Adapters.RequestView => ({
  // `originalUrl`: the target as sent, also where the middleware is mounted under a path
  target: req.originalUrl,
  // the socket, never `req.ip` (Express's own `trust proxy`): proxies are `trustedProxies`
  peer: req.socket.remoteAddress,
  header: (name) => Adapters.headerText(req.headers[name])
})

const setAll = (res: Response, headers: Record<string, string>): void => {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
}

const sendProblem = (res: Response, status: number, body: string): void => {
  res.statusCode = status
  res.setHeader("content-type", Adapters.PROBLEM_JSON)
  res.setHeader("content-length", Buffer.byteLength(body))
  res.end(body)
}

/**
 * An Express middleware charging every request to `options.limiter` by key (the client address
 * by default). Allowed requests get the rate-limit headers and go on; refused ones get 429 (or
 * `onRefused`'s answer) and never reach the routes after it; a store failure lets the request
 * through or answers 503, as `failOpen` and the limiter's policy say. Programming errors (an
 * unknown limiter, an invalid cost, a throwing `key`) go to `next(error)`.
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
 * app.use(rateLimit({ limiter: "api" }))
 * app.post("/login", rateLimit({ limiter: "login", failOpen: false }), login)
 * // per client and global, as one unit
 * app.post("/login", rateLimit({ limiter: ["login", { limiter: "login-global", key: "all" }] }), login)
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const rateLimit = (options: RateLimitOptions): RequestHandler => {
  const adapter = Adapters.compileAdapter(options)
  const { onRefused } = adapter
  const existing = (res: Response) => (name: string) => Adapters.headerText(res.getHeader(name))

  const refuse = async (outcome: Adapters.Refused, req: Request, res: Response) => {
    setAll(res, adapter.headersOf(outcome, existing(res)))
    res.statusCode = 429
    if (onRefused !== undefined) await onRefused(outcome.decision, req, res, outcome.combined)
    if (!res.headersSent) sendProblem(res, 429, adapter.refusalBody(outcome))
  }

  return (req: Request, res: Response, next: NextFunction): void => {
    if (!adapter.applies(req.originalUrl)) return next()
    adapter.decide(req, viewOf(req)).then(async (outcome) => {
      switch (outcome._tag) {
        case "Pass":
          return next()
        case "Allowed":
          setAll(res, adapter.headersOf(outcome, existing(res)))
          return next()
        case "Refused":
          return refuse(outcome, req, res)
        case "Unavailable":
          return sendProblem(res, 503, Adapters.UNAVAILABLE_BODY)
      }
    }).catch(next)
  }
}
