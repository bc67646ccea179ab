import { afterEach, assert, describe, it } from "#test/vitest"
import { RateLimitError } from "effect-rate-sync"
import * as RS from "effect-rate-sync/promise"
import { fresh, withLimiters } from "./helpers.js"

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => e
  )

describe("Promise facade: several limits, adjust, status", () => {
  afterEach(() => RS.dispose())

  it("acquire over several limits, adjust to the real count, status, refund", async () => {
    const rpm = fresh("rpm")
    const tpm = fresh("tpm")
    await RS.useLayer(withLimiters({
      [rpm]: { algorithm: "fixed_window", limit: 2, window: "1 hour" },
      [tpm]: { algorithm: "sliding_window", limit: 1000, window: "1 hour" }
    }))
    const permit = await RS.acquire([rpm, { limiter: tpm, cost: 400 }], { key: "u1" })
    assert.deepStrictEqual(permit.permit.limits.map((l) => [l.limiterId, l.cost]), [[rpm, 1], [tpm, 400]])
    const adjusted = await permit.adjust({ [tpm]: 300 })
    assert.deepStrictEqual(adjusted.map((a) => [a.limiterId, a.applied, a.charged, a.remaining]), [[tpm, 300, 700, 300]])
    const s = await RS.status(tpm, { key: "u1", cost: 500 })
    assert.deepStrictEqual([s.allowed, s.remaining, s.limit], [false, 300, 1000])
    // refused: nothing charged anywhere, every violation listed
    const e = await rejection(RS.acquire([rpm, { limiter: tpm, cost: 500 }], { key: "u1", timeout: 0 }))
    assert.instanceOf(e, RateLimitError.RateLimitExceeded)
    if (e instanceof RateLimitError.RateLimitExceeded) assert.deepStrictEqual(e.violations.map((v) => v.limiterId), [tpm])
    assert.isFalse(await RS.tryAcquire([rpm, { limiter: tpm, cost: 500 }], { key: "u1" }))
    assert.strictEqual((await RS.status(rpm, { key: "u1" })).remaining, 1)
    const back = await permit.refund()
    assert.deepStrictEqual(back.map((a) => [a.limiterId, a.applied]), [[rpm, -1], [tpm, -700]])
    await permit.release()
    assert.strictEqual((await RS.status(tpm, { key: "u1" })).remaining, 1000)
    // a single-limit permit adjusts too
    const one = await RS.acquire(tpm, { key: "u2", cost: 10 })
    assert.deepStrictEqual((await one.adjust(5)).map((a) => a.charged), [15])
    await one.release()
  })

  it("check over several limits answers every decision; rateLimited takes limits and refundOn", async () => {
    const api = fresh("api")
    const login = fresh("login")
    await RS.useLayer(withLimiters({
      [api]: { algorithm: "fixed_window", limit: 10, window: "1 hour" },
      [login]: { algorithm: "sliding_window", limit: 3, window: "1 hour" }
    }))
    const c = await RS.check([{ limiter: api, key: "ip" }, login])
    assert.deepStrictEqual([c.allowed, c.decisions.map((d) => d.remaining)], [true, [9, 2]])
    // a failed attempt gives its charge back (refundOn: "failure")
    const attempt = RS.rateLimited([{ limiter: api, key: "ip" }, login], { refundOn: "failure" })(
      async (ok: boolean) => {
        if (!ok) throw new Error("upstream down")
        return "done"
      }
    )
    assert.strictEqual(await attempt(true), "done")
    const failed = await rejection(attempt(false))
    assert.strictEqual(failed instanceof Error ? failed.message : "", "upstream down")
    assert.deepStrictEqual([(await RS.status(api, { key: "ip" })).remaining, (await RS.status(login)).remaining], [8, 1])
    const no = await RS.check([{ limiter: api, key: "ip" }, { limiter: login, cost: 2 }])
    assert.deepStrictEqual([no.allowed, no.violations.map((d) => d.limiterId)], [false, [login]])
    assert.strictEqual((await RS.status(api, { key: "ip" })).remaining, 8)
  })
})
