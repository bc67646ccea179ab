/**
 * The arithmetic and text of the HTTP middleware's answers: whole seconds, the IETF
 * `RateLimit` / `RateLimit-Policy` structured fields as draft-ietf-httpapi-ratelimit-headers-10
 * (September 2025) defines them, the legacy `X-RateLimit-*` trio and the
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
export const sfString = (value: string): string => {
  let written = sfStrings.get(value)
  if (written === undefined) {
    written = `"${value.replace(/[^\x20-\x7e]/g, "?").replace(/[\\"]/g, (c) => `\\${c}`)}"`
    // policy names are the few limiter ids and names of a configuration: kept, within a bound
    if (sfStrings.size >= MAX_REMEMBERED) sfStrings.clear()
    sfStrings.set(value, written)
  }
  return written
}

const MAX_REMEMBERED = 1024
const sfStrings = new Map<string, string>()

/**
 * What the IETF fields of a limiter depend on (a limiter's spec has these fields).
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
 * A limiter with neither a rate nor a window: only concurrency slots (its `q` is
 * `maxConcurrent`, its unit `"concurrent-requests"`).
 *
 * @internal
 */
export const isConcurrencyOnly = (spec: PolicyShape): boolean => spec.windowMs === undefined && spec.ratePerSecond === undefined

/**
 * The window of the IETF policy (`w`), in seconds; undefined when the limiter has no time window.
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
 * The quota unit of the IETF policy (`qu`): `"concurrent-requests"` for a concurrency-only
 * limiter, otherwise undefined (the draft's default unit, `"requests"`: a cost is that many
 * requests' worth).
 *
 * @internal
 */
export const quotaUnit = (spec: PolicyShape): string | undefined => isConcurrencyOnly(spec) ? "concurrent-requests" : undefined

/**
 * The numbers a decision reports (a limiter's decision has these fields).
 *
 * @internal
 */
export interface RateNumbers {
  readonly limit: number
  readonly remaining: number
  readonly resetAfterMs: number
  /** When refused, until the same call can pass; 0 (or absent) when allowed. */
  readonly retryAfterMs?: number | undefined
}

/**
 * The IETF `t` in milliseconds (draft-ietf-httpapi-ratelimit-headers-10 §4.1.2: "the number of
 * seconds until additional quota associated with the quota policy is made available"), or
 * undefined when none is coming:
 *
 * - full (`remaining >= limit`), or concurrency-only (slots come back when released, at no known
 *   time): no `t`;
 * - token bucket: until the next whole token, `resetAfter - (limit - remaining - 1) / rate`
 *   (the bucket refills continuously; a debt is in `resetAfter`);
 * - fixed window: until the window ends, when its whole quota comes back (`resetAfter`);
 * - sliding window: `resetAfter` (until the newest entry leaves the window), an upper bound of
 *   when the oldest leaves, which a decision does not report;
 * - a refusal: never later than its `Retry-After` (the draft: Retry-After SHOULD NOT be earlier
 *   than `t`).
 *
 * @internal
 */
export const nextQuotaMs = (numbers: RateNumbers, spec: PolicyShape | undefined): number | undefined => {
  if (spec !== undefined && isConcurrencyOnly(spec)) return undefined
  if (!(numbers.remaining < numbers.limit)) return undefined
  let ms = numbers.resetAfterMs
  const rate = spec?.ratePerSecond
  if (spec?.algorithm === "token_bucket" && rate !== undefined && rate > 0) {
    const missing = Math.max(0, Math.floor(numbers.limit) - Math.max(0, Math.floor(numbers.remaining)) - 1)
    ms = numbers.resetAfterMs - (missing * 1000) / rate
  }
  const retry = numbers.retryAfterMs ?? 0
  if (retry > 0) ms = Math.min(ms, retry)
  return Number.isNaN(ms) ? undefined : Math.max(0, ms)
}

/**
 * One limiter's entry in the rate-limit headers: the policy name (plain text, escaped when
 * written), and the numbers of its members.
 *
 * @internal
 */
export interface RateItem {
  /** The policy name, as given (written as a structured-field String). */
  readonly policy: string
  /** `q`: the capacity, a whole number. */
  readonly quota: number
  /** `qu`, when not the default `"requests"`. */
  readonly unit: string | undefined
  /** `w`: the window in seconds, when the limiter has one. */
  readonly window: number | undefined
  /** `r`: whole units left, in [0, quota]. */
  readonly remaining: number
  /** `t`: whole seconds until more quota comes (see {@link nextQuotaMs}), when any comes. */
  readonly next: number | undefined
  /** `pk`: the partition key, sent only when asked for (a Byte Sequence of its UTF-8 bytes). */
  readonly partitionKey: string | undefined
  /** `X-RateLimit-Reset`: whole seconds until the quota is full again. */
  readonly reset: number
}

/**
 * The {@link RateItem} of a decision's numbers for limiter `spec` (undefined: not known, then
 * no `w`, `qu`, and `t` is the reset time bounded by the retry time).
 *
 * @internal
 */
export const rateItem = (
  numbers: RateNumbers,
  spec: PolicyShape | undefined,
  policy: string,
  partitionKey?: string | undefined
): RateItem => {
  const quota = wholeCount(numbers.limit, Number.MAX_SAFE_INTEGER)
  const next = nextQuotaMs(numbers, spec)
  return {
    policy,
    quota,
    unit: spec === undefined ? undefined : quotaUnit(spec),
    window: spec === undefined ? undefined : policyWindow(spec),
    remaining: wholeCount(numbers.remaining, quota),
    next: next === undefined ? undefined : wholeSeconds(next),
    partitionKey,
    reset: wholeSeconds(numbers.resetAfterMs)
  }
}

/**
 * A structured-field Byte Sequence (RFC 9651 §3.3.5) of a string's UTF-8 bytes: `:base64:`.
 *
 * @internal
 */
export const sfBytes = (value: string): string => `:${Buffer.from(value, "utf8").toString("base64")}:`

/**
 * The `RateLimit-Policy` member of an item: `"name";q=100;qu="concurrent-requests";w=60;pk=:…:`
 * (the draft's Quota Policy Item, §3.1).
 *
 * @internal
 */
export const policyMember = (item: RateItem): string =>
  `${sfString(item.policy)};q=${item.quota}${item.unit === undefined ? "" : `;qu=${sfString(item.unit)}`}${
    item.window === undefined ? "" : `;w=${item.window}`
  }${item.partitionKey === undefined ? "" : `;pk=${sfBytes(item.partitionKey)}`}`

/**
 * The `RateLimit` member of an item: `"name";r=42;t=30;pk=:…:` (the draft's Service Limit Item,
 * §4.1).
 *
 * @internal
 */
export const serviceMember = (item: RateItem): string =>
  `${sfString(item.policy)};r=${item.remaining}${item.next === undefined ? "" : `;t=${item.next}`}${
    item.partitionKey === undefined ? "" : `;pk=${sfBytes(item.partitionKey)}`
  }`

const appendList = (existing: string | undefined, members: string): string =>
  existing === undefined || existing === "" ? members : `${existing}, ${members}`

const noHeaders = (_name: string): string | undefined => undefined

/**
 * The rate-limit headers to set on a response for the limiters of one call, `items` in the
 * call's order: `existing` reads the response's current headers (the IETF fields are lists, one
 * member per limiter, appended after those already there; the legacy trio keeps the most
 * restrictive limiter's numbers, the fewest remaining). Lower-case names.
 *
 * @internal
 */
export const rateHeaders = (
  items: ReadonlyArray<RateItem>,
  mode: HeadersMode,
  existing: (name: string) => string | undefined = noHeaders
): Record<string, string> => {
  const out: Record<string, string> = {}
  if (mode === "none" || items.length === 0) return out
  if (mode === "draft" || mode === "both") {
    out["ratelimit-policy"] = appendList(existing("ratelimit-policy"), items.map(policyMember).join(", "))
    out["ratelimit"] = appendList(existing("ratelimit"), items.map(serviceMember).join(", "))
  }
  if (mode === "legacy" || mode === "both") {
    // One trio per response: when several limiters apply, the most restrictive (fewest
    // remaining) wins, so a refusal's numbers are never overwritten by a looser limiter.
    let tightest: RateItem | undefined
    for (const item of items) if (tightest === undefined || item.remaining < tightest.remaining) tightest = item
    const previous = existing("x-ratelimit-remaining")
    if (tightest === undefined || (previous !== undefined && previous !== "" && Number(previous) <= tightest.remaining)) {
      return out
    }
    out["x-ratelimit-limit"] = String(tightest.quota)
    out["x-ratelimit-remaining"] = String(tightest.remaining)
    out["x-ratelimit-reset"] = String(tightest.reset)
  }
  return out
}

/**
 * The headers of a refusal: {@link rateHeaders} as if alone on the response, then `Retry-After`.
 *
 * @internal
 */
export const refusalHeaders = (
  items: ReadonlyArray<RateItem>,
  mode: HeadersMode,
  retryAfter: number
): Record<string, string> => {
  const out = rateHeaders(items, mode)
  out["retry-after"] = String(retryAfter)
  return out
}

/**
 * The problem type of a refusal (draft-ietf-httpapi-ratelimit-headers-10 §5.1, "Quota
 * Exceeded").
 *
 * @internal
 */
export const QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"

/**
 * The `application/problem+json` body of a 429: the draft's problem type, with its
 * `violated-policies` member (the policy names that refused, as in the headers), and `limiter`
 * and `retryAfter` (the limiter waited for, the `Retry-After` seconds).
 *
 * @internal
 */
export const tooManyRequestsBody = (
  limiter: string,
  retryAfter: number,
  violatedPolicies: ReadonlyArray<string> = [limiter]
) => ({
  type: QUOTA_EXCEEDED,
  title: "Too Many Requests",
  status: 429 as const,
  detail: `${
    violatedPolicies.length > 1
      ? `Rate limits ${violatedPolicies.map((p) => `"${p}"`).join(", ")} exceeded`
      : `Rate limit "${violatedPolicies[0] ?? limiter}" exceeded`
  }; retry after ${retryAfter} second${retryAfter === 1 ? "" : "s"}.`,
  "violated-policies": violatedPolicies,
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
