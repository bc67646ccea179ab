/** Rate strings to a rate per second (src/core/rate.ts): plain functions, no Effect. */
import { assert, describe, it } from "#test/vitest"
import { ratePerSecondOf } from "../../src/core/rate.js"

describe("ratePerSecondOf", () => {
  it("reads a count, an optional span and a unit", () => {
    assert.strictEqual(ratePerSecondOf("100/min"), 100 / 60)
    assert.strictEqual(ratePerSecondOf("10/5s"), 2)
    assert.strictEqual(ratePerSecondOf("5 per hour"), 5 / 3600)
    assert.strictEqual(ratePerSecondOf(" 1 / 250ms "), 4)
    assert.strictEqual(ratePerSecondOf("1/3650d"), 1 / (3650 * 86_400))
    assert.strictEqual(ratePerSecondOf("3/Seconds"), 3)
  })

  it("answers undefined for anything else", () => {
    for (const input of ["", "100", "100/", "/min", "0/min", "1/0s", "-1/s", "1/fortnight", "1e3/s", "ten/s"]) {
      assert.isUndefined(ratePerSecondOf(input), input)
    }
  })
})
