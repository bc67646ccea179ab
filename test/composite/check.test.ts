import { assert, describe, it } from "#test/vitest"
import { Duration, Effect } from "effect"
import { type LimiterDefinition, RateLimiter } from "effect-rate-sync"
import { TestClock } from "#test/effect"
import { counters, fresh, state, withFake, withLimiters } from "./helpers.js"

describe("violations and check over several limits", () => {
  it.scoped("a single-limit refusal has one violation and the message it always had", () => {
    const id = fresh("single")
    return Effect.gen(function*() {
      yield* RateLimiter.acquire(id, { key: "k" })
      const e = yield* Effect.flip(RateLimiter.acquire(id, { key: "k", timeout: 0 }))
      if (e._tag !== "RateLimitExceeded") return assert.fail(`unexpected ${e._tag}`)
      assert.strictEqual(e.message, `Rate limit exceeded for limiter "${id}" (rate); retry after 500 ms`)
      assert.strictEqual(e.violations.length, 1)
      const [v] = e.violations
      assert.deepStrictEqual(
        [v?.limiterId, v?.key, v?.reason, v?.limit, v?.remaining, v === undefined ? -1 : Duration.toMillis(v.retryAfter)],
        [e.limiterId, e.key, e.reason, e.limit, e.remaining, Duration.toMillis(e.retryAfter)]
      )
      assert.deepStrictEqual([e.limiterId, e.key, e.reason, e.limit, e.remaining], [id, "k", "rate", 1, 0])
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 2, burst: 1 } })))
  })

  it.scoped("check answers a decision per limit and the overall one; it charges every limit or none", () => {
    const rps = fresh("rps")
    const daily = fresh("daily")
    const limits = [{ limiter: rps, cost: 1 }, { limiter: daily, cost: 10 }]
    return Effect.gen(function*() {
      const ok = yield* RateLimiter.check(limits, { key: "t1" })
      assert.isTrue(ok.allowed)
      assert.deepStrictEqual(ok.decisions.map((d) => [d.limiterId, d.key, d.allowed, d.limit, d.remaining]), [
        [rps, "t1", true, 5, 4],
        [daily, "t1", true, 100, 90]
      ])
      assert.deepStrictEqual([ok.violations, ok.retryAfterMs, ok.failedOpen], [[], 0, false])
      // allowed: the binding decision is the limit nearest to refusing (4/5 against 90/100)
      assert.strictEqual(ok.binding.limiterId, rps)
      for (let i = 0; i < 4; i++) assert.isTrue((yield* RateLimiter.check(limits, { key: "t1" })).allowed)
      // rps is empty: refused, daily not charged (50 spent, 50 left)
      const before = yield* state(daily, "t1", 10)
      const no = yield* RateLimiter.check(limits, { key: "t1" })
      assert.isFalse(no.allowed)
      assert.deepStrictEqual(no.decisions.map((d) => [d.limiterId, d.allowed, d.remaining, d.retryAfterMs]), [
        [rps, false, 0, 200],
        [daily, true, 50, 0]
      ])
      assert.deepStrictEqual(no.violations.map((d) => d.limiterId), [rps])
      assert.deepStrictEqual([no.binding.limiterId, no.retryAfterMs], [rps, 200])
      assert.deepStrictEqual(yield* state(daily, "t1", 10), before)
      // both refuse: the binding refusal is the slowest one
      yield* TestClock.adjust("1 second")
      assert.isTrue((yield* RateLimiter.check(rps, { key: "t1", cost: 5 })).allowed)
      const both = yield* RateLimiter.check([{ limiter: rps, cost: 5 }, { limiter: daily, cost: 90 }], { key: "t1" })
      assert.deepStrictEqual(both.violations.map((d) => [d.limiterId, d.retryAfterMs]), [[rps, 1000], [daily, 86_399_000]])
      assert.deepStrictEqual([both.binding.limiterId, both.retryAfterMs], [daily, 86_399_000])
      // per limiter: an acquisition on each limiter of an allowed call, a refusal on each refusing one
      const r = yield* counters(rps)
      const d = yield* counters(daily)
      assert.deepStrictEqual([r.refusals, d.refusals, r.metricRefusals, d.metricRefusals], [2, 1, 2, 1])
      assert.deepStrictEqual([r.acquisitions, d.acquisitions, r.metricAcquisitions, d.metricAcquisitions], [6, 5, 6, 5])
    }).pipe(Effect.provide(withLimiters({
      [rps]: { ratePerSecond: 5 },
      [daily]: { algorithm: "fixed_window", limit: 100, window: "1 day" }
    })))
  })

  it.scoped("a concurrency-only limit is peeked; when it refuses, the rate limits are not charged", () => {
    const slots = fresh("slots")
    const rate = fresh("rate")
    return Effect.gen(function*() {
      const c = yield* RateLimiter.check([slots, rate])
      assert.deepStrictEqual(c.decisions.map((d) => [d.limiterId, d.allowed, d.remaining]), [[slots, true, 1], [rate, true, 2]])
      // hold the slot: the check is refused by the peek, the rate limit only looked at
      yield* RateLimiter.acquire(slots)
      const no = yield* RateLimiter.check([slots, rate])
      assert.deepStrictEqual(no.decisions.map((d) => [d.limiterId, d.allowed, d.remaining]), [[slots, false, 0], [rate, true, 2]])
      assert.deepStrictEqual((yield* state(rate)).remaining, 2)
      // a peek is no acquisition; its refusal is a refusal
      const s = yield* counters(slots)
      assert.deepStrictEqual([s.acquisitions, s.refusals], [1, 1])
      const r = yield* counters(rate)
      assert.deepStrictEqual([r.acquisitions, r.refusals], [1, 0])
    }).pipe(Effect.provide(withLimiters({ [slots]: { maxConcurrent: 1 }, [rate]: { ratePerSecond: 1, burst: 3 } })))
  })

  it.scoped("a store deciding by round trips (no synchronous takeAll) answers the same", () => {
    const a = fresh("a")
    const b = fresh("b")
    const run = Effect.gen(function*() {
      const answers: Array<ReadonlyArray<unknown>> = []
      for (let i = 0; i < 3; i++) {
        const c = yield* RateLimiter.check([a, { limiter: b, cost: 2 }], { key: "k" })
        answers.push([c.allowed, c.retryAfterMs, c.binding.limiterId, ...c.decisions.map((d) => [d.allowed, d.remaining])])
      }
      return answers
    })
    const limiters: Record<string, LimiterDefinition.LimiterDefinition> = {
      [a]: { ratePerSecond: 1, burst: 3 },
      [b]: { algorithm: "sliding_window", limit: 5, window: "1 minute" }
    }
    return Effect.gen(function*() {
      const memory = yield* run.pipe(Effect.provide(withLimiters(limiters)))
      const roundTrips = yield* run.pipe(Effect.provide(withFake(limiters)))
      assert.deepStrictEqual(roundTrips, memory)
      assert.deepStrictEqual(memory[2], [false, 60_000, b, [true, 1], [false, 1]])
    })
  })
})
