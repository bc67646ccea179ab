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
import * as Fx from "#fx/core"
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
  kind: Fx.optionalWithDefault(Fx.literals("unavailable", "rejected"), () => "unavailable" as const)
}) {}

export type * from "./core/spi.js"
import type {
  AdjustRequest,
  AdjustResult,
  CompositeDecision,
  PeekRequest,
  RateTake,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  TokenBucketRequest,
  WindowRequest
} from "./core/spi.js"

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
  /**
   * Optional: `false` when the limiters on this store must not keep a local block cache of its
   * refusals (they ask it on every call), as the store was made with its option
   * `blockCache: false` (`RATE_SYNC_<ENGINE>_BLOCK_CACHE`, TOML `block_cache`). Absent: `true`.
   * A store that decides in-process (`unsafeTake`) is never cached anyway.
   */
  readonly blockCache?: boolean | undefined
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
  /**
   * Several rate takes as one unit, all-or-nothing (see {@link CompositeDecision}): either every
   * take is charged or none is. One atomic operation where the store has one (a script, a
   * statement); a store without multi-key transactions takes in the given order and undoes the
   * taken ones (`adjust`) when a later one refuses, and documents the window in which another
   * caller can observe a partial charge. Optional for third-party stores: without it the limiter
   * refuses a composite call with a `ConfigError` naming the store's engine.
   */
  readonly takeAll?: ((takes: ReadonlyArray<RateTake>) => Effect.Effect<CompositeDecision, StoreError>) | undefined
  /**
   * Charge more or give back on what a take charged (see {@link AdjustRequest}). One round trip.
   * Optional for third-party stores: without it `permit.adjust` fails with a `ConfigError`.
   */
  readonly adjust?: ((request: AdjustRequest) => Effect.Effect<AdjustResult, StoreError>) | undefined
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
  /** Optional: `takeAll` at `now` (see `RateLimitStoreService.takeAll`). */
  readonly takeAll?: ((takes: ReadonlyArray<RateTake>, now: number) => CompositeDecision) | undefined
  /** Optional: `adjust` at `now` (see `RateLimitStoreService.adjust`). */
  readonly adjust?: ((request: AdjustRequest, now: number) => AdjustResult) | undefined
}

/**
 * The store service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class RateLimitStore extends Fx.Service<RateLimitStore, RateLimitStoreService>()(
  "effect-rate-sync/RateLimitStore"
) {}

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
