/**
 * THE store conformance suite: one body of cases that every `RateLimitStore` must pass unchanged.
 *
 * ```ts
 * runStoreSuite("memory", MemoryStore.layer(), { clock: "test" })   // store reads Effect's Clock
 * runStoreSuite("redis", RedisStore.layer(...), { clock: "live" })  // store has its own clock
 * ```
 *
 * - `clock: "test"`: the store reads Effect's `Clock`; cases move time with `TestClock.adjust`
 *   (relative to `Clock.currentTimeMillis`, since the block shares one TestClock) and assert exact
 *   numbers.
 * - `clock: "live"`: the store decides with its own clock (Redis `TIME`, Postgres
 *   `clock_timestamp()`); cases run on real time (the block excludes the test services, the
 *   equivalent of `it.live`), sleep real milliseconds, and assert only the promised behaviour with
 *   generous bounds, never exact timings.
 *
 * Every case uses fresh limiter ids, so cases can share one store.
 */
import { assert, layer } from "#test/vitest"
import { Clock, Duration, Effect, type Layer } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { TestClock } from "#test/effect"

type Store = RateLimitStore.RateLimitStoreService
type Decision = RateLimitStore.StoreDecision
type SlotDecision = RateLimitStore.SlotDecision

/** How a case moves time and how strict its timing assertions are. */
export interface SuiteTime {
  /** `true` under TestClock: timings are asserted exactly. */
  readonly exact: boolean
  /** Lets `ms` pass: `TestClock.adjust` (test) or a real sleep (live). */
  readonly advance: (ms: number) => Effect.Effect<void>
}

/** TestClock time. */
export const testTime: SuiteTime = { exact: true, advance: (ms) => TestClock.adjust(Duration.millis(ms)) }
/** Real time. */
export const liveTime: SuiteTime = { exact: false, advance: (ms) => Effect.sleep(Duration.millis(ms)) }

/** A fresh id, unique per test. */
export const fresh = (label: string): string => `${label}-${crypto.randomUUID()}`

/** One conformance case, reusable by other suites. */
export interface StoreCase {
  readonly name: string
  readonly run: (time: SuiteTime) => Effect.Effect<void, unknown, RateLimitStore.RateLimitStore>
}

// ---------------------------------------------------------------------------------------------
// Checks applied to every answer
// ---------------------------------------------------------------------------------------------

/** The invariants of every `StoreDecision`, whatever the algorithm. */
export const checkDecision = (d: Decision, label: string): Decision => {
  for (const field of ["limit", "remaining", "resetAfterMs", "retryAfterMs", "delayMs"] as const) {
    assert.isFalse(Number.isNaN(d[field]), `${label}: ${field} is NaN`)
  }
  assert.isTrue(Number.isInteger(d.remaining), `${label}: remaining ${d.remaining} is not a whole number`)
  assert.isTrue(d.remaining >= 0 && d.remaining <= d.limit, `${label}: remaining ${d.remaining} outside [0, ${d.limit}]`)
  assert.isTrue(d.resetAfterMs >= 0 && Number.isFinite(d.resetAfterMs), `${label}: resetAfterMs ${d.resetAfterMs}`)
  assert.isTrue(d.delayMs >= 0 && Number.isFinite(d.delayMs), `${label}: delayMs ${d.delayMs}`)
  if (d.allowed) {
    assert.strictEqual(d.retryAfterMs, 0, `${label}: allowed with retryAfterMs ${d.retryAfterMs}`)
  } else {
    assert.isTrue(d.retryAfterMs > 0, `${label}: refused with retryAfterMs ${d.retryAfterMs}`)
    assert.strictEqual(d.delayMs, 0, `${label}: refused with delayMs ${d.delayMs}`)
  }
  return d
}

/** The invariants of every `SlotDecision`. */
export const checkSlot = (d: SlotDecision, label: string): SlotDecision => {
  assert.isTrue(Number.isInteger(d.active) && d.active >= 0, `${label}: active ${d.active}`)
  if (d.acquired) {
    assert.strictEqual(d.retryAfterMs, 0, `${label}: acquired with retryAfterMs ${d.retryAfterMs}`)
    assert.isTrue(d.active >= 1, `${label}: acquired with active ${d.active}`)
  } else {
    assert.isTrue(d.retryAfterMs > 0, `${label}: refused with retryAfterMs ${d.retryAfterMs}`)
  }
  return d
}

const EPS = 1e-6

/** Exact (test clock: equal to within float noise) or bounded (live: in `(min, max]`). */
const assertMs = (time: SuiteTime, actual: number, exact: number, label: string, min = 0, max = exact): void => {
  if (time.exact) {
    assert.isTrue(Math.abs(actual - exact) <= EPS, `${label}: expected ${exact} ms, got ${actual}`)
  } else {
    assert.isTrue(actual > min - EPS && actual <= max + EPS, `${label}: expected (${min}, ${max}] ms, got ${actual}`)
  }
}

/** Exact under the test clock; under real time only checked against `atLeast` (time refills). */
const assertRemaining = (time: SuiteTime, d: Decision, exact: number, label: string): void => {
  if (time.exact) assert.strictEqual(d.remaining, exact, `${label}: remaining`)
  else assert.isTrue(d.remaining >= exact, `${label}: remaining ${d.remaining} < ${exact}`)
}

// ---------------------------------------------------------------------------------------------
// Store accessors (every answer is checked)
// ---------------------------------------------------------------------------------------------

const withStore = <A, E>(f: (store: Store) => Effect.Effect<A, E>) => Effect.flatMap(RateLimitStore.RateLimitStore, f)

interface TbParams {
  readonly rate: number
  readonly burst: number
  readonly cost?: number
  readonly maxWaitMs?: number
}
/** One token-bucket take, checked. */
export const takeTb = (limiter: string, key: string, p: TbParams) =>
  withStore((s) =>
    s.tokenBucket({ limiter, key, ratePerSecond: p.rate, burst: p.burst, cost: p.cost ?? 1, maxWaitMs: p.maxWaitMs ?? 0 })
  ).pipe(Effect.map((d) => checkDecision(d, `tokenBucket ${limiter}/${key}`)))

interface WindowParams {
  readonly limit: number
  readonly windowMs: number
  readonly cost?: number
}
/** One sliding-window take, checked. */
export const takeSw = (limiter: string, key: string, p: WindowParams) =>
  withStore((s) => s.slidingWindow({ limiter, key, limit: p.limit, windowMs: p.windowMs, cost: p.cost ?? 1 })).pipe(
    Effect.map((d) => checkDecision(d, `slidingWindow ${limiter}/${key}`))
  )
/** One fixed-window take, checked. */
export const takeFw = (limiter: string, key: string, p: WindowParams) =>
  withStore((s) => s.fixedWindow({ limiter, key, limit: p.limit, windowMs: p.windowMs, cost: p.cost ?? 1 })).pipe(
    Effect.map((d) => checkDecision(d, `fixedWindow ${limiter}/${key}`))
  )

interface SlotParams {
  readonly holder: string
  readonly limit: number
  readonly leaseMs: number
}
/** Slot operations, checked. */
export const acquireSlot = (limiter: string, key: string, p: SlotParams) =>
  withStore((s) => s.acquireSlot({ limiter, key, ...p })).pipe(Effect.map((d) => checkSlot(d, `acquireSlot ${limiter}/${key}`)))
export const renewSlot = (limiter: string, key: string, p: SlotParams) =>
  withStore((s) => s.renewSlot({ limiter, key, ...p }))
export const releaseSlot = (limiter: string, key: string, p: SlotParams) =>
  withStore((s) => s.releaseSlot({ limiter, key, ...p }))

/** Peeks, checked. */
export const peekTb = (limiter: string, key: string, rate: number, burst: number) =>
  withStore((s) => s.peek({ algorithm: "token_bucket", limiter, key, ratePerSecond: rate, burst })).pipe(
    Effect.map((d) => checkDecision(d, `peek token_bucket ${limiter}/${key}`))
  )
export const peekWindow = (
  algorithm: "sliding_window" | "fixed_window",
  limiter: string,
  key: string,
  limit: number,
  windowMs: number
) =>
  withStore((s) => s.peek({ algorithm, limiter, key, limit, windowMs })).pipe(
    Effect.map((d) => checkDecision(d, `peek ${algorithm} ${limiter}/${key}`))
  )
export const peekSlots = (limiter: string, key: string, limit: number) =>
  withStore((s) => s.peek({ algorithm: "concurrency", limiter, key, limit })).pipe(
    Effect.map((d) => checkDecision(d, `peek concurrency ${limiter}/${key}`))
  )

const reset = (limiter: string, key?: string) => withStore((s) => (key === undefined ? s.reset(limiter) : s.reset(limiter, key)))

/** Under the test clock, moves time to the start of the next `windowMs`-aligned window. */
const alignToWindow = (time: SuiteTime, windowMs: number) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const into = now % windowMs
    if (into !== 0) yield* time.advance(windowMs - into)
  })

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

// Live margins: real time between two store calls stays far below these.
const MARGIN = 30

/** Every conformance case. */
export const storeCases: ReadonlyArray<StoreCase> = [
  {
    name: "initialize is idempotent and the engine is named",
    run: () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        yield* store.initialize
        yield* store.initialize
        assert.isTrue(store.engine.length > 0)
        assert.strictEqual(store[RateLimitStore.TypeId], RateLimitStore.TypeId)
      })
  },

  {
    name: "token bucket: a full burst, then refill at the rate",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("tb-burst")
        const p = { rate: 4, burst: 3 } // T = 250 ms
        const first = yield* takeTb(l, "", p)
        assert.isTrue(first.allowed)
        assert.strictEqual(first.limit, 3)
        assertRemaining(time, first, 2, "take 1")
        assertMs(time, first.resetAfterMs, 250, "take 1 resetAfter", 0, 250)
        const second = yield* takeTb(l, "", p)
        const third = yield* takeTb(l, "", p)
        assert.isTrue(second.allowed && third.allowed)
        assertRemaining(time, second, 1, "take 2")
        assertRemaining(time, third, 0, "take 3")
        assertMs(time, third.resetAfterMs, 750, "take 3 resetAfter", 500, 750)
        const refused = yield* takeTb(l, "", p)
        assert.isFalse(refused.allowed)
        assert.strictEqual(refused.remaining, 0)
        assertMs(time, refused.retryAfterMs, 250, "refused retryAfter")
        assertMs(time, refused.resetAfterMs, 750, "refused resetAfter", 500, 750)
        if (time.exact) {
          yield* time.advance(249)
          const still = yield* takeTb(l, "", p)
          assert.isFalse(still.allowed)
          assertMs(time, still.retryAfterMs, 1, "1 ms before the token")
          yield* time.advance(1)
        } else {
          yield* time.advance(refused.retryAfterMs + MARGIN)
        }
        const refilled = yield* takeTb(l, "", p)
        assert.isTrue(refilled.allowed, "one token is back after T")
        assert.strictEqual(refilled.delayMs, 0)
        // After burst·T of idleness the bucket is full again: three more, not four.
        yield* time.advance(750 + (time.exact ? 0 : MARGIN))
        const again = [yield* takeTb(l, "", p), yield* takeTb(l, "", p), yield* takeTb(l, "", p)]
        assert.deepStrictEqual(again.map((d) => d.allowed), [true, true, true])
        assert.isFalse((yield* takeTb(l, "", p)).allowed, "the bucket never holds more than burst")
      })
  },

  {
    name: "token bucket: a reservation answers its delay and later requests queue behind it",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("tb-reserve")
        const p = { rate: 2, burst: 1 } // T = 500 ms
        const now = yield* takeTb(l, "", { ...p, maxWaitMs: 2000 })
        assert.isTrue(now.allowed)
        assert.strictEqual(now.delayMs, 0)
        const r1 = yield* takeTb(l, "", { ...p, maxWaitMs: 2000 })
        assert.isTrue(r1.allowed, "reserved")
        assert.strictEqual(r1.remaining, 0)
        assertMs(time, r1.delayMs, 500, "first reservation delay")
        assertMs(time, r1.resetAfterMs, 1000, "first reservation resetAfter", 500, 1000)
        const r2 = yield* takeTb(l, "", { ...p, maxWaitMs: 2000 })
        assert.isTrue(r2.allowed, "reserved behind the first")
        assertMs(time, r2.delayMs, 1000, "second reservation delay", 500, 1000)
        assert.isTrue(r2.delayMs > r1.delayMs, "reservations queue in order")
        const tooFar = yield* takeTb(l, "", { ...p, maxWaitMs: 1000 })
        assert.isFalse(tooFar.allowed, "a slot beyond maxWait is refused")
        assertMs(time, tooFar.retryAfterMs, 1500, "retryAfter behind two reservations", 1000, 1500)
        const noWait = yield* takeTb(l, "", p)
        assert.isFalse(noWait.allowed)
        if (time.exact) {
          // Refusals reserved nothing: the next free slot is still at 1500.
          yield* time.advance(500)
          const later = yield* takeTb(l, "", p)
          assert.isFalse(later.allowed, "the reservations hold the tokens that refilled")
          assertMs(time, later.retryAfterMs, 1000, "retryAfter at t+500")
          yield* time.advance(1000)
          assert.isTrue((yield* takeTb(l, "", p)).allowed)
          // A slot exactly maxWaitMs away is reserved (the bound is inclusive).
          const edge = yield* takeTb(l, "", { ...p, maxWaitMs: 500 })
          assert.isTrue(edge.allowed)
          assertMs(time, edge.delayMs, 500, "delay at the maxWait bound")
        }
      })
  },

  {
    name: "token bucket: a refusal never changes state",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("tb-refusal")
        const p = { rate: 4, burst: 2 } // T = 250 ms
        assert.isTrue((yield* takeTb(l, "", p)).allowed)
        assert.isTrue((yield* takeTb(l, "", p)).allowed)
        const before = yield* peekTb(l, "", p.rate, p.burst)
        assert.isFalse(before.allowed)
        for (const extra of [{}, { cost: 2, maxWaitMs: 100 }, { cost: 5, maxWaitMs: 1e9 }, { maxWaitMs: 100 }]) {
          const d = yield* takeTb(l, "", { ...p, ...extra })
          assert.isFalse(d.allowed, `refused ${JSON.stringify(extra)}`)
        }
        const after = yield* peekTb(l, "", p.rate, p.burst)
        assert.strictEqual(after.remaining, before.remaining)
        if (time.exact) {
          assert.deepStrictEqual(after, before)
          yield* time.advance(250)
        } else {
          assert.isTrue(after.retryAfterMs <= before.retryAfterMs + EPS, "refusals pushed the next token back")
          yield* time.advance(after.retryAfterMs + MARGIN)
        }
        assert.isTrue((yield* takeTb(l, "", p)).allowed, "the token came back on time")
      })
  },

  {
    name: "token bucket: a cost above burst is refused with retryAfterMs Infinity and consumes nothing",
    run: () =>
      Effect.gen(function*() {
        const l = fresh("tb-toobig")
        const p = { rate: 1, burst: 3 }
        const big = yield* takeTb(l, "", { ...p, cost: 4, maxWaitMs: 1e9 })
        assert.isFalse(big.allowed)
        assert.strictEqual(big.retryAfterMs, Infinity)
        assert.strictEqual(big.remaining, 3)
        const all = yield* takeTb(l, "", { ...p, cost: 3 })
        assert.isTrue(all.allowed, "the whole burst is still there")
        assert.strictEqual(all.remaining, 0)
        const bigAgain = yield* takeTb(l, "", { ...p, cost: 4, maxWaitMs: 1e9 })
        assert.strictEqual(bigAgain.retryAfterMs, Infinity)
      })
  },

  {
    name: "token bucket: cost takes that many tokens",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("tb-cost")
        const p = { rate: 4, burst: 3 } // T = 250 ms
        const two = yield* takeTb(l, "", { ...p, cost: 2 })
        assert.isTrue(two.allowed)
        assertRemaining(time, two, 1, "after cost 2")
        assertMs(time, two.resetAfterMs, 500, "resetAfter after cost 2", 250, 500)
        const twoMore = yield* takeTb(l, "", { ...p, cost: 2 })
        assert.isFalse(twoMore.allowed, "one token left, two asked")
        assertMs(time, twoMore.retryAfterMs, 250, "one more token needed")
        assertRemaining(time, twoMore, 1, "refusal")
        const one = yield* takeTb(l, "", { ...p, cost: 1 })
        assert.isTrue(one.allowed)
        assertRemaining(time, one, 0, "after cost 1")
      })
  },

  {
    name: "token bucket: fractional rates and non-integer emission intervals",
    run: (time) =>
      Effect.gen(function*() {
        const slow = fresh("tb-slow")
        assert.isTrue((yield* takeTb(slow, "", { rate: 0.5, burst: 1 })).allowed)
        const refused = yield* takeTb(slow, "", { rate: 0.5, burst: 1 })
        assert.isFalse(refused.allowed)
        assertMs(time, refused.retryAfterMs, 2000, "rate 0.5/s", 1000, 2000)
        // 3/s: T = 333.33… ms, not exact in binary; a whole second refills exactly three tokens.
        const thirds = fresh("tb-thirds")
        const p = { rate: 3, burst: 3 }
        for (let i = 0; i < 3; i++) assert.isTrue((yield* takeTb(thirds, "", p)).allowed)
        assert.isFalse((yield* takeTb(thirds, "", p)).allowed)
        if (time.exact) {
          yield* time.advance(1000)
          const back = yield* peekTb(thirds, "", p.rate, p.burst)
          assert.strictEqual(back.remaining, 3)
          assert.isTrue(back.allowed)
          for (let i = 0; i < 3; i++) {
            const d = yield* takeTb(thirds, "", p)
            assert.isTrue(d.allowed, `take ${i} after a second`)
            assert.strictEqual(d.remaining, 2 - i)
          }
          assert.isFalse((yield* takeTb(thirds, "", p)).allowed)
        }
      })
  },

  {
    name: "sliding window: exact, with exact retryAfter",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("sw-exact")
        const p = { limit: 3, windowMs: 400 }
        if (time.exact) {
          assert.isTrue((yield* takeSw(l, "", p)).allowed) // t0
          yield* time.advance(100)
          assert.isTrue((yield* takeSw(l, "", p)).allowed) // t0+100
          yield* time.advance(100)
          const third = yield* takeSw(l, "", p) // t0+200
          assert.isTrue(third.allowed)
          assert.strictEqual(third.remaining, 0)
          assertMs(time, third.resetAfterMs, 400, "until the newest entry leaves")
          yield* time.advance(50)
          const refused = yield* takeSw(l, "", p) // t0+250
          assert.isFalse(refused.allowed)
          assertMs(time, refused.retryAfterMs, 150, "until the t0 entry leaves")
          assertMs(time, refused.resetAfterMs, 350, "resetAfter")
          const needTwo = yield* takeSw(l, "", { ...p, cost: 2 })
          assertMs(time, needTwo.retryAfterMs, 250, "until the t0+100 entry leaves too")
          yield* time.advance(149)
          assertMs(time, (yield* takeSw(l, "", p)).retryAfterMs, 1, "1 ms before")
          yield* time.advance(1) // t0+400: the t0 entry has left (it counted while now < t0+400)
          const admitted = yield* takeSw(l, "", p)
          assert.isTrue(admitted.allowed)
          assert.strictEqual(admitted.remaining, 0)
          const next = yield* takeSw(l, "", p)
          assert.isFalse(next.allowed)
          assertMs(time, next.retryAfterMs, 100, "until the t0+100 entry leaves")
        } else {
          for (let i = 0; i < 3; i++) assert.isTrue((yield* takeSw(l, "", p)).allowed)
          const refused = yield* takeSw(l, "", p)
          assert.isFalse(refused.allowed)
          assertMs(time, refused.retryAfterMs, 400, "retryAfter", 0, 400)
          yield* time.advance(refused.retryAfterMs + MARGIN)
          assert.isTrue((yield* takeSw(l, "", p)).allowed, "admitted once the oldest entry left")
        }
      })
  },

  {
    name: "sliding window: no window-long interval ever holds more than limit",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("sw-interval")
        const p = { limit: 5, windowMs: 300 }
        // `before`/`after` bracket the store's decision instant (equal under the test clock).
        const admitted: Array<{ readonly before: number; readonly after: number; readonly cost: number }> = []
        let seed = 12345
        const random = (n: number) => {
          seed = (seed * 1103515245 + 12345) % 2147483648
          return seed % n
        }
        const steps = time.exact ? 100 : 60
        for (let i = 0; i < steps; i++) {
          const cost = 1 + random(3)
          const before = yield* Clock.currentTimeMillis
          const d = yield* takeSw(l, "", { ...p, cost })
          const after = yield* Clock.currentTimeMillis
          if (d.allowed) admitted.push({ before, after, cost })
          yield* time.advance(time.exact ? random(60) : random(15))
        }
        assert.isTrue(admitted.length >= (time.exact ? 10 : 3), `the sequence admitted ${admitted.length}`)
        // Entries i..j whose decisions surely fell within less than a window (exactly, under the
        // test clock; with a 5 ms allowance for clock-rate noise on real time) hold at most limit.
        const slack = time.exact ? 0 : 5
        for (let i = 0; i < admitted.length; i++) {
          let inWindow = 0
          for (let j = i; j < admitted.length; j++) {
            const first = admitted[i]
            const last = admitted[j]
            if (first === undefined || last === undefined || last.after - first.before >= p.windowMs - slack) break
            inWindow += last.cost
            assert.isTrue(inWindow <= p.limit, `admitted ${inWindow} > ${p.limit} within one window (entries ${i}..${j})`)
          }
        }
      })
  },

  {
    name: "sliding window: cost, resetAfter, and a cost above limit",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("sw-cost")
        const p = { limit: 5, windowMs: 1000 }
        const three = yield* takeSw(l, "", { ...p, cost: 3 })
        assert.isTrue(three.allowed)
        assertRemaining(time, three, 2, "after 3")
        assertMs(time, three.resetAfterMs, 1000, "resetAfter", 900, 1000)
        const huge = yield* takeSw(l, "", { ...p, cost: 6 })
        assert.isFalse(huge.allowed)
        assert.strictEqual(huge.retryAfterMs, Infinity)
        if (!time.exact) return
        yield* time.advance(200)
        const two = yield* takeSw(l, "", { ...p, cost: 2 })
        assert.isTrue(two.allowed)
        assert.strictEqual(two.remaining, 0)
        assertMs(time, two.resetAfterMs, 1000, "resetAfter follows the newest entry")
        const one = yield* takeSw(l, "", p)
        assert.isFalse(one.allowed)
        assertMs(time, one.retryAfterMs, 800, "until the cost-3 entry leaves")
        yield* time.advance(800)
        const again = yield* takeSw(l, "", { ...p, cost: 3 })
        assert.isTrue(again.allowed)
        assert.strictEqual(again.remaining, 0)
        assertMs(time, (yield* takeSw(l, "", p)).retryAfterMs, 200, "until the cost-2 entry leaves")
      })
  },

  {
    name: "sliding window: a refusal records nothing",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("sw-refusal")
        const p = { limit: 2, windowMs: 400 }
        assert.isTrue((yield* takeSw(l, "", p)).allowed)
        assert.isTrue((yield* takeSw(l, "", p)).allowed)
        yield* time.advance(200)
        let last = yield* takeSw(l, "", p)
        for (let i = 0; i < 4; i++) {
          last = yield* takeSw(l, "", { ...p, cost: 1 + (i % 2) })
          assert.isFalse(last.allowed)
        }
        const peeked = yield* peekWindow("sliding_window", l, "", p.limit, p.windowMs)
        assert.strictEqual(peeked.remaining, 0)
        yield* time.advance(time.exact ? 200 : last.retryAfterMs + MARGIN)
        assert.isTrue((yield* takeSw(l, "", p)).allowed, "refusals were not recorded (1)")
        assert.isTrue((yield* takeSw(l, "", p)).allowed, "refusals were not recorded (2)")
      })
  },

  {
    name: "fixed window: aligned windows and their boundaries",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("fw-bound")
        if (time.exact) {
          const p = { limit: 2, windowMs: 1000 }
          yield* alignToWindow(time, p.windowMs)
          const first = yield* takeFw(l, "", p)
          assert.isTrue(first.allowed)
          assert.strictEqual(first.remaining, 1)
          assertMs(time, first.resetAfterMs, 1000, "a whole window ahead")
          yield* time.advance(600)
          const second = yield* takeFw(l, "", p)
          assert.isTrue(second.allowed)
          assert.strictEqual(second.remaining, 0)
          assertMs(time, second.resetAfterMs, 400, "to the window's end")
          const refused = yield* takeFw(l, "", p)
          assert.isFalse(refused.allowed)
          assertMs(time, refused.retryAfterMs, 400, "retryAfter: the window's end")
          assertMs(time, refused.resetAfterMs, 400, "resetAfter: the window's end")
          const huge = yield* takeFw(l, "", { ...p, cost: 3 })
          assert.strictEqual(huge.retryAfterMs, Infinity)
          yield* time.advance(399)
          assertMs(time, (yield* takeFw(l, "", p)).retryAfterMs, 1, "1 ms before the boundary")
          yield* time.advance(1)
          // The boundary: a new window, a fresh counter (2 at the end of one, 2 at the start of the next).
          const next = yield* takeFw(l, "", p)
          assert.isTrue(next.allowed)
          assert.strictEqual(next.remaining, 1)
          assertMs(time, next.resetAfterMs, 1000, "the new window")
          assert.isTrue((yield* takeFw(l, "", p)).allowed)
          assert.isFalse((yield* takeFw(l, "", p)).allowed)
        } else {
          const p = { limit: 2, windowMs: 300 }
          let admitted = 0
          let refused: Decision | undefined
          for (let i = 0; i < 5 && refused === undefined; i++) {
            const d = yield* takeFw(l, "", p)
            if (d.allowed) {
              admitted++
              assertMs(time, d.resetAfterMs, 300, "resetAfter", 0, 300)
            } else refused = d
          }
          // A boundary may fall between the calls, so up to two windows' worth.
          assert.isTrue(admitted >= 2 && admitted <= 4, `admitted ${admitted}`)
          assert.isDefined(refused)
          if (refused !== undefined) {
            assertMs(time, refused.retryAfterMs, 300, "retryAfter", 0, 300)
            yield* time.advance(refused.retryAfterMs + MARGIN)
          }
          assert.isTrue((yield* takeFw(l, "", p)).allowed, "a new window")
        }
      })
  },

  {
    name: "fixed window: a refusal does not count",
    run: () =>
      Effect.gen(function*() {
        const l = fresh("fw-refusal")
        const p = { limit: 2, windowMs: 60_000 }
        assert.isTrue((yield* takeFw(l, "", p)).allowed)
        assert.isFalse((yield* takeFw(l, "", { ...p, cost: 2 })).allowed)
        assert.isFalse((yield* takeFw(l, "", { ...p, cost: 3 })).allowed)
        const last = yield* takeFw(l, "", p)
        assert.isTrue(last.allowed, "the refused costs were not counted")
      })
  },

  {
    name: "peek consumes nothing, for every algorithm",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("peek")
        const tb = { rate: 1, burst: 2 }
        const w = { limit: 2, windowMs: 60_000 }
        const s = { limit: 2, leaseMs: 60_000 }
        // Fresh state: full capacity.
        for (let i = 0; i < 3; i++) {
          const a = yield* peekTb(l, "", tb.rate, tb.burst)
          assert.deepStrictEqual([a.allowed, a.remaining, a.resetAfterMs, a.limit], [true, 2, 0, 2])
          const b = yield* peekWindow("sliding_window", l, "", w.limit, w.windowMs)
          assert.deepStrictEqual([b.allowed, b.remaining, b.resetAfterMs, b.limit], [true, 2, 0, 2])
          const c = yield* peekWindow("fixed_window", l, "", w.limit, w.windowMs)
          assert.deepStrictEqual([c.allowed, c.remaining, c.limit], [true, 2, 2])
          const d = yield* peekSlots(l, "", s.limit)
          assert.deepStrictEqual([d.allowed, d.remaining, d.limit], [true, 2, 2])
        }
        // One taken from each.
        assert.strictEqual((yield* takeTb(l, "", tb)).remaining, 1)
        assert.strictEqual((yield* takeSw(l, "", w)).remaining, 1)
        assert.strictEqual((yield* takeFw(l, "", w)).remaining, 1)
        assert.isTrue((yield* acquireSlot(l, "", { ...s, holder: "h1" })).acquired)
        for (let i = 0; i < 3; i++) {
          assert.strictEqual((yield* peekTb(l, "", tb.rate, tb.burst)).remaining, 1)
          assert.strictEqual((yield* peekWindow("sliding_window", l, "", w.limit, w.windowMs)).remaining, 1)
          assert.strictEqual((yield* peekWindow("fixed_window", l, "", w.limit, w.windowMs)).remaining, 1)
          assert.strictEqual((yield* peekSlots(l, "", s.limit)).remaining, 1)
        }
        // Drained: peek says no, with the retryAfter a take would get.
        const tbTake = yield* takeTb(l, "", tb)
        assert.isTrue(tbTake.allowed)
        const tbRefused = yield* takeTb(l, "", tb)
        const tbPeek = yield* peekTb(l, "", tb.rate, tb.burst)
        assert.isFalse(tbPeek.allowed)
        assert.strictEqual(tbPeek.remaining, 0)
        assertMs(time, tbPeek.retryAfterMs, tbRefused.retryAfterMs, "token bucket peek retryAfter", 0, 1000)
        assert.isTrue((yield* takeSw(l, "", w)).allowed)
        const swPeek = yield* peekWindow("sliding_window", l, "", w.limit, w.windowMs)
        assert.isFalse(swPeek.allowed)
        assertMs(time, swPeek.retryAfterMs, 60_000, "sliding peek retryAfter", 59_000, 60_000)
        assertMs(time, swPeek.resetAfterMs, 60_000, "sliding peek resetAfter", 59_000, 60_000)
        assert.isTrue((yield* takeFw(l, "", w)).allowed || !time.exact)
        if (time.exact) {
          const fwPeek = yield* peekWindow("fixed_window", l, "", w.limit, w.windowMs)
          assert.isFalse(fwPeek.allowed)
          assert.strictEqual(fwPeek.remaining, 0)
          assert.strictEqual(fwPeek.retryAfterMs, fwPeek.resetAfterMs)
        }
        assert.isTrue((yield* acquireSlot(l, "", { ...s, holder: "h2" })).acquired)
        const slotPeek = yield* peekSlots(l, "", s.limit)
        assert.isFalse(slotPeek.allowed)
        assert.strictEqual(slotPeek.remaining, 0)
        assertMs(time, slotPeek.retryAfterMs, 60_000, "slot peek retryAfter", 59_000, 60_000)
      })
  },

  {
    name: "isolation: keys and limiters with ':' '{' '}' '%' and unicode never collide",
    run: () =>
      Effect.gen(function*() {
        const base = crypto.randomUUID()
        const pairs: ReadonlyArray<readonly [string, string]> = [
          [`${base}a:b`, "c"],
          [`${base}a`, "b:c"],
          [`${base}a:b:c`, ""],
          [`${base}a`, "b"],
          [`${base}a`, ""],
          [`${base}a`, " "],
          [`${base}{t}`, "x"],
          [`${base}{t`, "}x"],
          [`${base}`, "{t}x"],
          [`${base}{t}x`, ""],
          [`${base}ключ`, "🔑"],
          [`${base}ключ`, "🔑 "],
          [`${base}e\u0301`, "k"],
          [`${base}\u00e9`, "k"],
          [`${base}x`, "a%3Ab"],
          [`${base}x`, "a:b"],
          [`${base}x`, "a/b"],
          [`${base}x`, "a.b"],
          [`${base}x`, "a_b"],
          [`${base}x`, "a-b"],
          [`${base}x`, "a b"],
          [`${base}x`, "A:B"],
          [`${base}x`, "*"],
          [`${base}x`, "a*"],
          [`${base}x`, "a=b"],
          [`${base}x`, "a\\b"]
        ]
        const cap = 100
        // Pair i takes i + 1 units; any collision shows up as a wrong `remaining`.
        for (let i = 0; i < pairs.length; i++) {
          const [l, k] = pairs[i] ?? ["", ""]
          assert.isTrue((yield* takeTb(l, k, { rate: 0.001, burst: cap, cost: i + 1 })).allowed)
          assert.isTrue((yield* takeSw(l, k, { limit: cap, windowMs: 60_000, cost: i + 1 })).allowed)
          assert.isTrue((yield* takeFw(l, k, { limit: cap, windowMs: 3_600_000, cost: i + 1 })).allowed)
          const slot = yield* acquireSlot(l, k, { holder: `h${i}`, limit: 1, leaseMs: 60_000 })
          assert.isTrue(slot.acquired, `slot of pair ${i} taken by another pair`)
          assert.strictEqual(slot.active, 1)
        }
        for (let i = 0; i < pairs.length; i++) {
          const [l, k] = pairs[i] ?? ["", ""]
          const label = `pair ${i} (${JSON.stringify([l.slice(base.length), k])})`
          assert.strictEqual((yield* peekTb(l, k, 0.001, cap)).remaining, cap - i - 1, `${label} token bucket`)
          assert.strictEqual((yield* peekWindow("sliding_window", l, k, cap, 60_000)).remaining, cap - i - 1, `${label} sliding`)
          // A fixed window may have rolled over (hour boundary) between the take and the peek.
          const fw = (yield* peekWindow("fixed_window", l, k, cap, 3_600_000)).remaining
          assert.isTrue(fw === cap - i - 1 || fw === cap, `${label} fixed: ${fw}`)
          assert.strictEqual((yield* peekSlots(l, k, 1)).remaining, 0, `${label} slots`)
        }
      })
  },

  {
    name: "reset: one key, or every key of one limiter, under every algorithm",
    run: () =>
      Effect.gen(function*() {
        const l = fresh("reset")
        // Names a pattern-based reset of `l` could wrongly match.
        const targets: ReadonlyArray<readonly [string, string]> = [
          [l, "k1"],
          [l, "k2"],
          [`${l}:k1`, ""],
          [`${l}x`, "k1"],
          [`${l}*`, "k1"],
          [`{${l}}`, "k1"]
        ]
        const tb = { rate: 0.001, burst: 1 }
        const w = { limit: 1, windowMs: 3_600_000 }
        const drain = (lim: string, key: string) =>
          Effect.gen(function*() {
            assert.isTrue((yield* takeTb(lim, key, tb)).allowed)
            assert.isTrue((yield* takeSw(lim, key, w)).allowed)
            assert.isTrue((yield* takeFw(lim, key, w)).allowed)
            assert.isTrue((yield* acquireSlot(lim, key, { holder: "h", limit: 1, leaseMs: 60_000 })).acquired)
          })
        // Full capacity: nothing of the state is left. `false`: every state still drained.
        const isFull = (lim: string, key: string) =>
          Effect.gen(function*() {
            const a = yield* peekTb(lim, key, tb.rate, tb.burst)
            const b = yield* peekWindow("sliding_window", lim, key, w.limit, w.windowMs)
            const d = yield* peekSlots(lim, key, 1)
            const all = [a.allowed, b.allowed, d.allowed]
            assert.isTrue(all.every((x) => x) || all.every((x) => !x), `${lim}/${key}: partly reset ${all}`)
            return a.allowed
          })
        for (const [lim, key] of targets) yield* drain(lim, key)
        yield* reset(l, "k1")
        assert.deepStrictEqual(
          yield* Effect.forEach(targets, ([lim, key]) => isFull(lim, key)),
          [true, false, false, false, false, false],
          "reset(l, k1) cleared exactly l/k1"
        )
        assert.isFalse(yield* renewSlot(l, "k1", { holder: "h", limit: 1, leaseMs: 60_000 }), "the lease went with the reset")
        assert.isTrue((yield* takeFw(l, "k1", w)).allowed, "the fixed window was reset too")
        yield* reset(l)
        assert.deepStrictEqual(
          yield* Effect.forEach(targets, ([lim, key]) => isFull(lim, key)),
          [true, true, false, false, false, false],
          "reset(l) cleared every key of l and nothing else"
        )
        assert.isTrue((yield* takeFw(l, "k2", w)).allowed, "the fixed window of k2 was reset too")
        // Resetting what has no state is fine.
        yield* reset(fresh("nothing"))
        yield* reset(fresh("nothing"), "k")
      })
  },

  {
    name: "remaining stays in [0, limit] and no field is ever NaN",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("ranges")
        let seed = 7
        const random = (n: number) => {
          seed = (seed * 1103515245 + 12345) % 2147483648
          return seed % n
        }
        const rates = [0.5, 1, 3, 7, 1000]
        for (let i = 0; i < 60; i++) {
          const rate = rates[i % rates.length] ?? 1
          const burst = 1 + random(4)
          const cost = 1 + random(5)
          const key = `k${random(3)}`
          yield* takeTb(l, key, { rate, burst, cost, maxWaitMs: random(2) === 0 ? 0 : random(3000) })
          yield* peekTb(l, key, rate, burst)
          yield* takeSw(l, key, { limit: 1 + random(4), windowMs: 100 + random(400), cost })
          yield* takeFw(l, key, { limit: 1 + random(4), windowMs: 100 + random(400), cost })
          yield* peekWindow("sliding_window", l, key, 3, 300)
          yield* peekWindow("fixed_window", l, key, 3, 300)
          yield* acquireSlot(l, key, { holder: `h${random(4)}`, limit: 1 + random(2), leaseMs: 50 + random(200) })
          yield* peekSlots(l, key, 2)
          if (time.exact) yield* time.advance(random(120))
        }
      })
  },

  {
    name: "expiry: once the bucket refills or the window passes, the state is gone",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("expiry")
        const tb = { rate: 10, burst: 2 } // T = 100 ms, full after 200 ms
        const w = { limit: 2, windowMs: 250 }
        const s = { holder: "h", limit: 1, leaseMs: 250 }
        for (let i = 0; i < 2; i++) {
          yield* takeTb(l, "", tb)
          yield* takeSw(l, "", w)
          yield* takeFw(l, "", w)
        }
        assert.isTrue((yield* acquireSlot(l, "", s)).acquired)
        assert.isFalse((yield* peekTb(l, "", tb.rate, tb.burst)).allowed)
        assert.isFalse((yield* peekWindow("sliding_window", l, "", w.limit, w.windowMs)).allowed)
        assert.isFalse((yield* peekSlots(l, "", 1)).allowed)
        yield* time.advance(time.exact ? 250 : 250 + 3 * MARGIN)
        const a = yield* peekTb(l, "", tb.rate, tb.burst)
        assert.deepStrictEqual([a.allowed, a.remaining, a.resetAfterMs], [true, 2, 0])
        const b = yield* peekWindow("sliding_window", l, "", w.limit, w.windowMs)
        assert.deepStrictEqual([b.allowed, b.remaining, b.resetAfterMs], [true, 2, 0])
        const c = yield* peekWindow("fixed_window", l, "", w.limit, w.windowMs)
        assert.deepStrictEqual([c.allowed, c.remaining], [true, 2])
        const d = yield* peekSlots(l, "", 1)
        assert.deepStrictEqual([d.allowed, d.remaining, d.resetAfterMs], [true, 1, 0])
        assert.isFalse(yield* renewSlot(l, "", s), "renew after expiry")
        assert.isFalse(yield* releaseSlot(l, "", s), "release after expiry frees nothing")
      })
  },

  {
    name: "concurrency: the limit holds, re-acquiring is idempotent, release goes by holder id only",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("slots")
        const s = { limit: 2, leaseMs: 60_000 }
        const h1 = { ...s, holder: "h1" }
        const h2 = { ...s, holder: "h2" }
        const h3 = { ...s, holder: "h3" }
        const a1 = yield* acquireSlot(l, "", h1)
        assert.deepStrictEqual([a1.acquired, a1.active, a1.limit], [true, 1, 2])
        const a2 = yield* acquireSlot(l, "", h2)
        assert.deepStrictEqual([a2.acquired, a2.active], [true, 2])
        const a3 = yield* acquireSlot(l, "", h3)
        assert.deepStrictEqual([a3.acquired, a3.active], [false, 2])
        assertMs(time, a3.retryAfterMs, 60_000, "until the earliest lease ends", 59_000, 60_000)
        const again = yield* acquireSlot(l, "", h1)
        assert.deepStrictEqual([again.acquired, again.active], [true, 2], "same holder: same slot")
        // Someone else's holder id (never granted) frees nothing.
        assert.isFalse(yield* releaseSlot(l, "", h3))
        assert.isFalse(yield* releaseSlot(l, "", { ...s, holder: crypto.randomUUID() }))
        assert.isFalse((yield* acquireSlot(l, "", h3)).acquired, "still full")
        // Another key's or limiter's release frees nothing here.
        assert.isFalse(yield* releaseSlot(l, "other", h1))
        assert.isFalse(yield* releaseSlot(`${l}:`, "", h1))
        assert.isFalse((yield* acquireSlot(l, "", h3)).acquired, "still full")
        assert.isTrue(yield* releaseSlot(l, "", h1))
        assert.isFalse(yield* releaseSlot(l, "", h1), "a second release frees nothing")
        assert.strictEqual((yield* peekSlots(l, "", 2)).remaining, 1)
        const a4 = yield* acquireSlot(l, "", h3)
        assert.deepStrictEqual([a4.acquired, a4.active], [true, 2])
        assert.isFalse(yield* renewSlot(l, "", h1), "a released lease cannot be renewed")
        assert.strictEqual((yield* peekSlots(l, "", 2)).remaining, 0, "renew re-created nothing")
        assert.isTrue(yield* releaseSlot(l, "", h2))
        assert.isTrue(yield* releaseSlot(l, "", h3))
        assert.strictEqual((yield* peekSlots(l, "", 2)).remaining, 2)
      })
  },

  {
    name: "concurrency: renewal extends a lease; renew after expiry is false",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("renew")
        const h = { holder: "h", limit: 1, leaseMs: 400 }
        const other = { ...h, holder: "other" }
        assert.isTrue((yield* acquireSlot(l, "", h)).acquired)
        yield* time.advance(250)
        assert.isTrue(yield* renewSlot(l, "", h))
        yield* time.advance(250) // past the first expiry, before the renewed one
        assert.isFalse((yield* acquireSlot(l, "", other)).acquired, "the renewed lease still holds the slot")
        assert.isTrue(yield* renewSlot(l, "", h))
        yield* time.advance(time.exact ? 400 : 400 + 3 * MARGIN)
        assert.isFalse(yield* renewSlot(l, "", h), "renew after expiry")
        assert.strictEqual((yield* peekSlots(l, "", 1)).remaining, 1, "a failed renew re-creates nothing")
        assert.isTrue((yield* acquireSlot(l, "", other)).acquired)
        assert.isFalse(yield* renewSlot(l, "", h), "still lost")
      })
  },

  {
    name: "concurrency: a crashed holder's slot frees itself when its lease runs out",
    run: (time) =>
      Effect.gen(function*() {
        const l = fresh("crash")
        const crashed = { holder: "crashed", limit: 1, leaseMs: 300 }
        const next = { ...crashed, holder: "next" }
        assert.isTrue((yield* acquireSlot(l, "", crashed)).acquired)
        const refused = yield* acquireSlot(l, "", next)
        assert.isFalse(refused.acquired)
        assertMs(time, refused.retryAfterMs, 300, "until the crashed lease ends", 0, 300)
        if (time.exact) {
          yield* time.advance(299)
          assert.isFalse((yield* acquireSlot(l, "", next)).acquired, "1 ms before the lease ends")
          assertMs(time, (yield* acquireSlot(l, "", next)).retryAfterMs, 1, "retryAfter")
          yield* time.advance(1)
        } else {
          yield* time.advance(refused.retryAfterMs + MARGIN)
        }
        const taken = yield* acquireSlot(l, "", next)
        assert.deepStrictEqual([taken.acquired, taken.active], [true, 1], "the expired lease no longer counts")
      })
  }
]

/**
 * Runs every conformance case against `store`, in one `describe` block named `name` that builds
 * the layer once.
 */
export const runStoreSuite = (
  name: string,
  store: Layer.Layer<RateLimitStore.RateLimitStore, unknown>,
  options: { readonly clock: "test" | "live" }
): void => {
  type Register = (name: string, self: () => Effect.Effect<void, unknown, RateLimitStore.RateLimitStore>) => void
  const register = (time: SuiteTime, test: Register) => {
    for (const c of storeCases) test(c.name, () => c.run(time))
  }
  if (options.clock === "test") {
    layer(store, { timeout: "60 seconds" })(name, (it) => register(testTime, (n, self) => it.effect(n, self)))
  } else {
    // No test services: the block runs on the live clock, like `it.live`.
    layer(store, { timeout: "60 seconds", excludeTestServices: true })(
      name,
      (it) => register(liveTime, (n, self) => it.effect(n, self))
    )
  }
}
