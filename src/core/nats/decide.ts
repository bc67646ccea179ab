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
import type { SlotDecision, SlotRequest, StoreDecision, TokenBucketRequest, WindowRequest } from "../spi.js"
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

/** A GCRA take over the stored arrival time (the owner and skew-margin rules above). @internal */
export const tokenBucket = (
  stored: Stored | undefined,
  now: number,
  req: TokenBucketRequest,
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
    return next > now ? { result: decision, write: JSON.stringify({ x: next, o: w.self }) } : { result: decision }
  }
  const bound = stored.o === "" ? stored.x + w.marginMs : stored.x
  const exact = Math.max(bound, proceeds) + slot
  if (!(exact > now)) return { result: decision }
  return { result: decision, write: JSON.stringify(handOff(stored, decision, now, proceeds, bound, exact, w)) }
}

/** @internal */
export const tokenBucketPeek = (
  stored: Stored | undefined,
  now: number,
  req: { readonly ratePerSecond: number; readonly burst: number },
  w: Writer
): StoreDecision => algorithm.gcraPeek(judgedTat(stored, w), now, req.ratePerSecond, req.burst)

// ---------------------------------------------------------------------------------------------
// sliding window

/** The entries as this instance judges them (another writer's shifted `marginMs` later), and the shift. @internal */
export const slidingState = (stored: Stored | undefined, limit: number, windowMs: number, w: Writer) => {
  const shift = stored === undefined || stored.o === w.self ? 0 : w.marginMs
  const times = stored?.t !== undefined ? stored.t.map((t) => t + shift) : []
  const costs = stored?.c !== undefined ? [...stored.c] : []
  let total = 0
  for (const c of costs) total += c
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
  if (last >= 0 && shift === 0 && (times[last] ?? 0) >= now) costs[last] = (costs[last] ?? 0) + req.cost
  else {
    times.push(Math.max(now, times[last] ?? -Infinity))
    costs.push(req.cost)
  }
  const owner = last < 0 || shift === 0 ? w.self : ""
  const newest = times[times.length - 1] ?? now
  return { result: decision, write: JSON.stringify({ x: newest + req.windowMs, o: owner, t: times, c: costs }) }
}

/** @internal */
export const slidingPeek = (
  stored: Stored | undefined,
  now: number,
  req: { readonly limit: number; readonly windowMs: number },
  w: Writer
): StoreDecision =>
  algorithm.slidingPeek(slidingState(stored, req.limit, req.windowMs, w).state, now, req.limit, req.windowMs)

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
  if (!decision.allowed || !(req.cost > 0)) return { result: decision }
  // the other lengths' counters that may still count (their ends are on their writers' clocks)
  const others = (stored?.f ?? [])
    .filter(([len, s]) => len !== req.windowMs && s + len + w.marginMs > now)
    .sort((a, b) => (b[1] + b[0]) - (a[1] + a[0]))
    .slice(0, MAX_WINDOW_LENGTHS - 1)
  const windows: Array<FixedEntry> = [[state.fwWindow, state.fwStart, state.fwCount, state.fwLimit], ...others]
  let x = -Infinity
  for (const [len, s] of windows) x = Math.max(x, s + len)
  return { result: decision, write: JSON.stringify({ x, f: windows }) }
}

/** @internal */
export const fixedPeek = (
  stored: Stored | undefined,
  now: number,
  req: { readonly limit: number; readonly windowMs: number }
): StoreDecision => {
  const state = fixedState(stored, req.windowMs)
  return algorithm.fixedPeekIn(state, algorithm.fixedStartForward(state, now, req.windowMs), now, req.limit, req.windowMs)
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
