import { assert, describe, it } from "#test/vitest"
import { Effect, Layer } from "effect"
import { RateLimiter, RateLimitMetrics, RateLimitStore } from "effect-rate-sync"
import * as T from "#test/effect"
import { TestClock } from "#test/effect"
import { fresh, makeStore, withLimiters } from "./helpers.js"

const look = (s: RateLimiter.LimiterStatus) => [s.allowed, s.limit, s.remaining, s.resetAfterMs, s.retryAfterMs]

// Every counter of a limiter, statistics and Effect metrics.
const everything = (id: string) =>
  Effect.gen(function*() {
    const metrics = yield* RateLimiter.metrics(id)
    const series = yield* Effect.forEach(RateLimitMetrics.counters, (c) => T.counterCount(c, { limiter: id }))
    return { metrics, series }
  })

describe("RateLimiter.status: a look without spending", () => {
  it.scoped("limit, remaining, resetAfter and the wait until a given cost would be admitted, per algorithm", () => {
    const bucket = fresh("bucket")
    const fixed = fresh("fixed")
    const sliding = fresh("sliding")
    const slots = fresh("slots")
    return Effect.gen(function*() {
      assert.deepStrictEqual(look(yield* RateLimiter.status(bucket, { key: "k" })), [true, 10, 10, 0, 0])
      yield* RateLimiter.acquire(bucket, { key: "k", cost: 8 })
      // 2 left; 5 come in 300 ms (10/s); full again in 800 ms
      const s = yield* RateLimiter.status(bucket, { key: "k", cost: 5 })
      assert.deepStrictEqual(look(s), [false, 10, 2, 800, 300])
      assert.deepStrictEqual([s.limiterId, s.key, s.cost, s.spec.id], [bucket, "k", 5, bucket])
      assert.deepStrictEqual(look(yield* RateLimiter.status(bucket, { key: "k", cost: 2 })), [true, 10, 2, 800, 0])
      // other keys are whole
      assert.deepStrictEqual(look(yield* RateLimiter.status(bucket, { key: "other" })), [true, 10, 10, 0, 0])

      yield* RateLimiter.acquire(fixed, { cost: 3 })
      yield* TestClock.adjust("15 seconds")
      assert.deepStrictEqual(look(yield* RateLimiter.status(fixed, { cost: 3 })), [false, 4, 1, 45_000, 45_000])
      assert.deepStrictEqual(look(yield* RateLimiter.status(fixed)), [true, 4, 1, 45_000, 0])

      yield* RateLimiter.acquire(sliding, { cost: 2 })
      yield* TestClock.adjust("10 seconds")
      yield* RateLimiter.acquire(sliding, { cost: 2 })
      // 4 of 5 used: 3 fit once the first entry leaves, in 50 s
      assert.deepStrictEqual(look(yield* RateLimiter.status(sliding, { cost: 3 })), [false, 5, 1, 60_000, 50_000])

      yield* RateLimiter.acquire(slots)
      assert.deepStrictEqual(look(yield* RateLimiter.status(slots)).slice(0, 3), [true, 2, 1])
    }).pipe(Effect.provide(withLimiters({
      [bucket]: { ratePerSecond: 10 },
      [fixed]: { algorithm: "fixed_window", limit: 4, window: "1 minute" },
      [sliding]: { algorithm: "sliding_window", limit: 5, window: "1 minute" },
      [slots]: { maxConcurrent: 2 }
    })))
  })

  it.scoped("status moves no statistic and no metric, allowed or not", () => {
    const id = fresh("quiet")
    return Effect.gen(function*() {
      yield* RateLimiter.acquire(id)
      const before = yield* everything(id)
      assert.strictEqual(before.metrics.totalAcquisitions, 1)
      for (const cost of [1, 2, 3]) yield* RateLimiter.status(id, { cost })
      const refused = yield* RateLimiter.status(id, { cost: 3 })
      assert.isFalse(refused.allowed)
      assert.deepStrictEqual(yield* everything(id), before)
      // and spends nothing
      assert.deepStrictEqual((yield* RateLimiter.status(id)).remaining, 2)
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 1, burst: 3 } })))
  })

  it.scoped("bad input fails as check fails; a store failure is StoreUnavailable, not counted", () => {
    const id = fresh("strict")
    return Effect.gen(function*() {
      assert.strictEqual((yield* Effect.flip(RateLimiter.status(id, { cost: 4 })))._tag, "InvalidCost")
      const badKey = 7 as unknown as string // from JavaScript
      const e = yield* Effect.flip(RateLimiter.status(id, { key: badKey }))
      assert.deepStrictEqual(e._tag === "ConfigError" ? e.path : e._tag, "options.key")
      assert.strictEqual((yield* Effect.flip(RateLimiter.status("nope")))._tag, "LimiterNotFound")
      const down = yield* Effect.flip(RateLimiter.status(id))
      assert.deepStrictEqual(down._tag === "StoreUnavailable" ? [down.engine, down.cause] : down._tag, ["broken", "no peek today"])
      assert.strictEqual((yield* RateLimiter.metrics(id)).storeErrors, 0)
    }).pipe(Effect.provide(
      RateLimiter.layer({ [id]: { ratePerSecond: 1, burst: 3 } }).pipe(Layer.provide(T.layerScoped(
        RateLimitStore.RateLimitStore,
        Effect.map(makeStore, (store) =>
          RateLimitStore.make({
            ...store,
            engine: "broken",
            peek: () =>
              Effect.fail(new RateLimitStore.StoreError({ engine: "broken", operation: "peek", message: "no peek today" }))
          }))
      )))
    ))
  })
})
