/**
 * The rate-limit math, shared by every store that decides in-process and mirrored line by line
 * by the Redis Lua scripts: pure functions over `(state, now)`, no I/O, no Effect.
 *
 * Each `*Take` function answers a {@link StoreDecision} and mutates the state it is handed only
 * when the request is admitted (a refusal never changes state, except for dropping entries that
 * have already expired, which no decision can see). Nothing is allocated apart from the returned
 * decision, so the memory store can run millions of them per second.
 *
 * Times are milliseconds of the deciding clock (`now`). The semantics are the ones documented on
 * the SPI in `RateLimitStore.ts`; the comments below only say how they are computed.
 *
 * @internal
 */
import type { SlotDecision, StoreDecision } from "./spi.js"

/**
 * Tolerance, in milliseconds (one nanosecond), for float noise in GCRA admission: with a rate
 * such as 3/s the emission interval `1000 / 3` is not exact, and `allowAt` can land a few ulps
 * above `now` when it is mathematically equal. Such a request is admitted with no delay, so a
 * limiter never sleeps (or spins under TestClock) for a sub-nanosecond `retryAfterMs`.
 *
 * @internal
 */
export const EPSILON_MS = 1e-6

// Tolerance when flooring a ratio that should be a whole number (`2.9999999999` → 3).
const RATIO_EPSILON = 1e-9

const clamp = (n: number, max: number): number => (n < 0 ? 0 : n > max ? max : n)

// ---------------------------------------------------------------------------------------------
// Token bucket (GCRA)
// ---------------------------------------------------------------------------------------------

/**
 * GCRA state of one `(limiter, key)`: the theoretical arrival time `tat` (`-Infinity` when none),
 * plus the emission interval and burst of the last admitted request, which the memory store
 * needs to judge, without a request in hand, whether the key is currently throttled.
 *
 * @internal
 */
export interface GcraState {
  tat: number
  tbInterval: number
  tbBurst: number
}

// Whole tokens left when the state is `tat` (already `>= now`), in [0, burst].
const gcraRemaining = (tat: number, now: number, interval: number, burst: number): number =>
  clamp(Math.floor(burst - (tat - now) / interval + RATIO_EPSILON), Math.floor(burst))

/**
 * Take `cost` tokens, or reserve them when their slot is at most `maxWaitMs` away.
 *
 * `T = 1000 / ratePerSecond`, `tat0 = max(tat, now)`, `next = tat0 + cost·T`,
 * `wait = next − burst·T − now`:
 * - `cost > burst` (or a rate that is not a positive finite number): refuse, `retryAfterMs = ∞`;
 * - `wait ≤ 0`: admit now, store `next`;
 * - `0 < wait ≤ maxWaitMs`: reserve, store `next`, `delayMs = wait`;
 * - otherwise refuse with `retryAfterMs = wait`.
 *
 * @internal
 */
export const gcraTake = (
  state: GcraState,
  now: number,
  ratePerSecond: number,
  burst: number,
  cost: number,
  maxWaitMs: number
): StoreDecision => {
  const interval = 1000 / ratePerSecond
  const tat0 = state.tat > now ? state.tat : now
  if (!(cost <= burst) || !(interval > 0 && interval < Infinity)) {
    return {
      allowed: false,
      limit: burst,
      remaining: interval > 0 && interval < Infinity ? gcraRemaining(tat0, now, interval, burst) : 0,
      resetAfterMs: tat0 - now,
      retryAfterMs: Infinity,
      delayMs: 0
    }
  }
  const next = tat0 + cost * interval
  const wait = next - burst * interval - now
  if (wait <= EPSILON_MS || wait <= maxWaitMs) {
    state.tat = next
    state.tbInterval = interval
    state.tbBurst = burst
    const delayMs = wait <= EPSILON_MS ? 0 : wait
    return {
      allowed: true,
      limit: burst,
      remaining: delayMs > 0 ? 0 : gcraRemaining(next, now, interval, burst),
      resetAfterMs: next - now,
      retryAfterMs: 0,
      delayMs
    }
  }
  return {
    allowed: false,
    limit: burst,
    remaining: gcraRemaining(tat0, now, interval, burst),
    resetAfterMs: tat0 - now,
    retryAfterMs: wait,
    delayMs: 0
  }
}

/**
 * What a take of cost 1 with no wait would see; consumes nothing.
 *
 * @internal
 */
export const gcraPeek = (tat: number, now: number, ratePerSecond: number, burst: number): StoreDecision => {
  const interval = 1000 / ratePerSecond
  const tat0 = tat > now ? tat : now
  if (!(1 <= burst) || !(interval > 0 && interval < Infinity)) {
    return { allowed: false, limit: burst, remaining: 0, resetAfterMs: tat0 - now, retryAfterMs: Infinity, delayMs: 0 }
  }
  const wait = tat0 + interval - burst * interval - now
  const allowed = wait <= EPSILON_MS
  return {
    allowed,
    limit: burst,
    remaining: gcraRemaining(tat0, now, interval, burst),
    resetAfterMs: tat0 - now,
    retryAfterMs: allowed ? 0 : wait,
    delayMs: 0
  }
}

/**
 * The instant from which a take of cost 1 is admitted again (`<= now`: not throttled).
 *
 * @internal
 */
export const gcraFreeAt = (state: GcraState): number =>
  state.tat === -Infinity ? -Infinity : state.tat - (state.tbBurst - 1) * state.tbInterval

// ---------------------------------------------------------------------------------------------
// Sliding window (exact)
// ---------------------------------------------------------------------------------------------

/**
 * Exact sliding-window state: the admitted `(time, cost)` entries, oldest first, in two parallel
 * arrays read from `head` (entries before `head` have left the window and wait for compaction),
 * with their running `total`. Entries admitted in the same millisecond are merged.
 *
 * @internal
 */
export interface SlidingState {
  readonly times: Array<number>
  readonly costs: Array<number>
  head: number
  total: number
  limit: number
  windowMs: number
}

/** @internal */
export const makeSlidingState = (): SlidingState => ({ times: [], costs: [], head: 0, total: 0, limit: 0, windowMs: 0 })

/**
 * Drops the entries that no longer count: an entry stamped `t` counts while `now < t + windowMs`.
 *
 * @internal
 */
export const slidingPrune = (state: SlidingState, now: number, windowMs: number): void => {
  const { costs, times } = state
  const length = times.length
  let head = state.head
  while (head < length && (times[head] ?? 0) + windowMs <= now) {
    state.total -= costs[head] ?? 0
    head++
  }
  if (head === length) {
    // Empty: start again from scratch (also cancels any float drift in `total`).
    times.length = 0
    costs.length = 0
    state.head = 0
    state.total = 0
  } else if (head > 64 && head * 2 > length) {
    // Compact in place, without allocating.
    times.copyWithin(0, head)
    costs.copyWithin(0, head)
    times.length = length - head
    costs.length = length - head
    state.head = 0
  } else {
    state.head = head
  }
}

// Milliseconds until enough entries leave for `cost` more to fit, counting the entries from index
// `from` on (all live), whose costs sum to `total`; `cost <= limit`.
const slidingRetryAfter = (
  state: SlidingState,
  from: number,
  total: number,
  now: number,
  limit: number,
  windowMs: number,
  cost: number
): number => {
  const excess = total + cost - limit
  const { costs, times } = state
  let freed = 0
  for (let i = from; i < times.length; i++) {
    freed += costs[i] ?? 0
    if (freed >= excess) return (times[i] ?? 0) + windowMs - now
  }
  // Unreachable when cost <= limit: once every entry has left, `cost` fits.
  return windowMs
}

// Milliseconds until the newest entry leaves (0 when empty; `state` is pruned).
const slidingResetAfter = (state: SlidingState, now: number, windowMs: number): number => {
  const n = state.times.length
  return n > state.head ? (state.times[n - 1] ?? 0) + windowMs - now : 0
}

/**
 * Admit when the counted total plus `cost` is at most `limit`, then record `(now, cost)`.
 * A clock that steps back is clamped to the newest entry, so entries stay ordered.
 *
 * @internal
 */
export const slidingTake = (
  state: SlidingState,
  now: number,
  limit: number,
  windowMs: number,
  cost: number
): StoreDecision => {
  slidingPrune(state, now, windowMs)
  const total = state.total
  if (!(cost <= limit)) {
    return {
      allowed: false,
      limit,
      remaining: clamp(Math.floor(limit - total), limit),
      resetAfterMs: slidingResetAfter(state, now, windowMs),
      retryAfterMs: Infinity,
      delayMs: 0
    }
  }
  if (total + cost <= limit) {
    if (cost > 0) {
      const { costs, times } = state
      const last = times.length - 1
      const newest = last >= state.head ? (times[last] ?? now) : -Infinity
      if (newest >= now) {
        // Same millisecond (or a clock step back): merge into the newest entry.
        costs[last] = (costs[last] ?? 0) + cost
      } else {
        times.push(now)
        costs.push(cost)
      }
      state.total = total + cost
    }
    state.limit = limit
    state.windowMs = windowMs
    return {
      allowed: true,
      limit,
      remaining: clamp(Math.floor(limit - total - cost), limit),
      resetAfterMs: slidingResetAfter(state, now, windowMs),
      retryAfterMs: 0,
      delayMs: 0
    }
  }
  return {
    allowed: false,
    limit,
    remaining: clamp(Math.floor(limit - total), limit),
    resetAfterMs: slidingResetAfter(state, now, windowMs),
    retryAfterMs: slidingRetryAfter(state, state.head, total, now, limit, windowMs, cost),
    delayMs: 0
  }
}

/**
 * What a take of cost 1 would see; consumes nothing and changes nothing (entries are counted
 * against this request's `windowMs` without being dropped).
 *
 * @internal
 */
export const slidingPeek = (
  state: SlidingState | undefined,
  now: number,
  limit: number,
  windowMs: number
): StoreDecision => {
  let from = 0
  let total = 0
  let resetAfterMs = 0
  if (state !== undefined) {
    const { costs, times } = state
    from = state.head
    while (from < times.length && (times[from] ?? 0) + windowMs <= now) from++
    for (let i = from; i < times.length; i++) total += costs[i] ?? 0
    if (from < times.length) resetAfterMs = (times[times.length - 1] ?? 0) + windowMs - now
  }
  const allowed = total + 1 <= limit
  return {
    allowed,
    limit,
    remaining: clamp(Math.floor(limit - total), limit),
    resetAfterMs,
    retryAfterMs: allowed
      ? 0
      : state !== undefined && 1 <= limit
      ? slidingRetryAfter(state, from, total, now, limit, windowMs, 1)
      : Infinity,
    delayMs: 0
  }
}

/**
 * The instant from which a take of cost 1 is admitted again, judged with the limit and window of
 * the last admitted request.
 *
 * @internal
 */
export const slidingFreeAt = (state: SlidingState, now: number): number => {
  slidingPrune(state, now, state.windowMs)
  if (state.times.length === state.head || state.total + 1 <= state.limit) return -Infinity
  return now + slidingRetryAfter(state, state.head, state.total, now, state.limit, state.windowMs, 1)
}

/**
 * When the state stops mattering: the newest entry leaves the window.
 *
 * @internal
 */
export const slidingExpiresAt = (state: SlidingState): number => {
  const n = state.times.length
  return n > state.head ? (state.times[n - 1] ?? 0) + state.windowMs : -Infinity
}

// ---------------------------------------------------------------------------------------------
// Fixed window
// ---------------------------------------------------------------------------------------------

/**
 * Fixed-window state: the start of the window the counter belongs to, the counter, and the limit
 * and length of the last admitted request.
 *
 * @internal
 */
export interface FixedState {
  fwStart: number
  fwCount: number
  fwLimit: number
  fwWindow: number
}

/**
 * The window a take at `now` counts against when instants come from several clocks (a store that
 * decides on each client's clock): the caller's own aligned window, unless `state` (of the same
 * length) already holds a later one, which it then counts against. A stored window is never
 * moved backwards, so a process whose clock is behind cannot reset the count of a window a
 * process ahead has started.
 *
 * @internal
 */
export const fixedStartForward = (state: FixedState, now: number, windowMs: number): number => {
  const own = Math.floor(now / windowMs) * windowMs
  return state.fwWindow === windowMs && state.fwStart > own ? state.fwStart : own
}

/**
 * A fixed-window take in the window starting at `start`: one counter per window; admit when
 * `count + cost ≤ limit`; a refusal does not count. The caller chooses the window (the memory
 * store: that of the latest instant it has read; NATS: {@link fixedStartForward}), so a clock
 * that steps back never reopens one. The counter is kept when it belongs to that window.
 *
 * @internal
 */
export const fixedTakeIn = (
  state: FixedState,
  start: number,
  now: number,
  limit: number,
  windowMs: number,
  cost: number
): StoreDecision => {
  const count = state.fwStart === start && state.fwWindow === windowMs ? state.fwCount : 0
  const resetAfterMs = start + windowMs - now
  if (count + cost <= limit) {
    state.fwStart = start
    state.fwWindow = windowMs
    state.fwCount = count + cost
    state.fwLimit = limit
    return {
      allowed: true,
      limit,
      remaining: clamp(Math.floor(limit - count - cost), limit),
      resetAfterMs,
      retryAfterMs: 0,
      delayMs: 0
    }
  }
  return {
    allowed: false,
    limit,
    remaining: clamp(Math.floor(limit - count), limit),
    resetAfterMs,
    retryAfterMs: cost <= limit ? resetAfterMs : Infinity,
    delayMs: 0
  }
}

/**
 * What a take of cost 1 would see; consumes nothing.
 *
 * @internal
 */
export const fixedPeek = (
  state: FixedState | undefined,
  now: number,
  limit: number,
  windowMs: number
): StoreDecision => fixedPeekIn(state, Math.floor(now / windowMs) * windowMs, now, limit, windowMs)

/**
 * {@link fixedPeek} in the window starting at `start`.
 *
 * @internal
 */
export const fixedPeekIn = (
  state: FixedState | undefined,
  start: number,
  now: number,
  limit: number,
  windowMs: number
): StoreDecision => {
  const count = state !== undefined && state.fwStart === start && state.fwWindow === windowMs ? state.fwCount : 0
  const resetAfterMs = start + windowMs - now
  const allowed = count + 1 <= limit
  return {
    allowed,
    limit,
    remaining: clamp(Math.floor(limit - count), limit),
    resetAfterMs,
    retryAfterMs: allowed ? 0 : 1 <= limit ? resetAfterMs : Infinity,
    delayMs: 0
  }
}

/**
 * When the counter stops mattering: the end of its window (`-Infinity` when it counts nothing).
 *
 * @internal
 */
export const fixedExpiresAt = (state: FixedState): number =>
  state.fwCount > 0 ? state.fwStart + state.fwWindow : -Infinity

/**
 * The instant from which a take of cost 1 is admitted again.
 *
 * @internal
 */
export const fixedFreeAt = (state: FixedState, now: number): number => {
  const end = state.fwStart + state.fwWindow
  return end > now && state.fwCount + 1 > state.fwLimit ? end : -Infinity
}

// ---------------------------------------------------------------------------------------------
// Concurrency leases
// ---------------------------------------------------------------------------------------------

/**
 * Leases of one `(limiter, key)`: holder id → expiry. A lease counts while `now < expiresAt`.
 *
 * @internal
 */
export type Leases = Map<string, number>

/**
 * Drops expired leases, then grants when the holder already has a lease (its expiry is pushed to
 * `now + leaseMs`) or fewer than `limit` are live.
 *
 * @internal
 */
export const leaseAcquire = (
  leases: Leases,
  now: number,
  holder: string,
  limit: number,
  leaseMs: number
): SlotDecision => {
  let earliest = Infinity
  for (const [h, expiresAt] of leases) {
    if (expiresAt <= now) leases.delete(h)
    else if (expiresAt < earliest) earliest = expiresAt
  }
  if (leases.has(holder) || leases.size < limit) {
    leases.set(holder, now + leaseMs)
    return { acquired: true, limit, active: leases.size, retryAfterMs: 0 }
  }
  return {
    acquired: false,
    limit,
    active: leases.size,
    // No live lease with a limit of 0 (or less): no release will ever make room.
    retryAfterMs: earliest === Infinity ? Infinity : earliest - now
  }
}

/**
 * Pushes a live lease to `now + leaseMs`; `false` (and the lease is dropped) when it expired.
 *
 * @internal
 */
export const leaseRenew = (leases: Leases, now: number, holder: string, leaseMs: number): boolean => {
  const expiresAt = leases.get(holder)
  if (expiresAt === undefined) return false
  if (expiresAt <= now) {
    leases.delete(holder)
    return false
  }
  leases.set(holder, now + leaseMs)
  return true
}

/**
 * Drops the holder's lease; `true` when it was live.
 *
 * @internal
 */
export const leaseRelease = (leases: Leases, now: number, holder: string): boolean => {
  const expiresAt = leases.get(holder)
  if (expiresAt === undefined) return false
  leases.delete(holder)
  return expiresAt > now
}

/**
 * `remaining = limit − active`; `allowed` when a new holder would get a slot now.
 *
 * @internal
 */
export const leasePeek = (leases: Leases | undefined, now: number, limit: number): StoreDecision => {
  let active = 0
  let earliest = Infinity
  let latest = now
  if (leases !== undefined) {
    for (const [h, expiresAt] of leases) {
      if (expiresAt <= now) {
        leases.delete(h)
        continue
      }
      active++
      if (expiresAt < earliest) earliest = expiresAt
      if (expiresAt > latest) latest = expiresAt
    }
  }
  const allowed = active < limit
  return {
    allowed,
    limit,
    remaining: clamp(limit - active, limit),
    resetAfterMs: latest - now,
    retryAfterMs: allowed ? 0 : earliest === Infinity ? Infinity : earliest - now,
    delayMs: 0
  }
}

/**
 * The expiry of the latest live lease (`-Infinity` when none): until then the key holds a slot,
 * so it is throttled and its state matters.
 *
 * @internal
 */
export const leasesExpireAt = (leases: Leases): number => {
  let latest = -Infinity
  for (const expiresAt of leases.values()) if (expiresAt > latest) latest = expiresAt
  return latest
}
