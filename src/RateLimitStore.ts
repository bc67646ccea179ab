/**
 * The store SPI: the atomic operations every rate-limit store implements.
 *
 * A store is a `Layer` that provides {@link RateLimitStore}. Each method is one atomic
 * operation and must cost exactly one round trip to the backing server (a Lua script, one SQL
 * statement, one compare-and-set). Every method answers plain numbers in milliseconds of the
 * store's own clock, so that the same decision is reached whichever process asks.
 *
 * State is addressed by `(limiter, key)`: `limiter` is the limiter id (`"api"`), `key` the
 * sub-identity inside it (`""` when the limiter is not keyed). A store must keep distinct pairs
 * apart, whatever characters they contain, and must put an expiry on every piece of state so that
 * idle keys vanish on their own.
 *
 * Conformance: a store is done when `test/conformance` passes against it unchanged.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: TypeId = "~effect-rate-sync/RateLimitStore"

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = "~effect-rate-sync/RateLimitStore"

/**
 * The failure of a store round trip. `message` is already sanitized: it never holds a URL with
 * credentials, a password or a token. The limiter turns it into `StoreUnavailable`.
 *
 * `kind` tells the limiter what failed:
 * - `"unavailable"` (the default): the store could not be reached, did not answer in time, or is
 *   overloaded. The limiter's `failClosed` policy applies: fail-open admits the call.
 * - `"rejected"`: the store answered, and refused this request itself (a value it cannot hold, a
 *   statement it cannot run). Such an error is caused by the request, so it is never a fail-open
 *   admission: the limiter fails the call with `StoreUnavailable` whatever its policy.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("effect-rate-sync/StoreError")("StoreError", {
  engine: Schema.String,
  operation: Schema.String,
  message: Schema.String,
  kind: Schema.optionalWith(Schema.Literal("unavailable", "rejected"), { default: () => "unavailable" as const })
}) {}

/**
 * What a rate operation answers.
 *
 * - `allowed`: the request is admitted (after `delayMs`, for a token-bucket reservation).
 * - `limit`: the capacity the decision was taken against (burst for the token bucket, `limit` for
 *   the windows, `maxConcurrent` for slots).
 * - `remaining`: whole units still available right after this decision, in `[0, limit]`.
 * - `resetAfterMs`: milliseconds until the state is back to full capacity if nothing else arrives.
 * - `retryAfterMs`: when refused, milliseconds until the same request can first be admitted
 *   (`Infinity` when it never can, e.g. a cost above the capacity); `0` when allowed.
 * - `delayMs`: when allowed by a reservation, how long the caller must wait before it proceeds
 *   (only the token bucket reserves; `0` otherwise).
 * - `casRetries`: optional, for stores that decide by compare-and-set (NATS KV): how many writes
 *   lost a race and were retried for this decision. The limiter adds it to `casFailures`.
 * - `contended`: optional, on a refusal: the store refused only because other writers kept winning
 *   the race for this key (not because the limit is reached), so waiting `retryAfterMs` and asking
 *   again may succeed. `acquire` then waits and retries within its timeout.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreDecision {
  readonly allowed: boolean
  readonly limit: number
  readonly remaining: number
  readonly resetAfterMs: number
  readonly retryAfterMs: number
  readonly delayMs: number
  readonly casRetries?: number | undefined
  readonly contended?: boolean | undefined
}

/**
 * Token bucket, as GCRA. The state of a `(limiter, key)` is one number: its theoretical arrival
 * time (TAT), in store milliseconds.
 *
 * With `T = 1000 / ratePerSecond` and `now` the store's clock:
 * `tat0 = max(tat, now)`, `next = tat0 + cost·T`, `allowAt = next − burst·T`.
 * - `allowAt ≤ now`: admit, store `next`, `delayMs = 0`.
 * - `0 < allowAt − now ≤ maxWaitMs`: reserve: store `next`, admit with `delayMs = allowAt − now`;
 *   the caller sleeps that long and then proceeds.
 * - otherwise refuse with `retryAfterMs = allowAt − now`, state unchanged.
 * A cost above `burst` is refused with `retryAfterMs = Infinity`, state unchanged.
 *
 * `remaining = floor((now + burst·T − next) / T)` clamped to `[0, burst]` (on refusal, computed
 * from `tat0` with no cost), `resetAfterMs = max(0, next − now)`. The state expires once
 * `next ≤ now` (a full bucket needs no state): TTL `ceil(next − now)` ms.
 *
 * Guarantee: never more than `burst + ratePerSecond·t` costs admitted (at their `delayMs`
 * instants) in any interval of length `t`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenBucketRequest {
  readonly limiter: string
  readonly key: string
  readonly ratePerSecond: number
  readonly burst: number
  readonly cost: number
  readonly maxWaitMs: number
}

/**
 * A window take, for both window algorithms.
 *
 * Sliding window (exact): the store keeps every admitted `(time, cost)` of the last `windowMs`.
 * An entry stamped `t` counts while `now < t + windowMs`. Admit when the counted total plus `cost`
 * is at most `limit`, then record `(now, cost)`. When refused, `retryAfterMs` is the time until
 * enough entries leave the window for this cost to fit. `resetAfterMs`: until the newest entry
 * leaves. Guarantee: no half-open interval `[a, a + windowMs)` holds more than `limit` admitted.
 *
 * Fixed window: one counter per aligned window `[floor(now / windowMs)·windowMs, … + windowMs)`.
 * Admit when `count + cost ≤ limit`. `resetAfterMs` and, when refused, `retryAfterMs` are the
 * time to the window's end. A refusal does not count.
 *
 * State expires when it can no longer matter (the window has passed); a hit never extends the
 * expiry beyond that.
 *
 * @since 0.1.0
 * @category models
 */
export interface WindowRequest {
  readonly limiter: string
  readonly key: string
  readonly limit: number
  readonly windowMs: number
  readonly cost: number
}

/**
 * Concurrency slots: a distributed semaphore of `limit` leases for `(limiter, key)`. Each lease
 * belongs to a `holder` id (unique per permit) and expires at `now + leaseMs` unless renewed.
 *
 * @since 0.1.0
 * @category models
 */
export interface SlotRequest {
  readonly limiter: string
  readonly key: string
  readonly holder: string
  readonly limit: number
  readonly leaseMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SlotDecision {
  /** The holder now owns a slot (also when it owned one already: acquiring is idempotent). */
  readonly acquired: boolean
  readonly limit: number
  /** Live leases after this operation. */
  readonly active: number
  /** When refused: milliseconds until the earliest live lease expires (an upper bound on the wait). */
  readonly retryAfterMs: number
  /** Compare-and-set stores: writes retried for this decision (see `StoreDecision.casRetries`). */
  readonly casRetries?: number | undefined
}

/**
 * Which state `peek` and `reset` address.
 *
 * @since 0.1.0
 * @category models
 */
export type Algorithm = "token_bucket" | "sliding_window" | "fixed_window" | "concurrency"

/**
 * @since 0.1.0
 * @category models
 */
export type PeekRequest =
  | { readonly algorithm: "token_bucket"; readonly limiter: string; readonly key: string; readonly ratePerSecond: number; readonly burst: number }
  | { readonly algorithm: "sliding_window" | "fixed_window"; readonly limiter: string; readonly key: string; readonly limit: number; readonly windowMs: number }
  | { readonly algorithm: "concurrency"; readonly limiter: string; readonly key: string; readonly limit: number }

/**
 * The SPI.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitStoreService {
  readonly [TypeId]: TypeId
  /** Engine name: `"memory"`, `"redis"`, `"postgres"`, `"nats"`, or a third party's. */
  readonly engine: string
  /** Token bucket take-or-reserve (see {@link TokenBucketRequest}). One round trip. */
  readonly tokenBucket: (request: TokenBucketRequest) => Effect.Effect<StoreDecision, StoreError>
  /** Exact sliding-window take (see {@link WindowRequest}). One round trip. */
  readonly slidingWindow: (request: WindowRequest) => Effect.Effect<StoreDecision, StoreError>
  /** Fixed-window take (see {@link WindowRequest}). One round trip. */
  readonly fixedWindow: (request: WindowRequest) => Effect.Effect<StoreDecision, StoreError>
  /**
   * Take a slot for `holder`: drop expired leases, then grant when the holder already has one
   * (its expiry is pushed to `now + leaseMs`) or fewer than `limit` are live. One round trip.
   */
  readonly acquireSlot: (request: SlotRequest) => Effect.Effect<SlotDecision, StoreError>
  /**
   * Push the holder's lease to `now + leaseMs`. `false` when the holder has no live lease any
   * more (it expired or was reset): the lease is lost and is not re-created. One round trip.
   */
  readonly renewSlot: (request: SlotRequest) => Effect.Effect<boolean, StoreError>
  /** Drop the holder's lease; `true` when it had a live one. Other holders are untouched. */
  readonly releaseSlot: (request: SlotRequest) => Effect.Effect<boolean, StoreError>
  /**
   * The state a take would see, consuming nothing: `allowed` tells whether a cost of 1 would be
   * admitted now; for slots, `remaining = limit − active`. One round trip.
   */
  readonly peek: (request: PeekRequest) => Effect.Effect<StoreDecision, StoreError>
  /**
   * Drop the state of `limiter` under every algorithm: for one `key` when given, else for all of
   * its keys (which may scan).
   */
  readonly reset: (limiter: string, key?: string) => Effect.Effect<void, StoreError>
  /** Fail fast at start-up: connect, load scripts, create tables. Idempotent. */
  readonly initialize: Effect.Effect<void, StoreError>
  /**
   * Optional notification: completes when a slot of `(limiter, key)` may have been freed, or after
   * `maxWaitMs`, whichever comes first. Limiters race it against their backoff, so a store
   * without notifications simply omits it.
   */
  readonly awaitSlot?: ((limiter: string, key: string, maxWaitMs: number) => Effect.Effect<void>) | undefined
  /**
   * Optional, for stores that decide in-process: the rate operations as plain functions of the
   * request and the current time (ms, read by the caller from its `Clock`), answering exactly what
   * the effectful forms answer at that time. The limiter then decides in one synchronous step,
   * without building effects per call. A networked store omits it.
   */
  readonly unsafeTake?: SyncTake | undefined
}

/**
 * The synchronous rate operations of an in-process store (see `RateLimitStoreService.unsafeTake`).
 *
 * @since 0.1.0
 * @category models
 */
export interface SyncTake {
  readonly tokenBucket: (request: TokenBucketRequest, now: number) => StoreDecision
  readonly slidingWindow: (request: WindowRequest, now: number) => StoreDecision
  readonly fixedWindow: (request: WindowRequest, now: number) => StoreDecision
}

/**
 * The store service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class RateLimitStore extends Context.Tag("effect-rate-sync/RateLimitStore")<
  RateLimitStore,
  RateLimitStoreService
>() {}

/**
 * Builds a store from its operations, adding the type id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: Omit<RateLimitStoreService, TypeId>): RateLimitStoreService => ({
  [TypeId]: TypeId,
  ...impl
})
