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
import * as Fx from "#fx/core"
import { rateHeaders, tooManyRequestsBody, unavailableBody } from "../../core/http/headers.js"
import { checkLimits, type HttpOptions, resolveOptions, type StaticLimits } from "../../core/http/options.js"
import type { ProxyHeader } from "../../core/http/clientIp.js"
import { describeInput } from "../config/input.js"
import {
  combine,
  Exempt,
  judge,
  limiterIdsOf,
  type Outcome,
  PASS,
  requests,
  timeoutOf,
  toConfigError,
  UNAVAILABLE
} from "../http/compile.js"
import { check, currentMetrics } from "../../promise.js"
import { makeOutcomeSeries } from "../limiter/metricContext.js"
import { ConfigError, StoreUnavailable } from "../../RateLimitError.js"
import type * as RateLimiter from "../../RateLimiter.js"

export { Exempt, type Outcome }

/** A refusal. @internal */
export type Refused = Extract<Outcome, { readonly _tag: "Refused" }>

/** An outcome with rate-limit headers: allowed or refused. @internal */
export type Judged = Extract<Outcome, { readonly _tag: "Allowed" | "Refused" }>

/**
 * The options of every framework middleware, `Req` being the framework's request and `Refusal` its
 * refusal handler: those of `HttpRateLimit.middleware` (docs/http.md, "Options"), the key, cost
 * and limits functions taking the framework's request and answering a value or a promise.
 *
 * @internal
 */
export interface AdapterOptions<Req, Refusal> extends HttpOptions<(request: Req) => number | PromiseLike<number>> {
  /**
   * The limiter id in the facade's configuration, or several limits charged as one unit
   * (`RateLimiter.Limits`). Required unless `limits` chooses per request.
   */
  readonly limiter?: string | RateLimiter.Limits | undefined
  /**
   * The limits of a request, chosen per request (tiered plans): a limiter id, several limits
   * (each limit's key and cost defaulting to the `key` and `cost` options'), or `Exempt`.
   */
  readonly limits?:
    | ((request: Req, client: string | undefined) => string | RateLimiter.Limits | Exempt | PromiseLike<string | RateLimiter.Limits | Exempt>)
    | undefined
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
  readonly onRefused: Refusal | undefined
  /** Whether a request target is limited at all (include / exclude), without any other work. */
  readonly applies: (target: string) => boolean
  /** The outcome of a request whose target {@link applies}; rejects only with programming errors. */
  readonly decide: (request: Req, view: RequestView) => Promise<Outcome>
  /**
   * The rate-limit headers of an outcome, after those `existing` reads (another limiter's), and
   * `Retry-After` for a refusal. Lower-case names.
   */
  readonly headersOf: (outcome: Judged, existing?: (name: string) => string | undefined) => Record<string, string>
  /** The `application/problem+json` body of a refusal. */
  readonly refusalBody: (outcome: Refused) => string
}

/** @internal */
export const PROBLEM_JSON = "application/problem+json"

/**
 * The 503 body (fixed: no store error text, URL, host or key layout).
 *
 * @internal
 */
export const UNAVAILABLE_BODY: string = JSON.stringify(unavailableBody)

/** Effect's clock, not the global timers: the library never reads time by itself. */
const sleep = (ms: number): Promise<void> => Effect.runPromise(Effect.sleep(Duration.millis(ms)))

/**
 * `rate_sync_http_requests_total`'s update for one outcome of a call over `limiters` (one per
 * limiter), the outcomes the Effect middleware counts. Through `Fx.updater`, each series bound once
 * per middleware and configuration: the update the limiters' own metrics get
 * (`internal/limiter/entry.ts`), so the counter lands where they do: on Effect 4 the
 * `Metric.MetricRegistry` the configuration's `RateLimiter` was made with (the default registry
 * unless one was provided under it: `internal/limiter/metricContext.ts`), on Effect 3 Effect's global
 * metrics; no contextual label either way. Synchronous, no fiber.
 */
const makeCount = () => {
  const seriesOf = makeOutcomeSeries(requests)
  // the current configuration's (`loadConfig`, `useLayer` replace it)
  const one = (limiter: string, outcome: string): void => seriesOf(currentMetrics(), limiter, outcome)(1)
  return (limiters: ReadonlyArray<string>, outcome: string): void => {
    for (const limiter of limiters) one(limiter, outcome)
  }
}

const checkFunction = (path: string, value: unknown, expected = "a function"): void => {
  if (value !== undefined && typeof value !== "function") throw ConfigError.at(path, expected, describeInput(value))
}

/** The promise facade's `check` over one limit or several, as a `CombinedDecision`. */
const checkCall = async (limits: StaticLimits, key: string, cost: number): Promise<RateLimiter.CombinedDecision> =>
  typeof limits === "string" ? combine(await check(limits, { key, cost })) : check(limits, { key, cost })

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
  checkFunction("http.limits", options.limits)
  const limitsFn = options.limits
  const resolved = resolveOptions<(request: Req) => number | PromiseLike<number>>(options.limiter, options, limitsFn !== undefined)
  if (!resolved.ok) throw toConfigError(resolved.error)
  checkFunction("http.key", options.key)
  if (typeof options.cost !== "number") checkFunction("http.cost", options.cost, "a whole number of at least 1, or a function")
  checkFunction("http.onRefused", options.onRefused)
  const timeoutMs = timeoutOf(options.timeout, true)
  if (timeoutMs instanceof ConfigError) throw timeoutMs
  const { applies, clientKey, cost, failOpen, headers, limiterIds, limits, partitionKey, policyOf, proxyHeader } =
    resolved.value
  const keyFn = options.key
  const count = makeCount()

  // While refused and the next retry fits in what is left of the timeout: sleep it, check again
  // (the rule of the Effect middleware's `timeout`).
  const waiting = async (call: StaticLimits, key: string, n: number, budgetMs: number) => {
    let left = budgetMs
    for (;;) {
      const decision = await checkCall(call, key, n)
      if (decision.allowed || decision.failedOpen) return decision
      const wait = Math.max(1, Math.ceil(decision.retryAfterMs))
      if (!(wait <= left)) return decision
      left -= wait
      await sleep(wait)
    }
  }
  const run = timeoutMs === undefined
    ? checkCall
    : (call: StaticLimits, key: string, n: number) => waiting(call, key, n, timeoutMs)

  const limitsOf = async (request: Req, client: string | undefined): Promise<StaticLimits | Exempt> => {
    if (limitsFn === undefined) {
      if (limits === undefined) throw ConfigError.at("http.limiter", "a limiter id", "nothing")
      return limits
    }
    const answer = await limitsFn(request, client)
    if (answer === Exempt) return answer
    const checked = checkLimits("http.limits", answer)
    if (!checked.ok) throw toConfigError(checked.error)
    return checked.value.limits
  }

  const decide = async (request: Req, view: RequestView): Promise<Outcome> => {
    const client = clientKey(view.peer, view.header(proxyHeader))
    const call = await limitsOf(request, client)
    if (call === Exempt) {
      count(limiterIds, "exempt")
      return PASS
    }
    const ids = limiterIdsOf(call)
    const key = keyFn === undefined ? client ?? "unknown" : await keyFn(request, client)
    if (key === Exempt) {
      count(ids, "exempt")
      return PASS
    }
    const n = typeof cost === "number" ? cost : await cost(request)
    let combined: RateLimiter.CombinedDecision
    try {
      combined = await run(call, key, n)
    } catch (error) {
      // The limiter fails with StoreUnavailable when it is fail-closed and answers a `failedOpen`
      // decision when it is fail-open; an explicit `failOpen` overrides either (docs/http.md,
      // "Store failure"). LimiterNotFound, InvalidCost, ConfigError, ConfigurationClosed:
      // programming errors, for the framework's error handling.
      if (!(error instanceof StoreUnavailable)) throw error
      count(ids, failOpen === true ? "fail_open" : "unavailable")
      return failOpen === true ? PASS : UNAVAILABLE
    }
    if (combined.failedOpen) {
      count(ids, failOpen === false ? "unavailable" : "fail_open")
      return failOpen === false ? UNAVAILABLE : PASS
    }
    const outcome = judge(combined, policyOf, partitionKey)
    count(ids, outcome._tag === "Allowed" ? "allowed" : "refused")
    return outcome
  }

  return {
    onRefused: options.onRefused,
    applies,
    decide,
    // a refusal's members after another limiter's too (that limiter let the request through)
    headersOf: (outcome, existing) =>
      outcome._tag === "Refused"
        ? { ...rateHeaders(outcome.items, headers, existing), "retry-after": String(outcome.retryAfter) }
        : rateHeaders(outcome.items, headers, existing),
    refusalBody: (outcome) =>
      JSON.stringify(tooManyRequestsBody(outcome.decision.limiterId, outcome.retryAfter, outcome.violated))
  }
}

/**
 * A header value as Node gives it (`string | string[] | number`), as one string.
 *
 * @internal
 */
export const headerText = (value: string | ReadonlyArray<string> | number | undefined): string | undefined =>
  value === undefined ? undefined : typeof value === "string" ? value : typeof value === "number" ? String(value) : value.join(", ")
