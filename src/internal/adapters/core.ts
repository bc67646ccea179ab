/**
 * What the Express, Fastify and Hono middlewares share: their options checked and compiled once
 * (by the same `core/http` code as `HttpRateLimit.middleware`'s), the per-request decision over
 * the promise facade's `check`, and the headers and bodies of each outcome (the same
 * `core/http/headers` functions, so the text is the Effect middleware's). No framework is imported
 * here; each framework module reads its own request and writes its own response.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fx from "#fx/core"
import {
  type HeadersMode,
  policyWindow,
  rateHeaders,
  retryAfterSeconds,
  tooManyRequestsBody,
  unavailableBody
} from "../../core/http/headers.js"
import { type HttpOptions, resolveOptions } from "../../core/http/options.js"
import type { ProxyHeader } from "../../core/http/clientIp.js"
import { describeInput } from "../config/input.js"
import { Exempt, type Outcome, toConfigError } from "../http/compile.js"
import { check } from "../../promise.js"
import { ConfigError, StoreUnavailable } from "../../RateLimitError.js"
import type * as RateLimiter from "../../RateLimiter.js"

export { Exempt, type Outcome }

/**
 * The options of every framework middleware, `Req` being the framework's request and `Refusal` its
 * refusal handler: those of `HttpRateLimit.middleware` (docs/http.md, "Options"), the key and cost
 * functions taking the framework's request and answering a value or a promise.
 *
 * @internal
 */
export interface AdapterOptions<Req, Refusal> extends HttpOptions<(request: Req) => number | PromiseLike<number>> {
  /** The limiter id in the facade's configuration. */
  readonly limiter: string
  /**
   * The key of a request. `client` is the default key: the client address after the
   * trusted-proxy walk, IPv6 grouped by prefix (`undefined` when the server gave no address).
   * Return `Exempt` to let the request through unlimited (no store call, no headers).
   */
  readonly key?: ((request: Req, client: string | undefined) => string | Exempt | PromiseLike<string | Exempt>) | undefined
  /**
   * How long a refused request may wait for the limiter before it is refused: `"2 seconds"`, a
   * `Duration`, or a number of SECONDS (the promise facade's rule; the Effect middleware reads a
   * number as milliseconds). Default none.
   */
  readonly timeout?: Fx.DurationInput | undefined
  /** Answers a refused request in place of the default 429. */
  readonly onRefused?: Refusal | undefined
}

/**
 * A request as the shared code reads it: the target as sent (path and query), the socket's peer
 * address, and a header by its lower-case name (several values joined with `", "`).
 *
 * @internal
 */
export interface RequestView {
  readonly target: string
  readonly peer: string | undefined
  readonly header: (name: ProxyHeader) => string | undefined
}

/**
 * The compiled options of one middleware.
 *
 * @internal
 */
export interface Adapter<Req, Refusal> {
  readonly limiter: string
  readonly onRefused: Refusal | undefined
  /** Whether a request target is limited at all (include / exclude), without any other work. */
  readonly applies: (target: string) => boolean
  /** The outcome of a request whose target {@link applies}; rejects only with programming errors. */
  readonly decide: (request: Req, view: RequestView) => Promise<Outcome>
  /**
   * The rate-limit headers of a decision, after those `existing` reads (another limiter's), and
   * `Retry-After` for a refusal. Lower-case names.
   */
  readonly headersOf: (
    decision: RateLimiter.Decision,
    existing?: (name: string) => string | undefined
  ) => Record<string, string>
  /** The `application/problem+json` body of a refusal. */
  readonly refusalBody: (retryAfter: number) => string
}

/** @internal */
export const PROBLEM_JSON = "application/problem+json"

/**
 * The 503 body (fixed: no store error text, URL, host or key layout).
 *
 * @internal
 */
export const UNAVAILABLE_BODY: string = JSON.stringify(unavailableBody)

const PASS: Outcome = { _tag: "Pass" }
const UNAVAILABLE: Outcome = { _tag: "Unavailable" }

/** Effect's clock, not the global timers: the library never reads time by itself. */
const sleep = (ms: number): Promise<void> => Effect.runPromise(Effect.sleep(Duration.millis(ms)))

/**
 * The `timeout` option in milliseconds (`undefined`: no wait). A number is seconds, as in the
 * promise facade; a negative, `NaN` or infinite one is refused.
 */
const timeoutOf = (input: Fx.DurationInput | undefined): number | undefined | ConfigError => {
  if (input === undefined) return undefined
  const decoded = typeof input === "number" ? Option.some(input * 1000) : Option.map(Fx.decodeDurationOption(input), Duration.toMillis)
  const ms = Option.getOrElse(decoded, () => Number.NaN)
  const negative = typeof input === "number" && !(input >= 0)
  if (negative || !(Number.isFinite(ms) && ms >= 0)) {
    return ConfigError.at("http.timeout", "a finite duration of 0 or more", describeInput(input))
  }
  return ms > 0 ? ms : undefined
}

const checkFunction = (path: string, value: unknown, expected = "a function"): void => {
  if (value !== undefined && typeof value !== "function") throw ConfigError.at(path, expected, describeInput(value))
}

/**
 * Checks and compiles the options; throws the `ConfigError` of the first invalid one (at the
 * same paths as `HttpRateLimit.makeMiddleware`: `http.trustedProxies[1]`, `http.headers`, ...).
 *
 * @internal
 */
export const compileAdapter = <Req, Refusal>(options: AdapterOptions<Req, Refusal>): Adapter<Req, Refusal> => {
  // checked at run time: plain JavaScript callers reach here unchecked
  if (typeof options !== "object" || options === null) {
    throw ConfigError.at("http", "an options object with a limiter id", describeInput(options))
  }
  const resolved = resolveOptions<(request: Req) => number | PromiseLike<number>>(options.limiter, options)
  if (!resolved.ok) throw toConfigError(resolved.error)
  checkFunction("http.key", options.key)
  if (typeof options.cost !== "number") checkFunction("http.cost", options.cost, "a whole number of at least 1, or a function")
  checkFunction("http.onRefused", options.onRefused)
  const timeoutMs = timeoutOf(options.timeout)
  if (timeoutMs instanceof ConfigError) throw timeoutMs
  const { applies, clientKey, cost, failOpen, headers, limiter, policy, proxyHeader } = resolved.value
  const keyFn = options.key

  const once = (key: string, n: number) => check(limiter, { key, cost: n })
  // While refused and the next retry fits in what is left of the timeout: sleep it, check again
  // (the rule of the Effect middleware's `timeout`).
  const waiting = async (key: string, n: number, budgetMs: number): Promise<RateLimiter.Decision> => {
    let left = budgetMs
    for (;;) {
      const decision = await once(key, n)
      if (decision.allowed || decision.failedOpen) return decision
      const wait = Math.max(1, Math.ceil(decision.retryAfterMs))
      if (!(wait <= left)) return decision
      left -= wait
      await sleep(wait)
    }
  }
  const run = timeoutMs === undefined ? once : (key: string, n: number) => waiting(key, n, timeoutMs)

  // The limiter fails with StoreUnavailable when it is fail-closed and answers a `failedOpen`
  // decision when it is fail-open; an explicit `failOpen` overrides either (docs/http.md, "Store failure").
  const onStoreUnavailable = failOpen === true ? PASS : UNAVAILABLE
  const onFailedOpen = failOpen === false ? UNAVAILABLE : PASS

  const decide = async (request: Req, view: RequestView): Promise<Outcome> => {
    const client = clientKey(view.peer, view.header(proxyHeader))
    const key = keyFn === undefined ? client ?? "unknown" : await keyFn(request, client)
    if (key === Exempt) return PASS
    const n = typeof cost === "number" ? cost : await cost(request)
    let decision: RateLimiter.Decision
    try {
      decision = await run(key, n)
    } catch (error) {
      if (error instanceof StoreUnavailable) return onStoreUnavailable
      // LimiterNotFound, InvalidCost, ConfigError, ConfigurationClosed: programming errors, for
      // the framework's error handling
      throw error
    }
    if (decision.failedOpen) return onFailedOpen
    if (decision.allowed) return { _tag: "Allowed", decision }
    return { _tag: "Refused", decision, retryAfter: retryAfterSeconds(decision.retryAfterMs) }
  }

  return {
    limiter,
    onRefused: options.onRefused,
    applies,
    decide,
    headersOf: (decision, existing) => headersOf(decision, headers, policy, existing),
    refusalBody: (retryAfter) => JSON.stringify(tooManyRequestsBody(limiter, retryAfter))
  }
}

const headersOf = (
  decision: RateLimiter.Decision,
  mode: HeadersMode,
  policy: string,
  existing: ((name: string) => string | undefined) | undefined
): Record<string, string> => {
  const out = rateHeaders(decision, policyWindow(decision.spec), mode, policy, existing)
  if (!decision.allowed) out["retry-after"] = String(retryAfterSeconds(decision.retryAfterMs))
  return out
}

/**
 * A header value as Node gives it (`string | string[] | number`), as one string.
 *
 * @internal
 */
export const headerText = (value: string | ReadonlyArray<string> | number | undefined): string | undefined =>
  value === undefined ? undefined : typeof value === "string" ? value : typeof value === "number" ? String(value) : value.join(", ")
