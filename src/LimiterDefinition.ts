/**
 * What a limiter is: the definition users write (in TypeScript or TOML), its validation, and the
 * resolved form the limiter runs on.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Fx from "#fx/core"
import { ratePerSecondOf } from "./core/rate.js"
import { limiterIdProblem, MAX_LIMITER_ID_LENGTH } from "./core/storeKey.js"
import { describeInput, durationInputMs, unknownField } from "./internal/config/input.js"
import * as Input from "./internal/config/input.js"
import { ConfigError } from "./RateLimitError.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Algorithm = "token_bucket" | "sliding_window" | "fixed_window"

/**
 * A limiter as users write it. At least one of a rate (`ratePerSecond` or `rate`), a window
 * (`limit` + `window`, for the window algorithms) or `maxConcurrent` must be set. Durations are
 * `Fx.DurationInput`s: `Duration.DurationInput` on Effect 3, `Duration.Input` on Effect 4.
 *
 * @since 0.1.0
 * @category models
 */
export interface LimiterDefinition {
  /** Store id (registered with `configureStore` or in TOML); the default store when absent. */
  readonly store?: string | undefined
  /** `"token_bucket"` (default), `"sliding_window"` or `"fixed_window"`. */
  readonly algorithm?: Algorithm | undefined
  /** Token-bucket refill rate, per second; at most {@link MAX_RATE_PER_SECOND}. */
  readonly ratePerSecond?: number | undefined
  /** Token-bucket rate as a string: `"100/min"`, `"10/5s"`, `"5 per hour"` (units ms, s, m, h, d). */
  readonly rate?: string | undefined
  /** Token-bucket capacity; default `max(1, ceil(ratePerSecond))`. */
  readonly burst?: number | undefined
  /** Concurrency limit (any algorithm). */
  readonly maxConcurrent?: number | undefined
  /** Window algorithms: admitted cost per window. */
  readonly limit?: number | undefined
  /** Window algorithms: the window's length; at most {@link MAX_DURATION_MS}. */
  readonly window?: Fx.DurationInput | undefined
  /** Default wait of `acquire`, at most {@link MAX_DURATION_MS}; absent (or infinite): wait as long as needed. */
  readonly timeout?: Fx.DurationInput | undefined
  /** On a store failure: `false` (default) lets the call through and counts it; `true` fails. */
  readonly failClosed?: boolean | undefined
  /** Concurrency slot lease, renewed while held: 100 ms to {@link MAX_DURATION_MS}. Default 30 seconds. */
  readonly lease?: Fx.DurationInput | undefined
  /**
   * The local block cache (default `true`): once the store refuses a key, this process answers
   * the key's further calls of at least the refused cost itself, without a round trip, until the
   * refusal's retry-after. `false` asks the store every time. Only networked stores use it, and
   * only for the rate part (never for concurrency slots); see docs/architecture.md.
   */
  readonly blockCache?: boolean | undefined
}

/**
 * A validated limiter. Every number is finite and positive (`timeoutMs` may be 0); counts
 * (`burst`, `limit`, `maxConcurrent`) are safe integers, the rate is at most
 * {@link MAX_RATE_PER_SECOND}, and durations are milliseconds of at most {@link MAX_DURATION_MS}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LimiterSpec {
  readonly id: string
  readonly store: string | undefined
  readonly algorithm: Algorithm
  /** Token bucket: refill rate per second; `undefined` when the limiter has no rate. */
  readonly ratePerSecond: number | undefined
  /** Token bucket: capacity; window algorithms: `limit`; 0 when neither applies. */
  readonly burst: number
  readonly limit: number | undefined
  readonly windowMs: number | undefined
  readonly maxConcurrent: number | undefined
  /** `undefined`: wait as long as needed. */
  readonly timeoutMs: number | undefined
  readonly failClosed: boolean
  readonly leaseMs: number
  /** The local block cache is on for this limiter (`LimiterDefinition.blockCache`, default `true`). */
  readonly blockCache: boolean
}

/**
 * The default concurrency lease.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_LEASE_MS = 30_000

/**
 * The longest `window`, `timeout` and `lease`: 10 years (3650 days), in milliseconds. Longer
 * durations are configuration mistakes; this bound keeps every duration a safe integer even in
 * microseconds (what the stores compute with). Leave `timeout` out to wait as long as needed.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_DURATION_MS = 3650 * 86_400_000

/**
 * The highest token-bucket rate, per second: the largest safe integer, so the default burst
 * (`ceil(ratePerSecond)`) is a safe integer.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_RATE_PER_SECOND = Number.MAX_SAFE_INTEGER

/**
 * Parses `"100/min"`, `"10/5s"`, `"5 per hour"` into a rate per second. The answer is an
 * `Either` on Effect 3 and a `Result` on Effect 4 (`Fx.Result`, the type each major spells).
 *
 * @since 0.1.0
 * @category config
 */
export const parseRate = (input: string, path = "rate"): Fx.Result<number, ConfigError> => {
  const rate = ratePerSecondOf(input)
  return rate === undefined
    ? Fx.err(ConfigError.at(path, `a rate such as "100/min", "10/5s" or "5 per hour" (units ms, s, m, h, d)`, JSON.stringify(input)))
    : Fx.ok(rate)
}

const describe = (u: unknown): string => {
  if (typeof u === "number") return Number.isNaN(u) ? "NaN" : String(u)
  if (typeof u === "string") return JSON.stringify(u)
  if (u === undefined) return "nothing"
  if (u === null) return "null"
  if (typeof u === "object") return Array.isArray(u) ? "an array" : "a table"
  return typeof u
}

/**
 * The fields of a {@link LimiterDefinition}: a definition with any other field is refused.
 *
 * @since 0.1.0
 * @category constants
 */
export const definitionFields: typeof Input.definitionFields = Input.definitionFields

const positive = (path: string, u: unknown): number => {
  if (typeof u !== "number" || !Number.isFinite(u) || u <= 0) {
    throw ConfigError.at(path, "a finite number greater than 0", describe(u))
  }
  return u
}

const rateExpected = `a rate of at most ${MAX_RATE_PER_SECOND} per second (the default burst, ceil of the rate, must be a safe integer)`

/** A rate per second (from `ratePerSecond` or a parsed `rate`) no greater than the maximum. */
const boundedRate = (path: string, ratePerSecond: number, received: unknown): number => {
  if (!(ratePerSecond <= MAX_RATE_PER_SECOND)) throw ConfigError.at(path, rateExpected, describe(received))
  return ratePerSecond
}

const isInfinite = (u: unknown): boolean => durationInputMs(u) === Infinity

const positiveInt = (path: string, u: unknown): number => {
  if (typeof u !== "number" || !Number.isSafeInteger(u) || u <= 0) {
    throw ConfigError.at(path, "a whole number greater than 0", describe(u))
  }
  return u
}

const durationMs = (path: string, u: unknown, allowZero: boolean): number => {
  const ms = durationInputMs(u)
  const expected = allowZero ? "a duration of 0 or more" : "a duration greater than 0"
  if (ms === undefined || (!allowZero && ms === 0)) {
    // A refused Duration value is a negative one (Effect 4 has them): show it as a Duration.
    throw ConfigError.at(path, expected, ms === undefined && Duration.isDuration(u) ? describeInput(u) : describe(u))
  }
  if (ms > MAX_DURATION_MS) {
    // A Duration value shows as its milliseconds; what the user typed shows as typed.
    const received = typeof u === "string" || typeof u === "number"
      ? describe(u)
      : ms === Infinity
      ? "an infinite duration"
      : `${ms} ms`
    throw ConfigError.at(path, "a duration of at most 10 years (3650 days)", received)
  }
  return ms
}

/** Where a definition's fields are reported: `at("rate")` is `limiters.api.rate` (or its TOML name). */
type At = (field: keyof LimiterDefinition) => string

const checkId = (id: string, base: string): void => {
  const idProblem = limiterIdProblem(id)
  if (idProblem === undefined) return
  throw ConfigError.at(
    typeof id === "string" && id.length <= MAX_LIMITER_ID_LENGTH ? base : "limiters",
    `a limiter id of 1 to ${MAX_LIMITER_ID_LENGTH} characters with no control character and no unpaired surrogate`,
    typeof id === "string" ? `${describeInput(id)} (${idProblem})` : describe(id)
  )
}

/** The rate per second from `ratePerSecond` or `rate` (at most one of them), or none. */
const rateOf = (def: LimiterDefinition, at: At): number | undefined => {
  if (def.ratePerSecond !== undefined && def.rate !== undefined) {
    throw ConfigError.at(at("rate"), `either ${at("ratePerSecond")} or ${at("rate")}, not both`, "both")
  }
  if (def.ratePerSecond !== undefined) {
    return boundedRate(at("ratePerSecond"), positive(at("ratePerSecond"), def.ratePerSecond), def.ratePerSecond)
  }
  if (def.rate === undefined) return undefined
  if (typeof def.rate !== "string") throw ConfigError.at(at("rate"), `a rate string such as "100/min"`, describe(def.rate))
  const parsed = parseRate(def.rate, at("rate"))
  if (Fx.isErr(parsed)) throw Fx.errOf(parsed)
  return boundedRate(at("rate"), Fx.valueOf(parsed), def.rate)
}

/** What every algorithm shares: store, concurrency, failure policy, timeout, lease. */
const commonOf = (def: LimiterDefinition, at: At) => {
  const maxConcurrent = def.maxConcurrent === undefined ? undefined : positiveInt(at("maxConcurrent"), def.maxConcurrent)
  const failClosed = def.failClosed ?? false
  if (typeof failClosed !== "boolean") throw ConfigError.at(at("failClosed"), "true or false", describe(failClosed))
  // an infinite timeout is the same as none: wait as long as needed
  const timeoutMs = def.timeout === undefined || isInfinite(def.timeout)
    ? undefined
    : durationMs(at("timeout"), def.timeout, true)
  const leaseMs = def.lease === undefined ? DEFAULT_LEASE_MS : durationMs(at("lease"), def.lease, false)
  if (leaseMs < 100) throw ConfigError.at(at("lease"), "a lease of at least 100 ms", `${leaseMs} ms`)
  const blockCache = def.blockCache ?? true
  if (typeof blockCache !== "boolean") throw ConfigError.at(at("blockCache"), "true or false", describe(blockCache))
  return { store: def.store, maxConcurrent, failClosed, timeoutMs, leaseMs, blockCache }
}

/** The token-bucket fields: burst (default `max(1, ceil(rate))`), no window fields, some limit. */
const tokenBucketOf = (
  def: LimiterDefinition,
  at: At,
  base: string,
  ratePerSecond: number | undefined,
  maxConcurrent: number | undefined
): { readonly burst: number } => {
  if (def.limit !== undefined) {
    throw ConfigError.at(at("limit"), `no ${at("limit")} for the token bucket (use sliding_window or fixed_window)`, describe(def.limit))
  }
  if (def.window !== undefined) {
    throw ConfigError.at(at("window"), `no ${at("window")} for the token bucket (use sliding_window or fixed_window)`, describe(def.window))
  }
  if (def.burst !== undefined && ratePerSecond === undefined) {
    throw ConfigError.at(at("burst"), `a rate (${at("ratePerSecond")} or ${at("rate")}) alongside ${at("burst")}`, "no rate")
  }
  const burst = ratePerSecond === undefined
    ? 0
    : def.burst === undefined
    ? Math.max(1, Math.ceil(ratePerSecond))
    : positiveInt(at("burst"), def.burst)
  // GCRA keeps `burst / rate` ahead of now: bounded like every other duration, so that every
  // store can compute it (Redis integers, PostgreSQL timestamps, microseconds everywhere).
  if (ratePerSecond !== undefined && (burst * 1000) / ratePerSecond > MAX_DURATION_MS) {
    throw ConfigError.at(
      at(def.rate !== undefined ? "rate" : "ratePerSecond"),
      `a rate whose bucket refills within 10 years (burst / rate at most 3650 days; burst is ${burst})`,
      describe(def.rate ?? def.ratePerSecond)
    )
  }
  if (ratePerSecond === undefined && maxConcurrent === undefined) {
    throw ConfigError.at(base, `at least one limit: ${at("ratePerSecond")}, ${at("rate")} or ${at("maxConcurrent")}`, "none")
  }
  return { burst }
}

/** The window fields: `limit` and `window`, required, and no token-bucket field. */
const windowOf = (
  def: LimiterDefinition,
  at: At,
  algorithm: Algorithm,
  ratePerSecond: number | undefined
): { readonly limit: number; readonly windowMs: number } => {
  if (ratePerSecond !== undefined || def.burst !== undefined) {
    throw ConfigError.at(
      ratePerSecond !== undefined ? at(def.rate !== undefined ? "rate" : "ratePerSecond") : at("burst"),
      `no token-bucket settings for the ${algorithm} algorithm (use ${at("limit")} and ${at("window")})`,
      describe(def.rate ?? def.ratePerSecond ?? def.burst)
    )
  }
  if (def.limit === undefined) throw ConfigError.at(at("limit"), `a whole number greater than 0 (required by ${algorithm})`, "nothing")
  if (def.window === undefined) throw ConfigError.at(at("window"), `a duration greater than 0 (required by ${algorithm})`, "nothing")
  return { limit: positiveInt(at("limit"), def.limit), windowMs: durationMs(at("window"), def.window, false) }
}

/**
 * Validates a definition. `path` prefixes every field in errors (`limiters.api` for TOML).
 * `fieldNames` maps the TypeScript field names to the names the user wrote (snake_case in TOML).
 * The answer is an `Either` on Effect 3 and a `Result` on Effect 4 (`Fx.Result`).
 *
 * @since 0.1.0
 * @category config
 */
export const resolve = (
  id: string,
  def: LimiterDefinition,
  options?: {
    readonly path?: string | undefined
    readonly fieldNames?: Partial<Record<keyof LimiterDefinition, string>> | undefined
  }
): Fx.Result<LimiterSpec, ConfigError> => {
  const base = options?.path ?? `limiters.${id}`
  const at: At = (field) => `${base}.${options?.fieldNames?.[field] ?? field}`
  try {
    checkId(id, base)
    // From JavaScript anything can arrive here.
    if (typeof def !== "object" || def === null || Array.isArray(def)) {
      throw ConfigError.at(base, "a limiter definition (an object of limiter fields)", describe(def))
    }
    const unknown = unknownField(def, base, options?.fieldNames)
    if (unknown !== undefined) throw unknown
    if (def.store !== undefined && (typeof def.store !== "string" || def.store.length === 0)) {
      throw ConfigError.at(at("store"), "a store id (a non-empty string)", describe(def.store))
    }
    const algorithm: Algorithm = def.algorithm ?? "token_bucket"
    if (algorithm !== "token_bucket" && algorithm !== "sliding_window" && algorithm !== "fixed_window") {
      throw ConfigError.at(at("algorithm"), `one of "token_bucket", "sliding_window", "fixed_window"`, describe(algorithm))
    }
    const ratePerSecond = rateOf(def, at)
    const common = commonOf(def, at)
    if (algorithm === "token_bucket") {
      const { burst } = tokenBucketOf(def, at, base, ratePerSecond, common.maxConcurrent)
      return Fx.ok({ id, algorithm, ratePerSecond, burst, limit: undefined, windowMs: undefined, ...common })
    }
    const { limit, windowMs } = windowOf(def, at, algorithm, ratePerSecond)
    return Fx.ok({ id, algorithm, ratePerSecond: undefined, burst: limit, limit, windowMs, ...common })
  } catch (e) {
    if (e instanceof ConfigError) return Fx.err(e)
    throw e
  }
}

/**
 * Overrides accepted by `cloneLimiter`.
 *
 * @since 0.1.0
 * @category models
 */
export type LimiterOverrides = Partial<LimiterDefinition>

/**
 * Turns a spec back into a definition (for `cloneLimiter` and inspection).
 *
 * @since 0.1.0
 * @category constructors
 */
export const toDefinition = (spec: LimiterSpec): LimiterDefinition => ({
  store: spec.store,
  algorithm: spec.algorithm,
  ratePerSecond: spec.ratePerSecond,
  burst: spec.algorithm === "token_bucket" && spec.ratePerSecond !== undefined ? spec.burst : undefined,
  maxConcurrent: spec.maxConcurrent,
  limit: spec.limit,
  window: spec.windowMs === undefined ? undefined : Duration.millis(spec.windowMs),
  timeout: spec.timeoutMs === undefined ? undefined : Duration.millis(spec.timeoutMs),
  failClosed: spec.failClosed,
  lease: Duration.millis(spec.leaseMs),
  blockCache: spec.blockCache
})
