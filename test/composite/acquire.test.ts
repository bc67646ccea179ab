import { assert, describe, it } from "#test/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { MemoryStore, RateLimiter, RateLimitStore } from "effect-rate-sync"
import * as T from "#test/effect"
import { TestClock } from "#test/effect"
import { makeFakeStore } from "./fakeStore.js"
import { counters, fresh, recordingSlots, state, withLimiters } from "./helpers.js"

const retryMs = (e: { readonly retryAfter: Duration.Duration }) => Duration.toMillis(e.retryAfter)

describe("several limits in one call (acquire, tryAcquire, withRateLimit)", () => {
  it.scoped("an LLM client: rpm + tpm, an estimated cost adjusted to the real count; the debt makes the next call wait", () => {
    const rpm = fresh("rpm")
    const tpm = fresh("tpm")
    const key = "user-1"
    return Effect.gen(function*() {
      // call 1: one request and an estimate of 2000 tokens
      const first = yield* RateLimiter.acquire([rpm, { limiter: tpm, cost: 2000 }], { key })
      assert.deepStrictEqual(first.limits, [
        { limiterId: rpm, key, cost: 1 },
        { limiterId: tpm, key, cost: 2000 }
      ])
      assert.deepStrictEqual(yield* state(tpm, key), { remaining: 4000, retryAfterMs: 0 })
      // the model answered with 5000 tokens: charge the 3000 more
      const adjusted = yield* first.adjust({ [tpm]: 3000 })
      assert.deepStrictEqual(adjusted, [
        { limiterId: tpm, key, requested: 3000, applied: 3000, charged: 5000, remaining: 1000, resetAfterMs: 50_000 }
      ])
      // call 2: an estimate of 2000 again; 1000 are left, the other 1000 come in 10 s (100/s).
      // The call holds a window (rpm), so it is admitted now or waits the largest retryAfter.
      const second = yield* T.fork(RateLimiter.acquire([rpm, { limiter: tpm, cost: 2000 }], { key }))
      yield* TestClock.adjust("9999 millis")
      assert.isTrue((yield* T.poll(second))._tag === "None", "still waiting for the tokens")
      yield* TestClock.adjust("1 millis")
      const permit = yield* Fiber.join(second)
      assert.strictEqual(permit.waitedMs, 10_000)
      assert.deepStrictEqual(yield* state(tpm, key), { remaining: 0, retryAfterMs: 10 })
      // it used 500: give 1500 back
      const back = yield* permit.adjust({ [tpm]: -1500 })
      assert.deepStrictEqual(back.map((a) => [a.requested, a.applied, a.charged, a.remaining]), [[-1500, -1500, 500, 1500]])
      // two requests in the sliding minute
      assert.deepStrictEqual(yield* state(rpm, key), { remaining: 1, retryAfterMs: 0 })
      const m = yield* counters(tpm)
      assert.deepStrictEqual([m.acquisitions, m.refusals, m.metricAcquisitions], [2, 0, 2])
    }).pipe(Effect.provide(withLimiters({
      [rpm]: { algorithm: "sliding_window", limit: 3, window: "1 minute" },
      [tpm]: { ratePerSecond: 100, burst: 6000 }
    })))
  })

  it.scoped("only token buckets: every bucket reserves and the call sleeps the largest wait", () => {
    const fast = fresh("fast")
    const slow = fresh("slow")
    return Effect.gen(function*() {
      yield* RateLimiter.acquire([fast, slow])
      const fiber = yield* T.fork(RateLimiter.acquire([fast, slow]))
      yield* T.yieldNow
      // both reserved at once, for the largest wait (slow: 500 ms); the fast bucket is booked no
      // earlier than its own next slot (the SPI books every bucket at the instant the caller proceeds)
      assert.deepStrictEqual(yield* state(slow), { remaining: 0, retryAfterMs: 1000 })
      const f = yield* state(fast)
      assert.deepStrictEqual([f.remaining, f.retryAfterMs >= 200], [0, true])
      yield* TestClock.adjust("500 millis")
      const permit = yield* Fiber.join(fiber)
      assert.strictEqual(permit.waitedMs, 500)
      // a reservation beyond the timeout refuses every bucket: nothing reserved
      const before = [yield* state(fast), yield* state(slow)]
      const e = yield* Effect.flip(RateLimiter.acquire([fast, slow], { timeout: "100 millis" }))
      assert.strictEqual(e._tag, "RateLimitExceeded")
      if (e._tag === "RateLimitExceeded") {
        assert.deepStrictEqual(e.violations.map((v) => [v.limiterId, retryMs(v)]), [[slow, 500]])
      }
      assert.deepStrictEqual([yield* state(fast), yield* state(slow)], before)
      assert.strictEqual((yield* counters(slow)).timeouts, 1)
      assert.strictEqual((yield* counters(fast)).timeouts, 0)
    }).pipe(Effect.provide(withLimiters({ [fast]: { ratePerSecond: 10, burst: 1 }, [slow]: { ratePerSecond: 2, burst: 1 } })))
  })

  it.scoped("a refused call leaves every limit's state unchanged (bucket, sliding and fixed window)", () => {
    const bucket = fresh("bucket")
    const sliding = fresh("sliding")
    const fixed = fresh("fixed")
    const limits = [bucket, sliding, fixed]
    return Effect.gen(function*() {
      yield* RateLimiter.acquire(limits, { key: "k" })
      yield* TestClock.adjust("1 second")
      yield* RateLimiter.acquire(limits, { key: "k" })
      const before = yield* Effect.forEach(limits, (id) => RateLimiter.status(id, { key: "k" }))
      assert.deepStrictEqual(before.map((s) => s.remaining), [4, 0, 8])
      // sliding is full: the call is refused, nothing charged anywhere
      const e = yield* Effect.flip(RateLimiter.acquire(limits, { key: "k", timeout: 0 }))
      assert.strictEqual(e._tag, "RateLimitExceeded")
      if (e._tag === "RateLimitExceeded") {
        assert.deepStrictEqual(e.violations.map((v) => [v.limiterId, v.key, v.reason, v.limit, v.remaining, retryMs(v)]), [
          [sliding, "k", "rate", 2, 0, 59_000]
        ])
        assert.strictEqual(e.limiterId, sliding)
        assert.strictEqual(e.message, `Rate limit exceeded for limiter "${sliding}" (rate); retry after 59000 ms`)
      }
      assert.isFalse(yield* RateLimiter.tryAcquire(limits, { key: "k" }))
      const c = yield* RateLimiter.check(limits, { key: "k" })
      assert.isFalse(c.allowed)
      const after = yield* Effect.forEach(limits, (id) => RateLimiter.status(id, { key: "k" }))
      assert.deepStrictEqual(after, before)
      // refusals count on the limit that refused only; acquisitions on every limit
      assert.deepStrictEqual((yield* counters(sliding)).refusals, 3)
      assert.deepStrictEqual((yield* counters(bucket)).refusals, 0)
      assert.deepStrictEqual((yield* counters(fixed)).acquisitions, 2)
    }).pipe(Effect.provide(withLimiters({
      [bucket]: { ratePerSecond: 1, burst: 5 },
      [sliding]: { algorithm: "sliding_window", limit: 2, window: "1 minute" },
      [fixed]: { algorithm: "fixed_window", limit: 10, window: "1 minute" }
    })))
  })

  it.scoped("a key per limit: per-user and global limits in one call", () => {
    const user = fresh("tpm-user")
    const global = fresh("tpm-global")
    const call = (u: string, cost: number) =>
      RateLimiter.tryAcquire([{ limiter: user, key: u, cost }, { limiter: global, cost }])
    return Effect.gen(function*() {
      assert.isTrue(yield* call("u1", 800))
      // u2 has room of its own, the global limit has not
      const e = yield* Effect.flip(
        RateLimiter.acquire([{ limiter: user, key: "u2", cost: 800 }, { limiter: global, cost: 800 }], { timeout: 0 })
      )
      if (e._tag !== "RateLimitExceeded") return assert.fail(`unexpected ${e._tag}`)
      assert.deepStrictEqual(e.violations.map((v) => [v.limiterId, v.key, v.remaining]), [[global, "", 700]])
      assert.isTrue(yield* call("u2", 700))
      assert.deepStrictEqual((yield* RateLimiter.status(user, { key: "u1" })).remaining, 200)
      assert.deepStrictEqual((yield* RateLimiter.status(user, { key: "u2" })).remaining, 300)
      assert.deepStrictEqual((yield* RateLimiter.status(global)).remaining, 0)
      // the call's key is the default of the limits without one
      const c = yield* RateLimiter.check([user, { limiter: global, key: "" }], { key: "u3" })
      assert.deepStrictEqual(c.decisions.map((d) => [d.limiterId, d.key, d.allowed]), [[user, "u3", true], [global, "", false]])
    }).pipe(Effect.provide(withLimiters({
      [user]: { algorithm: "fixed_window", limit: 1000, window: "1 minute" },
      [global]: { algorithm: "fixed_window", limit: 1500, window: "1 minute" }
    })))
  })

  it.scoped("concurrency limits: slots taken in a fixed order, all given back when the rate part refuses", () => {
    const a = fresh("a-slots")
    const b = fresh("b-slots")
    const rate = fresh("rate")
    const log: Array<string> = []
    return Effect.gen(function*() {
      const scope = yield* Scope.make()
      // given b first: slots are still taken by limiter id
      const held = yield* T.scopeExtend(RateLimiter.acquire([b, a, rate]), scope)
      assert.deepStrictEqual(log, [a, b])
      assert.deepStrictEqual([(yield* RateLimiter.metrics(a)).currentConcurrent, (yield* RateLimiter.metrics(b)).currentConcurrent], [1, 1])
      // a second caller finds a's slot taken: refused (concurrency), b's slot never asked for
      const e = yield* Effect.flip(Effect.scoped(RateLimiter.acquire([a, b, rate], { timeout: 0 })))
      if (e._tag !== "RateLimitExceeded") return assert.fail(`unexpected ${e._tag}`)
      assert.deepStrictEqual(e.violations.map((v) => [v.limiterId, v.reason, v.limit, v.remaining]), [[a, "concurrency", 1, 0]])
      assert.deepStrictEqual(log, [a, b, a])
      yield* held.release
      assert.deepStrictEqual((yield* RateLimiter.status(a)).remaining, 1)
      // the rate part refuses (its one token is spent): both slots taken, then given back
      const r = yield* Effect.flip(Effect.scoped(RateLimiter.acquire([a, b, rate], { timeout: 0 })))
      if (r._tag !== "RateLimitExceeded") return assert.fail(`unexpected ${r._tag}`)
      assert.deepStrictEqual(r.violations.map((v) => [v.limiterId, v.reason]), [[rate, "rate"]])
      assert.deepStrictEqual(log, [a, b, a, a, b])
      assert.deepStrictEqual([(yield* RateLimiter.status(a)).remaining, (yield* RateLimiter.status(b)).remaining], [1, 1])
      const ma = yield* RateLimiter.metrics(a)
      assert.deepStrictEqual([ma.currentConcurrent, ma.totalReleases, ma.refusals], [0, 2, 1])
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.provide(
      RateLimiter.layer({
        [a]: { maxConcurrent: 1 },
        [b]: { maxConcurrent: 1 },
        [rate]: { ratePerSecond: 1 }
      }).pipe(Layer.provide(recordingSlots(log)))
    ))
  })

  it.scoped("a call holding a window waits the largest retryAfter and asks again, within its timeout", () => {
    const bucket = fresh("bucket")
    const window = fresh("window")
    return Effect.gen(function*() {
      yield* RateLimiter.acquire([bucket, window])
      yield* TestClock.adjust("200 millis")
      // the window frees at 1000, the bucket at 500: the call goes through at 1000
      const fiber = yield* T.fork(RateLimiter.acquire([bucket, window], { timeout: "1 second" }))
      yield* TestClock.adjust("800 millis")
      const permit = yield* Fiber.join(fiber)
      assert.strictEqual(permit.waitedMs, 800)
      // past the timeout: refused with both violations, the error's retryAfter the largest
      const e = yield* Effect.flip(RateLimiter.acquire([bucket, window], { timeout: "300 millis" }))
      if (e._tag !== "RateLimitExceeded") return assert.fail(`unexpected ${e._tag}`)
      assert.deepStrictEqual(e.violations.map((v) => [v.limiterId, retryMs(v)]), [[bucket, 500], [window, 1000]])
      assert.deepStrictEqual([e.limiterId, retryMs(e)], [window, 1000])
      assert.strictEqual(e.message, `Rate limit exceeded for limiters "${bucket}" (rate), "${window}" (rate); retry after 1000 ms`)
      const mw = yield* counters(window)
      const mb = yield* counters(bucket)
      assert.deepStrictEqual([mw.timeouts, mw.refusals, mb.timeouts, mb.refusals], [1, 1, 1, 1])
      assert.deepStrictEqual([mw.metricRefusals, mb.metricRefusals], [1, 1])
    }).pipe(Effect.provide(withLimiters({
      [bucket]: { ratePerSecond: 2, burst: 1 },
      [window]: { algorithm: "fixed_window", limit: 1, window: "1 second" }
    })))
  })

  it.scoped("withRateLimit over several limits, and refundOn", () => {
    const api = fresh("api")
    const login = fresh("login")
    return Effect.gen(function*() {
      const limits = [{ limiter: api, key: "ip" }, login]
      // a failed attempt counts; a successful one is given back
      const attempt = (ok: boolean) => {
        const login: Effect.Effect<string, "wrong password"> = ok ? Effect.succeed("welcome") : Effect.fail("wrong password")
        return login.pipe(RateLimiter.withRateLimit(limits, { refundOn: "success" }))
      }
      assert.strictEqual(yield* attempt(true), "welcome")
      assert.deepStrictEqual([(yield* state(api, "ip")).remaining, (yield* state(login)).remaining], [10, 3])
      assert.strictEqual(yield* Effect.flip(attempt(false)), "wrong password")
      assert.deepStrictEqual([(yield* state(api, "ip")).remaining, (yield* state(login)).remaining], [9, 2])
      // refundOn failure: failed work does not count
      const failing = RateLimiter.withRateLimit(Effect.fail("boom" as const), limits, { refundOn: "failure" })
      assert.strictEqual(yield* Effect.flip(failing), "boom")
      assert.deepStrictEqual([(yield* state(api, "ip")).remaining, (yield* state(login)).remaining], [9, 2])
      // an unknown refundOn is a ConfigError
      const always = "always" as "failure" // from JavaScript
      const bad = yield* Effect.flip(RateLimiter.withRateLimit(Effect.void, login, { refundOn: always }))
      assert.deepStrictEqual(bad._tag === "ConfigError" ? bad.path : bad._tag, "options.refundOn")
    }).pipe(Effect.provide(withLimiters({
      [api]: { algorithm: "fixed_window", limit: 10, window: "1 minute" },
      [login]: { algorithm: "sliding_window", limit: 3, window: "5 minutes" }
    })))
  })
})

describe("several limits: what a call must be", () => {
  it.scoped("the limits of a call share a store; a store without takeAll is a ConfigError naming its engine", () => {
    const x = fresh("x")
    const y = fresh("y")
    const slots = fresh("slots")
    return Effect.gen(function*() {
      const r = yield* RateLimiter.make({
        stores: { one: yield* MemoryStore.make(), two: yield* makeFakeStore({ engine: "legacy", takeAll: false }) },
        defaultStore: "one",
        limiters: {
          [x]: { ratePerSecond: 1 },
          [y]: { ratePerSecond: 1, store: "two" },
          [`${y}-2`]: { ratePerSecond: 1, store: "two" },
          [slots]: { maxConcurrent: 1, store: "two" }
        }
      })
      const split = yield* Effect.flip(r.acquire([x, y]))
      if (split._tag !== "ConfigError") return assert.fail(`unexpected ${split._tag}`)
      assert.strictEqual(split.path, "limits")
      assert.strictEqual(split.received, `"${x}" on store "one", "${y}" on store "two"`)
      const legacy = yield* Effect.flip(r.check([y, `${y}-2`]))
      if (legacy._tag !== "ConfigError") return assert.fail(`unexpected ${legacy._tag}`)
      assert.strictEqual(legacy.path, "stores.two")
      assert.include(legacy.message, `the "legacy" store`)
      // one rate limit (and slots) need no takeAll
      const p = yield* r.acquire([y, slots])
      assert.deepStrictEqual(p.limits.map((l) => l.limiterId), [y, slots])
    }).pipe(Effect.scoped)
  })

  it.effect("bad limits are typed failures: empty, repeated, misspelt, a key that is not a string, a bad cost, an unknown id", () => {
    const a = fresh("a")
    const b = fresh("b")
    return Effect.gen(function*() {
      const failure = <A, E extends { readonly _tag: string }>(eff: Effect.Effect<A, E, Scope.Scope | RateLimiter.RateLimiter>) =>
        Effect.map(Effect.flip(Effect.scoped(eff)), (e) =>
          "path" in e ? `${e._tag} ${String(e.path)}` : "limiterId" in e ? `${e._tag} ${String(e.limiterId)}` : e._tag)
      assert.strictEqual(yield* failure(RateLimiter.acquire([])), "ConfigError limits")
      assert.strictEqual(yield* failure(RateLimiter.acquire([a, { limiter: a, key: "k" }])), "ConfigError limits[1].limiter")
      const misspelt = [{ limiter: a, cots: 2 }] as unknown as RateLimiter.Limits // from JavaScript
      assert.strictEqual(yield* failure(RateLimiter.check(misspelt)), "ConfigError limits[0].cots")
      const badKey = [{ limiter: a, key: 5 }] as unknown as RateLimiter.Limits // from JavaScript
      assert.strictEqual(yield* failure(RateLimiter.tryAcquire(badKey)), "ConfigError limits[0].key")
      assert.strictEqual(yield* failure(RateLimiter.acquire([a, { limiter: b, cost: 4 }])), `InvalidCost ${b}`)
      assert.strictEqual(yield* failure(RateLimiter.acquire([a, b], { cost: 1.5 })), `InvalidCost ${a}`)
      assert.strictEqual(yield* failure(RateLimiter.acquire([a, "nope"])), "LimiterNotFound nope")
      assert.strictEqual(yield* failure(RateLimiter.acquire([a, b], { timeout: -1 })), "ConfigError options.timeout")
      // nothing was charged by any of them
      assert.deepStrictEqual([(yield* state(a)).remaining, (yield* state(b)).remaining], [3, 3])
    }).pipe(Effect.provide(withLimiters({ [a]: { ratePerSecond: 1, burst: 3 }, [b]: { ratePerSecond: 1, burst: 3 } })))
  })

  it.scoped("a store failure: fail-open admits the call (nothing charged, nothing to adjust) unless one limit is fail-closed", () => {
    const open1 = fresh("open1")
    const open2 = fresh("open2")
    const closed = fresh("closed")
    return Effect.gen(function*() {
      const permit = yield* RateLimiter.acquire([open1, open2])
      assert.isTrue(permit.failedOpen)
      assert.deepStrictEqual(
        (yield* permit.adjust(5)).map((a) => [a.limiterId, a.requested, a.applied, a.charged]),
        [[open1, 0, 0, 0], [open2, 0, 0, 0]]
      )
      const c = yield* RateLimiter.check([open1, open2])
      assert.deepStrictEqual([c.allowed, c.failedOpen], [true, true])
      for (const id of [open1, open2]) {
        const m = yield* RateLimiter.metrics(id)
        assert.deepStrictEqual([m.storeErrors, m.failOpenAdmits, m.totalAcquisitions], [2, 2, 1])
      }
      const e = yield* Effect.flip(RateLimiter.acquire([open1, closed]))
      assert.deepStrictEqual(e._tag === "StoreUnavailable" ? e.cause : e._tag, "down")
      assert.strictEqual((yield* Effect.flip(RateLimiter.check([closed, open2])))._tag, "StoreUnavailable")
    }).pipe(Effect.provide(
      RateLimiter.layer({
        [open1]: { ratePerSecond: 1 },
        [open2]: { algorithm: "fixed_window", limit: 1, window: "1 minute" },
        [closed]: { ratePerSecond: 1, failClosed: true }
      }).pipe(Layer.provide(T.layerScoped(
        RateLimitStore.RateLimitStore,
        Effect.map(makeFakeStore(), (store) =>
          RateLimitStore.make({
            ...store,
            takeAll: () => Effect.fail(new RateLimitStore.StoreError({ engine: "fake", operation: "takeAll", message: "down" }))
          }))
      )))
    ))
  })
})
