/**
 * Property test of composite calls (issue 12): random sequences of composite takes (several
 * limits, the same one possibly twice), single takes, adjusts, peeks with a cost and time steps,
 * run on the memory store's table (`src/core/memory.ts`, the core functions of
 * `src/core/algorithm.ts` behind it) and on an exact reference model written here, independently:
 * each `(limiter, key)` is a plain array of the events admitted on it, and every answer is folded
 * from those arrays. Every decision, composite answer and adjust result must be identical.
 *
 * And the token bucket's guarantee, on what the store answered: the takes admitted on a bucket,
 * each at the instant its caller proceeds (a single take at `now + delayMs`, every take of a
 * composite call at `now + D`, the call's `delayMs`), never hold more than `burst + rate·t` cost
 * in any interval of length `t`. A give-back (an adjust that moved the bucket back) hands tokens
 * back by design, so the bound is checked over the takes admitted since the bucket's last one; a
 * give-back applies only while no reservation (nor debt) is outstanding, backlog `≤ burst·T`
 * (otherwise it applies nothing: a hole before a reserved slot would over-admit).
 *
 * Numbers are chosen so that floats are exact: token-bucket rates whose emission interval is a
 * whole number of milliseconds, integer windows, costs, deltas and times.
 */
import { assert, describe, it } from "#test/vitest"
import type { RateLimitStore } from "effect-rate-sync"
import { FastCheck as fc } from "#test/effect"
import { MemoryTable } from "../../src/core/memory.js"

type Decision = RateLimitStore.StoreDecision
type Composite = RateLimitStore.CompositeDecision
type AdjustResult = RateLimitStore.AdjustResult
type Take = RateLimitStore.RateTake

const clamp = (n: number, max: number): number => Math.min(max, Math.max(0, Math.floor(n)))

// ---------------------------------------------------------------------------------------------
// The reference model: admitted events per pair
// ---------------------------------------------------------------------------------------------

/** A token bucket: every admitted charge (a take's cost, an adjust's applied delta), in ms of emission. */
class BucketModel {
  readonly events: Array<{ readonly at: number; readonly ms: number }> = []
  constructor(readonly limiter: string, readonly T: number, readonly burst: number) {}

  /** The backlog at `now` (ms of emission not yet drained; 0 = full), folded from the events. */
  debt(now: number): number {
    let debt = 0
    let last = -Infinity
    for (const e of this.events) {
      debt = Math.max(0, debt - (e.at - last))
      last = e.at
      debt = Math.max(0, debt + e.ms)
    }
    return Math.max(0, debt - (now - last))
  }

  take(cost: number, maxWaitMs: number): Take {
    return { algorithm: "token_bucket", limiter: this.limiter, key: "", ratePerSecond: 1000 / this.T, burst: this.burst, cost, maxWaitMs }
  }

  remainingAt(debt: number): number {
    return clamp((this.burst * this.T - debt) / this.T, this.burst)
  }

  /**
   * A take on a backlog of `debt`, after `spent` of the same call on this bucket (charged at the
   * same instant as this one: a sum above the burst never fits); answers the decision and the
   * backlog after it.
   */
  decide(debt: number, cost: number, maxWait: number, spent = 0): readonly [Decision, number] {
    const { T, burst } = this
    const refused = (retryAfterMs: number): readonly [Decision, number] => [
      { allowed: false, limit: burst, remaining: this.remainingAt(debt), resetAfterMs: debt, retryAfterMs, delayMs: 0 },
      debt
    ]
    if (cost > burst || spent + cost > burst) return refused(Infinity)
    const overflow = debt + cost * T - burst * T
    const after = debt + cost * T
    if (overflow <= 0) {
      return [{ allowed: true, limit: burst, remaining: this.remainingAt(after), resetAfterMs: after, retryAfterMs: 0, delayMs: 0 }, after]
    }
    if (overflow <= maxWait) {
      return [{ allowed: true, limit: burst, remaining: 0, resetAfterMs: after, retryAfterMs: 0, delayMs: overflow }, after]
    }
    return refused(overflow)
  }

  peek(now: number, cost: number): Decision {
    const debt = this.debt(now)
    const remaining = this.remainingAt(debt)
    if (cost > this.burst) return { allowed: false, limit: this.burst, remaining, resetAfterMs: debt, retryAfterMs: Infinity, delayMs: 0 }
    const wait = debt + cost * this.T - this.burst * this.T
    return { allowed: wait <= 0, limit: this.burst, remaining, resetAfterMs: debt, retryAfterMs: wait <= 0 ? 0 : wait, delayMs: 0 }
  }

  adjust(now: number, delta: number): AdjustResult {
    const debt = this.debt(now)
    // A backlog past the burst: a reservation (or debt) is outstanding, a give-back applies nothing.
    if (delta < 0 && debt > this.burst * this.T) return { applied: 0, remaining: this.remainingAt(debt), resetAfterMs: debt }
    const after = Math.max(0, debt + delta * this.T)
    const applied = (after - debt) / this.T
    if (applied !== 0) this.events.push({ at: now, ms: after - debt })
    return { applied, remaining: this.remainingAt(after), resetAfterMs: after }
  }
}

/** A sliding window: every admitted entry `(at, cost, ref)`; an adjust changes its entry's cost. */
class SlidingModel {
  readonly events: Array<{ readonly at: number; cost: number; readonly ref: string }> = []
  constructor(readonly limiter: string, readonly limit: number, readonly window: number) {}

  take(cost: number): Take {
    return { algorithm: "sliding_window", limiter: this.limiter, key: "", limit: this.limit, windowMs: this.window, cost }
  }

  /** The entries counted at `now`, with `pending` more (earlier takes of the call) stamped `now`. */
  live(now: number, pending: number): ReadonlyArray<{ readonly at: number; readonly cost: number }> {
    const live: Array<{ readonly at: number; readonly cost: number }> = this.events.filter((e) => e.at + this.window > now)
    return pending > 0 ? [...live, { at: now, cost: pending }] : live
  }

  private resetAfter(live: ReadonlyArray<{ readonly at: number }>, now: number): number {
    return live.length === 0 ? 0 : Math.max(...live.map((e) => e.at)) + this.window - now
  }

  // The earliest instant the entries still counted leave room for `cost`.
  private retryAfter(live: ReadonlyArray<{ readonly at: number; readonly cost: number }>, now: number, cost: number): number {
    if (cost > this.limit) return Infinity
    let best = Infinity
    for (const candidate of live.map((e) => e.at + this.window)) {
      const still = live.filter((e) => e.at + this.window > candidate).reduce((n, e) => n + e.cost, 0)
      if (still + cost <= this.limit) best = Math.min(best, candidate - now)
    }
    return best
  }

  /** A take at `now` after `pending` of the call: the decision and the remaining/reset before it. */
  decide(now: number, pending: number, cost: number): Decision {
    const { limit, window } = this
    const live = this.live(now, pending)
    const used = live.reduce((n, e) => n + e.cost, 0)
    if (cost <= limit && used + cost <= limit) {
      return {
        allowed: true,
        limit,
        remaining: clamp(limit - used - cost, limit),
        resetAfterMs: cost > 0 ? window : this.resetAfter(live, now),
        retryAfterMs: 0,
        delayMs: 0
      }
    }
    return {
      allowed: false,
      limit,
      remaining: clamp(limit - used, limit),
      resetAfterMs: this.resetAfter(live, now),
      retryAfterMs: this.retryAfter(live, now, cost),
      delayMs: 0
    }
  }

  before(now: number, pending: number): readonly [number, number] {
    const live = this.live(now, pending)
    return [clamp(this.limit - live.reduce((n, e) => n + e.cost, 0), this.limit), this.resetAfter(live, now)]
  }

  peek(now: number, cost: number): Decision {
    const [remaining, resetAfterMs] = this.before(now, 0)
    const d = this.decide(now, 0, cost)
    return d.allowed ? { ...d, remaining, resetAfterMs } : d
  }

  adjust(now: number, delta: number, ref: string | undefined): AdjustResult {
    const own = this.events.find((e) => e.ref === ref && e.at + this.window > now)
    let applied = 0
    if (own !== undefined) {
      const next = Math.max(0, own.cost + delta)
      applied = next - own.cost
      own.cost = next
    }
    const [remaining, resetAfterMs] = this.before(now, 0)
    return { applied, remaining, resetAfterMs }
  }
}

/** A fixed window: every admitted charge `(window start, amount)` (takes and adjusts). */
class FixedModel {
  readonly events: Array<{ readonly start: number; readonly amount: number }> = []
  constructor(readonly limiter: string, readonly limit: number, readonly window: number) {}

  take(cost: number): Take {
    return { algorithm: "fixed_window", limiter: this.limiter, key: "", limit: this.limit, windowMs: this.window, cost }
  }

  start(now: number): number {
    return Math.floor(now / this.window) * this.window
  }

  count(start: number): number {
    return this.events.filter((e) => e.start === start).reduce((n, e) => n + e.amount, 0)
  }

  decide(now: number, pending: number, cost: number): Decision {
    const { limit } = this
    const start = this.start(now)
    const count = this.count(start) + pending
    const resetAfterMs = start + this.window - now
    if (count + cost <= limit) {
      return { allowed: true, limit, remaining: clamp(limit - count - cost, limit), resetAfterMs, retryAfterMs: 0, delayMs: 0, ref: String(start) }
    }
    return {
      allowed: false,
      limit,
      remaining: clamp(limit - count, limit),
      resetAfterMs,
      retryAfterMs: cost <= limit ? resetAfterMs : Infinity,
      delayMs: 0
    }
  }

  before(now: number, pending: number): readonly [number, number] {
    const start = this.start(now)
    return [clamp(this.limit - this.count(start) - pending, this.limit), start + this.window - now]
  }

  peek(now: number, cost: number): Decision {
    const { ref: _, ...d } = this.decide(now, 0, cost)
    const [remaining] = this.before(now, 0)
    return d.allowed ? { ...d, remaining } : d
  }

  adjust(now: number, delta: number, ref: string | undefined): AdjustResult {
    const start = this.start(now)
    const count = this.count(start)
    let applied = 0
    if (ref === String(start)) {
      applied = Math.max(0, count + delta) - count
      if (applied !== 0) this.events.push({ start, amount: applied })
    }
    return { applied, remaining: clamp(this.limit - count - applied, this.limit), resetAfterMs: start + this.window - now }
  }
}

type Model = BucketModel | SlidingModel | FixedModel

interface Pick {
  readonly pair: number
  readonly cost: number
  readonly maxWait: number
}

/**
 * A composite call on the models at `now`: the takes judged in order after the earlier admitted
 * ones of the call; all charged or none. An admitted call with a wait `D` (buckets only) books
 * every bucket at `now + D`, where its caller proceeds: the backlog after each take is
 * `max(backlog, D) + cost·T` (a take of cost 0 books nothing), its decision has `delayMs = D` and
 * its remaining from that backlog.
 */
const modelTakeAll = (models: ReadonlyArray<Model>, picks: ReadonlyArray<Pick>, now: number): Composite => {
  const bucketsOnly = picks.every((p) => models[p.pair] instanceof BucketModel)
  const maxWait = bucketsOnly ? Math.min(...picks.map((p) => p.maxWait)) : 0
  // Per pair: the debt (buckets) or the cost (windows) admitted so far in the call.
  const pending = new Map<number, number>()
  // Per bucket: the cost admitted on it so far in the call.
  const spent = new Map<number, number>()
  const decisions: Array<Decision> = []
  const before: Array<readonly [number, number]> = []
  for (const p of picks) {
    const m = models[p.pair]
    if (m === undefined) throw new Error("no such pair")
    if (m instanceof BucketModel) {
      const debt = pending.get(p.pair) ?? m.debt(now)
      before.push([m.remainingAt(debt), debt])
      const [d, after] = m.decide(debt, p.cost, maxWait, spent.get(p.pair) ?? 0)
      decisions.push(d)
      if (d.allowed) {
        pending.set(p.pair, after)
        spent.set(p.pair, (spent.get(p.pair) ?? 0) + p.cost)
      }
    } else {
      const admitted = pending.get(p.pair) ?? 0
      before.push(m.before(now, admitted))
      const d = m.decide(now, admitted, p.cost)
      decisions.push(d)
      if (d.allowed) pending.set(p.pair, admitted + p.cost)
    }
  }
  const allowed = decisions.every((d) => d.allowed)
  if (!allowed) {
    return {
      allowed: false,
      decisions: decisions.map((d, i) =>
        d.allowed
          ? { allowed: true, limit: d.limit, remaining: before[i]?.[0] ?? 0, resetAfterMs: before[i]?.[1] ?? 0, retryAfterMs: 0, delayMs: 0 }
          : d
      ),
      delayMs: 0
    }
  }
  const delayMs = Math.max(0, ...decisions.map((d) => d.delayMs))
  if (delayMs === 0) return { allowed: true, decisions, delayMs }
  // Booked at now + D: replay the buckets' charges from their backlog before the call.
  const booked = new Map<number, number>()
  return {
    allowed: true,
    decisions: picks.map((p, i) => {
      const m = models[p.pair]
      const d = decisions[i]
      if (!(m instanceof BucketModel) || d === undefined) throw new Error("a call with a wait holds only buckets")
      // a take of cost 0 books nothing: its backlog is left as it is
      const backlog = booked.get(p.pair) ?? m.debt(now)
      const after = p.cost > 0 ? Math.max(backlog, delayMs) + p.cost * m.T : backlog
      booked.set(p.pair, after)
      return { allowed: true, limit: m.burst, remaining: m.remainingAt(after), resetAfterMs: after, retryAfterMs: 0, delayMs }
    }),
    delayMs
  }
}

/**
 * Records an admitted call's charges on the models (sliding entries under the store's refs). A
 * bucket booked at `now + D` is charged the idle time up to it as well: its backlog becomes
 * `max(backlog, D) + cost·T` (a take of cost 0 books nothing).
 */
const commit = (models: ReadonlyArray<Model>, picks: ReadonlyArray<Pick>, now: number, actual: Composite): void => {
  picks.forEach((p, i) => {
    const m = models[p.pair]
    if (m instanceof BucketModel) {
      const debt = m.debt(now)
      if (p.cost > 0) m.events.push({ at: now, ms: Math.max(0, actual.delayMs - debt) + p.cost * m.T })
    } else if (m instanceof SlidingModel) {
      if (p.cost > 0) m.events.push({ at: now, cost: p.cost, ref: actual.decisions[i]?.ref ?? "" })
    } else if (m instanceof FixedModel) {
      m.events.push({ start: m.start(now), amount: p.cost })
    }
  })
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

// Rates whose emission interval is a whole number of milliseconds.
const exactRates = [1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 200, 250, 500, 1000] as const

const PAIRS = 5 // two buckets, two sliding windows, one fixed window

const pick = fc.record({
  pair: fc.integer({ min: 0, max: PAIRS - 1 }),
  cost: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 7 })),
  maxWait: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3000 }))
})

const step = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("advance" as const), ms: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 1500 })) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("all" as const), picks: fc.array(pick, { minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("single" as const), pick }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("adjust" as const),
      pair: fc.integer({ min: 0, max: PAIRS - 1 }),
      delta: fc.integer({ min: -4, max: 4 }),
      // Which ref: one the store gave (counted from the newest), none, or one it never gave.
      ref: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant("none" as const), fc.constant("bogus" as const))
    })
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("peek" as const), pair: fc.integer({ min: 0, max: PAIRS - 1 }), cost: fc.integer({ min: 0, max: 7 }) }) }
)

const scenario = fc.record({
  rates: fc.tuple(fc.integer({ min: 0, max: exactRates.length - 1 }), fc.integer({ min: 0, max: exactRates.length - 1 })),
  bursts: fc.tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 })),
  limits: fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 })),
  windows: fc.tuple(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 2000 })),
  start: fc.integer({ min: 0, max: 10_000_000 }),
  steps: fc.array(step, { minLength: 1, maxLength: 60 })
})
type Scenario = typeof scenario extends fc.Arbitrary<infer A> ? A : never

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

/** A take admitted on a bucket: the instant its caller proceeds, and its cost. */
interface Arrival {
  readonly at: number
  readonly cost: number
}

/**
 * The token bucket's guarantee over `arrivals`: in any interval `[a, b]`, at most
 * `burst + (b − a) / T` cost.
 */
const checkBound = (m: BucketModel, arrivals: ReadonlyArray<Arrival>, label: string): void => {
  const sorted = [...arrivals].sort((x, y) => x.at - y.at)
  for (let i = 0; i < sorted.length; i++) {
    let sum = 0
    for (let j = i; j < sorted.length; j++) {
      const from = sorted[i]
      const to = sorted[j]
      if (from === undefined || to === undefined) continue
      sum += to.cost
      const bound = m.burst + (to.at - from.at) / m.T
      assert.isTrue(
        sum <= bound + 1e-9,
        `${label}: ${m.limiter} admitted ${sum} in [${from.at}, ${to.at}], over burst ${m.burst} + rate·t = ${bound}`
      )
    }
  }
}

const withoutRefs = (c: Composite): Composite => ({
  ...c,
  decisions: c.decisions.map(({ ref: _, ...d }) => d)
})

const run = (c: Scenario): void => {
  const table = new MemoryTable(1_000_000, 1 << 30, 10_000, () => {})
  const rate = (i: number) => exactRates[i] ?? 1
  const models: ReadonlyArray<Model> = [
    new BucketModel("b0", 1000 / rate(c.rates[0]), c.bursts[0]),
    new BucketModel("b1", 1000 / rate(c.rates[1]), c.bursts[1]),
    new SlidingModel("s0", c.limits[0], c.windows[0]),
    new SlidingModel("s1", c.limits[1], c.windows[1]),
    new FixedModel("f0", c.limits[2], c.windows[2])
  ]
  const refs: Array<Array<string>> = models.map(() => [])
  // Per bucket: the takes admitted since its last give-back, at the instants their callers proceed.
  const arrivals: Array<Array<Arrival>> = models.map(() => [])
  const seen: Array<Set<string>> = models.map(() => new Set())
  let now = c.start
  const takeOf = (p: Pick): Take => {
    const m = models[p.pair]
    if (m === undefined) throw new Error("no such pair")
    return m instanceof BucketModel ? m.take(p.cost, p.maxWait) : m.take(p.cost)
  }
  const checkRefs = (picks: ReadonlyArray<Pick>, actual: Composite, label: string) => {
    picks.forEach((p, i) => {
      const d = actual.decisions[i]
      const m = models[p.pair]
      if (d === undefined || m === undefined) return
      if (!actual.allowed || m instanceof BucketModel) {
        assert.isUndefined(d.ref, `${label} #${i}: no ref`)
        return
      }
      assert.isString(d.ref, `${label} #${i}: a ref`)
      const ref = d.ref ?? ""
      if (m instanceof FixedModel) assert.strictEqual(ref, String(m.start(now)), `${label} #${i}: the window start`)
      else {
        assert.isFalse(seen[p.pair]?.has(ref), `${label} #${i}: ref ${ref} is new`)
        seen[p.pair]?.add(ref)
      }
      refs[p.pair]?.push(ref)
    })
  }
  const composite = (picks: ReadonlyArray<Pick>, actual: Composite, label: string) => {
    const expected = modelTakeAll(models, picks, now)
    assert.deepStrictEqual(withoutRefs(actual), withoutRefs(expected), label)
    checkRefs(picks, actual, label)
    if (!actual.allowed) return
    commit(models, picks, now, actual)
    for (const p of picks) {
      if (models[p.pair] instanceof BucketModel && p.cost > 0) arrivals[p.pair]?.push({ at: now + actual.delayMs, cost: p.cost })
    }
  }
  for (const [i, s] of c.steps.entries()) {
    const label = `step ${i} (${s.kind})`
    switch (s.kind) {
      case "advance":
        now += s.ms
        break
      case "all":
        composite(s.picks, table.takeAll(s.picks.map(takeOf), now), label)
        break
      case "single": {
        const t = takeOf(s.pick)
        const d = t.algorithm === "token_bucket"
          ? table.tokenBucket(t, now)
          : t.algorithm === "sliding_window"
          ? table.slidingWindow(t, now)
          : table.fixedWindow(t, now)
        composite([s.pick], { allowed: d.allowed, decisions: [d], delayMs: d.allowed ? d.delayMs : 0 }, label)
        break
      }
      case "adjust": {
        const m = models[s.pair]
        if (m === undefined) break
        const given = refs[s.pair] ?? []
        const ref = s.ref === "none"
          ? undefined
          : s.ref === "bogus"
          ? m instanceof FixedModel ? String(m.start(now) + m.window) : "123456789"
          : given[given.length - 1 - (s.ref % Math.max(1, given.length))]
        const take = m instanceof BucketModel ? m.take(1, 0) : m.take(1)
        const actual = table.adjust(ref === undefined ? { take, delta: s.delta } : { take, delta: s.delta, ref }, now)
        const expected = m instanceof BucketModel ? m.adjust(now, s.delta) : m.adjust(now, s.delta, ref)
        assert.deepStrictEqual(actual, expected, `${label}: ${m.limiter} ${s.delta} ref ${ref}`)
        if (m instanceof BucketModel && actual.applied < 0) {
          // Tokens handed back: the bound holds again from here on.
          checkBound(m, arrivals[s.pair] ?? [], label)
          arrivals[s.pair] = []
        }
        break
      }
      case "peek": {
        const m = models[s.pair]
        if (m === undefined) break
        const actual = m instanceof BucketModel
          ? table.peek({ algorithm: "token_bucket", limiter: m.limiter, key: "", ratePerSecond: 1000 / m.T, burst: m.burst, cost: s.cost }, now)
          : table.peek({
            algorithm: m instanceof SlidingModel ? "sliding_window" : "fixed_window",
            limiter: m.limiter,
            key: "",
            limit: m.limit,
            windowMs: m.window,
            cost: s.cost
          }, now)
        assert.deepStrictEqual(actual, m.peek(now, s.cost), `${label}: ${m.limiter} cost ${s.cost}`)
        break
      }
    }
  }
  models.forEach((m, i) => {
    if (m instanceof BucketModel) checkBound(m, arrivals[i] ?? [], "end")
  })
}

describe("composite calls = reference model (memory table)", () => {
  it.prop("takeAll, single takes, adjust, peek with a cost and time steps match the event model", [scenario], ([c]) => {
    run(c)
  }, { fastCheck: { numRuns: 400 } })

  it.prop("with many takes of one call on few pairs (duplicates)", [
    scenario.map((c) => ({
      ...c,
      steps: c.steps.map((s) =>
        s.kind === "all" ? { ...s, picks: [...s.picks, ...s.picks.map((p) => ({ ...p, cost: Math.min(p.cost, 2) }))] } : s
      )
    }))
  ], ([c]) => {
    run(c)
  }, { fastCheck: { numRuns: 200 } })

  // Only the two buckets, waits allowed: composite calls that reserve behind the slower bucket,
  // single takes that reserve behind them, no give-back (the bound then holds over every take).
  const onBuckets = (p: Pick): Pick => ({ ...p, pair: p.pair % 2, maxWait: p.maxWait + 1000 })
  it.prop("buckets only, no give-backs: every bucket's bound over all its admitted takes", [
    scenario.map((c) => ({
      ...c,
      steps: c.steps.map((s) =>
        s.kind === "adjust"
          ? { ...s, delta: Math.abs(s.delta) }
          : s.kind === "all"
          ? { ...s, picks: s.picks.map(onBuckets) }
          : s.kind === "single"
          ? { ...s, pick: onBuckets(s.pick) }
          : s
      )
    }))
  ], ([c]) => {
    run(c)
  }, { fastCheck: { numRuns: 400 } })
})
