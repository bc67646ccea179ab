/**
 * The errors of effect-rate-sync. One `_tag` per failure mode, so `Effect.catchTag` selects it.
 * None of them ever holds a secret (a URL with credentials, a password, a token).
 *
 * @since 0.1.0
 */
import * as Fx from "#fx/core"
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/**
 * One limit that refused a call: which limiter and key, why (`"rate"`: no token or window room;
 * `"concurrency"`: no slot), its capacity, what it had left, and when the same call could first
 * pass it (`retryAfter`).
 *
 * @since 0.2.0
 * @category errors
 */
export const Violation = Schema.Struct({
  limiterId: Schema.String,
  key: Schema.String,
  reason: Fx.literals("rate", "concurrency"),
  limit: Schema.Number,
  remaining: Schema.Number,
  retryAfter: Schema.DurationFromMillis
})

/**
 * @since 0.2.0
 * @category errors
 */
export interface Violation extends Schema.Schema.Type<typeof Violation> {}

/**
 * The limit refused the call: no token within the timeout (`reason: "rate"`), or no concurrency
 * slot within the timeout (`reason: "concurrency"`). `retryAfter` is the store's estimate of when
 * the same call can first succeed.
 *
 * `violations` lists every limit that refused, each with its own numbers: one for a single-limit
 * call; for a call over several limits (`RateLimiter.acquire(["rpm", "tpm"], …)`), each limit that
 * refused. The error's own `limiterId`, `key`, `reason`, `limit`, `remaining` and `retryAfter`
 * are those of the violation with the largest `retryAfter` (the one the call waits for), so a
 * caller that reads only them reads the binding limit.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitExceeded extends Schema.TaggedError<RateLimitExceeded>("effect-rate-sync/RateLimitExceeded")(
  "RateLimitExceeded",
  {
    limiterId: Schema.String,
    key: Schema.String,
    reason: Fx.literals("rate", "concurrency"),
    limit: Schema.Number,
    remaining: Schema.Number,
    retryAfter: Schema.DurationFromMillis,
    violations: Schema.Array(Violation)
  }
) {
  /**
   * The error of a refusal from its violations (at least one): the top-level fields are those of
   * the violation with the largest `retryAfter` (the first of equals).
   */
  static fromViolations(violations: readonly [Violation, ...ReadonlyArray<Violation>]): RateLimitExceeded {
    let binding = violations[0]
    for (const v of violations) {
      if (Duration.toMillis(v.retryAfter) > Duration.toMillis(binding.retryAfter)) binding = v
    }
    return new RateLimitExceeded({
      limiterId: binding.limiterId,
      key: binding.key,
      reason: binding.reason,
      limit: binding.limit,
      remaining: binding.remaining,
      retryAfter: binding.retryAfter,
      violations
    })
  }

  override get message(): string {
    const retry = `retry after ${Math.ceil(Duration.toMillis(this.retryAfter))} ms`
    if (this.violations.length <= 1) {
      return `Rate limit exceeded for limiter "${this.limiterId}" (${this.reason}); ${retry}`
    }
    const each = this.violations.map((v) => `"${v.limiterId}" (${v.reason})`).join(", ")
    return `Rate limit exceeded for limiters ${each}; ${retry}`
  }
}

/**
 * No limiter has this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class LimiterNotFound extends Schema.TaggedError<LimiterNotFound>("effect-rate-sync/LimiterNotFound")(
  "LimiterNotFound",
  { limiterId: Schema.String }
) {
  override get message(): string {
    return `No limiter "${this.limiterId}" is configured`
  }
}

/**
 * No store has this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreNotFound extends Schema.TaggedError<StoreNotFound>("effect-rate-sync/StoreNotFound")(
  "StoreNotFound",
  { storeId: Schema.String }
) {
  override get message(): string {
    return `No store "${this.storeId}" is configured`
  }
}

/**
 * The store could not answer (down, timed out, refused) and the limiter is fail-closed, or the
 * operation has no fail-open meaning (`initialize`, `reset`). `cause` is a sanitized description.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>("effect-rate-sync/StoreUnavailable")(
  "StoreUnavailable",
  { storeId: Schema.String, engine: Schema.String, cause: Schema.String }
) {
  override get message(): string {
    return `Store "${this.storeId}" (${this.engine}) is unavailable: ${this.cause}`
  }
}

/**
 * A request the limiter can never honour: a cost that is not a positive whole number (or not a
 * number at all, from JavaScript), or one above the limiter's capacity (it would wait forever).
 * `cost` is the cost asked for (`NaN` when it was not a number); `received` shows it as it came
 * (`1.5`, or `"2"` quoted for the string "2").
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCost extends Schema.TaggedError<InvalidCost>("effect-rate-sync/InvalidCost")("InvalidCost", {
  limiterId: Schema.String,
  cost: Schema.Number,
  max: Schema.Number,
  received: Schema.String
}) {
  override get message(): string {
    return `Invalid cost for limiter "${this.limiterId}": expected a whole number in [1, ${this.max}], received ${this.received}`
  }
}

/**
 * Bad configuration: names the path (`limiters.api.rate_per_second`), what was expected and what
 * was received.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Schema.TaggedError<ConfigError>("effect-rate-sync/ConfigError")("ConfigError", {
  path: Schema.String,
  expected: Schema.String,
  received: Schema.String,
  message: Schema.String
}) {
  /**
   * Builds a `ConfigError` whose message says all three parts. (The schema's own static `make`
   * takes the fields object; this is the one to call.)
   */
  static at(path: string, expected: string, received: string): ConfigError {
    return new ConfigError({
      path,
      expected,
      received,
      message: `Invalid configuration at ${path || "<root>"}: expected ${expected}, received ${received}`
    })
  }
}

/**
 * Every error a limiter operation can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type RateLimiterError =
  | RateLimitExceeded
  | LimiterNotFound
  | StoreNotFound
  | StoreUnavailable
  | InvalidCost
  | ConfigError

/**
 * What `acquire` and `withRateLimit` can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type AcquireError = RateLimitExceeded | LimiterNotFound | StoreUnavailable | InvalidCost | ConfigError

/**
 * What `check` and `tryAcquire` can fail with (a refusal is an answer, not an error).
 *
 * @since 0.1.0
 * @category errors
 */
export type CheckError = LimiterNotFound | StoreUnavailable | InvalidCost | ConfigError

/**
 * What `permit.adjust` and `permit.refund` can fail with: a `ConfigError` for a delta that is not
 * a whole number, a limiter the permit does not hold, a concurrency-only limit (slots are not
 * adjustable) or a store without `adjust`; `StoreUnavailable` when the store failed (an
 * adjustment has no fail-open meaning, so it never fails open).
 *
 * @since 0.2.0
 * @category errors
 */
export type AdjustError = ConfigError | StoreUnavailable

/**
 * What registering a limiter (`configureLimiter`, `cloneLimiter`) can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type RegisterError = ConfigError | StoreNotFound

/**
 * What building a registry (`RateLimiter.make`, `layer`) can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type MakeError = ConfigError | StoreNotFound | StoreUnavailable
