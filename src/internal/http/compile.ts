/**
 * The Effect side of the HTTP integration: options compiled once into the per-request decision
 * every form (`middleware`, `limit`, the `HttpApi` middleware) interprets as an {@link Outcome}.
 * The plain parts (option checks, path matching, client address, header text) are in
 * `core/http/`; what the Effect middleware and the framework adapters share about a call's
 * answer (its items, its violated policies, its counter) is here too.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { constant } from "effect/Function"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Fx from "#fx/core"
import type { HttpServerRequest } from "#fx/http"
import { type HeadersMode, type RateItem, rateItem, retryAfterSeconds } from "../../core/http/headers.js"
import { checkLimits, resolveOptions, type ResolvedOptions, type StaticLimits } from "../../core/http/options.js"
import type { ConfigProblem } from "../../core/http/problem.js"
import type { CostFunction, KeyFunction, LimitOptions, LimitsFunction, RefusalHandler } from "../../HttpRateLimit.js"
import { describeInput } from "../config/input.js"
import { ConfigError } from "../../RateLimitError.js"
import * as RateLimiter from "../../RateLimiter.js"
import { makeOutcomeSeries, metricContextOf } from "../limiter/metricContext.js"

/** @internal */
export const Exempt: unique symbol = Symbol.for("effect-rate-sync/HttpRateLimit/Exempt")

/** @internal */
export type Exempt = typeof Exempt

/** @internal */
export const requests: Fx.Counter = Metric.counter("rate_sync_http_requests_total", {
  description: "HTTP requests seen by a rate-limit middleware, by outcome",
  incremental: true
})

/**
 * What a request gets: through untouched, through with headers, a refusal, or a 503. `combined`
 * is the call's answer over its limits (one limit: a `CombinedDecision` of its one decision);
 * `items` are the rate-limit header items of its limits, in the call's order.
 *
 * @internal
 */
export type Outcome =
  | { readonly _tag: "Pass" }
  | {
    readonly _tag: "Allowed"
    readonly combined: RateLimiter.CombinedDecision
    readonly items: ReadonlyArray<RateItem>
  }
  | {
    readonly _tag: "Refused"
    readonly combined: RateLimiter.CombinedDecision
    readonly items: ReadonlyArray<RateItem>
    /** The binding violation (the one with the largest retry time). */
    readonly decision: RateLimiter.Decision
    /** `Retry-After`: whole seconds, at least 1. */
    readonly retryAfter: number
    /** The policy names of the limits that refused (the 429 body's `violated-policies`). */
    readonly violated: ReadonlyArray<string>
  }
  | { readonly _tag: "Unavailable" }

/** @internal */
export const PASS: Outcome = { _tag: "Pass" }
/** @internal */
export const UNAVAILABLE: Outcome = { _tag: "Unavailable" }
const PASS_NOW: Effect.Effect<Outcome> = Effect.succeed(PASS)

/**
 * A single decision as the answer of a call over one limit.
 *
 * @internal
 */
export const combine = (d: RateLimiter.Decision): RateLimiter.CombinedDecision => ({
  allowed: d.allowed,
  decisions: [d],
  violations: d.allowed ? [] : [d],
  binding: d,
  retryAfterMs: d.retryAfterMs,
  failedOpen: d.failedOpen
})

/**
 * How a call's answer becomes an outcome: the header items (policy names, `pk` when asked) and
 * the violated policies. Shared by the Effect middleware and the framework adapters.
 *
 * @internal
 */
export const judge = (
  combined: RateLimiter.CombinedDecision,
  policyOf: (limiterId: string, single: boolean) => string,
  partitionKey: boolean
): Outcome => {
  const single = combined.decisions.length <= 1
  const items = combined.decisions.map((d) =>
    rateItem(d, d.spec, policyOf(d.limiterId, single), partitionKey ? d.key : undefined)
  )
  if (combined.allowed) return { _tag: "Allowed", combined, items }
  const violations = combined.violations.length > 0 ? combined.violations : [combined.binding]
  return {
    _tag: "Refused",
    combined,
    items,
    decision: combined.binding,
    retryAfter: retryAfterSeconds(combined.retryAfterMs),
    violated: violations.map((d) => policyOf(d.limiterId, single))
  }
}

/** The limiter ids of a call's limits, in order. @internal */
export const limiterIdsOf = (limits: StaticLimits): ReadonlyArray<string> =>
  typeof limits === "string" ? [limits] : limits.map((l) => (typeof l === "string" ? l : l.limiter))

/**
 * The HTTP counter's update for one outcome of a call over `limiters`: one per limiter, each
 * tagged series made once.
 *
 * @internal
 */
export const makeCounter = () => {
  // bound to where the metrics of the `RateLimiter` in context go, so this counter lands beside them
  const seriesOf = makeOutcomeSeries(requests)
  const one = (limiter: string, outcome: string): Effect.Effect<void, never, RateLimiter.RateLimiter> =>
    Effect.flatMap(RateLimiter.RateLimiter, (service) => Effect.sync(() => seriesOf(metricContextOf(service), limiter, outcome)(1)))
  return (limiters: ReadonlyArray<string>, outcome: string): Effect.Effect<void, never, RateLimiter.RateLimiter> =>
    limiters.length === 1 && limiters[0] !== undefined
      ? one(limiters[0], outcome)
      : Effect.forEach(limiters, (l) => one(l, outcome), { discard: true })
}

/** @internal */
export interface Compiled<EK, RK, EC, RC> {
  /** The static limiters (empty when only a per-request choice names them). */
  readonly limiterIds: ReadonlyArray<string>
  readonly headers: HeadersMode
  readonly policyOf: (limiterId: string, single: boolean) => string
  /** The custom refusal, when given (`undefined`: the default 429). */
  readonly onRefused: RefusalHandler | undefined
  readonly clientKey: (request: HttpServerRequest.HttpServerRequest) => string | undefined
  readonly decide: (
    request: HttpServerRequest.HttpServerRequest
  ) => Effect.Effect<Outcome, EK | EC, RK | RC | RateLimiter.RateLimiter>
}

/** @internal */
export const toConfigError = (problem: ConfigProblem): ConfigError =>
  ConfigError.at(problem.path, problem.expected, describeInput(problem.received))

type CheckError = ReturnType<typeof RateLimiter.check> extends Effect.Effect<infer _A, infer E, infer _R> ? E : never

/** `RateLimiter.check` over one limit or several, answered as a `CombinedDecision`. */
const checkCall = (
  limits: StaticLimits,
  key: string,
  cost: number
): Effect.Effect<RateLimiter.CombinedDecision, CheckError, RateLimiter.RateLimiter> =>
  typeof limits === "string"
    ? Effect.map(RateLimiter.check(limits, { key, cost }), combine)
    : RateLimiter.check(limits, { key, cost })

/**
 * `check`, then, while refused and the next retry fits in what is left of `budgetMs`, a sleep
 * of the retry time and `check` again: the sleeps never add up to more than `budgetMs`.
 */
const checkWaiting = (
  limits: StaticLimits,
  key: string,
  cost: number,
  budgetMs: number
): Effect.Effect<RateLimiter.CombinedDecision, CheckError, RateLimiter.RateLimiter> =>
  Effect.flatMap(checkCall(limits, key, cost), (decision) => {
    if (decision.allowed || decision.failedOpen) return Effect.succeed(decision)
    const wait = Math.max(1, Math.ceil(decision.retryAfterMs))
    if (!(wait <= budgetMs)) return Effect.succeed(decision)
    return Effect.andThen(Effect.sleep(wait), checkWaiting(limits, key, cost, budgetMs - wait))
  })

/** The client key of a request: the socket's peer, then the trusted-proxy walk. */
const requestClientKey = (
  resolved: ResolvedOptions<unknown>
): (request: HttpServerRequest.HttpServerRequest) => string | undefined => {
  const { clientKey, proxyHeader } = resolved
  return (request) => clientKey(Option.getOrUndefined(request.remoteAddress), request.headers[proxyHeader])
}

/** The per-request decision: path filter, limits, key, cost, then the limiter(s). */
const makeDecide = <EK, RK, EC, RC>(
  resolved: ResolvedOptions<CostFunction<EC, RC>>,
  keyFn: KeyFunction<EK, RK> | undefined,
  limitsFn: LimitsFunction<EK, RK> | undefined,
  clientKey: (request: HttpServerRequest.HttpServerRequest) => string | undefined,
  timeoutMs: number | undefined
): Compiled<EK, RK, EC, RC>["decide"] => {
  const { applies, cost, failOpen, limiterIds, limits, partitionKey, policyOf } = resolved
  const count = makeCounter()
  const keyOf: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<string | Exempt, EK, RK> =
    keyFn === undefined
      ? (request) => Effect.succeed(clientKey(request) ?? "unknown")
      : (request) => keyFn(request, clientKey(request))
  const costOf: CostFunction<EC, RC> = typeof cost === "number" ? constant(Effect.succeed(cost)) : cost
  const staticLimits: Effect.Effect<StaticLimits | Exempt> | undefined = limits === undefined ? undefined : Effect.succeed(limits)
  const limitsOf = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<StaticLimits | Exempt, EK, RK> => {
    if (limitsFn === undefined) return staticLimits ?? Effect.die(ConfigError.at("http.limiter", "a limiter id", "nothing"))
    return Effect.flatMap(limitsFn(request, clientKey(request)), (answer): Effect.Effect<StaticLimits | Exempt> => {
      if (answer === Exempt) return Effect.succeed(answer)
      const checked = checkLimits("http.limits", answer)
      // a per-request choice that is not limits: a programming error (500), as a bad cost is
      return checked.ok ? Effect.succeed(checked.value.limits) : Effect.die(toConfigError(checked.error))
    })
  }

  const answer = (ids: ReadonlyArray<string>) => ({
    // The limiter fails with StoreUnavailable when it is fail-closed, and answers a `failedOpen`
    // decision when it is fail-open; an explicit `failOpen` overrides either.
    onFailure: (error: CheckError): Effect.Effect<Outcome, never, RateLimiter.RateLimiter> => {
      switch (error._tag) {
        case "StoreUnavailable":
          return failOpen === true ? passFailedOpen(ids) : Effect.as(count(ids, "unavailable"), UNAVAILABLE)
        case "LimiterNotFound":
        case "InvalidCost":
        case "ConfigError":
          // configuration bugs: a defect (500), logged by the server, never shown
          return Effect.die(error)
      }
    },
    onSuccess: (combined: RateLimiter.CombinedDecision): Effect.Effect<Outcome, never, RateLimiter.RateLimiter> => {
      if (combined.failedOpen) {
        return failOpen === false ? Effect.as(count(ids, "unavailable"), UNAVAILABLE) : passFailedOpen(ids)
      }
      const outcome = judge(combined, policyOf, partitionKey)
      return Effect.as(count(ids, outcome._tag === "Allowed" ? "allowed" : "refused"), outcome)
    }
  })
  const passFailedOpen = (ids: ReadonlyArray<string>): Effect.Effect<Outcome, never, RateLimiter.RateLimiter> =>
    Effect.as(Effect.andThen(count(ids, "fail_open"), Effect.annotateCurrentSpan("rate_sync.http.fail_open", true)), PASS)

  const run = (limits: StaticLimits, key: string, n: number): Effect.Effect<Outcome, never, RateLimiter.RateLimiter> =>
    Effect.matchEffect(
      timeoutMs === undefined ? checkCall(limits, key, n) : checkWaiting(limits, key, n, timeoutMs),
      answer(limiterIdsOf(limits))
    )

  return (request) => {
    if (!applies(request.url)) return PASS_NOW
    return Effect.flatMap(limitsOf(request), (limits): Effect.Effect<Outcome, EK | EC, RK | RC | RateLimiter.RateLimiter> => {
      if (limits === Exempt) return Effect.as(count(limiterIds, "exempt"), PASS)
      return Effect.flatMap(keyOf(request), (key): Effect.Effect<Outcome, EC, RC | RateLimiter.RateLimiter> => {
        if (key === Exempt) return Effect.as(count(limiterIdsOf(limits), "exempt"), PASS)
        return Effect.flatMap(costOf(request), (n) => run(limits, key, n))
      })
    })
  }
}

/**
 * The `timeout` option in milliseconds (`undefined`: no wait), or its `ConfigError`; `seconds`:
 * a number is seconds (the framework adapters, as the promise facade), else milliseconds
 * (Effect's `DurationInput` rule).
 *
 * @internal
 */
export const timeoutOf = (input: unknown, seconds: boolean): number | undefined | ConfigError => {
  if (input === undefined) return undefined
  const decoded = typeof input === "number"
    ? Option.some(seconds ? input * 1000 : input)
    : Option.map(Fx.decodeDurationOption(input), Duration.toMillis)
  const ms = Option.getOrElse(decoded, () => Number.NaN)
  // Duration turns a negative number or NaN into zero: refused here, as RateLimiter's timeouts are
  const negative = typeof input === "number" && !(input >= 0)
  if (negative || !(Number.isFinite(ms) && ms >= 0)) {
    return ConfigError.at("http.timeout", "a finite duration of 0 or more", describeInput(input))
  }
  return ms > 0 ? ms : undefined
}

/**
 * Checks and compiles the options of the limits `limiter` (see `resolveOptions`), then builds the
 * per-request decision.
 *
 * @internal
 */
export const compile = <EK, RK, EC, RC>(
  limiter: StaticLimits | undefined,
  options: LimitOptions<EK, RK, EC, RC> | undefined
): Fx.Result<Compiled<EK, RK, EC, RC>, ConfigError> => {
  const limitsFn = options?.limits
  // checked at run time: plain JavaScript callers reach here unchecked
  if (limitsFn !== undefined && typeof limitsFn !== "function") {
    return Fx.err(ConfigError.at("http.limits", "a function", describeInput(limitsFn)))
  }
  const resolved = resolveOptions<CostFunction<EC, RC>>(limiter, options, limitsFn !== undefined)
  if (!resolved.ok) return Fx.err(toConfigError(resolved.error))
  const onRefused = options?.onRefused
  if (onRefused !== undefined && typeof onRefused !== "function") {
    return Fx.err(ConfigError.at("http.onRefused", "a function", describeInput(onRefused)))
  }
  const timeoutMs = timeoutOf(options?.timeout, false)
  if (timeoutMs instanceof ConfigError) return Fx.err(timeoutMs)
  const { headers, limiterIds, policyOf } = resolved.value
  const clientKey = requestClientKey(resolved.value)
  const decide = makeDecide(resolved.value, options?.key, limitsFn, clientKey, timeoutMs)
  return Fx.ok({ limiterIds, policyOf, headers, onRefused, decide, clientKey })
}
