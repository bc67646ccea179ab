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
 * The limit refused the call: no token within the timeout (`reason: "rate"`), or no concurrency
 * slot within the timeout (`reason: "concurrency"`). `retryAfter` is the store's estimate of when
 * the same call can first succeed.
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
    retryAfter: Schema.DurationFromMillis
  }
) {
  override get message(): string {
    return `Rate limit exceeded for limiter "${this.limiterId}" (${this.reason}); retry after ${
      Math.ceil(Duration.toMillis(this.retryAfter))
    } ms`
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
