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
 * - **Bound.** At most `maxKeys` `(limiter, key)` states are kept. When a request would store a
 *   new key while the store is full, room is made in this order:
 *   1. every expired state is dropped;
 *   2. if that freed fewer than `max(1, ⌈maxKeys / 100⌉)` places, states that are **not
 *      currently throttled** are evicted, oldest first, up to that many: a key whose next
 *      request of cost 1 would be admitted now and that holds no live lease (a full or partly
 *      used bucket, a window with room). Forgetting such a key can only hand it back the room it
 *      already had, up to its full capacity.
 *   3. A key that is **currently throttled** (it would refuse a request now, or it holds a live
 *      concurrency lease) is **never** evicted. If nothing can be evicted, the request for the
 *      new key is **refused**: `allowed: false` (`acquired: false` for slots) with
 *      `retryAfterMs` set to when the first stored key stops being throttled (at least 1 ms).
 *   So an attacker who floods new keys can at worst evict idle keys or be refused; it can never
 *   lift the block of a throttled key, its own included. Refusals, peeks, renewals and releases
 *   never store a new key.
 *
 * See `docs/engines/memory.md`.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Algorithm from "./internal/algorithm.js"
import * as RateLimitStore from "./RateLimitStore.js"
import type {
  PeekRequest,
  RateLimitStoreService,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  TokenBucketRequest,
  WindowRequest
} from "./RateLimitStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryStoreOptions {
  /**
   * Most `(limiter, key)` states kept at once (a positive integer). Default `100_000`.
   * See the module documentation for what happens when it is reached.
   */
  readonly maxKeys?: number | undefined
  /**
   * How often a sweep of expired state starts (positive). Default 10 seconds. The sweep is done
   * by the store's operations, a bounded batch per operation; see the module documentation.
   */
  readonly sweepInterval?: Duration.DurationInput | undefined
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
}

// The state of one (limiter, key), for every algorithm at once. Allocated once per key and
// mutated in place by the algorithm functions.
class KeyState implements Algorithm.GcraState, Algorithm.FixedState {
  tat = -Infinity
  tbInterval = 0
  tbBurst = 0
  fwStart = 0
  fwCount = 0
  fwLimit = 0
  fwWindow = 0
  sliding: Algorithm.SlidingState | undefined = undefined
  leases: Algorithm.Leases | undefined = undefined
}

// When the state stops mattering: past this instant it is expired and may be dropped.
const expiresAt = (state: KeyState): number => {
  let at = state.tat
  if (state.sliding !== undefined) at = Math.max(at, Algorithm.slidingExpiresAt(state.sliding))
  at = Math.max(at, Algorithm.fixedExpiresAt(state))
  if (state.leases !== undefined) at = Math.max(at, Algorithm.leasesExpireAt(state.leases))
  return at
}

// The instant from which the key is no longer throttled (`<= now`: evictable).
const freeAt = (state: KeyState, now: number): number => {
  let at = Algorithm.gcraFreeAt(state)
  if (state.sliding !== undefined) at = Math.max(at, Algorithm.slidingFreeAt(state.sliding, now))
  at = Math.max(at, Algorithm.fixedFreeAt(state, now))
  if (state.leases !== undefined) at = Math.max(at, Algorithm.leasesExpireAt(state.leases))
  return at
}

interface Waiter {
  readonly deferred: Deferred.Deferred<void>
  count: number
}

const DEFAULT_MAX_KEYS = 100_000
const DEFAULT_SWEEP_INTERVAL = Duration.seconds(10)
// Most states one operation examines while a sweep is in progress.
const SWEEP_BATCH = 64

/**
 * Builds a memory store. It starts no fiber and no timer (expired state is swept by its own
 * operations), so nothing is added to the scope today; the `Scope` requirement keeps the
 * constructor's shape that of the other stores.
 *
 * Dies on invalid options (`maxKeys` not a positive integer, `sweepInterval` not positive).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: MemoryStoreOptions): Effect.Effect<MemoryStoreService, never, Scope.Scope> =>
  Effect.suspend(() => {
    const maxKeys = options?.maxKeys ?? DEFAULT_MAX_KEYS
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) {
      return Effect.dieMessage(`MemoryStore: maxKeys must be a positive integer, received ${String(maxKeys)}`)
    }
    const sweepInterval = Duration.decode(options?.sweepInterval ?? DEFAULT_SWEEP_INTERVAL)
    if (!Duration.greaterThan(sweepInterval, Duration.zero) || !Duration.isFinite(sweepInterval)) {
      return Effect.dieMessage(`MemoryStore: sweepInterval must be a positive finite duration`)
    }
    return Effect.succeed(new MemoryStoreImpl(maxKeys, Duration.toMillis(sweepInterval)).service())
  })

/**
 * The memory store as the `RateLimitStore` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: MemoryStoreOptions): Layer.Layer<RateLimitStore.RateLimitStore> =>
  Layer.scoped(RateLimitStore.RateLimitStore, make(options))

/**
 * The memory store with its options read from `Config`, for example
 * `MemoryStore.layerConfig({ maxKeys: Config.integer("MAX_KEYS").pipe(Config.withDefault(100_000)) })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<MemoryStoreOptions>
): Layer.Layer<RateLimitStore.RateLimitStore, ConfigError.ConfigError> =>
  Layer.scoped(RateLimitStore.RateLimitStore, Effect.flatMap(Config.unwrap(config), make))

class MemoryStoreImpl {
  private readonly limiters = new Map<string, Map<string, KeyState>>()
  private readonly waiters = new Map<string, Map<string, Waiter>>()
  private size = 0
  // While `now < blockedUntil` the store is full of throttled keys: new keys are refused without
  // scanning. Reset whenever a state is dropped or a lease released.
  private blockedUntil = -Infinity
  private readonly evictBatch: number
  // The incremental sweep. A sweep starts at the first operation with `now >= nextSweepAt`; its
  // cursor is an iterator over `limiters` and one over the current limiter's keys (Map iterators
  // stay valid across deletions and see later insertions). Every operation moves it by at most
  // SWEEP_BATCH steps; when it has visited every state the next sweep is due `sweepIntervalMs`
  // later.
  private nextSweepAt = -Infinity
  private sweepLimiters: Iterator<[string, Map<string, KeyState>]> | undefined = undefined
  private sweepLimiter = ""
  private sweepInner: Map<string, KeyState> | undefined = undefined
  private sweepKeys: Iterator<[string, KeyState]> | undefined = undefined

  constructor(private readonly maxKeys: number, private readonly sweepIntervalMs: number) {
    this.evictBatch = Math.max(1, Math.ceil(maxKeys / 100))
  }

  // ---- bookkeeping ----------------------------------------------------------------------------

  private lookup(limiter: string, key: string): KeyState | undefined {
    const inner = this.limiters.get(limiter)
    return inner === undefined ? undefined : inner.get(key)
  }

  private drop(limiter: string, key: string): void {
    const inner = this.limiters.get(limiter)
    if (inner !== undefined && inner.delete(key)) {
      this.size--
      this.blockedUntil = -Infinity
      if (inner.size === 0) this.limiters.delete(limiter)
    }
  }

  /** Stores `state` for a new key when there is (or can be made) room; `false` when full. */
  private insert(limiter: string, key: string, state: KeyState, now: number): boolean {
    if (this.size >= this.maxKeys && !this.makeRoom(now)) return false
    let inner = this.limiters.get(limiter)
    if (inner === undefined) {
      inner = new Map()
      this.limiters.set(limiter, inner)
    }
    inner.set(key, state)
    this.size++
    return true
  }

  /** Advances the incremental sweep when one is due: at most SWEEP_BATCH steps. */
  private tick(now: number): void {
    if (now >= this.nextSweepAt) this.sweepStep(now)
  }

  private sweepStep(now: number): void {
    for (let budget = SWEEP_BATCH; budget > 0; budget--) {
      const inner = this.sweepInner
      const keys = this.sweepKeys
      if (inner === undefined || keys === undefined) {
        if (this.sweepLimiters === undefined) this.sweepLimiters = this.limiters.entries()
        const next = this.sweepLimiters.next()
        if (next.done === true) {
          this.endSweep(now)
          return
        }
        this.sweepLimiter = next.value[0]
        this.sweepInner = next.value[1]
        this.sweepKeys = next.value[1].entries()
        continue
      }
      // A map that `reset` or an eviction removed is no longer the store's: leave it alone.
      const next = this.limiters.get(this.sweepLimiter) === inner ? keys.next() : undefined
      if (next === undefined || next.done === true) {
        this.sweepInner = undefined
        this.sweepKeys = undefined
        continue
      }
      const [key, state] = next.value
      if (expiresAt(state) <= now) this.drop(this.sweepLimiter, key)
    }
  }

  private endSweep(now: number): void {
    this.sweepLimiters = undefined
    this.sweepInner = undefined
    this.sweepKeys = undefined
    this.nextSweepAt = now + this.sweepIntervalMs
  }

  /** Drops every expired state (a complete sweep); answers how many were dropped. */
  private sweep(now: number): number {
    let dropped = 0
    for (const [limiter, inner] of this.limiters) {
      for (const [key, state] of inner) {
        if (expiresAt(state) <= now) {
          inner.delete(key)
          dropped++
        }
      }
      if (inner.size === 0) this.limiters.delete(limiter)
    }
    if (dropped > 0) {
      this.size -= dropped
      this.blockedUntil = -Infinity
    }
    this.endSweep(now)
    return dropped
  }

  /** The eviction policy of the module documentation. */
  private makeRoom(now: number): boolean {
    if (now < this.blockedUntil) return false
    let freed = this.sweep(now)
    let earliestFree = Infinity
    if (freed < this.evictBatch) {
      for (const [limiter, inner] of this.limiters) {
        for (const [key, state] of inner) {
          if (freed >= this.evictBatch) break
          const at = freeAt(state, now)
          if (at <= now) {
            inner.delete(key)
            freed++
            this.size--
          } else if (at < earliestFree) {
            earliestFree = at
          }
        }
        if (inner.size === 0) this.limiters.delete(limiter)
        if (freed >= this.evictBatch) break
      }
    }
    if (freed > 0) {
      this.blockedUntil = -Infinity
      return true
    }
    this.blockedUntil = earliestFree
    return false
  }

  private fullRefusal(limit: number, now: number): StoreDecision {
    return {
      allowed: false,
      limit,
      remaining: 0,
      resetAfterMs: 0,
      retryAfterMs: Math.max(1, this.blockedUntil - now),
      delayMs: 0
    }
  }

  private notify(limiter: string, key: string | undefined): void {
    const inner = this.waiters.get(limiter)
    if (inner === undefined) return
    if (key === undefined) {
      this.waiters.delete(limiter)
      for (const waiter of inner.values()) Deferred.unsafeDone(waiter.deferred, Exit.void)
      return
    }
    const waiter = inner.get(key)
    if (waiter === undefined) return
    inner.delete(key)
    if (inner.size === 0) this.waiters.delete(limiter)
    Deferred.unsafeDone(waiter.deferred, Exit.void)
  }

  // ---- operations (each runs inside one Effect.sync) ----------------------------------------

  tokenBucket(r: TokenBucketRequest, now: number): StoreDecision {
    this.tick(now)
    const state = this.lookup(r.limiter, r.key)
    if (state !== undefined) return Algorithm.gcraTake(state, now, r.ratePerSecond, r.burst, r.cost, r.maxWaitMs)
    const fresh = new KeyState()
    const decision = Algorithm.gcraTake(fresh, now, r.ratePerSecond, r.burst, r.cost, r.maxWaitMs)
    if (!decision.allowed || this.insert(r.limiter, r.key, fresh, now)) return decision
    return this.fullRefusal(r.burst, now)
  }

  slidingWindow(r: WindowRequest, now: number): StoreDecision {
    this.tick(now)
    let state = this.lookup(r.limiter, r.key)
    if (state !== undefined) {
      if (state.sliding === undefined) state.sliding = Algorithm.makeSlidingState()
      return Algorithm.slidingTake(state.sliding, now, r.limit, r.windowMs, r.cost)
    }
    state = new KeyState()
    const sliding = Algorithm.makeSlidingState()
    state.sliding = sliding
    const decision = Algorithm.slidingTake(sliding, now, r.limit, r.windowMs, r.cost)
    if (!decision.allowed || this.insert(r.limiter, r.key, state, now)) return decision
    return this.fullRefusal(r.limit, now)
  }

  fixedWindow(r: WindowRequest, now: number): StoreDecision {
    this.tick(now)
    const state = this.lookup(r.limiter, r.key)
    if (state !== undefined) return Algorithm.fixedTake(state, now, r.limit, r.windowMs, r.cost)
    const fresh = new KeyState()
    const decision = Algorithm.fixedTake(fresh, now, r.limit, r.windowMs, r.cost)
    if (!decision.allowed || this.insert(r.limiter, r.key, fresh, now)) return decision
    return this.fullRefusal(r.limit, now)
  }

  acquireSlot(r: SlotRequest, now: number): SlotDecision {
    this.tick(now)
    let state = this.lookup(r.limiter, r.key)
    if (state !== undefined) {
      if (state.leases === undefined) state.leases = new Map()
      return Algorithm.leaseAcquire(state.leases, now, r.holder, r.limit, r.leaseMs)
    }
    state = new KeyState()
    const leases: Algorithm.Leases = new Map()
    state.leases = leases
    const decision = Algorithm.leaseAcquire(leases, now, r.holder, r.limit, r.leaseMs)
    if (!decision.acquired || this.insert(r.limiter, r.key, state, now)) return decision
    return { acquired: false, limit: r.limit, active: 0, retryAfterMs: Math.max(1, this.blockedUntil - now) }
  }

  renewSlot(r: SlotRequest, now: number): boolean {
    this.tick(now)
    const state = this.lookup(r.limiter, r.key)
    if (state === undefined || state.leases === undefined) return false
    const renewed = Algorithm.leaseRenew(state.leases, now, r.holder, r.leaseMs)
    if (!renewed && expiresAt(state) <= now) this.drop(r.limiter, r.key)
    return renewed
  }

  releaseSlot(r: SlotRequest, now: number): boolean {
    this.tick(now)
    const state = this.lookup(r.limiter, r.key)
    if (state === undefined || state.leases === undefined) return false
    const released = Algorithm.leaseRelease(state.leases, now, r.holder)
    if (released) {
      this.blockedUntil = -Infinity
      this.notify(r.limiter, r.key)
    }
    if (expiresAt(state) <= now) this.drop(r.limiter, r.key)
    return released
  }

  peek(r: PeekRequest, now: number): StoreDecision {
    this.tick(now)
    const state = this.lookup(r.limiter, r.key)
    if (state !== undefined && expiresAt(state) <= now) {
      // Lazily drop state that can no longer matter; the answer is the empty state's.
      this.drop(r.limiter, r.key)
    }
    switch (r.algorithm) {
      case "token_bucket":
        return Algorithm.gcraPeek(state === undefined ? -Infinity : state.tat, now, r.ratePerSecond, r.burst)
      case "sliding_window":
        return Algorithm.slidingPeek(state?.sliding, now, r.limit, r.windowMs)
      case "fixed_window":
        return Algorithm.fixedPeek(state, now, r.limit, r.windowMs)
      case "concurrency":
        return Algorithm.leasePeek(state?.leases, now, r.limit)
    }
  }

  reset(limiter: string, key: string | undefined): void {
    if (key === undefined) {
      const inner = this.limiters.get(limiter)
      if (inner !== undefined) {
        this.size -= inner.size
        this.limiters.delete(limiter)
      }
      this.blockedUntil = -Infinity
    } else {
      this.drop(limiter, key)
    }
    this.notify(limiter, key)
  }

  awaitSlot(limiter: string, key: string, maxWaitMs: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      let inner = this.waiters.get(limiter)
      if (inner === undefined) {
        inner = new Map()
        this.waiters.set(limiter, inner)
      }
      let waiter = inner.get(key)
      if (waiter === undefined) {
        waiter = { deferred: Deferred.unsafeMake<void>(FiberId.none), count: 0 }
        inner.set(key, waiter)
      }
      const current = waiter
      current.count++
      const wait = Deferred.await(current.deferred)
      const bounded = maxWaitMs === Infinity
        ? wait
        : Effect.asVoid(Effect.timeoutOption(wait, Duration.millis(Math.max(0, maxWaitMs))))
      return Effect.ensuring(
        bounded,
        Effect.sync(() => {
          current.count--
          if (current.count > 0) return
          const byKey = this.waiters.get(limiter)
          if (byKey !== undefined && byKey.get(key) === current) {
            byKey.delete(key)
            if (byKey.size === 0) this.waiters.delete(limiter)
          }
        })
      )
    })
  }

  service(): MemoryStoreService {
    // `clockWith` runs its callback when the effect runs (not when it is built), so each operation
    // is one clock read and one synchronous step: no Effect.sync node on the hot path.
    const store = RateLimitStore.make({
      engine: "memory",
      tokenBucket: (r) => Effect.clockWith((c) => Effect.succeed(this.tokenBucket(r, c.unsafeCurrentTimeMillis()))),
      slidingWindow: (r) =>
        Effect.clockWith((c) => Effect.succeed(this.slidingWindow(r, c.unsafeCurrentTimeMillis()))),
      fixedWindow: (r) => Effect.clockWith((c) => Effect.succeed(this.fixedWindow(r, c.unsafeCurrentTimeMillis()))),
      acquireSlot: (r) => Effect.clockWith((c) => Effect.succeed(this.acquireSlot(r, c.unsafeCurrentTimeMillis()))),
      renewSlot: (r) => Effect.clockWith((c) => Effect.succeed(this.renewSlot(r, c.unsafeCurrentTimeMillis()))),
      releaseSlot: (r) => Effect.clockWith((c) => Effect.succeed(this.releaseSlot(r, c.unsafeCurrentTimeMillis()))),
      peek: (r) => Effect.clockWith((c) => Effect.succeed(this.peek(r, c.unsafeCurrentTimeMillis()))),
      reset: (limiter, key) => Effect.sync(() => this.reset(limiter, key)),
      initialize: Effect.void,
      awaitSlot: (limiter, key, maxWaitMs) => this.awaitSlot(limiter, key, maxWaitMs),
      unsafeTake: {
        tokenBucket: (r, now) => this.tokenBucket(r, now),
        slidingWindow: (r, now) => this.slidingWindow(r, now),
        fixedWindow: (r, now) => this.fixedWindow(r, now)
      }
    })
    return { ...store, size: Effect.sync(() => this.size) }
  }
}
