/**
 * Rate limiting for Hono 4, over the promise facade (`effect-rate-sync/promise`): a middleware
 * `(c, next)` with the options, headers, 429 and 503 of `HttpRateLimit.middleware`
 * (docs/http.md, "Express, Fastify and Hono").
 *
 * The client address is the socket's peer, which Hono itself does not give: on
 * `@hono/node-server` it is read from the Node request the server passes in `c.env.incoming`; on
 * another runtime give `peerAddress` (for example `(c) => getConnInfo(c).remote.address` with
 * the runtime's `getConnInfo`).
 *
 * Hono is imported for its types only: this module loads no framework at run time.
 *
 * ```ts
 * import { Hono } from "hono"
 * import { serve } from "@hono/node-server"
 * import { configureLimiter } from "effect-rate-sync/promise"
 * import { rateLimit } from "effect-rate-sync/hono"
 *
 * await configureLimiter("api", { algorithm: "sliding_window", limit: 100, window: "1 minute" })
 * const app = new Hono()
 * app.use(rateLimit({ limiter: "api", exclude: ["/health"] }))
 * serve({ fetch: app.fetch, port: 3000 })
 * ```
 *
 * @since 0.2.0
 */
import type { Context, MiddlewareHandler } from "hono"
import type * as RateLimiter from "./RateLimiter.js"
import * as Adapters from "./internal/adapters/core.js"
import { ConfigError } from "./RateLimitError.js"
import { describeInput } from "./internal/config/input.js"

/**
 * Returned by a `key` function to let a request through unlimited: no store call, no headers
 * (the same value as `HttpRateLimit.Exempt`).
 *
 * @since 0.2.0
 * @category models
 */
export { Exempt } from "./internal/adapters/core.js"

/**
 * Answers a refused request in place of the default 429. `Retry-After` and the rate-limit
 * headers are added to its response, except any it set itself. `decision` is the binding refusal
 * (the limit with the largest retry time), `combined` the answer over every limit of the call.
 *
 * @since 0.2.0
 * @category models
 */
export type RefusalHandler = (
  decision: RateLimiter.Decision,
  c: Context,
  combined: RateLimiter.CombinedDecision
) => Response | PromiseLike<Response>

/**
 * The options of {@link rateLimit}: those of `HttpRateLimit.middleware` (docs/http.md,
 * "Options"), with `key(c, client)` and `cost(c)` taking Hono's context and answering a value or a
 * promise, and `timeout` reading a number as seconds (the promise facade's rule); and
 * `peerAddress`.
 *
 * @since 0.2.0
 * @category models
 */
export interface RateLimitOptions extends Adapters.AdapterOptions<Context, RefusalHandler> {
  /**
   * The socket's peer address of a request (the client, or the proxy in front). Default: the
   * `@hono/node-server` request's socket (`c.env.incoming.socket.remoteAddress`); `undefined`
   * elsewhere, so every request shares the key `"unknown"` unless you give this.
   */
  readonly peerAddress?: ((c: Context) => string | undefined) | undefined
}

interface NodeIncoming {
  readonly url?: unknown
  readonly socket?: { readonly remoteAddress?: unknown } | undefined
}

/** The Node request `@hono/node-server` passes as `c.env.incoming`, if any. */
const nodeIncoming = (env: unknown): NodeIncoming | undefined => {
  if (typeof env !== "object" || env === null || !("incoming" in env)) return undefined
  const incoming: unknown = env.incoming
  return typeof incoming === "object" && incoming !== null ? incoming : undefined
}

const nodePeer = (c: Context): string | undefined => {
  const address = nodeIncoming(c.env)?.socket?.remoteAddress
  return typeof address === "string" ? address : undefined
}

/** The target as sent: Node's raw one when there is one, else the URL's path and query. */
const targetOf = (c: Context): string => {
  const raw = nodeIncoming(c.env)?.url
  if (typeof raw === "string" && raw.length > 0) return raw
  const url = c.req.url
  const at = url.indexOf("/", url.indexOf("://") + 3)
  return at === -1 ? "/" : url.slice(at)
}

/** A response whose headers can be set (those of a `fetch` response cannot). */
const withHeaders = (response: Response, headers: Record<string, string>): Response => {
  const out = new Response(response.body, response)
  for (const [name, value] of Object.entries(headers)) {
    if (!out.headers.has(name)) out.headers.set(name, value)
  }
  return out
}

/**
 * Sets `headers` on the response the app answered, in place (Hono's own idiom after `next()`:
 * `c.header` there copies the response, body stream and all, which costs more than the rest of the
 * request); on a copy through `c.header` when its headers are immutable (a `fetch` response).
 */
const setOn = (c: Context, response: Response, headers: Record<string, string>): void => {
  try {
    for (const [name, value] of Object.entries(headers)) response.headers.set(name, value)
  } catch {
    for (const [name, value] of Object.entries(headers)) c.header(name, value)
  }
}

/**
 * A Hono middleware charging every request to `options.limiter` by key (the client address by
 * default). Allowed requests go on, and their response gets the rate-limit headers; refused ones
 * get 429 (or `onRefused`'s response) and never reach the handler; a store failure lets the
 * request through or answers 503, as `failOpen` and the limiter's policy say. Programming errors
 * (an unknown limiter, an invalid cost, a throwing `key`) are thrown, for `app.onError`.
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
export const rateLimit = (options: RateLimitOptions): MiddlewareHandler => {
  const adapter = Adapters.compileAdapter(options)
  const { onRefused } = adapter
  const peerAddress = options.peerAddress ?? nodePeer
  if (typeof peerAddress !== "function") {
    throw ConfigError.at("http.peerAddress", "a function", describeInput(peerAddress))
  }

  return async (c, next) => {
    const target = targetOf(c)
    if (!adapter.applies(target)) return next()
    const view: Adapters.RequestView = { target, peer: peerAddress(c), header: (name) => c.req.header(name) }
    const outcome = await adapter.decide(c, view)
    switch (outcome._tag) {
      case "Pass":
        return next()
      case "Allowed": {
        await next()
        // on the response the app answered (its error response too), after the headers of any
        // limiter inside this one
        const response = c.res
        setOn(c, response, adapter.headersOf(outcome, (name) => response.headers.get(name) ?? undefined))
        return undefined
      }
      case "Refused": {
        const headers = adapter.headersOf(outcome)
        if (onRefused !== undefined) return withHeaders(await onRefused(outcome.decision, c, outcome.combined), headers)
        return c.body(adapter.refusalBody(outcome), 429, { ...headers, "content-type": Adapters.PROBLEM_JSON })
      }
      case "Unavailable":
        return c.body(Adapters.UNAVAILABLE_BODY, 503, { "content-type": Adapters.PROBLEM_JSON })
    }
  }
}
