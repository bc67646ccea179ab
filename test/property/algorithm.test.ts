/**
 * Property tests: random sequences of (advance time, cost, maybe maxWait, maybe peek) run against
 * the memory store and against exact reference models written here independently of
 * `src/core/algorithm.ts`; every decision must be identical.
 *
 * Numbers are chosen so that floats are exact: token-bucket rates whose emission interval
 * `1000 / rate` is a whole number of milliseconds, integer windows, integer costs and times.
 *
 * Each property runs twice: many runs on a hand-driven `Clock` (the store reads Effect's `Clock`,
 * whichever it is), and a few runs on `TestClock` itself (each `TestClock.adjust` waits for the
 * scheduler through real timers, ~3 ms, which is too slow for thousands of steps).
 */
import { assert, describe, it } from "#test/vitest"
import { Clock, Duration, Effect } from "effect"
import { MemoryStore, type RateLimitStore } from "effect-rate-sync"
import { FastCheck as fc, TestClock } from "#test/effect"
import * as T from "#test/effect"

type Decision = RateLimitStore.StoreDecision

// ---------------------------------------------------------------------------------------------
// Time drivers
// ---------------------------------------------------------------------------------------------

interface Driver {
  readonly advance: (ms: number) => Effect.Effect<void>
  readonly run: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

const testClockDriver: Driver = {
  advance: (ms) => (ms > 0 ? TestClock.adjust(Duration.millis(ms)) : Effect.void),
  run: (self) => self
}

const manualDriver = (): Driver => {
  let now = 0
  const clock = T.clockOf({ millis: () => now, sleep: () => Effect.never })
  return {
    advance: (ms) =>
      Effect.sync(() => {
        now += ms
      }),
    run: (self) => T.withClock(self, clock)
  }
}

// ---------------------------------------------------------------------------------------------
// Reference models (exact, integer arithmetic)
// ---------------------------------------------------------------------------------------------

/**
 * Token bucket as a meter: `debt` is the backlog in milliseconds of emission (0 when full), which
 * drains one millisecond per millisecond; a request of `cost` adds `cost·T`; the bucket holds
 * `burst·T`. A request that would overflow waits until enough has drained (within maxWait).
 */
class MeterModel {
  private debt = 0
  private last = 0
  constructor(private readonly T: number, private readonly burst: number) {}

  private drain(now: number) {
    this.debt = Math.max(0, this.debt - (now - this.last))
    this.last = now
  }

  private remaining() {
    return Math.min(this.burst, Math.max(0, Math.floor((this.burst * this.T - this.debt) / this.T)))
  }

  take(now: number, cost: number, maxWait: number): Decision {
    this.drain(now)
    const limit = this.burst
    if (cost > this.burst) {
      return { allowed: false, limit, remaining: this.remaining(), resetAfterMs: this.debt, retryAfterMs: Infinity, delayMs: 0 }
    }
    const overflow = this.debt + cost * this.T - this.burst * this.T
    if (overflow <= 0) {
      this.debt += cost * this.T
      return { allowed: true, limit, remaining: this.remaining(), resetAfterMs: this.debt, retryAfterMs: 0, delayMs: 0 }
    }
    if (overflow <= maxWait) {
      this.debt += cost * this.T
      return { allowed: true, limit, remaining: 0, resetAfterMs: this.debt, retryAfterMs: 0, delayMs: overflow }
    }
    return { allowed: false, limit, remaining: this.remaining(), resetAfterMs: this.debt, retryAfterMs: overflow, delayMs: 0 }
  }

  peek(now: number): Decision {
    this.drain(now)
    const overflow = this.debt + this.T - this.burst * this.T
    const allowed = overflow <= 0
    return {
      allowed,
      limit: this.burst,
      remaining: this.remaining(),
      resetAfterMs: this.debt,
      retryAfterMs: allowed ? 0 : overflow,
      delayMs: 0
    }
  }
}

/** Sliding window: the plain list of admitted (time, cost). */
class LogModel {
  readonly admitted: Array<{ readonly at: number; readonly cost: number }> = []
  constructor(private readonly limit: number, private readonly window: number) {}

  private live(now: number) {
    return this.admitted.filter((e) => e.at + this.window > now)
  }

  private decide(now: number, cost: number, commit: boolean): Decision {
    const { limit, window } = this
    const live = this.live(now)
    const used = live.reduce((n, e) => n + e.cost, 0)
    const resetAfter = (entries: ReadonlyArray<{ readonly at: number }>) =>
      entries.length === 0 ? 0 : Math.max(...entries.map((e) => e.at)) + window - now
    if (cost > limit) {
      return { allowed: false, limit, remaining: limit - used, resetAfterMs: resetAfter(live), retryAfterMs: Infinity, delayMs: 0 }
    }
    if (used + cost <= limit) {
      if (commit) this.admitted.push({ at: now, cost })
      const after = commit ? [...live, { at: now, cost }] : live
      return {
        allowed: true,
        limit,
        remaining: limit - used - (commit ? cost : 0),
        resetAfterMs: resetAfter(after),
        retryAfterMs: 0,
        delayMs: 0
      }
    }
    // The earliest instant at which the entries still counted leave room for `cost`.
    let retryAfterMs = Infinity
    for (const candidate of live.map((e) => e.at + window)) {
      const stillCounted = live.filter((e) => e.at + window > candidate).reduce((n, e) => n + e.cost, 0)
      if (stillCounted + cost <= limit) retryAfterMs = Math.min(retryAfterMs, candidate - now)
    }
    return { allowed: false, limit, remaining: limit - used, resetAfterMs: resetAfter(live), retryAfterMs, delayMs: 0 }
  }

  take(now: number, cost: number): Decision {
    return this.decide(now, cost, true)
  }

  peek(now: number): Decision {
    return this.decide(now, 1, false)
  }
}

/** Fixed window: a counter per window index. */
class CounterModel {
  private readonly counts = new Map<number, number>()
  constructor(private readonly limit: number, private readonly window: number) {}

  take(now: number, cost: number, commit = true): Decision {
    const { limit, window } = this
    const index = Math.floor(now / window)
    const count = this.counts.get(index) ?? 0
    const resetAfterMs = (index + 1) * window - now
    if (count + cost <= limit) {
      if (commit) this.counts.set(index, count + cost)
      return { allowed: true, limit, remaining: limit - count - (commit ? cost : 0), resetAfterMs, retryAfterMs: 0, delayMs: 0 }
    }
    return {
      allowed: false,
      limit,
      remaining: limit - count,
      resetAfterMs,
      retryAfterMs: cost <= limit ? resetAfterMs : Infinity,
      delayMs: 0
    }
  }

  peek(now: number): Decision {
    return this.take(now, 1, false)
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

// Rates whose emission interval is a whole number of milliseconds.
const exactRates = [1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 200, 250, 500, 1000] as const

const step = (maxAdvance: number, maxCost: number) =>
  fc.record({
    advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: maxAdvance }), fc.integer({ min: 0, max: 20 })),
    cost: fc.integer({ min: 1, max: maxCost }),
    maxWait: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4 * maxAdvance })),
    peek: fc.boolean()
  })

const tokenBucketCase = (maxSteps: number) =>
  fc.record({ rateIndex: fc.integer({ min: 0, max: exactRates.length - 1 }), burst: fc.integer({ min: 1, max: 6 }) })
  .chain(({ burst, rateIndex }) => {
    const rate = exactRates[rateIndex] ?? 1
    return fc.record({
      rate: fc.constant(rate),
      burst: fc.constant(burst),
      start: fc.integer({ min: 0, max: 10_000_000 }),
      steps: fc.array(step(3 * (1000 / rate), burst + 1), { minLength: 1, maxLength: maxSteps })
    })
  })
type TokenBucketCase = typeof tokenBucketCase extends (n: number) => fc.Arbitrary<infer A> ? A : never

const windowCase = (maxSteps: number) =>
  fc.record({ limit: fc.integer({ min: 1, max: 8 }), window: fc.integer({ min: 1, max: 2000 }) })
  .chain(({ limit, window }) =>
    fc.record({
      limit: fc.constant(limit),
      window: fc.constant(window),
      start: fc.integer({ min: 0, max: 10_000_000 }),
      steps: fc.array(step(Math.ceil(window / 2), limit + 1), { minLength: 1, maxLength: maxSteps })
    })
  )
type WindowCase = typeof windowCase extends (n: number) => fc.Arbitrary<infer A> ? A : never

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const tokenBucketProperty = (driver: Driver, c: TokenBucketCase) =>
  driver.run(
    Effect.gen(function*() {
      // Move to the start first, so the store's time begins at the case's start.
      yield* driver.advance(c.start)
      const store = yield* MemoryStore.make()
      const limiter = crypto.randomUUID()
      const T = 1000 / c.rate
      const model = new MeterModel(T, c.burst)
      let now = c.start
      // Instants at which admitted costs proceed (now + delayMs).
      const proceeds: Array<{ readonly at: number; readonly cost: number }> = []
      for (const [i, s] of c.steps.entries()) {
        yield* driver.advance(s.advance)
        now += s.advance
        assert.strictEqual(yield* Clock.currentTimeMillis, now)
        if (s.peek) {
          const actual = yield* store.peek({ algorithm: "token_bucket", limiter, key: "", ratePerSecond: c.rate, burst: c.burst })
          assert.deepStrictEqual(actual, model.peek(now), `peek at step ${i}`)
        }
        const actual = yield* store.tokenBucket({
          limiter,
          key: "",
          ratePerSecond: c.rate,
          burst: c.burst,
          cost: s.cost,
          maxWaitMs: s.maxWait
        })
        assert.deepStrictEqual(actual, model.take(now, s.cost, s.maxWait), `take at step ${i}`)
        if (actual.allowed) proceeds.push({ at: now + actual.delayMs, cost: s.cost })
      }
      // GCRA bound: within every interval [a, b], admitted cost <= burst + rate·(b − a).
      proceeds.sort((x, y) => x.at - y.at)
      for (let i = 0; i < proceeds.length; i++) {
        let total = 0
        const a = proceeds[i]?.at ?? 0
        for (let j = i; j < proceeds.length; j++) {
          const b = proceeds[j]?.at ?? 0
          total += proceeds[j]?.cost ?? 0
          assert.isTrue(total * T <= c.burst * T + (b - a), `${total} admitted within [${a}, ${b}]`)
        }
      }
    })
  ).pipe(Effect.scoped)

const slidingWindowProperty = (driver: Driver, c: WindowCase) =>
  driver.run(
    Effect.gen(function*() {
      // Move to the start first, so the store's time begins at the case's start.
      yield* driver.advance(c.start)
      const store = yield* MemoryStore.make()
      const limiter = crypto.randomUUID()
      const model = new LogModel(c.limit, c.window)
      const request = { limiter, key: "", limit: c.limit, windowMs: c.window }
      let now = c.start
      const admitted: Array<{ readonly at: number; readonly cost: number }> = []
      for (const [i, s] of c.steps.entries()) {
        yield* driver.advance(s.advance)
        now += s.advance
        if (s.peek) {
          const actual = yield* store.peek({ algorithm: "sliding_window", ...request })
          assert.deepStrictEqual(actual, model.peek(now), `peek at step ${i}`)
        }
        const { ref, ...actual } = yield* store.slidingWindow({ ...request, cost: s.cost })
        assert.deepStrictEqual(actual, model.take(now, s.cost), `take at step ${i}`)
        // an admitted window take names its charge for adjust (the models have no refs)
        if (actual.allowed) assert.isString(ref)
        if (actual.allowed) admitted.push({ at: now, cost: s.cost })
      }
      // Exactness: no half-open interval [a, a + window) holds more than limit.
      for (const { at: a } of admitted) {
        const held = admitted.filter((e) => e.at >= a && e.at < a + c.window).reduce((n, e) => n + e.cost, 0)
        assert.isTrue(held <= c.limit, `[${a}, ${a + c.window}) holds ${held}`)
      }
    })
  ).pipe(Effect.scoped)

const fixedWindowProperty = (driver: Driver, c: WindowCase) =>
  driver.run(
    Effect.gen(function*() {
      // Move to the start first, so the store's time begins at the case's start.
      yield* driver.advance(c.start)
      const store = yield* MemoryStore.make()
      const limiter = crypto.randomUUID()
      const model = new CounterModel(c.limit, c.window)
      const request = { limiter, key: "", limit: c.limit, windowMs: c.window }
      let now = c.start
      for (const [i, s] of c.steps.entries()) {
        yield* driver.advance(s.advance)
        now += s.advance
        if (s.peek) {
          const actual = yield* store.peek({ algorithm: "fixed_window", ...request })
          assert.deepStrictEqual(actual, model.peek(now), `peek at step ${i}`)
        }
        const { ref, ...actual } = yield* store.fixedWindow({ ...request, cost: s.cost })
        assert.deepStrictEqual(actual, model.take(now, s.cost), `take at step ${i}`)
        if (actual.allowed) assert.isString(ref)
      }
    })
  ).pipe(Effect.scoped)

const many = { fastCheck: { numRuns: 300 } }
// TestClock runs: fewer, shorter sequences.
const few = { fastCheck: { numRuns: 40 } }

describe("memory store = reference models (hand-driven Clock)", () => {
  it.effect.prop("token bucket (GCRA) matches the meter model and its bound", { c: tokenBucketCase(60) }, ({ c }) =>
    tokenBucketProperty(manualDriver(), c), many)
  it.effect.prop("sliding window matches the log model and is exact", { c: windowCase(60) }, ({ c }) =>
    slidingWindowProperty(manualDriver(), c), many)
  it.effect.prop("fixed window matches the counter model", { c: windowCase(60) }, ({ c }) =>
    fixedWindowProperty(manualDriver(), c), many)
})

describe("memory store = reference models (TestClock)", () => {
  it.effect.prop("token bucket (GCRA)", { c: tokenBucketCase(30) }, ({ c }) => tokenBucketProperty(testClockDriver, c), few)
  it.effect.prop("sliding window", { c: windowCase(30) }, ({ c }) => slidingWindowProperty(testClockDriver, c), few)
  it.effect.prop("fixed window", { c: windowCase(30) }, ({ c }) => fixedWindowProperty(testClockDriver, c), few)
})
