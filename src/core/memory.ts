/**
 * The memory store's table: every `(limiter, key)` state in one process, the algorithms applied
 * to it at a given instant, the key and byte budget shared fairly between limiters, and the
 * incremental sweep of expired state. Plain TypeScript, no Effect import: the Effect-facing store
 * (`MemoryStore.ts`) reads the clock, wakes slot waiters and builds the service.
 *
 * @internal
 */
import * as Algorithm from "./algorithm.js"
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
} from "./spi.js"

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
 * @internal
 */
export const ENTRY_OVERHEAD_BYTES = 192
const LIMITER_OVERHEAD_BYTES = 256
// Strings are counted at 2 bytes per UTF-16 code unit (V8's two-byte representation, the worst case).
const entryBytes = (key: string): number => ENTRY_OVERHEAD_BYTES + 2 * key.length
const limiterBytes = (limiter: string): number => LIMITER_OVERHEAD_BYTES + 2 * limiter.length

// Most states one operation examines while a sweep is in progress.
const SWEEP_BATCH = 64

export class MemoryTable {
  private readonly limiters = new Map<string, LimiterState>()
  /** `(limiter, key)` states held, including expired ones not yet dropped. */
  size = 0
  /** Bytes counted against `maxBytes`. */
  bytes = 0
  // The latest instant any operation has read: fixed windows are chosen by it, so a clock that
  // steps back never reopens a window (see the module documentation).
  private latest = -Infinity
  // While `now < blockedUntil`, the last attempt to make room for a limiter under its share found
  // nothing to drop or evict: new keys of such limiters are refused without scanning. Reset
  // whenever a state is dropped or a lease released.
  private blockedUntil = -Infinity
  private readonly evictBatch: number
  // The id of the next sliding-window entry (its `ref`): unique in the store for its lifetime, so
  // a ref outlives neither a reset nor an expiry (a new entry never reuses an old one's id).
  private nextEntryId = 1
  // While a composite call stores the new keys it charges, the states it holds: never dropped or
  // evicted to make room (the call charges them right after).
  private pinned: ReadonlySet<KeyState> | undefined = undefined
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

  /**
   * `onFreed(limiter, key)` is told when a slot of `(limiter, key)` may have been freed (a release,
   * or a reset: `key` undefined for all of the limiter's keys), to wake its waiters.
   */
  constructor(
    private readonly maxKeys: number,
    private readonly maxBytes: number,
    private readonly sweepIntervalMs: number,
    private readonly onFreed: (limiter: string, key: string | undefined) => void
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
          if (this.isPinned(state)) continue
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
      if (this.isPinned(state)) continue
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
      if (expiresAt(state) <= now && !this.isPinned(state)) this.remove(this.sweepLimiter, inner, key, now)
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
        if (expiresAt(state) <= now && !this.isPinned(state) && this.remove(limiter, rec, key, now)) dropped++
      }
      this.removeIfEmpty(limiter, rec, now)
    }
    this.endSweep(now)
    return dropped
  }

  private isPinned(state: KeyState): boolean {
    return this.pinned !== undefined && this.pinned.has(state)
  }

  private fullRefusal(limit: number, retryAfterMs: number): StoreDecision {
    return { allowed: false, limit, remaining: 0, resetAfterMs: 0, retryAfterMs, delayMs: 0 }
  }

  // ---- operations: each one synchronous step at `now` ------------------------------------------

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
    const id = this.nextEntryId++
    if (state !== undefined) {
      if (state.sliding === undefined) state.sliding = Algorithm.makeSlidingState()
      return Algorithm.slidingTake(state.sliding, now, r.limit, r.windowMs, r.cost, id)
    }
    state = new KeyState()
    const sliding = Algorithm.makeSlidingState()
    state.sliding = sliding
    const decision = Algorithm.slidingTake(sliding, now, r.limit, r.windowMs, r.cost, id)
    if (!decision.allowed) return decision
    const refused = this.insert(r.limiter, r.key, state, now)
    return refused === 0 ? decision : this.fullRefusal(r.limit, refused)
  }

  fixedWindow(r: WindowRequest, now: number): StoreDecision {
    this.tick(now)
    const start = this.fixedStart(r.windowMs)
    const state = this.lookup(r.limiter, r.key)
    if (state !== undefined) return Algorithm.fixedTakeIn(state, start, now, r.limit, r.windowMs, r.cost, true)
    const fresh = new KeyState()
    const decision = Algorithm.fixedTakeIn(fresh, start, now, r.limit, r.windowMs, r.cost, true)
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
      this.onFreed(r.limiter, r.key)
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
        return Algorithm.gcraPeek(state === undefined ? -Infinity : state.tat, now, r.ratePerSecond, r.burst, r.cost ?? 1)
      case "sliding_window":
        return Algorithm.slidingPeek(state?.sliding, now, r.limit, r.windowMs, r.cost ?? 1)
      case "fixed_window":
        return Algorithm.fixedPeekIn(state, this.fixedStart(r.windowMs), now, r.limit, r.windowMs, r.cost ?? 1)
      case "concurrency":
        return Algorithm.leasePeek(state?.leases, now, r.limit)
    }
  }

  /**
   * Several rate takes as one unit (`Algorithm.compositeCheck`): every take judged on the stored
   * states (or fresh ones for new keys), nothing changed; when all are admitted, the new keys are
   * stored (the bound may refuse one: then the call is refused, with that take's refusal, and the
   * keys stored for it are dropped again), and every take is charged.
   */
  takeAll(takes: ReadonlyArray<RateTake>, now: number): CompositeDecision {
    this.tick(now)
    const targets: Array<Algorithm.CompositeTarget> = []
    // Per take: its (limiter, key) state, and whether it is new (index into `fresh`, else -1).
    const states: Array<KeyState> = []
    const freshOf: Array<number> = []
    const fresh: Array<{ readonly limiter: string; readonly key: string; readonly state: KeyState }> = []
    for (const t of takes) {
      let state = this.lookup(t.limiter, t.key)
      let index = -1
      if (state === undefined) {
        index = fresh.findIndex((f) => f.limiter === t.limiter && f.key === t.key)
        if (index < 0) {
          index = fresh.length
          fresh.push({ limiter: t.limiter, key: t.key, state: new KeyState() })
        }
        state = fresh[index]?.state ?? new KeyState()
      }
      states.push(state)
      freshOf.push(index)
      switch (t.algorithm) {
        case "token_bucket":
          targets.push({
            algorithm: "token_bucket",
            state,
            ratePerSecond: t.ratePerSecond,
            burst: t.burst,
            cost: t.cost,
            maxWaitMs: t.maxWaitMs
          })
          break
        case "sliding_window":
          if (state.sliding === undefined) state.sliding = Algorithm.makeSlidingState()
          targets.push({
            algorithm: "sliding_window",
            state: state.sliding,
            limit: t.limit,
            windowMs: t.windowMs,
            cost: t.cost,
            id: this.nextEntryId++
          })
          break
        case "fixed_window":
          targets.push({
            algorithm: "fixed_window",
            state,
            start: this.fixedStart(t.windowMs),
            limit: t.limit,
            windowMs: t.windowMs,
            cost: t.cost
          })
          break
      }
    }
    const check = Algorithm.compositeCheck(targets, now)
    if (!check.allowed) return Algorithm.compositeRefusal(check)
    if (fresh.length > 0) {
      const refused = this.insertAll(fresh, states, now)
      if (refused !== undefined) {
        const [index, retryAfterMs] = refused
        const refusal = Algorithm.compositeRefusal(check)
        return {
          ...refusal,
          decisions: refusal.decisions.map((d, i) => freshOf[i] === index ? this.fullRefusal(d.limit, retryAfterMs) : d)
        }
      }
    }
    return Algorithm.compositeApply(targets, now, check)
  }

  /**
   * Stores the new keys of a composite call, its other states pinned meanwhile. Answers
   * `undefined` when all are stored, else the index of the one refused and its `retryAfterMs`
   * (those stored before it are dropped again: they hold nothing yet).
   */
  private insertAll(
    fresh: ReadonlyArray<{ readonly limiter: string; readonly key: string; readonly state: KeyState }>,
    states: ReadonlyArray<KeyState>,
    now: number
  ): readonly [number, number] | undefined {
    this.pinned = new Set(states)
    try {
      for (let i = 0; i < fresh.length; i++) {
        const f = fresh[i]
        if (f === undefined) continue
        const refused = this.insert(f.limiter, f.key, f.state, now)
        if (refused === 0) continue
        for (let j = 0; j < i; j++) {
          const g = fresh[j]
          if (g !== undefined && this.lookup(g.limiter, g.key) === g.state) this.drop(g.limiter, g.key, now)
        }
        return [i, refused]
      }
      return undefined
    } finally {
      this.pinned = undefined
    }
  }

  /**
   * Charge more or give back on what a take charged (`Algorithm.gcraAdjust`, `fixedAdjustIn`,
   * `slidingAdjust`). A charge on a key with no state stores it (the bound may refuse: then
   * nothing is applied).
   */
  adjust(r: AdjustRequest, now: number): AdjustResult {
    this.tick(now)
    const t = r.take
    const state = this.lookup(t.limiter, t.key)
    switch (t.algorithm) {
      case "token_bucket": {
        if (state !== undefined) return Algorithm.gcraAdjust(state, now, t.ratePerSecond, t.burst, r.delta)
        const created = new KeyState()
        const result = Algorithm.gcraAdjust(created, now, t.ratePerSecond, t.burst, r.delta)
        return result.applied === 0 || this.insert(t.limiter, t.key, created, now) === 0
          ? result
          : Algorithm.gcraAdjust(new KeyState(), now, t.ratePerSecond, t.burst, 0)
      }
      case "fixed_window": {
        const start = this.fixedStart(t.windowMs)
        if (state !== undefined) return Algorithm.fixedAdjustIn(state, start, now, t.limit, t.windowMs, r.delta, r.ref)
        const created = new KeyState()
        const result = Algorithm.fixedAdjustIn(created, start, now, t.limit, t.windowMs, r.delta, r.ref)
        return result.applied === 0 || this.insert(t.limiter, t.key, created, now) === 0
          ? result
          : Algorithm.fixedAdjustIn(undefined, start, now, t.limit, t.windowMs, 0, undefined)
      }
      case "sliding_window":
        // Only an entry of the take can change, so a key with no state has nothing to adjust.
        return Algorithm.slidingAdjust(state?.sliding, now, t.limit, t.windowMs, r.delta, r.ref)
    }
  }

  // The window fixed-window operations count in: that of the latest instant the store has read
  // (`latest >= now`), never an earlier one.
  private fixedStart(windowMs: number): number {
    return Math.floor(this.latest / windowMs) * windowMs
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
    this.onFreed(limiter, key)
  }
}
