/** The backoff arithmetic of src/core/backoff.ts: plain functions, no Effect. */
import { assert, describe, it } from "#test/vitest"
import { jitteredMs, MAX_DOUBLINGS, ROLLBACK_JITTER, ROLLBACK_RETRY_CAP_MS, rollbackRetryMs } from "../../src/core/backoff.js"

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

describe("rollbackRetryMs", () => {
  it("is min(2^k, 50) ms times a factor uniform in [0.8, 1.2)", () => {
    assert.deepStrictEqual([0, 1, 2, 3, 4, 5, 6, 7, 40].map((k) => rollbackRetryMs(k, 0.5)), [1, 2, 4, 8, 16, 32, 50, 50, 50])
    assert.strictEqual(rollbackRetryMs(0, 0), 0.8)
    assert.strictEqual(rollbackRetryMs(6, 0), 40)
    assert.strictEqual(ROLLBACK_RETRY_CAP_MS, 50)
    assert.deepStrictEqual(ROLLBACK_JITTER, { min: 0.8, max: 1.2 })
    assert.isTrue(rollbackRetryMs(3, 0.999_999) < 8 * 1.2)
    assert.isTrue(rollbackRetryMs(3, 0.999_999) > 9.59)
    // the jittered schedule's own arithmetic: d·0.8·(1 − r) + d·1.2·r, to the last bit
    for (const [k, r] of [[0, 0.2615593276377436], [4, 0.123456789], [9, 0.987654321]] as const) {
      const d = Math.min(2 ** k, 50)
      assert.strictEqual(rollbackRetryMs(k, r), d * 0.8 * (1 - r) + d * 1.2 * r)
    }
  })

  it("treats a count below 0 as the first retry", () => {
    assert.strictEqual(rollbackRetryMs(-3, 0.5), 1)
  })
})
