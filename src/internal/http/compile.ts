/**
 * The Effect side of the HTTP integration: options compiled once into the per-request decision
 * every form (`middleware`, `limit`, the `HttpApi` middleware) interprets as an {@link Outcome}.
 * The plain parts (option checks, path matching, client address) are in `core/http/`.
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
import { type HeadersMode, retryAfterSeconds } from "../../core/http/headers.js"
import { resolveOptions, type ResolvedOptions } from "../../core/http/options.js"
import type { ConfigProblem } from "../../core/http/problem.js"
import type { CostFunction, KeyFunction, LimitOptions, RefusalHandler } from "../../HttpRateLimit.js"
import { describeInput } from "../config/input.js"
import { ConfigError } from "../../RateLimitError.js"
import * as RateLimiter from "../../RateLimiter.js"

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
 * What a request gets: through untouched, through with headers, a refusal, or a 503.
 *
 * @internal
 */
export type Outcome =
  | { readonly _tag: "Pass" }
  | { readonly _tag: "Allowed"; readonly decision: RateLimiter.Decision }
  | { readonly _tag: "Refused"; readonly decision: RateLimiter.Decision; readonly retryAfter: number }
  | { readonly _tag: "Unavailable" }

const PASS: Outcome = { _tag: "Pass" }
const UNAVAILABLE: Outcome = { _tag: "Unavailable" }
const PASS_NOW: Effect.Effect<Outcome> = Effect.succeed(PASS)

/** @internal */
export interface Compiled<EK, RK, EC, RC> {
  readonly limiter: string
  readonly policy: string
  readonly headers: HeadersMode
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

interface CheckHandlers {
  readonly onFailure: (error: CheckError) => Effect.Effect<Outcome>
  readonly onSuccess: (decision: RateLimiter.Decision) => Effect.Effect<Outcome>
}

/** The outcomes of `RateLimiter.check`, each counted in {@link requests}; built once. */
const checkHandlers = (limiter: string, failOpen: boolean | undefined): CheckHandlers & {
  readonly exempt: Effect.Effect<Outcome>
} => {
  const count = (outcome: string) =>
    Metric.update(Fx.withLabels(requests, { limiter, outcome }), 1)
  const allowed = count("allowed")
  const refused = count("refused")
  const passFailedOpen: Effect.Effect<Outcome> = Effect.as(
    Effect.andThen(count("fail_open"), Effect.annotateCurrentSpan("rate_sync.http.fail_open", true)),
    PASS
  )
  const answerUnavailable: Effect.Effect<Outcome> = Effect.as(count("unavailable"), UNAVAILABLE)
  // The limiter fails with StoreUnavailable when it is fail-closed, and answers a `failedOpen`
  // decision when it is fail-open; an explicit `failOpen` overrides either.
  const onStoreUnavailable = failOpen === true ? passFailedOpen : answerUnavailable
  const onFailedOpenDecision = failOpen === false ? answerUnavailable : passFailedOpen
  return {
    exempt: Effect.as(count("exempt"), PASS),
    onFailure: (error) => {
      switch (error._tag) {
        case "StoreUnavailable":
          return onStoreUnavailable
        case "LimiterNotFound":
        case "InvalidCost":
        case "ConfigError":
          // configuration bugs: a defect (500), logged by the server, never shown
          return Effect.die(error)
      }
    },
    onSuccess: (decision) => {
      if (decision.failedOpen) return onFailedOpenDecision
      if (decision.allowed) return Effect.as(allowed, { _tag: "Allowed", decision })
      return Effect.as(refused, { _tag: "Refused", decision, retryAfter: retryAfterSeconds(decision.retryAfterMs) })
    }
  }
}

/** The client key of a request: the socket's peer, then the trusted-proxy walk. */
const requestClientKey = (
  resolved: ResolvedOptions<unknown>
): (request: HttpServerRequest.HttpServerRequest) => string | undefined => {
  const { clientKey, proxyHeader } = resolved
  return (request) => clientKey(Option.getOrUndefined(request.remoteAddress), request.headers[proxyHeader])
}

/**
 * `check`, then, while refused and the next retry fits in what is left of `budgetMs`, a sleep
 * of the retry time and `check` again: the sleeps never add up to more than `budgetMs`.
 */
const checkWaiting = (
  limiter: string,
  key: string,
  cost: number,
  budgetMs: number
): Effect.Effect<RateLimiter.Decision, CheckError, RateLimiter.RateLimiter> =>
  Effect.flatMap(RateLimiter.check(limiter, { key, cost }), (decision) => {
    if (decision.allowed || decision.failedOpen) return Effect.succeed(decision)
    const wait = Math.max(1, Math.ceil(decision.retryAfterMs))
    if (!(wait <= budgetMs)) return Effect.succeed(decision)
    return Effect.andThen(Effect.sleep(wait), checkWaiting(limiter, key, cost, budgetMs - wait))
  })

/** The per-request decision: path filter, key, cost, then the limiter. */
const makeDecide = <EK, RK, EC, RC>(
  resolved: ResolvedOptions<CostFunction<EC, RC>>,
  keyFn: KeyFunction<EK, RK> | undefined,
  clientKey: (request: HttpServerRequest.HttpServerRequest) => string | undefined,
  timeoutMs: number | undefined
): Compiled<EK, RK, EC, RC>["decide"] => {
  const { applies, cost, limiter } = resolved
  const handlers = checkHandlers(limiter, resolved.failOpen)
  const keyOf: (request: HttpServerRequest.HttpServerRequest) => Effect.Effect<string | Exempt, EK, RK> =
    keyFn === undefined
      ? (request) => Effect.succeed(clientKey(request) ?? "unknown")
      : (request) => keyFn(request, clientKey(request))
  const costOf: CostFunction<EC, RC> = typeof cost === "number" ? constant(Effect.succeed(cost)) : cost
  const run: (key: string, n: number) => Effect.Effect<Outcome, never, RateLimiter.RateLimiter> =
    timeoutMs === undefined
      ? (key, n) => Effect.matchEffect(RateLimiter.check(limiter, { key, cost: n }), handlers)
      : (key, n) => Effect.matchEffect(checkWaiting(limiter, key, n, timeoutMs), handlers)

  return (request) => {
    if (!applies(request.url)) return PASS_NOW
    return Effect.flatMap(keyOf(request), (key): Effect.Effect<Outcome, EC, RC | RateLimiter.RateLimiter> => {
      if (key === Exempt) return handlers.exempt
      return Effect.flatMap(costOf(request), (n) => run(key, n))
    })
  }
}

/**
 * Checks and compiles the options of limiter `limiter` (see `resolveOptions`), then builds the
 * per-request decision.
 *
 * @internal
 */
export const compile = <EK, RK, EC, RC>(
  limiter: string,
  options: LimitOptions<EK, RK, EC, RC> | undefined
): Fx.Result<Compiled<EK, RK, EC, RC>, ConfigError> => {
  const resolved = resolveOptions<CostFunction<EC, RC>>(limiter, options)
  if (!resolved.ok) return Fx.err(toConfigError(resolved.error))
  const onRefused = options?.onRefused
  // checked at run time: plain JavaScript callers reach here unchecked
  if (onRefused !== undefined && typeof onRefused !== "function") {
    return Fx.err(ConfigError.at("http.onRefused", "a function", describeInput(onRefused)))
  }
  const timeout = options?.timeout === undefined ? Option.none() : Fx.decodeDurationOption(options.timeout)
  const timeoutMs = Option.isSome(timeout) ? Duration.toMillis(timeout.value) : Number.NaN
  // Duration turns a negative number or NaN into zero: refused here, as RateLimiter's timeouts are
  const negative = typeof options?.timeout === "number" && !(options.timeout >= 0)
  if (options?.timeout !== undefined && (negative || !(Number.isFinite(timeoutMs) && timeoutMs >= 0))) {
    return Fx.err(ConfigError.at("http.timeout", "a finite duration of 0 or more", describeInput(options.timeout)))
  }
  const { headers, policy } = resolved.value
  const clientKey = requestClientKey(resolved.value)
  const decide = makeDecide(resolved.value, options?.key, clientKey, timeoutMs > 0 ? timeoutMs : undefined)
  return Fx.ok({ limiter, policy, headers, onRefused, decide, clientKey })
}
