/**
 * The jittered backoff (src/internal/store/backoff.ts) that the NATS compare-and-set loop draws
 * after each lost write: same draws as the arithmetic of src/core/backoff.ts, on Effect's
 * `Random`, drawn without sleeping.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect, Random } from "effect"
import { jitteredMs } from "../../src/core/backoff.js"
import * as Backoff from "../../src/internal/store/backoff.js"
import * as T from "#test/effect"

/** The waits the loop draws after its first `n` lost writes, in order (attempts 1…n). */
const waits = (baseMs: number, n: number) =>
  Effect.forEach(Array.from({ length: n }, (_, i) => i + 1), (attempt) => Backoff.jittered(baseMs, attempt))

describe("Backoff.jittered", () => {
  it.effect("draws the n-th wait as jitteredMs(base, n, Random.next), exactly", () =>
    Effect.gen(function*() {
      const got = yield* waits(10, 6).pipe(T.withSeed("seed"))
      const expected = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) => Effect.map(Random.next, (r) => jitteredMs(10, n, r))).pipe(
        T.withSeed("seed")
      )
      assert.deepStrictEqual(got, expected)
    }))

  it.effect("stays within [0, 2·base·2^min(n − 1, 3)) for any number of losses", () =>
    Effect.gen(function*() {
      const got = yield* waits(10, 200)
      assert.strictEqual(got.length, 200)
      got.forEach((ms, i) => {
        assert.isTrue(ms >= 0 && ms < 20 * 2 ** Math.min(i, 3), `wait ${i + 1}: ${ms}`)
      })
      // the mean of the later (8×) waits is near 80 ms
      const late = got.slice(3)
      const mean = late.reduce((a, b) => a + b, 0) / late.length
      assert.isTrue(mean > 60 && mean < 100, `mean ${mean}`)
    }))
})
