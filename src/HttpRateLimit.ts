/**
 * Rate limiting for Effect HTTP servers (`@effect/platform` on Effect 3, `effect/http` and
 * `effect/http-api` on Effect 4): a global `HttpMiddleware`, a per-route combinator, and an
 * `HttpApiMiddleware` for `HttpApi` users. Each request is charged to a key
 * (the client IP by default, proxies honoured only when trusted) through
 * `RateLimiter.check`, on one limit or several as one unit (fixed, or chosen per request);
 * refusals answer 429 with `Retry-After` and an `application/problem+json` body of the draft's
 * `quota-exceeded` type; every limited response carries the `RateLimit` / `RateLimit-Policy`
 * fields of draft-ietf-httpapi-ratelimit-headers-10 and/or the legacy `X-RateLimit-*` trio.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Fx from "#fx/core"
import * as FxHttp from "#fx/http"
import { type HttpApp, HttpServerRequest, type HttpServerResponse } from "#fx/http"
import type * as Headers from "./core/http/headers.js"
import { rateHeaders, rateItem, refusalHeaders, retryAfterSeconds } from "./core/http/headers.js"
import type * as Paths from "./core/http/paths.js"
import * as internal from "./internal/http/compile.js"
import { addHeaders, tooManyRequestsResponse, wrap } from "./internal/http/respond.js"
import { type ConfigError, RateLimitExceeded } from "./RateLimitError.js"
import * as RateLimiter from "./RateLimiter.js"

// -------------------------------------------------------------------------------------------
// models

/**
 * Returned by a custom `key` function to let a request through without limiting it: no store
 * call, no headers.
 *
 * @since 0.1.0
 * @category models
 */
export const Exempt: typeof internal.Exempt = internal.Exempt

/**
 * @since 0.1.0
 * @category models
 */
export type Exempt = typeof Exempt

/**
 * Which rate-limit headers responses carry.
 *
 * - `"draft"`: `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10,
 *   structured-field lists, one member per limit: `"api";q=100;w=60` and `"api";r=42;t=30`).
 * - `"legacy"`: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds).
 * - `"both"` (default) or `"none"`. A refusal always carries `Retry-After`.
 *
 * @since 0.1.0
 * @category models
 */
export type HeadersMode = Headers.HeadersMode

/**
 * A path pattern: an exact path (`"/health"`), a glob where `*` matches one segment and `**` any
 * number of segments (`"/static/**"` also matches `"/static"`), or a `RegExp` tested against the
 * path (no query string). Each request path is matched as sent, as the router routes it and
 * fully normalised (see "Path matching" in docs/http.md): limited when any form is included,
 * excluded only when every form is excluded.
 *
 * @since 0.1.0
 * @category models
 */
export type PathPattern = Paths.PathPattern

/**
 * Computes the rate-limit key of a request. `client` is the default key: the client address
 * after the trusted-proxy walk, IPv6 grouped by prefix (`undefined` when the server gave no
 * address). Return {@link Exempt} to skip limiting.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyFunction<E = never, R = never> = (
  request: HttpServerRequest.HttpServerRequest,
  client: string | undefined
) => Effect.Effect<string | Exempt, E, R>

/**
 * Computes the cost of a request: a whole number in `[1, capacity]` of the limiter.
 *
 * @since 0.1.0
 * @category models
 */
export type CostFunction<E = never, R = never> = (
  request: HttpServerRequest.HttpServerRequest
) => Effect.Effect<number, E, R>

/**
 * Chooses the limits of a request (tiered plans, several limits per route): a limiter id, or
 * several limits charged as one unit (`RateLimiter.Limits`: ids and `{ limiter, key?, cost? }`,
 * each limit's key and cost defaulting to the `key` and `cost` options'), or {@link Exempt}.
 * `client` is the default key. Its errors and requirements are the key function's (`EK`, `RK`).
 *
 * @example
 * ```ts
 * // the plan decides the limiter; a per-user and a global limit in one call
 * limits: (request) => Effect.map(planOf(request), (plan) => [`api-${plan}`, { limiter: "api-global", key: "all" }])
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export type LimitsFunction<E = never, R = never> = (
  request: HttpServerRequest.HttpServerRequest,
  client: string | undefined
) => Effect.Effect<string | RateLimiter.Limits | Exempt, E, R>

/**
 * Answers a refused request in place of the default 429 (see `onRefused` in {@link LimitOptions}).
 * `decision` is the binding refusal (the limit with the largest retry time); `combined` the
 * answer over every limit of the call (one limit: its one decision).
 *
 * @since 0.1.0
 * @category models
 */
export type RefusalHandler = (
  decision: RateLimiter.Decision,
  request: HttpServerRequest.HttpServerRequest,
  combined: RateLimiter.CombinedDecision
) => Effect.Effect<HttpServerResponse.HttpServerResponse>

/**
 * Options of {@link limit} (and, with `limiter`, of {@link middleware}). Defaults are resolved
 * and patterns/CIDR ranges compiled once, when the middleware is built.
 *
 * @since 0.1.0
 * @category models
 */
export interface LimitOptions<EK = never, RK = never, EC = never, RC = never> {
  /** The key of a request. Default: the client address (see {@link KeyFunction}). */
  readonly key?: KeyFunction<EK, RK> | undefined
  /** Units charged per request: a number or a per-request effect. Default 1. */
  readonly cost?: number | CostFunction<EC, RC> | undefined
  /**
   * The limits of each request, chosen per request (see {@link LimitsFunction}); it replaces the
   * middleware's `limiter` (or `limit`'s id) for that request. An answer that is not limits makes
   * the request die with a `ConfigError` at `http.limits`.
   */
  readonly limits?: LimitsFunction<EK, RK> | undefined
  /** When set, only requests whose path (in any of its forms, see {@link PathPattern}) matches one of these are limited. */
  readonly include?: ReadonlyArray<PathPattern> | undefined
  /**
   * Requests whose path (in every one of its forms, see {@link PathPattern}) matches one of these
   * are never limited (checked before `include`).
   */
  readonly exclude?: ReadonlyArray<PathPattern> | undefined
  /**
   * Store failure: `true` lets the request through (counted in
   * `rate_sync_http_requests_total{outcome="fail_open"}`), `false` answers 503, whatever the
   * limiter's own `failClosed`. Absent: the limiter's policy decides, and since limiters are
   * fail-open unless declared `failClosed: true`, the default is to let requests through.
   */
  readonly failOpen?: boolean | undefined
  /** Which headers to send. Default `"both"`. */
  readonly headers?: HeadersMode | undefined
  /**
   * Policy names in the IETF headers and in the 429 body's `violated-policies`. Default: the
   * limiter id. A string names the policy of a call over one limit; a record names each limiter
   * (`{ "api-pro": "pro" }`), the others keeping their id.
   */
  readonly policyName?: string | Readonly<Record<string, string>> | undefined
  /**
   * Sends the IETF `pk` parameter (the partition key: the rate-limit key, as a Byte Sequence of
   * its UTF-8 bytes) on each item. Default `false`: a key may be an address or a user id, which
   * the draft asks servers not to expose unless they mean to.
   */
  readonly partitionKey?: boolean | undefined
  /**
   * Answers a refused request in place of the default 429 (status, body, headers are the
   * handler's). The refusal headers (`Retry-After` and those of `headers`) are added to its
   * response, except any the handler set itself. Not used by the `HttpApi` middleware, whose
   * refusal is the typed {@link TooManyRequests} failure.
   */
  readonly onRefused?: RefusalHandler | undefined
  /**
   * How long a refused request may wait for the limiter before it is refused (rate-sync's
   * acquire timeout, bounded): while refused and the limiter's retry time fits in what is left,
   * the request sleeps that long and is checked again. Default none (refused at once); `0` is
   * the same. A finite duration.
   */
  readonly timeout?: Fx.DurationInput | undefined
  /**
   * Proxies whose forwarding header is believed: addresses, CIDR ranges (`"10.0.0.0/8"`,
   * `"fd00::/8"`) and the presets `"loopback"`, `"private"`, `"linklocal"`. Default: none, so
   * the socket's peer address is the client.
   */
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  /**
   * The header your proxies append to: `"x-forwarded-for"` (default) or `"forwarded"` (RFC 7239).
   * Only one is read: a proxy that appends to one passes the other through from the client.
   */
  readonly proxyHeader?: "x-forwarded-for" | "forwarded" | undefined
  /** IPv6 clients are keyed by their network of this many bits. Default 64. */
  readonly ipv6Prefix?: number | undefined
}

/**
 * Options of {@link middleware}.
 *
 * @since 0.1.0
 * @category models
 */
export interface MiddlewareOptions<EK = never, RK = never, EC = never, RC = never>
  extends LimitOptions<EK, RK, EC, RC>
{
  /**
   * The limiter id, or several limits charged as one unit (all or nothing, one
   * `RateLimiter.check` over them). Required unless `limits` chooses per request.
   */
  readonly limiter?: string | RateLimiter.Limits | undefined
}

// -------------------------------------------------------------------------------------------
// errors (HttpApi)

/**
 * The 429 refusal, as an `HttpApi` error (`application/problem+json`; the body is the error's
 * fields and its `_tag`). `retryAfter` is in whole seconds, at least 1. `TooManyRequests.of(limiter,
 * retryAfter)` builds it. Annotated per major (Effect 3 `HttpApiSchema.annotations({ status: 429 })`,
 * Effect 4 `httpApiStatus: 429`); the same class shape on both.
 *
 * @since 0.1.0
 * @category errors
 */
export const TooManyRequests: typeof FxHttp.TooManyRequests = FxHttp.TooManyRequests

/**
 * @since 0.1.0
 * @category errors
 */
export type TooManyRequests = FxHttp.TooManyRequests

/**
 * The 503 answered when the store fails and `failOpen` is `false` (`application/problem+json`).
 * Generic on purpose: no store error text, URL or key layout.
 *
 * @since 0.1.0
 * @category errors
 */
export const RateLimitUnavailable: typeof FxHttp.RateLimitUnavailable = FxHttp.RateLimitUnavailable

/**
 * @since 0.1.0
 * @category errors
 */
export type RateLimitUnavailable = FxHttp.RateLimitUnavailable

// -------------------------------------------------------------------------------------------
// metrics

/**
 * Requests seen by the HTTP limiters, tagged `limiter` and `outcome`: `allowed`, `refused`,
 * `exempt` (custom key said {@link Exempt}), `fail_open` (store failed, request let through),
 * `unavailable` (store failed, 503). Excluded paths are not counted.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests: Fx.Counter = internal.requests

// -------------------------------------------------------------------------------------------
// public constructors

/**
 * An `HttpMiddleware` that charges every request to `options.limiter` by key. Refused requests
 * get 429 (never reaching the app); the others get the rate-limit headers on their response.
 * Invalid options (a bad CIDR, an unknown header mode) make every request die with the
 * `ConfigError`; use {@link makeMiddleware} to fail at start-up instead.
 *
 * @example
 * ```ts
 * const limited = HttpRateLimit.middleware({ limiter: "api", exclude: ["/health"], trustedProxies: ["10.0.0.0/8"] })
 * // Effect 3 (@effect/platform)
 * HttpServer.serve(router, limited)
 * // Effect 4 (effect/http): a global router middleware
 * Layer.mergeAll(routes, HttpRouter.middleware(limited, { global: true }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const middleware = <EK = never, RK = never, EC = never, RC = never>(
  options: MiddlewareOptions<EK, RK, EC, RC>
): <E, R>(httpApp: HttpApp<E, R>) => HttpApp<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter> =>
  wrap(internal.compile(options.limiter, options))

/**
 * {@link middleware}, with its options validated up front.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMiddleware = <EK = never, RK = never, EC = never, RC = never>(
  options: MiddlewareOptions<EK, RK, EC, RC>
): Effect.Effect<
  <E, R>(httpApp: HttpApp<E, R>) => HttpApp<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter>,
  ConfigError
> => {
  const compiled = internal.compile(options.limiter, options)
  return Fx.isErr(compiled) ? Effect.fail(Fx.errOf(compiled)) : Effect.succeed(wrap(compiled))
}

/**
 * The per-route form: wraps one handler, or a router (a group of routes), with limiter `id` (or
 * several limits charged as one unit: `limit(["login-ip", { limiter: "login-global", key: "all" }])`).
 *
 * @example
 * ```ts
 * // Effect 3 (@effect/platform)
 * HttpRouter.empty.pipe(
 *   HttpRouter.post("/login", loginHandler.pipe(HttpRateLimit.limit("login", { cost: 1 }))),
 *   HttpRouter.mount("/api", apiRouter.pipe(HttpRateLimit.limit("api")))
 * )
 * // Effect 4 (effect/http): the router is a layer of registrations
 * HttpRouter.add("POST", "/login", loginHandler.pipe(HttpRateLimit.limit("login", { cost: 1 })))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const limit = <EK = never, RK = never, EC = never, RC = never>(
  id: string | RateLimiter.Limits,
  options?: LimitOptions<EK, RK, EC, RC>
): <E, R>(httpApp: HttpApp<E, R>) => HttpApp<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter> =>
  wrap(internal.compile(id, options))

/**
 * The service of an `HttpApiMiddleware` for a limiter: it fails the request with
 * {@link TooManyRequests} (429) or {@link RateLimitUnavailable} (503), both sent with the
 * rate-limit headers and `Retry-After`, and adds the headers to the response of a request it lets
 * through. The services the key and cost functions need are captured when it is built.
 *
 * Its shape is the one `HttpApi` asks of the major it is built for (see {@link HttpApiMiddleware}):
 * on Effect 3 an effect run before the handler, on Effect 4 a function wrapping the handler.
 *
 * @example
 * ```ts
 * // Effect 3 (@effect/platform)
 * class LoginLimit extends HttpApiMiddleware.Tag<LoginLimit>()("LoginLimit", { failure: HttpRateLimit.HttpApiFailure }) {}
 * // Effect 4 (effect/http-api)
 * class LoginLimit extends HttpApiMiddleware.Service<LoginLimit>()("LoginLimit", { error: HttpRateLimit.HttpApiFailure }) {}
 * // both
 * const LoginLimitLive = Layer.effect(LoginLimit, HttpRateLimit.makeHttpApi("login"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeHttpApi = <EK = never, RK = never, EC = never, RC = never>(
  id: string | RateLimiter.Limits,
  options?: LimitOptions<EK, RK, EC, RC>
): Effect.Effect<
  HttpApiMiddleware<TooManyRequests | RateLimitUnavailable | EK | EC>,
  ConfigError,
  RateLimiter.RateLimiter | RK | RC
> => {
  const compiled = internal.compile(id, options)
  if (Fx.isErr(compiled)) return Effect.fail(Fx.errOf(compiled))
  const { decide, headers } = Fx.valueOf(compiled)
  const answer = httpApiAnswer(headers)
  return Effect.map(
    Effect.context<RateLimiter.RateLimiter | RK | RC>(),
    (context) =>
      FxHttp.httpApiMiddleware(
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request) => Effect.flatMap(Effect.provide(decide(request), context), answer)
        )
      )
  )
}

/**
 * The service of a rate-limit `HttpApiMiddleware` failing with `E`: on Effect 3 (`@effect/platform`
 * `HttpApiMiddleware.Tag`) an `Effect<void, E, HttpRouter.HttpRouter.Provided>` run before the
 * handler; on Effect 4 (`effect/http-api` `HttpApiMiddleware.Service`) a function
 * `(httpEffect, { endpoint, group }) => Effect<HttpServerResponse, unhandled | E, HttpRouter.Provided>`
 * around the handler.
 *
 * @since 0.1.0
 * @category models
 */
export type HttpApiMiddleware<E> = FxHttp.HttpApiMiddlewareOf<E>

/**
 * How the `HttpApi` middleware answers an outcome: headers on the response (registered as a
 * pre-response handler, so they reach whatever response `HttpApi` sends: the handler's, its
 * encoded error, or the encoded 429), or a typed failure.
 */
const httpApiAnswer = (headers: HeadersMode) =>
(
  outcome: internal.Outcome
): Effect.Effect<void, TooManyRequests | RateLimitUnavailable, HttpServerRequest.HttpServerRequest> => {
  switch (outcome._tag) {
    case "Pass":
      return Effect.void
    case "Allowed":
      return addHeaders(outcome.items, headers)
    case "Refused": {
      const { decision, items, retryAfter, violated } = outcome
      return Effect.andThen(
        FxHttp.appendPreResponseHandler((_request, response) =>
          Effect.succeed(FxHttp.setHeaders(response, refusalHeaders(items, headers, retryAfter)))
        ),
        Effect.fail(TooManyRequests.of(decision.limiterId, retryAfter, violated))
      )
    }
    case "Unavailable":
      return Effect.fail(RateLimitUnavailable.of())
  }
}

/**
 * The failure schema of a rate-limit `HttpApiMiddleware`: 429 or 503, both
 * `application/problem+json`, each member with its own status. On Effect 3 a
 * `Schema.Union(TooManyRequests, RateLimitUnavailable)` (for `HttpApiMiddleware.Tag`'s `failure`),
 * on Effect 4 the array `[TooManyRequests, RateLimitUnavailable]` (for
 * `HttpApiMiddleware.Service`'s `error`).
 *
 * @since 0.1.0
 * @category errors
 */
export const HttpApiFailure: typeof FxHttp.HttpApiFailure = FxHttp.HttpApiFailure

/**
 * A ready `HttpApiMiddleware` tag; add it to an `HttpApi`, group or endpoint with
 * `.middleware(HttpRateLimit.HttpApiRateLimit)` and provide {@link layerHttpApi}. Define your own
 * tag (see {@link makeHttpApi}) to use several limiters in one API. On Effect 3 an
 * `HttpApiMiddleware.Tag`, on Effect 4 an `HttpApiMiddleware.Service`, both failing with
 * {@link HttpApiFailure}.
 *
 * @since 0.1.0
 * @category tags
 */
export const HttpApiRateLimit: typeof FxHttp.HttpApiRateLimit = FxHttp.HttpApiRateLimit

/**
 * @since 0.1.0
 * @category tags
 */
export type HttpApiRateLimit = FxHttp.HttpApiRateLimit

/**
 * The layer of {@link HttpApiRateLimit} for limiter `id`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttpApi = <RK = never, RC = never>(
  id: string | RateLimiter.Limits,
  options?: LimitOptions<never, RK, never, RC>
): Layer.Layer<HttpApiRateLimit, ConfigError, RateLimiter.RateLimiter | RK | RC> =>
  Layer.effect(HttpApiRateLimit, makeHttpApi(id, options))

/**
 * Builds the function that computes the client key {@link middleware} uses by default (the
 * address after the trusted-proxy walk, IPv6 grouped), for custom key functions and logging. It
 * answers `undefined` when the address is unknown. Invalid options fail with `ConfigError`.
 *
 * @example
 * ```ts
 * const client = yield* HttpRateLimit.clientAddress({ trustedProxies: ["10.0.0.0/8"] })
 * const key = client(request) ?? "unknown"
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const clientAddress = (
  options?: Pick<LimitOptions, "trustedProxies" | "proxyHeader" | "ipv6Prefix"> | undefined
): Effect.Effect<(request: HttpServerRequest.HttpServerRequest) => string | undefined, ConfigError> => {
  const compiled = internal.compile("clientAddress", options)
  return Fx.isErr(compiled) ? Effect.fail(Fx.errOf(compiled)) : Effect.succeed(Fx.valueOf(compiled).clientKey)
}

// -------------------------------------------------------------------------------------------
// headers

/**
 * Options of {@link headersOf}, {@link setHeaders} and {@link exceededResponse}: the same
 * `headers`, `policyName` and `partitionKey` as the middleware's.
 *
 * @since 0.1.0
 * @category models
 */
export interface HeaderOptions {
  /** Which headers to give. Default `"both"`. */
  readonly headers?: HeadersMode | undefined
  /** Policy names in the IETF headers (see {@link LimitOptions}). Default: each limiter id. */
  readonly policyName?: string | Readonly<Record<string, string>> | undefined
  /** Sends `pk` (see {@link LimitOptions}). Default `false`. */
  readonly partitionKey?: boolean | undefined
}

const isCombined = (
  decision: RateLimiter.Decision | RateLimiter.CombinedDecision
): decision is RateLimiter.CombinedDecision => "decisions" in decision

/** The policy name of a limiter under `policyName` (a string names a call's only limit). */
const namer = (policyName: HeaderOptions["policyName"]) => (limiterId: string, single: boolean): string => {
  if (typeof policyName === "string") return single ? policyName : limiterId
  if (typeof policyName === "object" && policyName !== null) {
    const name = policyName[limiterId]
    return typeof name === "string" ? name : limiterId
  }
  return limiterId
}

/** The headers of a decision over one limit or several, after those `existing` reads. */
const decisionHeaders = (
  decision: RateLimiter.Decision | RateLimiter.CombinedDecision,
  options: HeaderOptions | undefined,
  existing?: (name: string) => string | undefined
): Record<string, string> => {
  const combined = isCombined(decision) ? decision : internal.combine(decision)
  const mode = options?.headers ?? "both"
  const outcome = internal.judge(combined, namer(options?.policyName), options?.partitionKey === true)
  if (outcome._tag === "Refused") return refusalHeaders(outcome.items, mode, outcome.retryAfter)
  return outcome._tag === "Allowed" ? rateHeaders(outcome.items, mode, existing) : {}
}

/**
 * The headers the middleware would send for a decision (rate-sync's `get_rate_limit_headers`),
 * as a plain record with lower-case names: the rate-limit headers of `options.headers` and, when
 * the decision is a refusal, `Retry-After` (whole seconds, at least 1; sent even with
 * `headers: "none"`). A `CombinedDecision` (a check over several limits) gives one IETF member
 * per limit.
 *
 * @example
 * ```ts
 * const decision = yield* RateLimiter.check("api", { key: userId })
 * const headers = HttpRateLimit.headersOf(decision, { headers: "draft" })
 * ```
 *
 * @since 0.1.0
 * @category headers
 */
export const headersOf = (
  decision: RateLimiter.Decision | RateLimiter.CombinedDecision,
  options?: HeaderOptions | undefined
): Record<string, string> => decisionHeaders(decision, options)

/**
 * Sets the headers of {@link headersOf} on a response (rate-sync's `set_rate_limit_headers`).
 * As in the middleware, the IETF lists get their members after those already on the response,
 * and the legacy trio keeps the most restrictive numbers. Data-last (`pipe`) or data-first.
 *
 * @example
 * ```ts
 * HttpServerResponse.text("ok").pipe(HttpRateLimit.setHeaders(decision))
 * ```
 *
 * @since 0.1.0
 * @category headers
 */
export const setHeaders: {
  (
    decision: RateLimiter.Decision | RateLimiter.CombinedDecision,
    options?: HeaderOptions | undefined
  ): (response: HttpServerResponse.HttpServerResponse) => HttpServerResponse.HttpServerResponse
  (
    response: HttpServerResponse.HttpServerResponse,
    decision: RateLimiter.Decision | RateLimiter.CombinedDecision,
    options?: HeaderOptions | undefined
  ): HttpServerResponse.HttpServerResponse
} = dual(
  (args) => FxHttp.isResponse(args[0]),
  (
    response: HttpServerResponse.HttpServerResponse,
    decision: RateLimiter.Decision | RateLimiter.CombinedDecision,
    options?: HeaderOptions | undefined
  ): HttpServerResponse.HttpServerResponse =>
    FxHttp.setHeaders(response, decisionHeaders(decision, options, (name) => response.headers[name]))
)

// -------------------------------------------------------------------------------------------
// RateLimitExceeded in a handler

/**
 * The 429 a middleware refusal sends, for a `RateLimitExceeded` (from `RateLimiter.acquire` or
 * `withRateLimit` in a handler, over one limit or several): the same problem body (every
 * violation in `violated-policies`), `Retry-After` and rate-limit headers, one IETF member per
 * violation. The error carries no reset time, so each member's `t` and `X-RateLimit-Reset` are
 * its violation's retry time; `w` and `qu` are the registered limiter's (left out when the
 * limiter is not registered).
 *
 * @since 0.1.0
 * @category constructors
 */
export const exceededResponse = (
  error: RateLimitExceeded,
  options?: HeaderOptions | undefined
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, RateLimiter.RateLimiter> => {
  const violations = error.violations.length > 0 ? error.violations : [error]
  const single = violations.length === 1
  const policyOf = namer(options?.policyName)
  const retryAfter = retryAfterSeconds(Duration.toMillis(error.retryAfter))
  return Effect.map(
    Effect.forEach(violations, (v) =>
      Effect.map(Effect.option(RateLimiter.get(v.limiterId)), (info) => {
        const retryMs = Duration.toMillis(v.retryAfter)
        const spec = Option.isSome(info) ? info.value.spec : undefined
        return rateItem(
          { limit: v.limit, remaining: v.remaining, resetAfterMs: retryMs, retryAfterMs: retryMs },
          // a slot refused: the concurrency limit (qu="concurrent-requests", no window, no t)
          v.reason === "concurrency" && spec !== undefined ? { ...spec, windowMs: undefined, ratePerSecond: undefined } : spec,
          policyOf(v.limiterId, single),
          options?.partitionKey === true ? v.key : undefined
        )
      })),
    (items) =>
      tooManyRequestsResponse(
        error.limiterId,
        items,
        violations.map((v) => policyOf(v.limiterId, single)),
        retryAfter,
        options?.headers ?? "both"
      )
  )
}

const isExceeded = (error: unknown): error is RateLimitExceeded => error instanceof RateLimitExceeded

/**
 * An `HttpApp` middleware that answers a `RateLimitExceeded` the app fails with by the 429 a
 * middleware refusal sends (rate-sync's exception handler; see {@link exceededResponse}).
 *
 * @example
 * ```ts
 * const handler = Effect.scoped(Effect.andThen(RateLimiter.acquire("search", { key }), search))
 * HttpServer.serve(router.pipe(HttpRateLimit.catchExceeded()))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const catchExceeded = (options?: HeaderOptions | undefined) =>
<E, R>(
  httpApp: HttpApp<E | RateLimitExceeded, R>
): HttpApp<E, R | RateLimiter.RateLimiter> =>
  Fx.catchAll(
    httpApp,
    (error: E | RateLimitExceeded) => isExceeded(error) ? exceededResponse(error, options) : Effect.fail(error)
  )
