/**
 * Rate limiting for `@effect/platform` HTTP servers: a global `HttpMiddleware`, a per-route
 * combinator, and an `HttpApiMiddleware` for `HttpApi` users. Each request is charged to a key
 * (the client IP by default, proxies honoured only when trusted) through
 * `RateLimiter.check`; refusals answer 429 with `Retry-After` and an `application/problem+json`
 * body; every limited response carries the IETF `RateLimit` / `RateLimit-Policy` headers and/or
 * the legacy `X-RateLimit-*` trio.
 *
 * @since 0.1.0
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ClientIp from "./internal/clientIp.js"
import { describeInput, type LimiterSpec } from "./LimiterDefinition.js"
import { ConfigError } from "./RateLimitError.js"
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
export const Exempt: unique symbol = Symbol.for("effect-rate-sync/HttpRateLimit/Exempt")

/**
 * @since 0.1.0
 * @category models
 */
export type Exempt = typeof Exempt

/**
 * Which rate-limit headers responses carry.
 *
 * - `"draft"`: `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers,
 *   structured fields: `"api";q=100;w=60` and `"api";r=42;t=30`).
 * - `"legacy"`: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds).
 * - `"both"` (default) or `"none"`. A refusal always carries `Retry-After`.
 *
 * @since 0.1.0
 * @category models
 */
export type HeadersMode = "draft" | "legacy" | "both" | "none"

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
export type PathPattern = string | RegExp

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
  /** Policy name in the IETF headers. Default: the limiter id. */
  readonly policyName?: string | undefined
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
  /** The limiter id. */
  readonly limiter: string
}

// -------------------------------------------------------------------------------------------
// errors (HttpApi)

const problemJson = {
  [HttpApiSchema.AnnotationEncoding]: { kind: "Json", contentType: "application/problem+json" }
}

/**
 * The 429 refusal, as an `HttpApi` error (`application/problem+json`). `retryAfter` is in whole
 * seconds, at least 1.
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>(
  "effect-rate-sync/HttpRateLimit/TooManyRequests"
)("TooManyRequests", {
  type: Schema.String,
  title: Schema.String,
  status: Schema.Literal(429),
  detail: Schema.String,
  limiter: Schema.String,
  retryAfter: Schema.Number
}, { ...HttpApiSchema.annotations({ status: 429 }), ...problemJson }) {
  /**
   * Builds the error for a limiter and a retry time in seconds.
   */
  static of(limiter: string, retryAfter: number): TooManyRequests {
    return new TooManyRequests(tooManyRequestsBody(limiter, retryAfter))
  }
}

/**
 * The 503 answered when the store fails and `failOpen` is `false`. Generic on purpose: no store
 * error text, URL or key layout.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitUnavailable extends Schema.TaggedError<RateLimitUnavailable>(
  "effect-rate-sync/HttpRateLimit/RateLimitUnavailable"
)("RateLimitUnavailable", {
  type: Schema.String,
  title: Schema.String,
  status: Schema.Literal(503),
  detail: Schema.String
}, { ...HttpApiSchema.annotations({ status: 503 }), ...problemJson }) {
  /**
   * The one instance's fields.
   */
  static of(): RateLimitUnavailable {
    return new RateLimitUnavailable(unavailableBody)
  }
}

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
export const requests = Metric.counter("rate_sync_http_requests_total", {
  description: "HTTP requests seen by a rate-limit middleware, by outcome",
  incremental: true
})

// -------------------------------------------------------------------------------------------
// internals: bodies, headers, patterns

const MAX_SECONDS = 365 * 24 * 3600

/** Whole seconds, rounded up, finite, in [0, one year]. */
const wholeSeconds = (ms: number): number => {
  if (Number.isNaN(ms) || ms <= 0) return 0
  if (!Number.isFinite(ms)) return MAX_SECONDS
  return Math.min(MAX_SECONDS, Math.ceil(ms / 1000))
}

const wholeCount = (n: number, max: number): number => {
  if (Number.isNaN(n) || n <= 0) return 0
  if (!Number.isFinite(n)) return max
  return Math.min(max, Math.floor(n))
}

const retryAfterSeconds = (ms: number): number => Math.max(1, wholeSeconds(ms))

const tooManyRequestsBody = (limiter: string, retryAfter: number) => ({
  type: "about:blank",
  title: "Too Many Requests",
  status: 429 as const,
  detail: `Rate limit "${limiter}" exceeded; retry after ${retryAfter} second${retryAfter === 1 ? "" : "s"}.`,
  limiter,
  retryAfter
})

const unavailableBody = {
  type: "about:blank",
  title: "Service Unavailable",
  status: 503 as const,
  detail: "Rate limiting is temporarily unavailable; please retry later."
}

/** A structured-field String (RFC 9651 §3.3.3): printable ASCII, `"` and `\` escaped. */
const sfString = (value: string): string =>
  `"${value.replace(/[^\x20-\x7e]/g, "?").replace(/[\\"]/g, (c) => `\\${c}`)}"`

/** The window of the IETF policy, in seconds; undefined when the limiter has no time window. */
const policyWindow = (spec: LimiterSpec): number | undefined => {
  if (spec.algorithm === "sliding_window" || spec.algorithm === "fixed_window") {
    return spec.windowMs === undefined ? undefined : Math.max(1, wholeSeconds(spec.windowMs))
  }
  const rate = spec.ratePerSecond
  if (rate === undefined || !(rate > 0)) return undefined
  // token bucket: the time an empty bucket takes to refill to `burst`
  return Math.max(1, wholeSeconds((spec.burst / rate) * 1000))
}

const appendList = (existing: string | undefined, item: string): string =>
  existing === undefined || existing === "" ? item : `${existing}, ${item}`

const rateHeaders = (
  decision: RateLimiter.Decision,
  mode: HeadersMode,
  policy: string,
  existing: (name: string) => string | undefined
): Record<string, string> => {
  const out: Record<string, string> = {}
  if (mode === "none") return out
  const limit = wholeCount(decision.limit, Number.MAX_SAFE_INTEGER)
  const remaining = wholeCount(decision.remaining, limit)
  const reset = wholeSeconds(decision.resetAfterMs)
  if (mode === "draft" || mode === "both") {
    const window = policyWindow(decision.spec)
    const policyItem = `${policy};q=${limit}${window === undefined ? "" : `;w=${window}`}`
    out["ratelimit-policy"] = appendList(existing("ratelimit-policy"), policyItem)
    out["ratelimit"] = appendList(existing("ratelimit"), `${policy};r=${remaining};t=${reset}`)
  }
  if (mode === "legacy" || mode === "both") {
    // One trio per response: when several limiters apply, the most restrictive (fewest
    // remaining) wins, so a refusal's numbers are never overwritten by a looser limiter.
    const previous = existing("x-ratelimit-remaining")
    if (previous !== undefined && previous !== "" && Number(previous) <= remaining) return out
    out["x-ratelimit-limit"] = String(limit)
    out["x-ratelimit-remaining"] = String(remaining)
    out["x-ratelimit-reset"] = String(reset)
  }
  return out
}

// Path matching. What a request is routed by, as read from @effect/platform 0.97.2 and
// @effect/platform-node 0.108.2:
// - The Node server hands the request target over unchanged: `request.url` is
//   `IncomingMessage.url`, absolute form included (`GET http://evil/login` gives
//   "http://evil/login"). Node also accepts targets that begin with `*` ("*login").
// - `HttpRouter` (and `HttpLayerRouter`, `HttpApiBuilder`) route with find-my-way-ts 0.1.6, whose
//   defaults are `caseSensitive: false`, `ignoreTrailingSlash: true`, `ignoreDuplicateSlashes:
//   true`. Its `find`: a target not starting with "/" loses /^https?:\/\/.*?\// (the first "/"
//   after "://", even past a "?": "http://evil?x/login" is "/login"); runs of "/" are merged;
//   the path ends at the first "?", ";" or "#" ("/login;x" is "/login"); escapes are decoded with
//   decodeURI, which keeps reserved ones (%2F %3B %3F %23 ... and %25) encoded; one trailing "/"
//   is dropped; the rest is lower-cased with `toLowerCase` (so U+212A KELVIN SIGN reaches "/key");
//   and the first character is never compared (the root node is "/"), so "*login" is "/login".
//   It does not resolve dot segments: "/a/../login" is routed as written.
// - `HttpRouter.mount` prefixes are compared with the raw url, case-sensitively.
// So each request is matched in three forms, computed once: `raw` (as sent), `routed` (exactly
// what find-my-way matches) and `canonical` (also dot segments resolved and every escape decoded,
// for whatever a proxy in front may normalise). Limited when any form is included; excluded only
// when every form is excluded, `raw` against the patterns as written and case-sensitively, so an
// exclusion never covers more than its literal spelling, whatever the router's configuration.

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const REPEATED_SLASHES = /\/\/+/g
const ROUTER_ABSOLUTE_FORM = /^https?:\/\/.*?\//
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i
const PERCENT_25 = /%25/g

/** `path` without one trailing "/" (the root stays "/"). */
const trimTrailingSlash = (path: string): string =>
  path.length > 1 && path.charCodeAt(path.length - 1) === 47 ? path.slice(0, -1) : path

/** The first index at or after `from` of "?", "#" or (when `semicolon`) ";", or the length. */
const pathEnd = (path: string, from: number, semicolon: boolean): number => {
  for (let i = from; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c === 63 || c === 35 || (semicolon && c === 59)) return i
  }
  return path.length
}

/** A pattern written the way find-my-way stores a route: runs of "/" merged, no trailing "/". */
const routeShape = (pattern: string): string => trimTrailingSlash(pattern.replace(REPEATED_SLASHES, "/"))

const compileGlob = (pattern: string): (path: string) => boolean => {
  if (!pattern.includes("*")) return (path) => path === pattern
  let source = ""
  const segments = pattern.split("/")
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] ?? ""
    if (i > 0) source += segment === "**" ? "" : "/"
    if (segment === "**") source += i > 0 ? "(?:/.*)?" : ".*"
    else source += segment.split("*").map(escapeRegExp).join("[^/]*")
  }
  const re = new RegExp(`^${source}$`)
  return (path) => re.test(path)
}

interface PathMatcher {
  /** The pattern as written, case-sensitive: tested against the raw path. */
  readonly exact: (path: string) => boolean
  /** The pattern shaped like a route and lower-cased: tested against the lower-cased forms. */
  readonly folded: (path: string) => boolean
}

const compilePattern = (pattern: PathPattern): PathMatcher => {
  if (typeof pattern !== "string") {
    // copies without the stateful flags, so `test` never depends on a previous call
    const flags = pattern.flags.replace(/[gy]/g, "")
    const exact = new RegExp(pattern.source, flags)
    const folded = new RegExp(pattern.source, flags.includes("i") ? flags : `${flags}i`)
    return { exact: (path) => exact.test(path), folded: (path) => folded.test(path) }
  }
  return { exact: compileGlob(pattern), folded: compileGlob(routeShape(pattern).toLowerCase()) }
}

/** `include` / `exclude`: an array of glob strings and regular expressions, or nothing. */
const compilePatterns = (
  path: string,
  patterns: ReadonlyArray<PathPattern> | undefined
): Either.Either<ReadonlyArray<PathMatcher>, ConfigError> => {
  if (patterns === undefined) return Either.right([])
  // Checked at run time: plain JavaScript callers and configuration files reach here unchecked.
  const entries: unknown = patterns
  if (!Array.isArray(entries)) {
    return Either.left(ConfigError.at(path, "an array of path patterns (strings or RegExps)", describeInput(entries)))
  }
  const matchers: Array<PathMatcher> = []
  for (let i = 0; i < entries.length; i++) {
    const entry: unknown = entries[i]
    if (typeof entry === "string" || entry instanceof RegExp) matchers.push(compilePattern(entry))
    else return Either.left(ConfigError.at(`${path}[${i}]`, "a path pattern (a string or a RegExp)", describeInput(entry)))
  }
  return Either.right(matchers)
}

/**
 * One request target in the three forms matched against `include` / `exclude` (see the comment
 * above): `raw`, the target up to the first "?" or "#"; `routed`, what find-my-way-ts routes it
 * by (lower-cased, dot segments kept); `canonical`, scheme and host of an absolute form removed,
 * cut at the first "?", "#" or ";", percent-decoded (kept as is when an escape is invalid), dot
 * segments resolved, empty segments and the trailing "/" dropped, lower-cased. Never throws.
 *
 * @internal
 */
export const requestPaths = (url: string): {
  readonly raw: string
  readonly routed: string
  readonly canonical: string
} => {
  const rawEnd = pathEnd(url, 0, false)
  const raw = rawEnd === 0 ? "/" : url.slice(0, rawEnd)

  // routed: find-my-way-ts `find`, step by step
  let routed = url.charCodeAt(0) === 47 ? url : url.replace(ROUTER_ABSOLUTE_FORM, "/")
  routed = routed.replace(REPEATED_SLASHES, "/")
  routed = routed.slice(0, pathEnd(routed, 1, true))
  if (routed.includes("%")) {
    try {
      routed = decodeURI(routed.replace(PERCENT_25, "%2525"))
    } catch {
      // the router routes nothing here; keep the escapes
    }
  }
  routed = trimTrailingSlash(routed).toLowerCase()
  routed = `/${routed.slice(1)}`

  // canonical
  let target = url
  if (target.charCodeAt(0) !== 47) {
    const absolute = ABSOLUTE_FORM.exec(target)
    target = absolute === null ? `/${target.slice(1)}` : target.slice(absolute[0].length)
  }
  let path = target.slice(0, pathEnd(target, 0, true))
  if (path.includes("%")) {
    try {
      path = decodeURIComponent(path)
    } catch {
      // an invalid escape: match the path undecoded
    }
  }
  const segments: Array<string> = []
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") segments.pop()
    else segments.push(segment)
  }
  const canonical = `/${segments.join("/")}`.toLowerCase()
  return { raw, routed, canonical }
}

// -------------------------------------------------------------------------------------------
// the shared decision

type Outcome =
  | { readonly _tag: "Pass" }
  | { readonly _tag: "Allowed"; readonly decision: RateLimiter.Decision }
  | { readonly _tag: "Refused"; readonly decision: RateLimiter.Decision; readonly retryAfter: number }
  | { readonly _tag: "Unavailable" }

const PASS: Outcome = { _tag: "Pass" }
const UNAVAILABLE: Outcome = { _tag: "Unavailable" }

interface Compiled<EK, RK, EC, RC> {
  readonly limiter: string
  readonly policy: string
  readonly headers: HeadersMode
  readonly clientKey: (request: HttpServerRequest.HttpServerRequest) => string | undefined
  readonly decide: (
    request: HttpServerRequest.HttpServerRequest
  ) => Effect.Effect<Outcome, EK | EC, RK | RC | RateLimiter.RateLimiter>
}

const HEADER_MODES: ReadonlyArray<HeadersMode> = ["draft", "legacy", "both", "none"]

const compile = <EK, RK, EC, RC>(
  limiter: string,
  options: LimitOptions<EK, RK, EC, RC> | undefined
): Either.Either<Compiled<EK, RK, EC, RC>, ConfigError> => {
  const path = "http"
  if (typeof limiter !== "string" || limiter.length === 0) {
    return Either.left(ConfigError.at(`${path}.limiter`, "a limiter id", describeInput(limiter)))
  }
  const headers = options?.headers ?? "both"
  if (!HEADER_MODES.includes(headers)) {
    return Either.left(ConfigError.at(`${path}.headers`, `one of "draft", "legacy", "both", "none"`, describeInput(headers)))
  }
  const ipv6Prefix = options?.ipv6Prefix ?? 64
  if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 1 || ipv6Prefix > 128) {
    return Either.left(ConfigError.at(`${path}.ipv6Prefix`, "a whole number in [1, 128]", describeInput(ipv6Prefix)))
  }
  const proxyHeader = options?.proxyHeader ?? "x-forwarded-for"
  if (proxyHeader !== "x-forwarded-for" && proxyHeader !== "forwarded") {
    return Either.left(ConfigError.at(`${path}.proxyHeader`, `"x-forwarded-for" or "forwarded"`, describeInput(proxyHeader)))
  }
  const trusted = ClientIp.compileTrusted(options?.trustedProxies ?? [])
  if (trusted._tag === "Left") {
    return Either.left(
      ConfigError.at(
        `${path}.trustedProxies[${trusted.index}]`,
        `an IP address, a CIDR range or one of "loopback", "private", "linklocal"`,
        describeInput(trusted.entry)
      )
    )
  }
  const cost = options?.cost ?? 1
  if (typeof cost === "number" && !(Number.isSafeInteger(cost) && cost >= 1)) {
    return Either.left(ConfigError.at(`${path}.cost`, "a whole number of at least 1, or a function", describeInput(cost)))
  }
  const isTrusted = trusted.contains
  const includes = compilePatterns(`${path}.include`, options?.include)
  if (includes._tag === "Left") return Either.left(includes.left)
  const excludes = compilePatterns(`${path}.exclude`, options?.exclude)
  if (excludes._tag === "Left") return Either.left(excludes.left)
  // undefined: follow the limiter's own fail-open / fail-closed policy
  const failOpen = options?.failOpen
  const keyFn = options?.key
  const policy = sfString(options?.policyName ?? limiter)

  // Fail toward limiting: excluded only when every form is excluded, included when any form is
  // (see the comment above `requestPaths`).
  const applies = (url: string): boolean => {
    if (includes.right.length === 0 && excludes.right.length === 0) return true
    const { canonical, raw, routed } = requestPaths(url)
    const excluded = excludes.right.length > 0 &&
      excludes.right.some((m) => m.exact(raw)) &&
      excludes.right.some((m) => m.folded(routed)) &&
      (canonical === routed || excludes.right.some((m) => m.folded(canonical)))
    if (excluded) return false
    return includes.right.length === 0 ||
      includes.right.some((m) => m.exact(raw) || m.folded(routed) || (canonical !== routed && m.folded(canonical)))
  }

  const clientKey = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
    const peer = Option.getOrUndefined(request.remoteAddress)
    const header = request.headers[proxyHeader]
    const ip = ClientIp.resolveClient(peer, header, proxyHeader, isTrusted)
    return ip === undefined ? undefined : ClientIp.groupKey(ip, ipv6Prefix)
  }

  const count = (outcome: string) =>
    Metric.update(requests.pipe(Metric.tagged("limiter", limiter), Metric.tagged("outcome", outcome)), 1)
  const counters = {
    allowed: count("allowed"),
    refused: count("refused"),
    exempt: count("exempt"),
    failOpen: Effect.zipRight(count("fail_open"), Effect.annotateCurrentSpan("rate_sync.http.fail_open", true)),
    unavailable: count("unavailable")
  }

  const passFailedOpen: Effect.Effect<Outcome> = Effect.as(counters.failOpen, PASS)
  const answerUnavailable: Effect.Effect<Outcome> = Effect.as(counters.unavailable, UNAVAILABLE)
  // The limiter fails with StoreUnavailable when it is fail-closed, and answers a `failedOpen`
  // decision when it is fail-open; an explicit `failOpen` overrides either.
  const onStoreUnavailable = failOpen === true ? passFailedOpen : answerUnavailable
  const onFailedOpenDecision = failOpen === false ? answerUnavailable : passFailedOpen

  const decide = (
    request: HttpServerRequest.HttpServerRequest
  ): Effect.Effect<Outcome, EK | EC, RK | RC | RateLimiter.RateLimiter> => {
    if (!applies(request.url)) return Effect.succeed(PASS)
    const client = clientKey(request)
    const key: Effect.Effect<string | Exempt, EK, RK> = keyFn === undefined
      ? Effect.succeed(client ?? "unknown")
      : keyFn(request, client)
    return Effect.flatMap(key, (k): Effect.Effect<Outcome, EK | EC, RK | RC | RateLimiter.RateLimiter> => {
      if (k === Exempt) return Effect.as(counters.exempt, PASS)
      const units: Effect.Effect<number, EC, RC> = typeof cost === "number" ? Effect.succeed(cost) : cost(request)
      return Effect.flatMap(units, (n) =>
        RateLimiter.check(limiter, { key: k, cost: n }).pipe(
          Effect.matchEffect({
            onFailure: (error): Effect.Effect<Outcome> => {
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
            onSuccess: (decision): Effect.Effect<Outcome> => {
              if (decision.failedOpen) return onFailedOpenDecision
              if (decision.allowed) return Effect.as(counters.allowed, { _tag: "Allowed", decision })
              return Effect.as(counters.refused, {
                _tag: "Refused",
                decision,
                retryAfter: retryAfterSeconds(decision.retryAfterMs)
              })
            }
          })
        ))
    })
  }

  return Either.right({ limiter, policy, headers, decide, clientKey })
}

const addHeaders = (decision: RateLimiter.Decision, mode: HeadersMode, policy: string): Effect.Effect<void> =>
  mode === "none" ? Effect.void : HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(
      HttpServerResponse.setHeaders(response, rateHeaders(decision, mode, policy, (name) => response.headers[name]))
    ))

const refusalResponse = (
  limiter: string,
  decision: RateLimiter.Decision,
  retryAfter: number,
  mode: HeadersMode,
  policy: string
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson(tooManyRequestsBody(limiter, retryAfter), {
    status: 429,
    contentType: "application/problem+json",
    headers: { ...rateHeaders(decision, mode, policy, () => undefined), "retry-after": String(retryAfter) }
  })

const unavailableResponse: HttpServerResponse.HttpServerResponse = HttpServerResponse.unsafeJson(unavailableBody, {
  status: 503,
  contentType: "application/problem+json"
})

const wrap = <EK, RK, EC, RC>(compiled: Either.Either<Compiled<EK, RK, EC, RC>, ConfigError>) =>
<E, R>(
  httpApp: HttpApp.Default<E, R>
): HttpApp.Default<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter> => {
  if (Either.isLeft(compiled)) return Effect.die(compiled.left)
  const { decide, headers, limiter, policy } = compiled.right
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.flatMap(decide(request), (outcome) => {
      switch (outcome._tag) {
        case "Pass":
          return httpApp
        case "Allowed":
          return Effect.zipRight(addHeaders(outcome.decision, headers, policy), httpApp)
        case "Refused":
          return Effect.succeed(refusalResponse(limiter, outcome.decision, outcome.retryAfter, headers, policy))
        case "Unavailable":
          return Effect.succeed(unavailableResponse)
      }
    }))
}

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
 * HttpServer.serve(router, HttpRateLimit.middleware({ limiter: "api", exclude: ["/health"], trustedProxies: ["10.0.0.0/8"] }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const middleware = <EK = never, RK = never, EC = never, RC = never>(
  options: MiddlewareOptions<EK, RK, EC, RC>
): <E, R>(httpApp: HttpApp.Default<E, R>) => HttpApp.Default<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter> =>
  wrap(compile(options.limiter, options))

/**
 * {@link middleware}, with its options validated up front.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMiddleware = <EK = never, RK = never, EC = never, RC = never>(
  options: MiddlewareOptions<EK, RK, EC, RC>
): Effect.Effect<
  <E, R>(httpApp: HttpApp.Default<E, R>) => HttpApp.Default<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter>,
  ConfigError
> => {
  const compiled = compile(options.limiter, options)
  return Either.isLeft(compiled) ? Effect.fail(compiled.left) : Effect.succeed(wrap(compiled))
}

/**
 * The per-route form: wraps one handler, or a router (a group of routes), with limiter `id`.
 *
 * @example
 * ```ts
 * HttpRouter.empty.pipe(
 *   HttpRouter.post("/login", loginHandler.pipe(HttpRateLimit.limit("login", { cost: 1 }))),
 *   HttpRouter.mount("/api", apiRouter.pipe(HttpRateLimit.limit("api")))
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const limit = <EK = never, RK = never, EC = never, RC = never>(
  id: string,
  options?: LimitOptions<EK, RK, EC, RC>
): <E, R>(httpApp: HttpApp.Default<E, R>) => HttpApp.Default<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter> =>
  wrap(compile(id, options))

/**
 * The effect an `HttpApiMiddleware` runs for a limiter: fails with {@link TooManyRequests} (429)
 * or {@link RateLimitUnavailable} (503) and adds the headers (and `Retry-After`) to the
 * response. The services the key and cost functions need are captured when it is built.
 *
 * @example
 * ```ts
 * class LoginLimit extends HttpApiMiddleware.Tag<LoginLimit>()("LoginLimit", { failure: HttpRateLimit.HttpApiFailure }) {}
 * const LoginLimitLive = Layer.effect(LoginLimit, HttpRateLimit.makeHttpApi("login"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeHttpApi = <EK = never, RK = never, EC = never, RC = never>(
  id: string,
  options?: LimitOptions<EK, RK, EC, RC>
): Effect.Effect<
  Effect.Effect<void, TooManyRequests | RateLimitUnavailable | EK | EC, HttpRouter.HttpRouter.Provided>,
  ConfigError,
  RateLimiter.RateLimiter | RK | RC
> => {
  const compiled = compile(id, options)
  if (Either.isLeft(compiled)) return Effect.fail(compiled.left)
  const { decide, headers, limiter, policy } = compiled.right
  return Effect.map(
    Effect.context<RateLimiter.RateLimiter | RK | RC>(),
    (context) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.flatMap(
          Effect.provide(decide(request), context),
          (outcome): Effect.Effect<void, TooManyRequests | RateLimitUnavailable> => {
            switch (outcome._tag) {
              case "Pass":
                return Effect.void
              case "Allowed":
                return addHeaders(outcome.decision, headers, policy)
              case "Refused": {
                const retryAfter = outcome.retryAfter
                const decision = outcome.decision
                return Effect.zipRight(
                  HttpApp.appendPreResponseHandler((_request, response) =>
                    Effect.succeed(HttpServerResponse.setHeaders(response, {
                      ...rateHeaders(decision, headers, policy, () => undefined),
                      "retry-after": String(retryAfter)
                    }))
                  ),
                  Effect.fail(TooManyRequests.of(limiter, retryAfter))
                )
              }
              case "Unavailable":
                return Effect.fail(RateLimitUnavailable.of())
            }
          }
        ))
  )
}

/**
 * The failure schema of a rate-limit `HttpApiMiddleware`: 429 or 503, both
 * `application/problem+json`.
 *
 * @since 0.1.0
 * @category errors
 */
export const HttpApiFailure = Schema.Union(TooManyRequests, RateLimitUnavailable)

/**
 * A ready `HttpApiMiddleware` tag; add it to an `HttpApi`, group or endpoint with
 * `.middleware(HttpRateLimit.HttpApiRateLimit)` and provide {@link layerHttpApi}. Define your own
 * tag (see {@link makeHttpApi}) to use several limiters in one API.
 *
 * @since 0.1.0
 * @category tags
 */
export class HttpApiRateLimit extends HttpApiMiddleware.Tag<HttpApiRateLimit>()(
  "effect-rate-sync/HttpRateLimit/HttpApiRateLimit",
  { failure: HttpApiFailure }
) {}

/**
 * The layer of {@link HttpApiRateLimit} for limiter `id`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttpApi = <RK = never, RC = never>(
  id: string,
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
): Effect.Effect<(request: HttpServerRequest.HttpServerRequest) => string | undefined, ConfigError> =>
  Effect.map(compile("clientAddress", options), (compiled) => compiled.clientKey)
