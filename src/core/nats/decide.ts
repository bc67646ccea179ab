/**
 * The decide steps of the NATS store's compare-and-set loop: pure functions of the stored value
 * (`undefined` when absent or expired-unreadable), the current instant and the request, answering
 * `{ result, write? }`: the answer, and the write that makes it true (`undefined`: none, a string:
 * the new value, `null`: delete the key). The loop (internal/nats/cas.ts) writes it on the
 * revision read and starts again from the read when another process wrote first.
 *
 * Instants written by another store instance are on its clock: they are judged `marginMs` later
 * (see `Writer`), so a process whose clock runs ahead by up to the margin cannot admit early.
 *
 * @internal
 */
import * as algorithm from "../algorithm.js"
import type { AdjustResult, RateTake, SlotDecision, SlotRequest, StoreDecision, TokenBucketRequest, WindowRequest } from "../spi.js"
import type { FixedEntry, Stored } from "./stored.js"

/** Who decides: this instance's id (the owner of the instants it writes) and the skew allowance. @internal */
export interface Writer {
  readonly self: string
  readonly marginMs: number
}

/** What one attempt decides. @internal */
export interface Step<A> {
  readonly result: A
  /** `undefined`: no write; a string: the new value; `null`: delete the key. */
  readonly write?: string | null | undefined
}

/** An acquire's step: when granted, the expiry of the lease it writes (to undo a write that lands late). @internal */
export interface AcquireStep extends Step<SlotDecision> {
  readonly grantedUntil?: number | undefined
}

/**
 * The refusal answered when the compare-and-set race is given up: what a peek of the last state
 * read shows, refused, with nothing known to remain and at least `retryAfterMs`.
 *
 * @internal
 */
export const contended = (peeked: StoreDecision, retryAfterMs: number): StoreDecision => ({
  ...peeked,
  allowed: false,
  remaining: 0,
  retryAfterMs: Number.isFinite(peeked.retryAfterMs) ? Math.max(peeked.retryAfterMs, retryAfterMs) : retryAfterMs,
  delayMs: 0,
  contended: true
})

// ---------------------------------------------------------------------------------------------
// token bucket

/** The stored arrival time, pushed `marginMs` later unless this instance wrote it on its clock (mixed included). @internal */
export const judgedTat = (stored: Stored | undefined, w: Writer): number =>
  stored === undefined ? -Infinity : stored.o === w.self ? stored.x : stored.x + w.marginMs

/**
 * The value after admitting a slot that ends at `exact` over another writer's instant `raw`.
 * `bound` is the latest the last slot can end on one clock (a mixed value, owner "", is stored
 * `marginMs` early). What is written never includes the margin this caller was judged with, so
 * alternating writers pay it once, not once per hand-off.
 */
const handOff = (
  stored: Stored,
  decision: StoreDecision,
  now: number,
  proceeds: number,
  bound: number,
  exact: number,
  w: Writer
): { readonly x: number; readonly o: string } =>
  stored.o !== undefined && stored.o !== "" && stored.x >= proceeds
    // the slot is still on the other writer's clock: it stays theirs (exact for them)
    ? { x: exact, o: stored.o }
    : decision.delayMs === 0 && now - w.marginMs >= bound
    // the stored slot had long passed: start again on this clock
    ? { x: exact, o: w.self }
    // mixed (owner ""): stored `marginMs` early, so every instance, this one included, judges it
    // at `exact`, and the next hand-off adds no margin on top
    : { x: exact - w.marginMs, o: "" }

/**
 * The bucket value a composite call's take wrote (`x` and owner as stored), so that its booking
 * (see {@link tokenBucketAdjust}) applies only while the value is still that one.
 *
 * @internal
 */
export interface Written {
  readonly x: number
  readonly o: string
}

/**
 * A composite call's bucket take (`internal/nats/composite.ts`): its decision also carries the
 * value it wrote (`written`, see {@link writtenOf}). The take object reaches {@link tokenBucket}
 * as the call passed it.
 *
 * @internal
 */
export interface CompositeBucketTake extends TokenBucketRequest {
  readonly composite?: true | undefined
}

/** The value a composite call's bucket take wrote (`undefined`: none, or not such a take). @internal */
export const writtenOf = (d: StoreDecision): Written | undefined => {
  if (!("written" in d)) return undefined
  const v = d.written
  return typeof v === "object" && v !== null && "x" in v && "o" in v && typeof v.x === "number" && typeof v.o === "string"
    ? { x: v.x, o: v.o }
    : undefined
}

/** `d` without what {@link tokenBucket} adds for a composite call. @internal */
export const withoutWritten = (d: StoreDecision): StoreDecision => {
  if (!("written" in d)) return d
  const { written: _, ...rest } = d
  return rest
}

/** A decision and the write that makes it true, with the written value answered to a composite take. */
const taken = (decision: StoreDecision, value: Written, req: CompositeBucketTake): Step<StoreDecision> => {
  const answered: StoreDecision & { readonly written?: Written } = req.composite === true ? { ...decision, written: value } : decision
  return { result: answered, write: JSON.stringify(value) }
}

/** A GCRA take over the stored arrival time (the owner and skew-margin rules above). @internal */
export const tokenBucket = (
  stored: Stored | undefined,
  now: number,
  req: CompositeBucketTake,
  w: Writer
): Step<StoreDecision> => {
  const state: algorithm.GcraState = { tat: judgedTat(stored, w), tbInterval: 0, tbBurst: 0 }
  const decision = algorithm.gcraTake(state, now, req.ratePerSecond, req.burst, req.cost, req.maxWaitMs)
  if (!decision.allowed) return { result: decision }
  // GCRA at the instant the caller proceeds (`now + delayMs`), so a reservation judged with the
  // margin counts its slot from when it proceeds, not from `now`
  const proceeds = now + decision.delayMs
  const slot = req.cost * (1000 / req.ratePerSecond)
  if (stored === undefined || stored.o === w.self) {
    // this instance's own clock: exact, no margin
    const next = Math.max(stored === undefined ? -Infinity : stored.x, proceeds) + slot
    return next > now ? taken(decision, { x: next, o: w.self }, req) : { result: decision }
  }
  const bound = stored.o === "" ? stored.x + w.marginMs : stored.x
  const exact = Math.max(bound, proceeds) + slot
  if (!(exact > now)) return { result: decision }
  return taken(decision, handOff(stored, decision, now, proceeds, bound, exact, w), req)
}

/**
 * A peek's answer for `cost` (none or 1: the cost-1 peek itself): `remaining` and `resetAfterMs`
 * are the state's, `allowed` and `retryAfterMs` those a take of that cost would answer.
 */
const forCost = (peeked: StoreDecision, cost: number | undefined, take: () => StoreDecision): StoreDecision => {
  if (cost === undefined || cost === 1) return peeked
  const d = take()
  return { ...peeked, allowed: d.allowed, retryAfterMs: d.allowed ? 0 : d.retryAfterMs }
}

/** What a take of `cost` (default 1) with no wait would answer; consumes nothing. @internal */
export const tokenBucketPeek = (
  stored: Stored | undefined,
  now: number,
  req: { readonly ratePerSecond: number; readonly burst: number; readonly cost?: number | undefined },
  w: Writer
): StoreDecision => {
  const tat = judgedTat(stored, w)
  return forCost(
    algorithm.gcraPeek(tat, now, req.ratePerSecond, req.burst),
    req.cost,
    () => algorithm.gcraTake({ tat, tbInterval: 0, tbBurst: 0 }, now, req.ratePerSecond, req.burst, req.cost ?? 1, 0)
  )
}

/** The answer of an adjust over the judged arrival time `tat`. */
const tokenBucketAdjusted = (
  tat: number,
  now: number,
  req: { readonly ratePerSecond: number; readonly burst: number },
  applied: number
): AdjustResult => {
  const p = algorithm.gcraPeek(tat, now, req.ratePerSecond, req.burst)
  return { applied, remaining: p.remaining, resetAfterMs: Math.max(0, p.resetAfterMs) }
}

/**
 * A composite call's take as its undo gives it back (`internal/nats/composite.ts`): a bucket's
 * cost plus the tokens its booking added (`booked`), and the value the call last wrote on it
 * (`undoOn`: the take's write, moved by the booking as {@link tokenBucketAdjust} moved it). While
 * the bucket still holds that value nothing was written since, so no other caller reserved behind
 * the call: the undo is exact even when the call's own charge is a reservation. Otherwise it is a
 * give-back like any other (nothing while a reservation is outstanding).
 *
 * @internal
 */
export const undoOf = (t: RateTake, d: StoreDecision | undefined, booked: number | undefined): RateTake => {
  if (t.algorithm !== "token_bucket") return t
  const cost = booked === undefined ? t.cost : t.cost + booked
  const w = d === undefined ? undefined : writtenOf(d)
  if (w === undefined) return cost === t.cost ? t : { ...t, cost }
  const x = booked === undefined ? w.x : w.x + booked * (1000 / t.ratePerSecond)
  const take: RateTake & { readonly undoOn: Written } = { ...t, cost, undoOn: { x, o: w.o } }
  return take
}

/** Whether the key still holds `on` (the value a composite call last wrote on it). */
const holds = (stored: Stored | undefined, on: Written): boolean =>
  stored !== undefined && stored.x === on.x && (stored.o ?? "") === on.o

/**
 * Whether a booking (`bookOn`: the value the composite take wrote) may apply: the key still holds
 * that value, with a composite take's nonce (any other write since drops it). No `bookOn`: yes.
 */
const booksOn = (stored: Stored | undefined, bookOn: Written | undefined): boolean =>
  bookOn === undefined ||
  (stored !== undefined && stored.n !== undefined && stored.x === bookOn.x && (stored.o ?? "") === bookOn.o)

/**
 * Charge more (`delta > 0`: the arrival time moves `delta·T` forward from `max(tat, now)`, past
 * the burst if need be: debt) or give back (`delta < 0`: it moves back by up to `|delta|·T`,
 * never below `now`, and only when no reservation is outstanding: `tat0 − burst·T ≤ now`, as
 * `algorithm.ts` `gcraAdjust`; otherwise `applied: 0`), on the judged arrival time (see
 * {@link judgedTat}, never earlier than the stored one: a doubt refuses the give-back). The value stays on its
 * owner's clock (moved by the same amount), unless it had passed: a charge on a full bucket is
 * written on this instance's clock.
 *
 * A composite call's booking (`bookOn`, see `internal/nats/composite.ts`) is such a charge, applied
 * only while the key holds the value its take wrote (nothing written since); otherwise it applies
 * nothing (`applied: 0`). A composite call's undo (`undoOn`, see {@link undoOf}) is such a
 * give-back, applied even behind a reservation (its own) while the key holds the value it wrote.
 *
 * @internal
 */
export const tokenBucketAdjust = (
  stored: Stored | undefined,
  now: number,
  req: {
    readonly ratePerSecond: number
    readonly burst: number
    readonly bookOn?: Written | undefined
    readonly undoOn?: Written | undefined
  },
  delta: number,
  w: Writer
): Step<AdjustResult> => {
  const interval = 1000 / req.ratePerSecond
  const tat = judgedTat(stored, w)
  if (!(interval > 0 && interval < Infinity) || !Number.isFinite(delta) || delta === 0 || !booksOn(stored, req.bookOn)) {
    return { result: tokenBucketAdjusted(tat, now, req, 0) }
  }
  const tat0 = Math.max(tat, now)
  if (delta > 0) {
    const next = tat0 + delta * interval
    const write = stored === undefined || tat <= now
      ? { x: next, o: w.self }
      : { x: stored.x + delta * interval, o: stored.o }
    return { result: tokenBucketAdjusted(next, now, req, delta), write: JSON.stringify(write) }
  }
  // a reservation is outstanding (its slot ends at the TAT): the give-back applies nothing, unless
  // it is a composite call's undo on the value it wrote (see `undoOf`)
  const own = req.undoOn !== undefined && holds(stored, req.undoOn)
  if (!own && tat0 - req.burst * interval > now + algorithm.EPSILON_MS) return { result: tokenBucketAdjusted(tat, now, req, 0) }
  const give = Math.min(-delta * interval, tat0 - now)
  if (stored === undefined || !(give > 0)) return { result: tokenBucketAdjusted(tat, now, req, 0) }
  const applied = give === -delta * interval ? delta : -give / interval
  return {
    result: tokenBucketAdjusted(tat0 - give, now, req, applied),
    write: JSON.stringify({ x: stored.x - give, o: stored.o })
  }
}

// ---------------------------------------------------------------------------------------------
// sliding window

/** The entries as this instance judges them (another writer's shifted `marginMs` later), and the shift. @internal */
export const slidingState = (stored: Stored | undefined, limit: number, windowMs: number, w: Writer) => {
  const shift = stored === undefined || stored.o === w.self ? 0 : w.marginMs
  const times: Array<number> = []
  const costs: Array<number> = []
  const rawTimes = stored?.t ?? []
  const rawCosts = stored?.c ?? []
  let total = 0
  for (let i = 0; i < rawTimes.length; i++) {
    const c = rawCosts[i] ?? 0
    // an entry emptied by `adjust` charges nothing: it is kept (for the ids beside it), not judged
    if (!(c > 0)) continue
    times.push((rawTimes[i] ?? 0) + shift)
    costs.push(c)
    total += c
  }
  const state: algorithm.SlidingState = { times, costs, head: 0, total, limit, windowMs }
  return { state, shift }
}

/** The entries that still count (judged with `shift`), kept on their writers' clocks. */
const liveEntries = (stored: Stored | undefined, now: number, windowMs: number, shift: number) => {
  const times: Array<number> = []
  const costs: Array<number> = []
  const rawTimes = stored?.t ?? []
  const rawCosts = stored?.c ?? []
  for (let i = 0; i < rawTimes.length; i++) {
    const t = rawTimes[i] ?? 0
    if (t + shift + windowMs > now) {
      times.push(t)
      costs.push(rawCosts[i] ?? 0)
    }
  }
  return { times, costs }
}

/** @internal */
export const slidingWindow = (
  stored: Stored | undefined,
  now: number,
  req: WindowRequest,
  w: Writer
): Step<StoreDecision> => {
  const { shift, state } = slidingState(stored, req.limit, req.windowMs, w)
  const decision = algorithm.slidingTake(state, now, req.limit, req.windowMs, req.cost)
  if (!decision.allowed || !(req.cost > 0)) return { result: decision }
  const { costs, times } = liveEntries(stored, now, req.windowMs, shift)
  const last = times.length - 1
  // one entry per take (also in one millisecond: its `ref` is its own, so an adjust gives back
  // only what this take holds); a clock step back is stamped at the newest entry
  times.push(Math.max(now, times[last] ?? -Infinity))
  costs.push(req.cost)
  const owner = last < 0 || shift === 0 ? w.self : ""
  const newest = times[times.length - 1] ?? now
  return {
    result: { ...decision, ref: entryRef(times, times.length - 1) },
    write: JSON.stringify({ x: newest + req.windowMs, o: owner, t: times, c: costs })
  }
}

/**
 * The id of the entry at `index` (for `adjust`): its time as stored (on its writer's clock) and
 * how many entries before it have that same time, `"<time>:<n>"`. Times are stored in order,
 * entries are only ever appended, and they leave the window oldest first, all those of one time
 * together (an emptied entry stays until then), so the id names the same entry for as long as it
 * counts, and no other once it has left.
 *
 * @internal
 */
export const entryRef = (times: ReadonlyArray<number>, index: number): string => {
  const t = times[index] ?? 0
  let n = 0
  for (let i = index - 1; i >= 0 && times[i] === t; i--) n++
  return `${t}:${n}`
}

/** The index of the entry `ref` names in `times` (-1: none). */
const entryIndex = (times: ReadonlyArray<number>, ref: string | undefined): number => {
  if (ref === undefined) return -1
  const colon = ref.lastIndexOf(":")
  const t = Number(ref.slice(0, colon))
  const n = Number(ref.slice(colon + 1))
  if (colon <= 0 || !Number.isFinite(t) || !Number.isInteger(n) || n < 0) return -1
  let seen = 0
  for (let i = 0; i < times.length; i++) {
    if (times[i] !== t) continue
    if (seen === n) return i
    seen++
  }
  return -1
}

/** What a take of `cost` (default 1) would answer; consumes nothing. @internal */
export const slidingPeek = (
  stored: Stored | undefined,
  now: number,
  req: { readonly limit: number; readonly windowMs: number; readonly cost?: number | undefined },
  w: Writer
): StoreDecision =>
  forCost(
    algorithm.slidingPeek(slidingState(stored, req.limit, req.windowMs, w).state, now, req.limit, req.windowMs),
    req.cost,
    () => algorithm.slidingTake(slidingState(stored, req.limit, req.windowMs, w).state, now, req.limit, req.windowMs, req.cost ?? 1)
  )

/** The answer of an adjust: the state after it, as a peek sees it. */
const adjusted = (peeked: StoreDecision, applied: number): AdjustResult => ({
  applied,
  remaining: peeked.remaining,
  resetAfterMs: Math.max(0, peeked.resetAfterMs)
})

/**
 * Charge more or give back on the take's own entry (`ref`, see {@link entryRef}) while it counts:
 * its cost becomes `max(0, cost + delta)` (more than `limit` is debt until it leaves). An entry
 * that left the window, or an unknown `ref`, applies nothing. An emptied entry stays until it
 * leaves (so the ids of the entries beside it do not move).
 *
 * @internal
 */
export const slidingAdjust = (
  stored: Stored | undefined,
  now: number,
  req: { readonly limit: number; readonly windowMs: number },
  ref: string | undefined,
  delta: number,
  w: Writer
): Step<AdjustResult> => {
  const shift = stored === undefined || stored.o === w.self ? 0 : w.marginMs
  const { costs, times } = liveEntries(stored, now, req.windowMs, shift)
  const at = entryIndex(times, ref)
  const cost = costs[at] ?? 0
  const next = Math.max(0, cost + delta)
  if (stored === undefined || at < 0 || !Number.isFinite(delta) || next === cost) {
    return { result: adjusted(slidingPeek(stored, now, req, w), 0) }
  }
  costs[at] = next
  const value = { x: (times[times.length - 1] ?? now) + req.windowMs, o: stored.o, t: times, c: costs }
  return { result: adjusted(slidingPeek(value, now, req, w), next - cost), write: JSON.stringify(value) }
}

// ---------------------------------------------------------------------------------------------
// fixed window

/**
 * The counter of window length `windowMs` (fresh when none). Each length keeps its own counter,
 * so processes configured with different lengths (a rolling deploy) never reset each other's
 * count: each enforces its own limit on its own windows.
 *
 * @internal
 */
export const fixedState = (stored: Stored | undefined, windowMs: number): algorithm.FixedState => {
  for (const [w, s, n, l] of stored?.f ?? []) {
    if (w === windowMs) return { fwStart: s, fwCount: n, fwLimit: l, fwWindow: w }
  }
  return { fwStart: -Infinity, fwCount: 0, fwLimit: 0, fwWindow: 0 }
}

/** Counters of one key beyond this many lengths are dropped, the soonest to end first. @internal */
export const MAX_WINDOW_LENGTHS = 16

/** A fixed-window take; a stored window never moves backwards (another process's clock may be ahead). @internal */
export const fixedWindow = (
  stored: Stored | undefined,
  now: number,
  req: WindowRequest,
  w: Writer
): Step<StoreDecision> => {
  const state = fixedState(stored, req.windowMs)
  const start = algorithm.fixedStartForward(state, now, req.windowMs)
  const decision = algorithm.fixedTakeIn(state, start, now, req.limit, req.windowMs, req.cost)
  if (!decision.allowed) return { result: decision }
  const admitted = { ...decision, ref: String(start) }
  if (!(req.cost > 0)) return { result: admitted }
  return { result: admitted, write: fixedValue(stored, [state.fwWindow, state.fwStart, state.fwCount, state.fwLimit], now, w) }
}

/** The value holding `counter`, with the other lengths' counters that may still count. */
const fixedValue = (stored: Stored | undefined, counter: FixedEntry, now: number, w: Writer): string => {
  // the other lengths' counters that may still count (their ends are on their writers' clocks)
  const others = (stored?.f ?? [])
    .filter(([len, s]) => len !== counter[0] && s + len + w.marginMs > now)
    .sort((a, b) => (b[1] + b[0]) - (a[1] + a[0]))
    .slice(0, MAX_WINDOW_LENGTHS - 1)
  const windows: Array<FixedEntry> = [counter, ...others]
  let x = -Infinity
  for (const [len, s] of windows) x = Math.max(x, s + len)
  return JSON.stringify({ x, f: windows })
}

/** What a take of `cost` (default 1) would answer; consumes nothing. @internal */
export const fixedPeek = (
  stored: Stored | undefined,
  now: number,
  req: { readonly limit: number; readonly windowMs: number; readonly cost?: number | undefined }
): StoreDecision => {
  const state = fixedState(stored, req.windowMs)
  const start = algorithm.fixedStartForward(state, now, req.windowMs)
  return forCost(
    algorithm.fixedPeekIn(state, start, now, req.limit, req.windowMs),
    req.cost,
    () => algorithm.fixedTakeIn(state, start, now, req.limit, req.windowMs, req.cost ?? 1)
  )
}

/**
 * Charge more or give back in the window that took (`ref`: its start) while it is the current
 * one (the window a take now would count against): `count = max(0, count + delta)` (more than
 * `limit` is debt until the window ends). Another window, or an unreadable `ref`, applies nothing.
 *
 * @internal
 */
export const fixedAdjust = (
  stored: Stored | undefined,
  now: number,
  req: { readonly limit: number; readonly windowMs: number },
  ref: string | undefined,
  delta: number,
  w: Writer
): Step<AdjustResult> => {
  const state = fixedState(stored, req.windowMs)
  const start = algorithm.fixedStartForward(state, now, req.windowMs)
  const mine = state.fwStart === start && state.fwWindow === req.windowMs
  const count = mine ? state.fwCount : 0
  const next = Math.max(0, count + delta)
  const peekAt = (n: number) =>
    algorithm.fixedPeekIn({ fwStart: start, fwCount: n, fwLimit: req.limit, fwWindow: req.windowMs }, start, now, req.limit, req.windowMs)
  if (ref === undefined || ref.trim() === "" || Number(ref) !== start || !Number.isFinite(delta) || next === count) {
    return { result: adjusted(peekAt(count), 0) }
  }
  const counter: FixedEntry = [req.windowMs, start, next, mine ? state.fwLimit : req.limit]
  return { result: adjusted(peekAt(next), next - count), write: fixedValue(stored, counter, now, w) }
}

// ---------------------------------------------------------------------------------------------
// slots (leases)

/** @internal */
export const leasesOf = (stored: Stored | undefined): algorithm.Leases => new Map(stored?.h ?? [])

/** The leases as a value (`null`, a delete, when none is left). */
const writeLeases = (leases: algorithm.Leases): string | null =>
  leases.size === 0 ? null : JSON.stringify({ x: algorithm.leasesExpireAt(leases), h: [...leases] })

/** Grants (expired leases pruned) when the holder has a lease or fewer than `limit` are live. @internal */
export const acquireSlot = (stored: Stored | undefined, now: number, req: SlotRequest): AcquireStep => {
  const leases = leasesOf(stored)
  const decision = algorithm.leaseAcquire(leases, now, req.holder, req.limit, req.leaseMs)
  if (!decision.acquired) return { result: decision }
  return { result: decision, write: writeLeases(leases), grantedUntil: leases.get(req.holder) }
}

/** Not granted (the race given up): the live leases last read, this holder's excluded. @internal */
export const acquireRefusal = (
  stored: Stored | undefined,
  now: number,
  req: SlotRequest,
  retryAfterMs: number
): SlotDecision => {
  let active = 0
  let earliest = Infinity
  for (const [h, expiresAt] of leasesOf(stored)) {
    if (expiresAt <= now || h === req.holder) continue
    active++
    earliest = Math.min(earliest, expiresAt)
  }
  const full = active >= req.limit && earliest < Infinity
  return {
    acquired: false,
    limit: req.limit,
    active,
    retryAfterMs: full ? Math.max(earliest - now, retryAfterMs) : retryAfterMs
  }
}

/** Pushes a live lease to `now + leaseMs`; `false` (and it is dropped) when it expired. @internal */
export const renewSlot = (stored: Stored | undefined, now: number, req: SlotRequest): Step<boolean> => {
  const leases = leasesOf(stored)
  return algorithm.leaseRenew(leases, now, req.holder, req.leaseMs)
    ? { result: true, write: writeLeases(leases) }
    : { result: false }
}

/** What a release found: whether there was such a lease, and whether it still counted. @internal */
export interface Released {
  readonly found: boolean
  readonly live: boolean
}

/**
 * Removes `holder`'s lease (only the one expiring at `expiresAt` when given) and the expired ones.
 *
 * @internal
 */
export const releaseSlot = (
  stored: Stored | undefined,
  now: number,
  holder: string,
  expiresAt: number | undefined
): Step<Released> => {
  const leases = leasesOf(stored)
  const held = leases.get(holder)
  if (held === undefined || (expiresAt !== undefined && held !== expiresAt)) {
    return { result: { found: false, live: false } }
  }
  const live = algorithm.leaseRelease(leases, now, holder)
  for (const [h, e] of leases) if (e <= now) leases.delete(h)
  return { result: { found: true, live }, write: writeLeases(leases) }
}

/** @internal */
export const slotPeek = (stored: Stored | undefined, now: number, limit: number): StoreDecision =>
  algorithm.leasePeek(leasesOf(stored), now, limit)

// ---------------------------------------------------------------------------------------------
// composite takes

/**
 * `write` (a value this module builds: a JSON object) marked with the composite take's `nonce`
 * (see `Stored.n`); a delete or no write unchanged.
 *
 * @internal
 */
export const withNonce = (write: string | null | undefined, nonce: string): string | null | undefined =>
  typeof write === "string" && write.startsWith("{") && write.length > 2
    ? `{"n":${JSON.stringify(nonce)},${write.slice(1)}`
    : write
