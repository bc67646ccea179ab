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
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Algorithm from "./core/algorithm.js"
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
  /** Bytes counted against `maxBytes` right now (see `MemoryStoreOptions.maxBytes`). */
  readonly bytes: Effect.Effect<number>
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

// The state of one limiter: its keys (in insertion order, oldest first) and the bookkeeping of the
// bound (see the module documentation).
class LimiterState {
  readonly keys = new Map<string, KeyState>()
  // Bytes counted for its keys (its own overhead is `overhead`).
  bytes = 0
  // Throttled states of this limiter were evicted to make room for another limiter: until this
  // instant every key of it that is not stored is refused (it may be one of them).
  shadowUntil = -Infinity
  // While `now < fullUntil` none of its states can be dropped or evicted (its last attempt to make
  // room among its own states found none): its new keys are refused without a scan.
  fullUntil = -Infinity
  constructor(readonly overhead: number) {}
}

/**
 * Bytes counted for one `(limiter, key)` state besides its key: the state record, the map entry.
 *
 * @since 0.1.0
 * @category constants
 */
export const ENTRY_OVERHEAD_BYTES = 192
const LIMITER_OVERHEAD_BYTES = 256
// Strings are counted at 2 bytes per UTF-16 code unit (V8's two-byte representation, the worst case).
const entryBytes = (key: string): number => ENTRY_OVERHEAD_BYTES + 2 * key.length
const limiterBytes = (limiter: string): number => LIMITER_OVERHEAD_BYTES + 2 * limiter.length

interface Waiter {
  readonly deferred: Deferred.Deferred<void>
  count: number
}

const DEFAULT_MAX_KEYS = 100_000
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024
const DEFAULT_SWEEP_INTERVAL = Duration.seconds(10)
// Most states one operation examines while a sweep is in progress.
const SWEEP_BATCH = 64

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
      return Effect.dieMessage(`MemoryStore: maxKeys must be a positive integer, received ${String(maxKeys)}`)
    }
    const maxBytes = options?.maxBytes ?? DEFAULT_MAX_BYTES
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      return Effect.dieMessage(`MemoryStore: maxBytes must be a positive integer, received ${String(maxBytes)}`)
    }
    const sweepInterval = Duration.decode(options?.sweepInterval ?? DEFAULT_SWEEP_INTERVAL)
    if (!Duration.greaterThan(sweepInterval, Duration.zero) || !Duration.isFinite(sweepInterval)) {
      return Effect.dieMessage(`MemoryStore: sweepInterval must be a positive finite duration`)
    }
    return Effect.succeed(new MemoryStoreImpl(maxKeys, maxBytes, Duration.toMillis(sweepInterval)).service())
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
  private readonly limiters = new Map<string, LimiterState>()
  private readonly waiters = new Map<string, Map<string, Waiter>>()
  private size = 0
  private bytes = 0
  // The latest instant any operation has read: fixed windows are chosen by it, so a clock that
  // steps back never reopens a window (see the module documentation).
  private latest = -Infinity
  // While `now < blockedUntil`, the last attempt to make room for a limiter under its share found
  // nothing to drop or evict: new keys of such limiters are refused without scanning. Reset
  // whenever a state is dropped or a lease released.
  private blockedUntil = -Infinity
  private readonly evictBatch: number
  // The incremental sweep. A sweep starts at the first operation with `now >= nextSweepAt`; its
  // cursor is an iterator over `limiters` and one over the current limiter's keys (Map iterators
  // stay valid across deletions and see later insertions). Every operation moves it by at most
  // SWEEP_BATCH steps; when it has visited every state the next sweep is due `sweepIntervalMs`
  // later.
  private nextSweepAt = -Infinity
  private sweepLimiters: Iterator<[string, LimiterState]> | undefined = undefined
  private sweepLimiter = ""
  private sweepInner: LimiterState | undefined = undefined
  private sweepKeys: Iterator<[string, KeyState]> | undefined = undefined

  constructor(
    private readonly maxKeys: number,
    private readonly maxBytes: number,
    private readonly sweepIntervalMs: number
  ) {
    this.evictBatch = Math.max(1, Math.ceil(maxKeys / 100))
  }

  // ---- bookkeeping ----------------------------------------------------------------------------

  private lookup(limiter: string, key: string): KeyState | undefined {
    const inner = this.limiters.get(limiter)
    return inner === undefined ? undefined : inner.keys.get(key)
  }

  /** Removes a key's state from `rec` (which must be the stored record of `limiter`). */
  private remove(limiter: string, rec: LimiterState, key: string, now: number): boolean {
    if (!rec.keys.delete(key)) return false
    const bytes = entryBytes(key)
    rec.bytes -= bytes
    this.bytes -= bytes
    this.size--
    rec.fullUntil = -Infinity
    this.blockedUntil = -Infinity
    this.removeIfEmpty(limiter, rec, now)
    return true
  }

  /** Drops a limiter's record once it holds no key and no live shadow. */
  private removeIfEmpty(limiter: string, rec: LimiterState, now: number): void {
    if (rec.keys.size === 0 && rec.shadowUntil <= now && this.limiters.get(limiter) === rec) {
      this.limiters.delete(limiter)
      this.bytes -= rec.overhead
    }
  }

  private drop(limiter: string, key: string, now: number): void {
    const rec = this.limiters.get(limiter)
    if (rec !== undefined) this.remove(limiter, rec, key, now)
  }

  /**
   * Stores `state` for a new key when there is (or can be made) room. Answers `0` when stored,
   * else the `retryAfterMs` of the refusal (at least 1 ms, `Infinity` when it can never fit).
   */
  private insert(limiter: string, key: string, state: KeyState, now: number): number {
    const bytes = entryBytes(key)
    let rec = this.limiters.get(limiter)
    if (rec !== undefined && now < rec.shadowUntil) return Math.max(1, rec.shadowUntil - now)
    // A record with no key may be dropped by the sweep below: count its overhead as needed too.
    const need = rec === undefined || rec.keys.size === 0 ? bytes + limiterBytes(limiter) : bytes
    if (need > this.maxBytes) return Infinity
    if (this.size >= this.maxKeys || this.bytes + need > this.maxBytes) {
      const refused = this.makeRoom(limiter, rec, bytes, need, now)
      if (refused > 0) return refused
      rec = this.limiters.get(limiter)
    }
    if (rec === undefined) {
      rec = new LimiterState(limiterBytes(limiter))
      this.limiters.set(limiter, rec)
      this.bytes += rec.overhead
    }
    rec.keys.set(key, state)
    rec.bytes += bytes
    rec.fullUntil = -Infinity
    this.bytes += bytes
    this.size++
    return 0
  }

  private fits(need: number): boolean {
    return this.size < this.maxKeys && this.bytes + need <= this.maxBytes
  }

  /**
   * The bound of the module documentation. `rec` is the record of `limiter` (if any), `bytes` the
   * new key's own bytes, `need` the bytes the insertion adds. Answers `0` when there is room now,
   * else the `retryAfterMs` of the refusal.
   */
  private makeRoom(limiter: string, rec: LimiterState | undefined, bytes: number, need: number, now: number): number {
    // Fair share: with `n` limiters holding state (this one included), `maxKeys / n` keys and
    // `maxBytes / n` bytes each.
    const n = this.limiters.size + (rec === undefined ? 1 : 0)
    const overShare = rec !== undefined &&
      (rec.keys.size + 1 > this.maxKeys / n || rec.bytes + rec.overhead + bytes > this.maxBytes / n)
    if (overShare) {
      // Room only among its own states, and never a throttled one.
      if (now < rec.fullUntil) return Math.max(1, rec.fullUntil - now)
      let freed = this.sweep(now)
      let earliest = Infinity
      if (this.limiters.get(limiter) === rec) {
        for (const [key, state] of rec.keys) {
          if (freed >= this.evictBatch && this.fits(need)) break
          const at = freeAt(state, now)
          if (at <= now) {
            this.remove(limiter, rec, key, now)
            freed++
          } else if (at < earliest) {
            earliest = at
          }
        }
      }
      if (this.fits(need)) return 0
      rec.fullUntil = earliest
      return Math.max(1, earliest - now)
    }
    // Under its share: room is taken from the limiters over theirs, untouched states first
    // (safe), then throttled ones, which leave a shadow behind (never an admission).
    if (now < this.blockedUntil) return Math.max(1, this.blockedUntil - now)
    const target = { freed: this.sweep(now), earliest: Infinity }
    for (const throttled of [false, true]) {
      while (!this.fits(need) || target.freed < this.evictBatch) {
        const victim = this.mostOverShare(limiter, n)
        if (victim === undefined || !this.evictFrom(victim[0], victim[1], n, need, throttled, now, target)) break
      }
      if (this.fits(need)) return 0
    }
    // Nothing evictable: every candidate holds a live lease (or no limiter is over its share,
    // which only many limiters with near-empty records can cause: then no mark, a 1 s hint).
    if (target.earliest === Infinity) return 1000
    this.blockedUntil = target.earliest
    return Math.max(1, target.earliest - now)
  }

  private isOverShare(rec: LimiterState, n: number): boolean {
    return rec.keys.size > this.maxKeys / n || rec.bytes + rec.overhead > this.maxBytes / n
  }

  /** The limiter (other than `limiter`) furthest over its fair share, if any is over. */
  private mostOverShare(limiter: string, n: number): [string, LimiterState] | undefined {
    let best: [string, LimiterState] | undefined = undefined
    let bestRatio = 0
    for (const entry of this.limiters) {
      const [id, rec] = entry
      if (id === limiter || !this.isOverShare(rec, n)) continue
      const ratio = Math.max(rec.keys.size / this.maxKeys, (rec.bytes + rec.overhead) / this.maxBytes)
      if (ratio > bestRatio) {
        bestRatio = ratio
        best = entry
      }
    }
    return best
  }

  /**
   * Evicts states of `rec`, oldest first, while it is over its share and room is still wanted
   * (a batch). A state holding a live lease is never evicted; a throttled one only when
   * `throttled`, and then `rec`'s shadow covers it until it would have stopped being throttled.
   * Answers whether anything was evicted.
   */
  private evictFrom(
    limiter: string,
    rec: LimiterState,
    n: number,
    need: number,
    throttled: boolean,
    now: number,
    target: { freed: number; earliest: number }
  ): boolean {
    let evicted = false
    for (const [key, state] of rec.keys) {
      if (this.fits(need) && target.freed >= this.evictBatch) break
      if (!this.isOverShare(rec, n)) break
      if (state.leases !== undefined && Algorithm.leasesExpireAt(state.leases) > now) {
        const at = Algorithm.leasesExpireAt(state.leases)
        if (at < target.earliest) target.earliest = at
        continue
      }
      const at = freeAt(state, now)
      if (at > now) {
        if (!throttled) {
          if (at < target.earliest) target.earliest = at
          continue
        }
        if (at > rec.shadowUntil) rec.shadowUntil = at
      }
      this.remove(limiter, rec, key, now)
      target.freed++
      evicted = true
    }
    return evicted
  }

  /** Advances the incremental sweep when one is due: at most SWEEP_BATCH steps. */
  private tick(now: number): void {
    if (now > this.latest) this.latest = now
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
        this.sweepKeys = next.value[1].keys.entries()
        continue
      }
      // A record that `reset` or an eviction removed is no longer the store's: leave it alone.
      const next = this.limiters.get(this.sweepLimiter) === inner ? keys.next() : undefined
      if (next === undefined || next.done === true) {
        if (next !== undefined) this.removeIfEmpty(this.sweepLimiter, inner, now)
        this.sweepInner = undefined
        this.sweepKeys = undefined
        continue
      }
      const [key, state] = next.value
      if (expiresAt(state) <= now) this.remove(this.sweepLimiter, inner, key, now)
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
    for (const [limiter, rec] of this.limiters) {
      for (const [key, state] of rec.keys) {
        if (expiresAt(state) <= now && this.remove(limiter, rec, key, now)) dropped++
      }
      this.removeIfEmpty(limiter, rec, now)
    }
    this.endSweep(now)
    return dropped
  }

  private fullRefusal(limit: number, retryAfterMs: number): StoreDecision {
    return { allowed: false, limit, remaining: 0, resetAfterMs: 0, retryAfterMs, delayMs: 0 }
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
    if (!decision.allowed) return decision
    const refused = this.insert(r.limiter, r.key, fresh, now)
    return refused === 0 ? decision : this.fullRefusal(r.burst, refused)
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
    if (!decision.allowed) return decision
    const refused = this.insert(r.limiter, r.key, state, now)
    return refused === 0 ? decision : this.fullRefusal(r.limit, refused)
  }

  fixedWindow(r: WindowRequest, now: number): StoreDecision {
    this.tick(now)
    // The window of the latest instant the store has read (`latest >= now`): never an earlier one.
    const start = Math.floor(this.latest / r.windowMs) * r.windowMs
    const state = this.lookup(r.limiter, r.key)
    if (state !== undefined) return Algorithm.fixedTakeIn(state, start, now, r.limit, r.windowMs, r.cost)
    const fresh = new KeyState()
    const decision = Algorithm.fixedTakeIn(fresh, start, now, r.limit, r.windowMs, r.cost)
    if (!decision.allowed) return decision
    const refused = this.insert(r.limiter, r.key, fresh, now)
    return refused === 0 ? decision : this.fullRefusal(r.limit, refused)
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
    if (!decision.acquired) return decision
    const refused = this.insert(r.limiter, r.key, state, now)
    return refused === 0 ? decision : { acquired: false, limit: r.limit, active: 0, retryAfterMs: refused }
  }

  renewSlot(r: SlotRequest, now: number): boolean {
    this.tick(now)
    const state = this.lookup(r.limiter, r.key)
    if (state === undefined || state.leases === undefined) return false
    const renewed = Algorithm.leaseRenew(state.leases, now, r.holder, r.leaseMs)
    if (!renewed && expiresAt(state) <= now) this.drop(r.limiter, r.key, now)
    return renewed
  }

  releaseSlot(r: SlotRequest, now: number): boolean {
    this.tick(now)
    const state = this.lookup(r.limiter, r.key)
    if (state === undefined || state.leases === undefined) return false
    const released = Algorithm.leaseRelease(state.leases, now, r.holder)
    if (released) {
      this.blockedUntil = -Infinity
      const rec = this.limiters.get(r.limiter)
      if (rec !== undefined) rec.fullUntil = -Infinity
      this.notify(r.limiter, r.key)
    }
    if (expiresAt(state) <= now) this.drop(r.limiter, r.key, now)
    return released
  }

  peek(r: PeekRequest, now: number): StoreDecision {
    this.tick(now)
    const rec = this.limiters.get(r.limiter)
    const state = rec === undefined ? undefined : rec.keys.get(r.key)
    if (state !== undefined && expiresAt(state) <= now) {
      // Lazily drop state that can no longer matter; the answer is the empty state's.
      this.drop(r.limiter, r.key, now)
    } else if (state === undefined && rec !== undefined && now < rec.shadowUntil) {
      // A take would be refused by the limiter's shadow (see the module documentation).
      const limit = r.algorithm === "token_bucket" ? r.burst : r.limit
      return this.fullRefusal(limit, Math.max(1, rec.shadowUntil - now))
    }
    switch (r.algorithm) {
      case "token_bucket":
        return Algorithm.gcraPeek(state === undefined ? -Infinity : state.tat, now, r.ratePerSecond, r.burst)
      case "sliding_window":
        return Algorithm.slidingPeek(state?.sliding, now, r.limit, r.windowMs)
      case "fixed_window":
        return Algorithm.fixedPeekIn(state, Math.floor(this.latest / r.windowMs) * r.windowMs, now, r.limit, r.windowMs)
      case "concurrency":
        return Algorithm.leasePeek(state?.leases, now, r.limit)
    }
  }

  reset(limiter: string, key: string | undefined): void {
    if (key === undefined) {
      const rec = this.limiters.get(limiter)
      if (rec !== undefined) {
        this.size -= rec.keys.size
        this.bytes -= rec.bytes + rec.overhead
        this.limiters.delete(limiter)
      }
      this.blockedUntil = -Infinity
    } else {
      // The limiter's shadow, if any, stays (the key may be one it covers).
      this.drop(limiter, key, -Infinity)
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
    return { ...store, size: Effect.sync(() => this.size), bytes: Effect.sync(() => this.bytes) }
  }
}
