/**
 * The rate-limit math, shared by every store that decides in-process and mirrored line by line
 * by the Redis Lua scripts: pure functions over `(state, now)`, no I/O, no Effect.
 *
 * Each `*Take` function answers a {@link StoreDecision} and mutates the state it is handed only
 * when the request is admitted (a refusal never changes state, except for dropping entries that
 * have already expired, which no decision can see). Nothing is allocated apart from the returned
 * decision (and an admitted sliding take's `ref` string), so the memory store can run millions of
 * them per second.
 *
 * Composite calls (`compositeCheck`, `compositeApply`) judge several takes on copies of their
 * states and charge them all or none; `*Adjust` charge more or give back after the fact; `*Peek`
 * answer for a given cost. These are the reference semantics of `takeAll`, `adjust` and `peek`
 * that the other stores mirror (see the SPI in `spi.ts`).
 *
 * Times are milliseconds of the deciding clock (`now`). The semantics are the ones documented on
 * the SPI in `RateLimitStore.ts`; the comments below only say how they are computed.
 *
 * @internal
 */
import type { AdjustResult, CompositeDecision, SlotDecision, StoreDecision } from "./spi.js"

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
 * What a take of `cost` (default 1) with no wait would see; consumes nothing: `allowed` when it
 * would be admitted now, `retryAfterMs` until it would be (`Infinity` when it never can).
 *
 * @internal
 */
export const gcraPeek = (tat: number, now: number, ratePerSecond: number, burst: number, cost = 1): StoreDecision => {
  const interval = 1000 / ratePerSecond
  const tat0 = tat > now ? tat : now
  if (!(interval > 0 && interval < Infinity)) {
    return { allowed: false, limit: burst, remaining: 0, resetAfterMs: tat0 - now, retryAfterMs: Infinity, delayMs: 0 }
  }
  const remaining = gcraRemaining(tat0, now, interval, burst)
  if (!(cost <= burst)) {
    return { allowed: false, limit: burst, remaining, resetAfterMs: tat0 - now, retryAfterMs: Infinity, delayMs: 0 }
  }
  const wait = tat0 + cost * interval - burst * interval - now
  const allowed = wait <= EPSILON_MS
  return {
    allowed,
    limit: burst,
    remaining,
    resetAfterMs: tat0 - now,
    retryAfterMs: allowed ? 0 : wait,
    delayMs: 0
  }
}

/**
 * Charge `delta` more tokens (`delta > 0`: the TAT moves forward by `delta·T` from
 * `max(tat, now)`, past the burst if need be: debt, paid back at the rate) or give `|delta|` back
 * (`delta < 0`: the TAT moves back by `|delta|·T`, never below `now`, a full bucket). `applied` is
 * the change made, in tokens (a give-back clipped at a full bucket may be fractional). A delta or
 * rate that is not a finite number applies nothing.
 *
 * A give-back applies only when no reservation is outstanding: `tat0 − burst·T ≤ now`
 * (`tat0 = max(tat, now)`, up to {@link EPSILON_MS}, the tolerance of admission). When the TAT is
 * further on, some caller was admitted with a delay (its slot ends at the TAT), and the single TAT
 * cannot hold a hole before that slot: moving it back would place the next caller among the
 * reserved ones (over-admission). Such a give-back applies nothing (`applied` 0: a refusal or a
 * wait too many, never an admission too many). Every store mirrors this rule.
 *
 * @internal
 */
export const gcraAdjust = (
  state: GcraState,
  now: number,
  ratePerSecond: number,
  burst: number,
  delta: number
): AdjustResult => {
  const interval = 1000 / ratePerSecond
  const tat0 = state.tat > now ? state.tat : now
  if (!(interval > 0 && interval < Infinity)) return { applied: 0, remaining: 0, resetAfterMs: tat0 - now }
  let next = tat0
  let applied = 0
  if (delta > 0 && delta < Infinity) {
    next = tat0 + delta * interval
    applied = delta
  } else if (delta < 0 && delta > -Infinity && tat0 > now && tat0 - burst * interval <= now + EPSILON_MS) {
    const back = tat0 + delta * interval
    if (back > now) {
      next = back
      applied = delta
    } else {
      next = now
      applied = snap((now - tat0) / interval) + 0 // never -0
    }
  }
  if (applied !== 0) {
    state.tat = next
    state.tbInterval = interval
    state.tbBurst = burst
  }
  return { applied, remaining: gcraRemaining(next, now, interval, burst), resetAfterMs: next - now }
}

// A ratio that is a whole number up to float noise, as that whole number.
const snap = (n: number): number => {
  const r = Math.round(n)
  return Math.abs(n - r) <= RATIO_EPSILON ? r : n
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
 * with their running `total`.
 *
 * With `ids` (the memory store), each admitted take is its own entry and `ids` holds its id,
 * parallel to `times`: the take's `ref` (`StoreDecision.ref`), which `slidingAdjust` finds. Without
 * it, entries admitted in the same millisecond are merged.
 *
 * @internal
 */
export interface SlidingState {
  readonly times: Array<number>
  readonly costs: Array<number>
  readonly ids?: Array<number> | undefined
  head: number
  total: number
  limit: number
  windowMs: number
}

/** @internal */
export const makeSlidingState = (): SlidingState => ({
  times: [],
  costs: [],
  ids: [],
  head: 0,
  total: 0,
  limit: 0,
  windowMs: 0
})

/**
 * Drops the entries that no longer count: an entry stamped `t` counts while `now < t + windowMs`.
 *
 * @internal
 */
export const slidingPrune = (state: SlidingState, now: number, windowMs: number): void => {
  const { costs, ids, times } = state
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
    if (ids !== undefined) ids.length = 0
    state.head = 0
    state.total = 0
  } else if (head > 64 && head * 2 > length) {
    // Compact in place, without allocating.
    times.copyWithin(0, head)
    costs.copyWithin(0, head)
    times.length = length - head
    costs.length = length - head
    if (ids !== undefined) {
      ids.copyWithin(0, head)
      ids.length = length - head
    }
    state.head = 0
  } else {
    state.head = head
  }
}

// Milliseconds until enough entries leave for `cost` more to fit, counting the entries from index
// `from` on (all live), whose costs sum to `total`, and `pending` more stamped `pendingAt` (the
// earlier takes of a composite call, not yet recorded); `cost <= limit`.
const slidingRetryAfter = (
  state: SlidingState,
  from: number,
  total: number,
  now: number,
  limit: number,
  windowMs: number,
  cost: number,
  pending = 0,
  pendingAt = now
): number => {
  const excess = total + pending + cost - limit
  const { costs, times } = state
  let freed = 0
  for (let i = from; i < times.length; i++) {
    freed += costs[i] ?? 0
    if (freed >= excess) return (times[i] ?? 0) + windowMs - now
  }
  // Only the pending entries left to wait for (unreachable without them when cost <= limit: once
  // every entry has left, `cost` fits).
  return pending > 0 ? pendingAt + windowMs - now : windowMs
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
 * With `id` on a state that keeps `ids`, the take is recorded as its own entry of that id and the
 * decision carries `ref: String(id)` (a take of cost 0 records nothing: its ref names no entry).
 *
 * @internal
 */
export const slidingTake = (
  state: SlidingState,
  now: number,
  limit: number,
  windowMs: number,
  cost: number,
  id?: number
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
    const ids = state.ids
    if (cost > 0) {
      const { costs, times } = state
      const last = times.length - 1
      const newest = last >= state.head ? (times[last] ?? now) : -Infinity
      if (ids !== undefined) {
        // One entry per take (a clock step back is stamped at the newest entry).
        times.push(newest > now ? newest : now)
        costs.push(cost)
        ids.push(id ?? -1)
      } else if (newest >= now) {
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
    const remaining = clamp(Math.floor(limit - total - cost), limit)
    const resetAfterMs = slidingResetAfter(state, now, windowMs)
    return ids !== undefined && id !== undefined
      ? { allowed: true, limit, remaining, resetAfterMs, retryAfterMs: 0, delayMs: 0, ref: String(id) }
      : { allowed: true, limit, remaining, resetAfterMs, retryAfterMs: 0, delayMs: 0 }
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
 * What a take of `cost` (default 1) would see; consumes nothing and changes nothing (entries are
 * counted against this request's `windowMs` without being dropped).
 *
 * @internal
 */
export const slidingPeek = (
  state: SlidingState | undefined,
  now: number,
  limit: number,
  windowMs: number,
  cost = 1
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
  const allowed = cost <= limit && total + cost <= limit
  return {
    allowed,
    limit,
    remaining: clamp(Math.floor(limit - total), limit),
    resetAfterMs,
    retryAfterMs: allowed
      ? 0
      : state !== undefined && cost <= limit
      ? slidingRetryAfter(state, from, total, now, limit, windowMs, cost)
      : Infinity,
    delayMs: 0
  }
}

/**
 * Charge `delta` more on the entry `ref` names, or give back (its cost becomes
 * `max(0, cost + delta)`): only while that entry is in the window (`time + windowMs > now`), so a
 * window gives back only what the take put in it; `delta > 0` may take the total past `limit`
 * (debt until the entry leaves). An entry that has left, a ref that names none, a state without
 * `ids` or a delta that is not a finite number apply nothing.
 *
 * @internal
 */
export const slidingAdjust = (
  state: SlidingState | undefined,
  now: number,
  limit: number,
  windowMs: number,
  delta: number,
  ref: string | undefined
): AdjustResult => {
  if (state === undefined) return { applied: 0, remaining: clamp(Math.floor(limit), limit), resetAfterMs: 0 }
  slidingPrune(state, now, windowMs)
  let applied = 0
  const id = ref === undefined ? Number.NaN : Number(ref)
  const { costs, ids, times } = state
  if (ids !== undefined && Number.isSafeInteger(id) && id >= 0 && String(id) === ref && Number.isFinite(delta)) {
    for (let i = times.length - 1; i >= state.head; i--) {
      if (ids[i] !== id) continue
      const cost = costs[i] ?? 0
      const next = Math.max(0, cost + delta)
      applied = next - cost
      costs[i] = next
      state.total += applied
      break
    }
  }
  return {
    applied,
    remaining: clamp(Math.floor(limit - state.total), limit),
    resetAfterMs: slidingResetAfter(state, now, windowMs)
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
 * `withRef`: an admitted take carries `ref`, the window's start as a decimal string.
 *
 * @internal
 */
export const fixedTakeIn = (
  state: FixedState,
  start: number,
  now: number,
  limit: number,
  windowMs: number,
  cost: number,
  withRef = false
): StoreDecision => {
  const count = state.fwStart === start && state.fwWindow === windowMs ? state.fwCount : 0
  const resetAfterMs = start + windowMs - now
  if (count + cost <= limit) {
    state.fwStart = start
    state.fwWindow = windowMs
    state.fwCount = count + cost
    state.fwLimit = limit
    const remaining = clamp(Math.floor(limit - count - cost), limit)
    return withRef
      ? { allowed: true, limit, remaining, resetAfterMs, retryAfterMs: 0, delayMs: 0, ref: fixedRef(start) }
      : { allowed: true, limit, remaining, resetAfterMs, retryAfterMs: 0, delayMs: 0 }
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
 * What a take of `cost` (default 1) would see; consumes nothing.
 *
 * @internal
 */
export const fixedPeek = (
  state: FixedState | undefined,
  now: number,
  limit: number,
  windowMs: number,
  cost = 1
): StoreDecision => fixedPeekIn(state, Math.floor(now / windowMs) * windowMs, now, limit, windowMs, cost)

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
  windowMs: number,
  cost = 1
): StoreDecision => {
  const count = state !== undefined && state.fwStart === start && state.fwWindow === windowMs ? state.fwCount : 0
  const resetAfterMs = start + windowMs - now
  const allowed = count + cost <= limit
  return {
    allowed,
    limit,
    remaining: clamp(Math.floor(limit - count), limit),
    resetAfterMs,
    retryAfterMs: allowed ? 0 : cost <= limit ? resetAfterMs : Infinity,
    delayMs: 0
  }
}

/**
 * The `ref` of a fixed-window charge: its window's start, as a decimal string.
 *
 * @internal
 */
export const fixedRef = (start: number): string => {
  // Most takes in a row count in the same window: its string is made once.
  if (start !== lastRefStart) {
    lastRefStart = start
    lastRef = String(start)
  }
  return lastRef
}
let lastRefStart = Number.NaN
let lastRef = ""

/**
 * Charge `delta` more in the window starting at `start` (the current one), or give back: only
 * when `ref` names that window (the take was charged in it): `count = max(0, count + delta)`,
 * which may go past `limit` (debt until the window ends). A ref of another window (it has passed),
 * no ref, or a delta that is not a finite number apply nothing. With no counter of that window,
 * a give-back applies nothing and a charge needs `state` to write it in.
 *
 * @internal
 */
export const fixedAdjustIn = (
  state: FixedState | undefined,
  start: number,
  now: number,
  limit: number,
  windowMs: number,
  delta: number,
  ref: string | undefined
): AdjustResult => {
  const count = state !== undefined && state.fwStart === start && state.fwWindow === windowMs ? state.fwCount : 0
  const resetAfterMs = start + windowMs - now
  if (state === undefined || ref !== fixedRef(start) || !Number.isFinite(delta)) {
    return { applied: 0, remaining: clamp(Math.floor(limit - count), limit), resetAfterMs }
  }
  const next = Math.max(0, count + delta)
  const applied = next - count
  if (applied !== 0) {
    state.fwStart = start
    state.fwWindow = windowMs
    state.fwCount = next
    state.fwLimit = limit
  }
  return { applied, remaining: clamp(Math.floor(limit - next), limit), resetAfterMs }
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
// Composite calls (several takes, all-or-nothing)
// ---------------------------------------------------------------------------------------------

/**
 * One take of a composite call, with the state it reads and charges: a token bucket (its
 * request's fields), a sliding window (`id`: the entry id it records when admitted, see
 * {@link slidingTake}) or a fixed window (`start`: the window it counts in, chosen by the caller
 * as for {@link fixedTakeIn}). Two takes address the same state when they hold the same object
 * under the same algorithm.
 *
 * @internal
 */
export type CompositeTarget =
  | {
    readonly algorithm: "token_bucket"
    readonly state: GcraState
    readonly ratePerSecond: number
    readonly burst: number
    readonly cost: number
    readonly maxWaitMs: number
  }
  | {
    readonly algorithm: "sliding_window"
    readonly state: SlidingState
    readonly limit: number
    readonly windowMs: number
    readonly cost: number
    readonly id?: number | undefined
  }
  | {
    readonly algorithm: "fixed_window"
    readonly state: FixedState
    readonly start: number
    readonly limit: number
    readonly windowMs: number
    readonly cost: number
  }

// A copy of the part of one state a composite call reads, charged by its admitted takes while the
// call is checked (the state itself is left alone until every take is known to be admitted).
class Scratch implements GcraState, FixedState {
  tat = -Infinity
  tbInterval = 0
  tbBurst = 0
  fwStart = 0
  fwCount = 0
  fwLimit = 0
  fwWindow = 0
  // Token bucket: the cost admitted on it by earlier takes of the call (all charged at one instant).
  tbSpent = 0
  // Sliding window: the cost admitted by earlier takes of the call, and the instant it is stamped.
  pending = 0
  pendingAt = -Infinity
}

/**
 * A composite call checked, nothing charged yet (see {@link compositeCheck}).
 *
 * @internal
 */
export interface CompositeCheck {
  /** Every take is admitted: {@link compositeApply} may charge them. */
  readonly allowed: boolean
  /**
   * Per take: its decision after the earlier takes of the call (which, for distinct states, is
   * the decision it alone would get). A token bucket's has its own wait as `delayMs`; the call
   * books every bucket at the largest (see {@link compositeApply}).
   */
  readonly decisions: ReadonlyArray<StoreDecision>
  /** The largest `delayMs` of the decisions. */
  readonly delayMs: number
  readonly scratch: ReadonlyArray<Scratch>
  // Per take: the state's `remaining` and `resetAfterMs` before its own charge.
  readonly remainingBefore: ReadonlyArray<number>
  readonly resetBefore: ReadonlyArray<number>
}

/**
 * Checks every take of a composite call at `now` without changing any state: the takes are
 * judged in order, each after the earlier admitted ones of the call (so a state named twice is
 * charged twice), on copies of the states.
 *
 * Waiting: when every take is a token bucket, each is judged with the call's `maxWaitMs`, the
 * smallest of theirs, so the call reserves when the largest wait `D` is at most that smallest
 * `maxWaitMs`, and `delayMs` is `D`; a bucket whose wait is larger is a violation (`retryAfterMs`:
 * its wait). With any window take, buckets are judged with no wait: the call is admitted now or
 * refused.
 *
 * A bucket named several times is charged the sum of their costs at the one instant the caller
 * proceeds: the take that brings that sum above the burst can never be admitted (a violation
 * with `retryAfterMs = Infinity`, as a single take of a cost above the burst). Below it, each
 * take's wait after the earlier ones (`tat0 + sum·T − burst·T − now`) is the wait the sum needs.
 *
 * @internal
 */
export const compositeCheck = (targets: ReadonlyArray<CompositeTarget>, now: number): CompositeCheck => {
  let maxWaitMs = Infinity
  for (const t of targets) {
    if (t.algorithm !== "token_bucket") {
      maxWaitMs = 0
      break
    }
    if (t.maxWaitMs < maxWaitMs) maxWaitMs = t.maxWaitMs
  }
  const scratch: Array<Scratch> = []
  const decisions: Array<StoreDecision> = []
  const remainingBefore: Array<number> = []
  const resetBefore: Array<number> = []
  let allowed = true
  let delayMs = 0
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]
    if (t === undefined) continue
    let s: Scratch | undefined = undefined
    for (let j = 0; j < i; j++) {
      const u = targets[j]
      if (u !== undefined && u.state === t.state && u.algorithm === t.algorithm) {
        s = scratch[j]
        break
      }
    }
    if (s === undefined) {
      s = new Scratch()
      if (t.algorithm === "token_bucket") {
        s.tat = t.state.tat
        s.tbInterval = t.state.tbInterval
        s.tbBurst = t.state.tbBurst
      } else if (t.algorithm === "fixed_window") {
        s.fwStart = t.state.fwStart
        s.fwCount = t.state.fwCount
        s.fwLimit = t.state.fwLimit
        s.fwWindow = t.state.fwWindow
      }
    }
    scratch.push(s)
    let d: StoreDecision
    switch (t.algorithm) {
      case "token_bucket": {
        const interval = 1000 / t.ratePerSecond
        const tat0 = s.tat > now ? s.tat : now
        const remaining = interval > 0 && interval < Infinity ? gcraRemaining(tat0, now, interval, t.burst) : 0
        remainingBefore.push(remaining)
        resetBefore.push(tat0 - now)
        const spent = s.tbSpent + t.cost
        d = spent > t.burst && t.cost <= t.burst
          ? { allowed: false, limit: t.burst, remaining, resetAfterMs: tat0 - now, retryAfterMs: Infinity, delayMs: 0 }
          : gcraTake(s, now, t.ratePerSecond, t.burst, t.cost, maxWaitMs)
        if (d.allowed) s.tbSpent = spent
        break
      }
      case "fixed_window": {
        const count = s.fwStart === t.start && s.fwWindow === t.windowMs ? s.fwCount : 0
        remainingBefore.push(clamp(Math.floor(t.limit - count), t.limit))
        resetBefore.push(t.start + t.windowMs - now)
        d = fixedTakeIn(s, t.start, now, t.limit, t.windowMs, t.cost, true)
        break
      }
      case "sliding_window": {
        d = slidingCheck(t.state, s, now, t.limit, t.windowMs, t.cost, remainingBefore, resetBefore)
        break
      }
    }
    decisions.push(d)
    if (!d.allowed) allowed = false
    else if (d.delayMs > delayMs) delayMs = d.delayMs
  }
  return { allowed, decisions, delayMs: allowed ? delayMs : 0, scratch, remainingBefore, resetBefore }
}

// A sliding-window take judged without touching `state`: its live entries (counted as
// `slidingPrune` would leave them) plus the call's pending cost in `s`, which an admitted take
// adds to. Pushes the remaining and reset-after before the take onto `remaining` and `reset`.
const slidingCheck = (
  state: SlidingState,
  s: Scratch,
  now: number,
  limit: number,
  windowMs: number,
  cost: number,
  remaining: Array<number>,
  reset: Array<number>
): StoreDecision => {
  const { costs, times } = state
  // The same arithmetic as slidingPrune, so that the take applied later sees the same total.
  let from = state.head
  let total = state.total
  while (from < times.length && (times[from] ?? 0) + windowMs <= now) {
    total -= costs[from] ?? 0
    from++
  }
  if (from === times.length) total = 0
  const newest = from < times.length ? (times[times.length - 1] ?? now) : -Infinity
  const counted = total + s.pending
  const latest = s.pending > 0 ? s.pendingAt : newest
  const resetAfterMs = latest > -Infinity ? latest + windowMs - now : 0
  remaining.push(clamp(Math.floor(limit - counted), limit))
  reset.push(resetAfterMs)
  if (!(cost <= limit) || !(counted + cost <= limit)) {
    return {
      allowed: false,
      limit,
      remaining: clamp(Math.floor(limit - counted), limit),
      resetAfterMs,
      retryAfterMs: cost <= limit ? slidingRetryAfter(state, from, total, now, limit, windowMs, cost, s.pending, s.pendingAt) : Infinity,
      delayMs: 0
    }
  }
  let resetAfter = resetAfterMs
  if (cost > 0) {
    // Recorded at the newest instant so far (a clock step back is clamped to it).
    const at = latest > now ? latest : now
    s.pending += cost
    s.pendingAt = at
    resetAfter = at + windowMs - now
  }
  return {
    allowed: true,
    limit,
    remaining: clamp(Math.floor(limit - counted - cost), limit),
    resetAfterMs: resetAfter,
    retryAfterMs: 0,
    delayMs: 0
  }
}

/**
 * The answer to a refused composite call: nothing is charged; every take that refused keeps its
 * refusal (a violation, with its own `retryAfterMs`), every other one is `allowed` with the
 * state's `remaining` and `resetAfterMs` as they are (uncharged), no ref and no delay.
 *
 * @internal
 */
export const compositeRefusal = (check: CompositeCheck): CompositeDecision => ({
  allowed: false,
  decisions: check.decisions.map((d, i) =>
    d.allowed
      ? {
        allowed: true,
        limit: d.limit,
        remaining: check.remainingBefore[i] ?? d.remaining,
        resetAfterMs: check.resetBefore[i] ?? d.resetAfterMs,
        retryAfterMs: 0,
        delayMs: 0
      }
      : d
  ),
  delayMs: 0
})

/**
 * Charges every take of a call {@link compositeCheck} admitted (`check.allowed`), on the same
 * states at the same `now`: fixed windows store what the check computed, a sliding window records
 * its entry (with its `id`). Answers the admitted call: each decision as checked (windows with
 * their `ref`), `delayMs` the largest wait `D`.
 *
 * Token buckets: the caller proceeds at `now + D` on every bucket, so each take, in order, stores
 * `next = max(tat, now + D) + cost·T` (a bucket named twice: the second from the first's `next`);
 * its decision has `delayMs = D` and `remaining`, `resetAfterMs` from that `next`. For the slowest
 * bucket this is its own GCRA `tat0 + cost·T`; with `D = 0` it is what the check computed.
 * Booking a faster bucket at its own, earlier instant would let a later take share the slot the
 * caller uses, past the bucket's bound. A take of cost 0 books nothing (its bucket is left as it
 * is, `next = max(tat, now)`), as a single take of cost 0 changes nothing.
 *
 * @internal
 */
export const compositeApply = (
  targets: ReadonlyArray<CompositeTarget>,
  now: number,
  check: CompositeCheck
): CompositeDecision => {
  const decisions: Array<StoreDecision> = []
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]
    const s = check.scratch[i]
    const checked = check.decisions[i]
    if (t === undefined || s === undefined || checked === undefined) continue
    switch (t.algorithm) {
      case "token_bucket": {
        const delayMs = check.delayMs
        if (delayMs > 0) {
          const interval = 1000 / t.ratePerSecond
          const at = now + delayMs
          // a take of cost 0 books nothing (as a single take of cost 0): its bucket is left as it is
          const next = t.cost > 0
            ? (t.state.tat > at ? t.state.tat : at) + t.cost * interval
            : (t.state.tat > now ? t.state.tat : now)
          if (t.cost > 0) {
            t.state.tat = next
            t.state.tbInterval = interval
            t.state.tbBurst = t.burst
          }
          decisions.push({
            allowed: true,
            limit: t.burst,
            remaining: gcraRemaining(next, now, interval, t.burst),
            resetAfterMs: next - now,
            retryAfterMs: 0,
            delayMs
          })
        } else {
          t.state.tat = s.tat
          t.state.tbInterval = s.tbInterval
          t.state.tbBurst = s.tbBurst
          decisions.push(checked)
        }
        break
      }
      case "fixed_window": {
        t.state.fwStart = s.fwStart
        t.state.fwCount = s.fwCount
        t.state.fwLimit = s.fwLimit
        t.state.fwWindow = s.fwWindow
        decisions.push(checked)
        break
      }
      case "sliding_window": {
        decisions.push(slidingTake(t.state, now, t.limit, t.windowMs, t.cost, t.id))
        break
      }
    }
  }
  return { allowed: true, decisions, delayMs: check.delayMs }
}

/**
 * A composite call in one step: {@link compositeCheck}, then {@link compositeApply} when every take
 * is admitted, else {@link compositeRefusal} (no state changed).
 *
 * @internal
 */
export const compositeTake = (targets: ReadonlyArray<CompositeTarget>, now: number): CompositeDecision => {
  const check = compositeCheck(targets, now)
  return check.allowed ? compositeApply(targets, now, check) : compositeRefusal(check)
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
