import { assert, describe, it } from "#test/vitest"
import { Effect, Fiber } from "effect"
import { RateLimiter } from "effect-rate-sync"
import * as T from "#test/effect"
import { TestClock } from "#test/effect"
import { fresh, state, withFake, withLimiters } from "./helpers.js"

const summary = (as: ReadonlyArray<RateLimiter.Adjustment>) =>
  as.map((a) => [a.limiterId, a.requested, a.applied, a.charged, a.remaining])

describe("permit.adjust and permit.refund", () => {
  it.scoped("token bucket: a charge may go into debt, which the next calls wait out; a give-back stops at a full bucket", () => {
    const id = fresh("bucket")
    return Effect.gen(function*() {
      const permit = yield* RateLimiter.acquire(id, { cost: 4 })
      // 4 taken of 10, then 12 more: 6 in debt
      assert.deepStrictEqual(summary(yield* permit.adjust(12)), [[id, 12, 12, 16, 0]])
      const s = yield* RateLimiter.status(id)
      assert.deepStrictEqual([s.remaining, s.retryAfterMs, s.resetAfterMs], [0, 700, 1600])
      // the next call waits the debt out (a reservation of 700 ms)
      const next = yield* T.fork(RateLimiter.acquire(id))
      yield* TestClock.adjust("700 millis")
      assert.strictEqual((yield* Fiber.join(next)).waitedMs, 700)
      // giving back more than the permit holds is asked as what it holds (16), and the store
      // stops at a full bucket: 10 given back, 6 still held
      const back = yield* permit.adjust(-100)
      assert.deepStrictEqual(summary(back), [[id, -16, -10, 6, 10]])
      // and a give-back never goes past a full bucket
      const second = yield* RateLimiter.acquire(id, { cost: 2 })
      yield* TestClock.adjust("10 seconds")
      const late = yield* second.adjust(-2)
      assert.deepStrictEqual(late.map((a) => [a.requested, a.applied, a.charged, a.remaining]), [[-2, 0, 2, 10]])
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 10, burst: 10 } })))
  })

  it.scoped("fixed window: a give-back applies only in the window that took; after it, nothing", () => {
    const id = fresh("fixed")
    return Effect.gen(function*() {
      const permit = yield* RateLimiter.acquire(id, { cost: 5 })
      assert.deepStrictEqual(summary(yield* permit.adjust(-3)), [[id, -3, -3, 2, 8]])
      // more than the limit: debt until the window ends
      assert.deepStrictEqual(summary(yield* permit.adjust(10)), [[id, 10, 10, 12, 0]])
      assert.deepStrictEqual(yield* state(id), { remaining: 0, retryAfterMs: 60_000 })
      yield* TestClock.adjust("1 minute")
      // the window passed: the give-back applies nothing, and the new window is whole
      assert.deepStrictEqual(summary(yield* permit.adjust(-12)), [[id, -12, 0, 12, 10]])
      assert.deepStrictEqual(yield* state(id), { remaining: 10, retryAfterMs: 0 })
    }).pipe(Effect.provide(withLimiters({ [id]: { algorithm: "fixed_window", limit: 10, window: "1 minute" } })))
  })

  it.scoped("sliding window: a permit gives back only its own entry, while it is in the window", () => {
    const id = fresh("sliding")
    return Effect.gen(function*() {
      const mine = yield* RateLimiter.acquire(id, { cost: 3 })
      yield* TestClock.adjust("10 seconds")
      const theirs = yield* RateLimiter.acquire(id, { cost: 3 })
      // mine holds 3: a give-back of 5 takes back 3, the other entry untouched
      assert.deepStrictEqual(summary(yield* mine.adjust(-5)), [[id, -3, -3, 0, 7]])
      assert.deepStrictEqual(summary(yield* mine.adjust(2)), [[id, 2, 2, 2, 5]])
      // mine (stamped at 0) leaves the window at 60 s; theirs stays until 70 s
      yield* TestClock.adjust("50 seconds")
      assert.deepStrictEqual(summary(yield* mine.adjust(-2)), [[id, -2, 0, 2, 7]])
      assert.deepStrictEqual(summary(yield* theirs.adjust(-1)), [[id, -1, -1, 2, 8]])
      assert.deepStrictEqual(summary(yield* theirs.refund), [[id, -2, -2, 0, 10]])
    }).pipe(Effect.provide(withLimiters({ [id]: { algorithm: "sliding_window", limit: 10, window: "1 minute" } })))
  })

  it.scoped("a delta per limiter over several limits; refund gives back everything the permit holds", () => {
    const rpm = fresh("rpm")
    const tpm = fresh("tpm")
    const slots = fresh("slots")
    return Effect.gen(function*() {
      const permit = yield* RateLimiter.acquire([rpm, { limiter: tpm, cost: 100 }, slots])
      assert.deepStrictEqual(summary(yield* permit.adjust({ [tpm]: 50 })), [[tpm, 50, 50, 150, 850]])
      // a number applies to every rate limit of the permit (the slot is left alone)
      assert.deepStrictEqual(summary(yield* permit.adjust(1)), [[rpm, 1, 1, 2, 58], [tpm, 1, 1, 151, 849]])
      assert.deepStrictEqual(summary(yield* permit.refund), [[rpm, -2, -2, 0, 60], [tpm, -151, -151, 0, 1000]])
      assert.deepStrictEqual(summary(yield* permit.refund), [[rpm, 0, 0, 0, 60], [tpm, 0, 0, 0, 1000]])
    }).pipe(Effect.provide(withLimiters({
      [rpm]: { algorithm: "fixed_window", limit: 60, window: "1 minute" },
      [tpm]: { algorithm: "sliding_window", limit: 1000, window: "1 minute" },
      [slots]: { maxConcurrent: 2 }
    })))
  })

  it.scoped("what cannot be adjusted is a ConfigError: a slot, a limiter the permit does not hold, a delta that is not whole", () => {
    const rate = fresh("rate")
    const slots = fresh("slots")
    return Effect.gen(function*() {
      const path = <A>(eff: Effect.Effect<A, { readonly _tag: string; readonly path?: string }>) =>
        Effect.map(Effect.flip(eff), (e) => `${e._tag} ${e.path ?? ""}`)
      const permit = yield* RateLimiter.acquire([rate, slots])
      assert.strictEqual(yield* path(permit.adjust({ [slots]: 1 })), `ConfigError delta.${slots}`)
      assert.strictEqual(yield* path(permit.adjust({ nope: 1 })), "ConfigError delta.nope")
      assert.strictEqual(yield* path(permit.adjust({ [rate]: 1.5 })), `ConfigError delta.${rate}`)
      assert.strictEqual(yield* path(permit.adjust(Number.NaN)), "ConfigError delta")
      const slotOnly = yield* RateLimiter.acquire(slots)
      const e = yield* Effect.flip(slotOnly.adjust(1))
      assert.include(e.message, "concurrency slots are not adjustable")
      // nothing was applied by any of them
      assert.deepStrictEqual(yield* state(rate), { remaining: 4, retryAfterMs: 0 })
      // a slot-only permit has nothing to refund
      assert.deepStrictEqual(yield* slotOnly.refund, [])
    }).pipe(Effect.provide(withLimiters({ [rate]: { ratePerSecond: 1, burst: 5 }, [slots]: { maxConcurrent: 2 } })))
  })

  it.scoped("a store without adjust: a ConfigError naming its engine", () => {
    const id = fresh("rate")
    return Effect.gen(function*() {
      const permit = yield* RateLimiter.acquire(id)
      const e = yield* Effect.flip(permit.adjust(1))
      if (e._tag !== "ConfigError") return assert.fail(`unexpected ${e._tag}`)
      assert.strictEqual(e.path, "stores.default")
      assert.include(e.received, `the "frozen" store`)
    }).pipe(Effect.provide(withFake({ [id]: { ratePerSecond: 1 } }, { engine: "frozen", adjust: false })))
  })
})
