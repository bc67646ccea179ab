/**
 * The arithmetic and text of the HTTP middleware's answers: whole seconds, the IETF
 * `RateLimit` / `RateLimit-Policy` structured fields, the legacy `X-RateLimit-*` trio and the
 * `application/problem+json` bodies. Plain numbers in, strings out.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */

/**
 * Which rate-limit headers responses carry (documented on `HttpRateLimit.HeadersMode`).
 *
 * @internal
 */
export type HeadersMode = "draft" | "legacy" | "both" | "none"

/** @internal */
export const HEADER_MODES: ReadonlyArray<HeadersMode> = ["draft", "legacy", "both", "none"]

const MAX_SECONDS = 365 * 24 * 3600

/**
 * Whole seconds, rounded up, finite, in [0, one year].
 *
 * @internal
 */
export const wholeSeconds = (ms: number): number => {
  if (Number.isNaN(ms) || ms <= 0) return 0
  if (!Number.isFinite(ms)) return MAX_SECONDS
  return Math.min(MAX_SECONDS, Math.ceil(ms / 1000))
}

const wholeCount = (n: number, max: number): number => {
  if (Number.isNaN(n) || n <= 0) return 0
  if (!Number.isFinite(n)) return max
  return Math.min(max, Math.floor(n))
}

/**
 * `Retry-After` of a refusal: whole seconds rounded up, never 0.
 *
 * @internal
 */
export const retryAfterSeconds = (ms: number): number => Math.max(1, wholeSeconds(ms))

/**
 * A structured-field String (RFC 9651 §3.3.3): printable ASCII, `"` and `\` escaped.
 *
 * @internal
 */
export const sfString = (value: string): string =>
  `"${value.replace(/[^\x20-\x7e]/g, "?").replace(/[\\"]/g, (c) => `\\${c}`)}"`

/**
 * What the IETF policy window depends on (a limiter's spec has these fields).
 *
 * @internal
 */
export interface PolicyShape {
  readonly algorithm: string
  readonly windowMs: number | undefined
  readonly ratePerSecond: number | undefined
  readonly burst: number
}

/**
 * The window of the IETF policy, in seconds; undefined when the limiter has no time window.
 *
 * @internal
 */
export const policyWindow = (spec: PolicyShape): number | undefined => {
  if (spec.algorithm === "sliding_window" || spec.algorithm === "fixed_window") {
    return spec.windowMs === undefined ? undefined : Math.max(1, wholeSeconds(spec.windowMs))
  }
  const rate = spec.ratePerSecond
  if (rate === undefined || !(rate > 0)) return undefined
  // token bucket: the time an empty bucket takes to refill to `burst`
  return Math.max(1, wholeSeconds((spec.burst / rate) * 1000))
}

/**
 * The numbers a decision reports (a limiter's decision has these fields).
 *
 * @internal
 */
export interface RateNumbers {
  readonly limit: number
  readonly remaining: number
  readonly resetAfterMs: number
}

const appendList = (existing: string | undefined, item: string): string =>
  existing === undefined || existing === "" ? item : `${existing}, ${item}`

const noHeaders = (_name: string): string | undefined => undefined

/**
 * The rate-limit headers to set on a response for one limiter: `policy` is the policy name as a
 * structured-field string ({@link sfString}), `window` its {@link policyWindow}, `existing` reads
 * the response's current headers (the IETF fields are lists, one item per limiter; the legacy trio
 * keeps the most restrictive limiter's numbers). Lower-case names.
 *
 * @internal
 */
export const rateHeaders = (
  numbers: RateNumbers,
  window: number | undefined,
  mode: HeadersMode,
  policy: string,
  existing: (name: string) => string | undefined = noHeaders
): Record<string, string> => {
  const out: Record<string, string> = {}
  if (mode === "none") return out
  const limit = wholeCount(numbers.limit, Number.MAX_SAFE_INTEGER)
  const remaining = wholeCount(numbers.remaining, limit)
  const reset = wholeSeconds(numbers.resetAfterMs)
  if (mode === "draft" || mode === "both") {
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

/**
 * The headers of a refusal: {@link rateHeaders} as if alone on the response, then `Retry-After`.
 *
 * @internal
 */
export const refusalHeaders = (
  numbers: RateNumbers,
  window: number | undefined,
  mode: HeadersMode,
  policy: string,
  retryAfter: number
): Record<string, string> => {
  const out = rateHeaders(numbers, window, mode, policy)
  out["retry-after"] = String(retryAfter)
  return out
}

/**
 * The `application/problem+json` body of a 429.
 *
 * @internal
 */
export const tooManyRequestsBody = (limiter: string, retryAfter: number) => ({
  type: "about:blank",
  title: "Too Many Requests",
  status: 429 as const,
  detail: `Rate limit "${limiter}" exceeded; retry after ${retryAfter} second${retryAfter === 1 ? "" : "s"}.`,
  limiter,
  retryAfter
})

/**
 * The `application/problem+json` body of the 503 (generic on purpose: no store error text).
 *
 * @internal
 */
export const unavailableBody = {
  type: "about:blank",
  title: "Service Unavailable",
  status: 503 as const,
  detail: "Rate limiting is temporarily unavailable; please retry later."
}
