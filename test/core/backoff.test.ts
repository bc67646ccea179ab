/** The backoff arithmetic of src/core/backoff.ts: plain functions, no Effect. */
import { assert, describe, it } from "@effect/vitest"
import { jitteredMs, MAX_DOUBLINGS } from "../../src/core/backoff.js"

describe("jitteredMs", () => {
  it("is uniform in [0, 2·base·2^min(attempt − 1, 3)): the mean doubles up to 8× the base", () => {
    assert.strictEqual(jitteredMs(10, 1, 0), 0)
    assert.strictEqual(jitteredMs(10, 1, 0.5), 10)
    assert.strictEqual(jitteredMs(10, 2, 0.5), 20)
    assert.strictEqual(jitteredMs(10, 3, 0.5), 40)
    assert.strictEqual(jitteredMs(10, 4, 0.5), 80)
    assert.strictEqual(jitteredMs(10, 40, 0.5), 80)
    assert.strictEqual(MAX_DOUBLINGS, 3)
    assert.isTrue(jitteredMs(10, 1, 0.999_999) < 20)
  })

  it("treats an attempt below 1 as the first, and a base of 0 as no pause", () => {
    assert.strictEqual(jitteredMs(10, 0, 0.5), 10)
    assert.strictEqual(jitteredMs(0, 5, 0.9), 0)
  })
})
