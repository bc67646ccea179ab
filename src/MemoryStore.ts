/**
 * The embedded in-process store: the default when no server is configured, and the store the
 * tests drive with `TestClock`.
 *
 * - **Time** comes only from Effect's `Clock` (read once per operation), so `TestClock` moves it.
 * - **State** lives in one `Map` per limiter, keyed by the raw key: distinct `(limiter, key)`
 *   pairs never collide, whatever characters they contain. Each operation is one synchronous
 *   step, so it is atomic with respect to every other fiber of the process.
 * - **Expiry.** State that can no longer matter (a bucket that has refilled, a window that has
 *   passed, leases that have run out) is ignored and dropped when it is next touched, and swept
 *   by the store's own operations: once `sweepInterval` has passed since the last sweep, each
 *   operation also examines a bounded batch of stored states (`SWEEP_BATCH`) and drops the
 *   expired ones, until every state has been examined. The sweep is driven by the operations'
 *   own clock reading: the store starts no fiber and no timer, so it never keeps an idle process
 *   alive, and `TestClock` drives the sweep like everything else.
 * - **Several limits as one unit.** `takeAll` judges every take on the stored states without
 *   changing any, then charges all of them (new keys stored first; the bound may refuse one, and
 *   then nothing is charged) or none: one synchronous step, so no other fiber sees a partial
 *   charge. `adjust` charges more or gives back on what a take charged; every admitted window take
 *   answers its `ref`: the fixed window's start, or its sliding-window entry's id (a number unique
 *   in the store; each admitted take is its own entry).
 * - **Fixed windows never move backwards.** The window a fixed-window take (or peek) counts in is
 *   the aligned window of the latest instant any operation of the store has read, never that of
 *   an earlier `now`: a clock that steps back (an NTP step, `TestClock.setTime`) keeps counting
 *   in the window already reached, so it cannot reopen a drained window, even for a key whose
 *   state has since been swept. Token buckets and sliding windows credit nothing on a step back
 *   either (a bucket refills only once the clock passes its stored instant; window entries
 *   stamped later keep counting).
 * - **Bound.** At most `maxKeys` `(limiter, key)` states and `maxBytes` bytes of them are kept
 *   (a state counts `ENTRY_OVERHEAD_BYTES` plus 2 bytes per code unit of its key). Only a request
 *   that would store a new key can hit the bound (refusals, peeks, renewals and releases never
 *   store one). Under pressure each limiter is entitled to a **fair share**: with `n` limiters
 *   holding state, `maxKeys / n` keys and `maxBytes / n` bytes. When a request would store a new
 *   key of limiter `L` while the store is full:
 *   1. every expired state is dropped;
 *   2. if `L` would then be **over its share**, room is made only among `L`'s own states: those
 *      that are **not currently throttled** (a key whose next request of cost 1 would be
 *      admitted now and that holds no live lease) are evicted, oldest first, up to a batch of
 *      `max(1, ⌈maxKeys / 100⌉)`. Forgetting such a key can only hand it back the room it
 *      already had, up to its full capacity. A throttled key of `L` is never evicted for `L`;
 *      if none is evictable the request is **refused** (`allowed: false`, `acquired: false` for
 *      slots) with `retryAfterMs` set to when `L`'s first key stops being throttled;
 *   3. if `L` is **within its share**, room is taken from the limiter furthest over its own
 *      share, never from a limiter within it: first its states that are not throttled, then its
 *      throttled ones (never one holding a live lease), oldest first, a batch at a time. An
 *      evicted throttled state leaves a **shadow** on its limiter: until the last such state
 *      would have stopped being throttled, every key of that limiter that is not stored is
 *      refused (its `retryAfterMs` is the shadow's end), so an evicted key is never readmitted
 *      early. The over-share limiter pays: its new keys are refused for a while.
 *   A key larger than `maxBytes` is refused with `retryAfterMs: Infinity`. So a flood of
 *   caller-chosen keys on one limiter can at worst lock out that limiter's own new keys; it can
 *   never lift a throttled key's block (its own or anyone else's) nor take another limiter's
 *   share.
 *
 * See `docs/engines/memory.md`.
 *
 * @since 0.1.0
 */
import * as Fx from "#fx/core"
import type * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Table from "./core/memory.js"
import * as RateLimitStore from "./RateLimitStore.js"
import type { RateLimitStoreService } from "./RateLimitStore.js"
import { memoryFields } from "./core/config/fields.js"
import { fieldsConfig } from "./internal/config/envConfig.js"
import { storeLayers } from "./internal/store/layers.js"
import { Waiters } from "./internal/store/waiters.js"
import type { MemoryStoreDefinition } from "./StoreDefinition.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryStoreOptions {
  /**
   * Most `(limiter, key)` states kept at once (a positive integer). Default `100_000`.
   * See the module documentation for what happens when it is reached (a fair share per limiter).
   */
  readonly maxKeys?: number | undefined
  /**
   * Most bytes of state kept at once (a positive integer). Default `67_108_864` (64 MiB). Each
   * `(limiter, key)` state is counted as `ENTRY_OVERHEAD_BYTES` (192) plus 2 bytes per UTF-16 code
   * unit of its key, and each limiter holding state as 256 plus 2 per code unit of its id. A key
   * whose state alone exceeds it is refused (`retryAfterMs: Infinity`). It bounds the memory that
   * long, caller-chosen keys can take; the same pressure rule as `maxKeys` applies.
   */
  readonly maxBytes?: number | undefined
  /**
   * How often a sweep of expired state starts (positive). Default 10 seconds. The sweep is done
   * by the store's operations, a bounded batch per operation; see the module documentation.
   */
  readonly sweepInterval?: Fx.DurationInput | undefined
}

/**
 * The memory store: the SPI plus a size probe for monitoring and tests.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStoreService extends RateLimitStoreService {
  /** `(limiter, key)` states held right now, including expired ones not yet dropped. */
  readonly size: Effect.Effect<number>
  /** Bytes counted against `maxBytes` right now (see `MemoryStoreOptions.maxBytes`). */
  readonly bytes: Effect.Effect<number>
}

/**
 * Bytes counted for one `(limiter, key)` state besides its key: the state record, the map entry.
 *
 * @since 0.1.0
 * @category constants
 */
export const ENTRY_OVERHEAD_BYTES: number = Table.ENTRY_OVERHEAD_BYTES

const DEFAULT_MAX_KEYS = 100_000
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024
const DEFAULT_SWEEP_INTERVAL = Duration.seconds(10)

/**
 * Builds a memory store. It starts no fiber and no timer (expired state is swept by its own
 * operations), so nothing is added to the scope today; the `Scope` requirement keeps the
 * constructor's shape that of the other stores.
 *
 * Dies on invalid options (`maxKeys` or `maxBytes` not a positive integer, `sweepInterval` not
 * positive).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: MemoryStoreOptions): Effect.Effect<MemoryStoreService, never, Scope.Scope> =>
  Effect.suspend(() => {
    const maxKeys = options?.maxKeys ?? DEFAULT_MAX_KEYS
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
      return Effect.die(new Error(`MemoryStore: maxKeys must be a positive integer, received ${String(maxKeys)}`))
    }
    const maxBytes = options?.maxBytes ?? DEFAULT_MAX_BYTES
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      return Effect.die(new Error(`MemoryStore: maxBytes must be a positive integer, received ${String(maxBytes)}`))
    }
    const sweepInterval = Fx.decodeDuration(options?.sweepInterval ?? DEFAULT_SWEEP_INTERVAL)
    if (!Fx.durationGreater(sweepInterval, Duration.zero) || !Duration.isFinite(sweepInterval)) {
      return Effect.die(new Error(`MemoryStore: sweepInterval must be a positive finite duration`))
    }
    return Effect.succeed(serviceOf(maxKeys, maxBytes, Duration.toMillis(sweepInterval)))
  })

/**
 * The options read from configuration: `MAX_KEYS`, `MAX_BYTES`, `SWEEP_INTERVAL` (seconds or a
 * duration string), under `RATE_SYNC_MEMORY_` in the environment (the memory field table,
 * `core/config/fields.ts`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<MemoryStoreOptions> = fieldsConfig("memory", memoryFields)

const layers = storeLayers(make, config, make)

/**
 * The memory store as the `RateLimitStore` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: (options?: MemoryStoreOptions) => Layer.Layer<RateLimitStore.RateLimitStore> = layers.layer

/**
 * The memory store with its options read from `Config`, for example
 * `MemoryStore.layerConfig({ maxKeys: Config.integer("MAX_KEYS").pipe(Config.withDefault(100_000)) })`
 * (on Effect 4, `Config.Int("MAX_KEYS")`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: (
  config: Fx.ConfigWrap<MemoryStoreOptions>
) => Layer.Layer<RateLimitStore.RateLimitStore, Fx.EffectConfigError> = layers.layerConfig

/**
 * The memory store configured from the environment (`RATE_SYNC_MEMORY_MAX_KEYS`, ...; see
 * {@link config}): `Effect.provide(MemoryStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const MemoryStoreLive: Layer.Layer<RateLimitStore.RateLimitStore, Fx.EffectConfigError> = layers.live

/**
 * Builds the store a `MemoryStoreDefinition` (TOML `engine = "memory"`, `configureStore`)
 * describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDefinition = (definition: MemoryStoreDefinition): Effect.Effect<MemoryStoreService, never, Scope.Scope> => {
  const { engine: _, ...options } = definition
  return make(options)
}

/**
 * Slot waiters of one store, per limiter and key (the kit's `Waiters`): a release wakes the
 * waiters of its key, a reset those of its key or of every key of its limiter.
 */
class LimiterWaiters {
  private readonly byLimiter = new Map<string, Waiters>()

  readonly wake = (limiter: string, key: string | undefined): void => {
    const waiters = this.byLimiter.get(limiter)
    if (waiters === undefined) return
    if (key === undefined) waiters.wakeEvery()
    else waiters.wakeAll(key)
    if (waiters.idle) this.byLimiter.delete(limiter)
  }

  await(limiter: string, key: string, maxWaitMs: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      let waiters = this.byLimiter.get(limiter)
      if (waiters === undefined) {
        waiters = new Waiters()
        this.byLimiter.set(limiter, waiters)
      }
      const own = waiters
      return Effect.ensuring(
        own.wait(key, maxWaitMs),
        Effect.sync(() => {
          if (own.idle && this.byLimiter.get(limiter) === own) this.byLimiter.delete(limiter)
        })
      )
    })
  }
}

/** The table as the SPI: each operation one clock read and one synchronous step. */
const serviceOf = (maxKeys: number, maxBytes: number, sweepIntervalMs: number): MemoryStoreService => {
  const waiters = new LimiterWaiters()
  const table = new Table.MemoryTable(maxKeys, maxBytes, sweepIntervalMs, waiters.wake)
  // `clockWith` runs its callback when the effect runs (not when it is built), so each operation
  // is one clock read and one synchronous step: no Effect.sync node on the hot path.
  const store = RateLimitStore.make({
    engine: "memory",
    tokenBucket: (r) => Effect.clockWith((c) => Effect.succeed(table.tokenBucket(r, Fx.nowMillisUnsafe(c)))),
    slidingWindow: (r) => Effect.clockWith((c) => Effect.succeed(table.slidingWindow(r, Fx.nowMillisUnsafe(c)))),
    fixedWindow: (r) => Effect.clockWith((c) => Effect.succeed(table.fixedWindow(r, Fx.nowMillisUnsafe(c)))),
    acquireSlot: (r) => Effect.clockWith((c) => Effect.succeed(table.acquireSlot(r, Fx.nowMillisUnsafe(c)))),
    renewSlot: (r) => Effect.clockWith((c) => Effect.succeed(table.renewSlot(r, Fx.nowMillisUnsafe(c)))),
    releaseSlot: (r) => Effect.clockWith((c) => Effect.succeed(table.releaseSlot(r, Fx.nowMillisUnsafe(c)))),
    peek: (r) => Effect.clockWith((c) => Effect.succeed(table.peek(r, Fx.nowMillisUnsafe(c)))),
    takeAll: (takes) => Effect.clockWith((c) => Effect.succeed(table.takeAll(takes, Fx.nowMillisUnsafe(c)))),
    adjust: (r) => Effect.clockWith((c) => Effect.succeed(table.adjust(r, Fx.nowMillisUnsafe(c)))),
    reset: (limiter, key) => Effect.sync(() => table.reset(limiter, key)),
    initialize: Effect.void,
    awaitSlot: (limiter, key, maxWaitMs) => waiters.await(limiter, key, maxWaitMs),
    unsafeTake: {
      tokenBucket: (r, now) => table.tokenBucket(r, now),
      slidingWindow: (r, now) => table.slidingWindow(r, now),
      fixedWindow: (r, now) => table.fixedWindow(r, now),
      takeAll: (takes, now) => table.takeAll(takes, now),
      adjust: (r, now) => table.adjust(r, now)
    }
  })
  return { ...store, size: Effect.sync(() => table.size), bytes: Effect.sync(() => table.bytes) }
}
