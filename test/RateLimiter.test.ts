import { assert, describe, it } from "#test/vitest"
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Ref } from "effect"
import { type LimiterDefinition, MemoryStore, RateLimiter, RateLimitMetrics, RateLimitStore } from "effect-rate-sync"
import { storeKey } from "../src/core/storeKey.js"
import { TestClock } from "#test/effect"
import * as T from "#test/effect"

const withLimiters = (limiters: Record<string, LimiterDefinition.LimiterDefinition>) =>
  RateLimiter.layer(limiters).pipe(Layer.provide(MemoryStore.layer()))

const fresh = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

describe("RateLimiter (memory store, TestClock)", () => {
  it.effect("a 5/s bucket paces 15 calls: 5 at once, then one every 200 ms", () => {
    const id = fresh("pace")
    return Effect.gen(function*() {
      const start = yield* Clock.currentTimeMillis
      const times = yield* Ref.make<Array<number>>([])
      const worker = Effect.scoped(
        Effect.gen(function*() {
          yield* RateLimiter.acquire(id)
          const now = yield* Clock.currentTimeMillis
          yield* Ref.update(times, (ts) => [...ts, now - start])
        })
      )
      const fiber = yield* T.fork(Effect.forEach(Array.from({ length: 15 }), () => worker, { concurrency: 15, discard: true }))
      yield* TestClock.adjust(Duration.seconds(3))
      yield* Fiber.join(fiber)
      const ts = (yield* Ref.get(times)).sort((a, b) => a - b)
      assert.deepStrictEqual(ts, [0, 0, 0, 0, 0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000])
      const m = yield* RateLimiter.metrics(id)
      assert.strictEqual(m.totalAcquisitions, 15)
      assert.strictEqual(m.maxWaitTimeMs, 2000)
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 5 } })))
  })

  it.effect("acquire past its timeout fails with RateLimitExceeded and retryAfter", () => {
    const id = fresh("timeout")
    return Effect.gen(function*() {
      yield* Effect.scoped(RateLimiter.acquire(id))
      const error = yield* Effect.flip(Effect.scoped(RateLimiter.acquire(id, { timeout: "100 millis" })))
      assert.strictEqual(error._tag, "RateLimitExceeded")
      if (error._tag === "RateLimitExceeded") {
        assert.strictEqual(error.reason, "rate")
        assert.strictEqual(Duration.toMillis(error.retryAfter), 1000)
        assert.strictEqual(error.limiterId, id)
      }
      const m = yield* RateLimiter.metrics(id)
      assert.strictEqual(m.timeouts, 1)
      assert.strictEqual(m.refusals, 1)
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 1, timeout: "10 seconds" } })))
  })

  it.effect("tryAcquire never waits; check answers a Decision that consumes only when allowed", () => {
    const id = fresh("check")
    return Effect.gen(function*() {
      const d1 = yield* RateLimiter.check(id, { key: "u1" })
      assert.deepStrictEqual([d1.allowed, d1.limit, d1.remaining, d1.retryAfterMs], [true, 2, 1, 0])
      const d2 = yield* RateLimiter.check(id, { key: "u1" })
      assert.deepStrictEqual([d2.allowed, d2.remaining], [true, 0])
      const d3 = yield* RateLimiter.check(id, { key: "u1" })
      assert.deepStrictEqual([d3.allowed, d3.remaining, d3.retryAfterMs], [false, 0, 500])
      // another key has its own state
      assert.isTrue(yield* Effect.scoped(RateLimiter.tryAcquire(id, { key: "u2" })))
      assert.isFalse(yield* Effect.scoped(RateLimiter.tryAcquire(id, { key: "u1" })))
      yield* TestClock.adjust("500 millis")
      assert.isTrue(yield* Effect.scoped(RateLimiter.tryAcquire(id, { key: "u1" })))
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 2 } })))
  })

  it.effect("bad costs are typed errors, never an admit or an endless wait", () => {
    const id = fresh("cost")
    return Effect.gen(function*() {
      for (const cost of [0, -1, Number.NaN, 1.5, 6, Infinity]) {
        const e = yield* Effect.flip(Effect.scoped(RateLimiter.acquire(id, { cost })))
        assert.strictEqual(e._tag, "InvalidCost", `cost ${cost}`)
        const c = yield* Effect.flip(RateLimiter.check(id, { cost }))
        assert.strictEqual(c._tag, "InvalidCost", `cost ${cost}`)
      }
      const d = yield* RateLimiter.check(id, { cost: 5 })
      assert.isTrue(d.allowed)
      assert.strictEqual(d.remaining, 0)
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 1, burst: 5 } })))
  })

  it.effect("unknown limiter: LimiterNotFound", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(RateLimiter.check("nope"))
      assert.strictEqual(e._tag, "LimiterNotFound")
    }).pipe(Effect.provide(withLimiters({}))))

  it.effect("max_concurrent = 2 never runs more than 2 of 6 tasks; slots come back", () => {
    const id = fresh("conc")
    return Effect.gen(function*() {
      const running = yield* Ref.make(0)
      const peak = yield* Ref.make(0)
      const task = Effect.gen(function*() {
        const n = yield* Ref.updateAndGet(running, (x) => x + 1)
        yield* Ref.update(peak, (p) => Math.max(p, n))
        yield* Effect.sleep("100 millis")
        yield* Ref.update(running, (x) => x - 1)
      }).pipe(RateLimiter.withRateLimit(id))
      const fiber = yield* T.fork(Effect.all(Array.from({ length: 6 }, () => task), { concurrency: "unbounded" }))
      for (let i = 0; i < 100; i++) yield* TestClock.adjust("10 millis")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* Ref.get(peak), 2)
      const m = yield* RateLimiter.metrics(id)
      assert.strictEqual(m.totalAcquisitions, 6)
      assert.strictEqual(m.totalReleases, 6)
      assert.strictEqual(m.currentConcurrent, 0)
      assert.isTrue(m.maxConcurrentReached >= 4)
      const store = yield* RateLimitStore.RateLimitStore
      const peek = yield* store.peek({ algorithm: "concurrency", limiter: id, key: "", limit: 2 })
      assert.strictEqual(peek.remaining, 2)
    }).pipe(Effect.provide(RateLimiter.layer({ [id]: { maxConcurrent: 2 } }).pipe(Layer.provideMerge(MemoryStore.layer()))))
  })

  it.effect("a permit's slot is released on success, failure and interruption", () => {
    const id = fresh("release")
    return Effect.gen(function*() {
      const store = yield* RateLimitStore.RateLimitStore
      const free = Effect.map(store.peek({ algorithm: "concurrency", limiter: id, key: "", limit: 1 }), (d) => d.remaining)
      yield* Effect.scoped(RateLimiter.acquire(id))
      assert.strictEqual(yield* free, 1)
      const failed = yield* Effect.exit(Effect.fail("boom").pipe(RateLimiter.withRateLimit(id)))
      assert.isTrue(Exit.isFailure(failed))
      assert.strictEqual(yield* free, 1)
      const held = yield* Deferred.make<void>()
      const fiber = yield* T.fork(Effect.andThen(Deferred.succeed(held, undefined), Effect.never).pipe(RateLimiter.withRateLimit(id)))
      yield* Deferred.await(held)
      assert.strictEqual(yield* free, 0)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* free, 1)
      // explicit early release is idempotent with the scope's
      yield* Effect.scoped(Effect.gen(function*() {
        const permit = yield* RateLimiter.acquire(id)
        yield* permit.release
        assert.strictEqual(yield* free, 1)
        yield* permit.release
      }))
      assert.strictEqual(yield* free, 1)
      assert.strictEqual((yield* RateLimiter.metrics(id)).totalReleases, 4)
    }).pipe(Effect.provide(RateLimiter.layer({ [id]: { maxConcurrent: 1 } }).pipe(Layer.provideMerge(MemoryStore.layer()))))
  })

  it.effect("a held permit renews its lease; a slot whose holder stops renewing frees itself", () => {
    const id = fresh("lease")
    return Effect.gen(function*() {
      const store = yield* RateLimitStore.RateLimitStore
      const free = Effect.map(store.peek({ algorithm: "concurrency", limiter: id, key: "", limit: 1 }), (d) => d.remaining)
      const fiber = yield* T.fork(Effect.scoped(Effect.andThen(RateLimiter.acquire(id), Effect.sleep("5 seconds"))))
      yield* TestClock.adjust("10 millis")
      for (let i = 0; i < 40; i++) {
        yield* TestClock.adjust("100 millis")
        assert.strictEqual(yield* free, 0, `held at step ${i}`)
      }
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* free, 1)
      // a crashed holder: a slot taken straight from the store and never renewed
      yield* store.acquireSlot({ limiter: id, key: "", holder: "crashed", limit: 1, leaseMs: 1000 })
      assert.strictEqual(yield* free, 0)
      yield* TestClock.adjust("1001 millis")
      assert.strictEqual(yield* free, 1)
      assert.isTrue(yield* Effect.scoped(RateLimiter.tryAcquire(id)))
    }).pipe(Effect.provide(RateLimiter.layer({ [id]: { maxConcurrent: 1, lease: "1 second" } }).pipe(Layer.provideMerge(MemoryStore.layer()))))
  })

  it.effect("sliding window login limiter refuses the 6th attempt with its retry time", () => {
    const id = fresh("login")
    return Effect.gen(function*() {
      for (let i = 0; i < 5; i++) {
        assert.isTrue((yield* RateLimiter.check(id, { key: "1.2.3.4" })).allowed)
        yield* TestClock.adjust("10 seconds")
      }
      const sixth = yield* RateLimiter.check(id, { key: "1.2.3.4" })
      assert.isFalse(sixth.allowed)
      assert.strictEqual(sixth.retryAfterMs, 300_000 - 50_000)
      const e = yield* Effect.flip(Effect.scoped(RateLimiter.acquire(id, { key: "1.2.3.4" })))
      assert.strictEqual(e._tag, "RateLimitExceeded")
    }).pipe(Effect.provide(withLimiters({ [id]: { algorithm: "sliding_window", limit: 5, window: "5 minutes", timeout: 0 } })))
  })

  it.effect("registration at run time: configureStore, configureLimiter, cloneLimiter, get, list", () =>
    Effect.gen(function*() {
      yield* RateLimiter.configureStore("second", { engine: "memory" })
      yield* RateLimiter.configureLimiter("api", { store: "second", ratePerSecond: 10, maxConcurrent: 3 })
      yield* RateLimiter.cloneLimiter("api", "api:premium", { ratePerSecond: 100 })
      const premium = yield* RateLimiter.get("api:premium")
      assert.strictEqual(premium.spec.ratePerSecond, 100)
      assert.strictEqual(premium.spec.burst, 100)
      assert.strictEqual(premium.spec.maxConcurrent, 3)
      assert.strictEqual(premium.store, "second")
      const dup = yield* Effect.flip(RateLimiter.cloneLimiter("api", "api:premium"))
      assert.strictEqual(dup._tag, "ConfigError")
      const missing = yield* Effect.flip(RateLimiter.configureLimiter("x", { store: "nowhere", ratePerSecond: 1 }))
      assert.strictEqual(missing._tag, "StoreNotFound")
      const bad = yield* Effect.flip(RateLimiter.configureLimiter("y", { ratePerSecond: -1 }))
      assert.strictEqual(bad._tag, "ConfigError")
      if (bad._tag === "ConfigError") assert.strictEqual(bad.path, "limiters.y.ratePerSecond")
      const ids = (yield* RateLimiter.list).map((l) => l.id).sort()
      assert.deepStrictEqual(ids, ["api", "api:premium"])
      const stores = (yield* RateLimiter.listStores).map((s) => `${s.id}:${s.engine}:${s.limiters.length}`).sort()
      assert.deepStrictEqual(stores, ["default:memory:0", "second:memory:2"])
      yield* RateLimiter.initializeAll
      assert.isTrue((yield* RateLimiter.get("api")).initialized)
    }).pipe(Effect.provide(withLimiters({}))))

  it.effect("cloneLimiter can switch the algorithm family: the other family's fields are dropped", () =>
    Effect.gen(function*() {
      yield* RateLimiter.configureLimiter("bucket", { ratePerSecond: 10, burst: 20, maxConcurrent: 3, timeout: 0 })
      yield* RateLimiter.cloneLimiter("bucket", "window", { algorithm: "sliding_window", limit: 2, window: "1 second" })
      const w = (yield* RateLimiter.get("window")).spec
      assert.deepStrictEqual(
        [w.algorithm, w.ratePerSecond, w.burst, w.limit, w.windowMs, w.maxConcurrent, w.timeoutMs],
        ["sliding_window", undefined, 2, 2, 1000, 3, 0]
      )
      // It behaves as a 2-per-second sliding window, not as the 10/s bucket it came from.
      assert.isTrue((yield* RateLimiter.check("window")).allowed)
      assert.isTrue((yield* RateLimiter.check("window")).allowed)
      const third = yield* RateLimiter.check("window")
      assert.deepStrictEqual([third.allowed, third.limit, third.retryAfterMs], [false, 2, 1000])
      yield* TestClock.adjust("1 second")
      assert.isTrue((yield* RateLimiter.check("window")).allowed)

      yield* RateLimiter.configureLimiter("fixed", { algorithm: "fixed_window", limit: 5, window: "1 minute" })
      yield* RateLimiter.cloneLimiter("fixed", "bucket2", { algorithm: "token_bucket", ratePerSecond: 2 })
      const b = (yield* RateLimiter.get("bucket2")).spec
      assert.deepStrictEqual(
        [b.algorithm, b.ratePerSecond, b.burst, b.limit, b.windowMs],
        ["token_bucket", 2, 2, undefined, undefined]
      )
      assert.isTrue((yield* RateLimiter.check("bucket2")).allowed)
      assert.isTrue((yield* RateLimiter.check("bucket2")).allowed)
      const refused = yield* RateLimiter.check("bucket2")
      assert.deepStrictEqual([refused.allowed, refused.limit, refused.retryAfterMs], [false, 2, 500])
      yield* RateLimiter.cloneLimiter("fixed", "bucket3", { algorithm: "token_bucket", rate: "6/min" })
      assert.strictEqual((yield* RateLimiter.get("bucket3")).spec.ratePerSecond, 0.1)

      // Within one family the window fields carry over; a switch without the new family's fields
      // is reported at the field the new algorithm needs.
      yield* RateLimiter.cloneLimiter("fixed", "sliding", { algorithm: "sliding_window" })
      const s = (yield* RateLimiter.get("sliding")).spec
      assert.deepStrictEqual([s.algorithm, s.limit, s.windowMs], ["sliding_window", 5, 60_000])
      const missing = yield* Effect.flip(RateLimiter.cloneLimiter("bucket", "nowindow", { algorithm: "fixed_window" }))
      assert.strictEqual(missing._tag, "ConfigError")
      if (missing._tag === "ConfigError") assert.strictEqual(missing.path, "limiters.nowindow.limit")
      // A field of the other family set by the override itself is still an error.
      const mixed = yield* Effect.flip(
        RateLimiter.cloneLimiter("bucket", "mixed", { algorithm: "sliding_window", limit: 2, window: "1 second", burst: 4 })
      )
      assert.strictEqual(mixed._tag, "ConfigError")
      if (mixed._tag === "ConfigError") assert.strictEqual(mixed.path, "limiters.mixed.burst")
    }).pipe(Effect.provide(withLimiters({}))))

  it.effect("timeouts counts only waits a set timeout cut short, not refusals without one", () => {
    const slow = fresh("slow")
    const held = fresh("held")
    return Effect.gen(function*() {
      // One token per 10 years (the longest refill a limiter accepts), and the limiter's own
      // timeout is 0: refusals that no set timeout cut.
      yield* Effect.scoped(RateLimiter.acquire(slow))
      const e = yield* Effect.flip(Effect.scoped(RateLimiter.acquire(slow)))
      assert.strictEqual(e._tag, "RateLimitExceeded")
      const zero = yield* Effect.flip(Effect.scoped(RateLimiter.acquire(slow, { timeout: Duration.zero })))
      assert.strictEqual(zero._tag, "RateLimitExceeded")
      assert.isFalse(yield* Effect.scoped(RateLimiter.tryAcquire(slow)))
      const m = yield* RateLimiter.metrics(slow)
      assert.deepStrictEqual([m.refusals, m.timeouts], [3, 0])
      // A set timeout that runs out is one, on the rate path and on the concurrency path.
      const cut = yield* Effect.flip(Effect.scoped(RateLimiter.acquire(slow, { timeout: "1 second" })))
      assert.strictEqual(cut._tag, "RateLimitExceeded")
      assert.strictEqual((yield* RateLimiter.metrics(slow)).timeouts, 1)
      yield* Effect.scoped(Effect.gen(function*() {
        yield* RateLimiter.acquire(held)
        assert.isFalse(yield* RateLimiter.tryAcquire(held))
        const waiting = yield* T.fork(Effect.flip(Effect.scoped(RateLimiter.acquire(held, { timeout: "100 millis" }))))
        yield* TestClock.adjust("200 millis")
        const error = yield* Fiber.join(waiting)
        assert.strictEqual(error._tag, "RateLimitExceeded")
        if (error._tag === "RateLimitExceeded") assert.strictEqual(error.reason, "concurrency")
      }))
      assert.deepStrictEqual(
        [(yield* RateLimiter.metrics(held)).refusals, (yield* RateLimiter.metrics(held)).timeouts],
        [2, 1]
      )
    }).pipe(Effect.provide(withLimiters({ [slow]: { rate: "1/3650d", timeout: 0 }, [held]: { maxConcurrent: 1 } })))
  })

  it.effect("reset clears a key's state", () => {
    const id = fresh("reset")
    return Effect.gen(function*() {
      assert.isTrue((yield* RateLimiter.check(id, { key: "k" })).allowed)
      assert.isFalse((yield* RateLimiter.check(id, { key: "k" })).allowed)
      yield* RateLimiter.reset(id, "k")
      assert.isTrue((yield* RateLimiter.check(id, { key: "k" })).allowed)
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 1 } })))
  })

  it.effect("Effect metrics are tagged by limiter id", () => {
    const id = fresh("metric")
    return Effect.gen(function*() {
      yield* RateLimiter.check(id)
      yield* RateLimiter.check(id)
      assert.strictEqual(yield* T.counterCount(RateLimitMetrics.acquisitions, { limiter: id }), 1)
      assert.strictEqual(yield* T.counterCount(RateLimitMetrics.refusals, { limiter: id }), 1)
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 1 } })))
  })
})

// A store that passes every call to the memory store but stops at the n-th call (before or after
// it runs) until the test lets it go: the test interrupts the limiter exactly there.
const gatedStore = (
  inner: RateLimitStore.RateLimitStoreService,
  stopAt: number,
  reached: Deferred.Deferred<void>,
  gate: Deferred.Deferred<void>
): RateLimitStore.RateLimitStoreService => {
  let calls = 0
  const wrap = <A, E>(op: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const n = calls++
      const stop = Effect.andThen(Deferred.succeed(reached, undefined), Deferred.await(gate))
      // Gate g stops call floor(g / 2): before it runs when g is even, after it ran when odd.
      if (n !== Math.floor(stopAt / 2)) return op
      return stopAt % 2 === 0 ? Effect.andThen(stop, op) : Effect.tap(op, () => stop)
    })
  return RateLimitStore.make({
    engine: "gated",
    tokenBucket: (r) => wrap(inner.tokenBucket(r)),
    slidingWindow: (r) => wrap(inner.slidingWindow(r)),
    fixedWindow: (r) => wrap(inner.fixedWindow(r)),
    acquireSlot: (r) => wrap(inner.acquireSlot(r)),
    renewSlot: (r) => wrap(inner.renewSlot(r)),
    releaseSlot: (r) => wrap(inner.releaseSlot(r)),
    peek: (r) => inner.peek(r),
    reset: (l, k) => inner.reset(l, k),
    initialize: inner.initialize
  })
}

/** Passes every call to `inner`, counting the lease renewals. */
const countingRenewals = (
  inner: RateLimitStore.RateLimitStoreService,
  renewals: { count: number }
): RateLimitStore.RateLimitStoreService =>
  RateLimitStore.make({
    ...inner,
    renewSlot: (r) =>
      Effect.suspend(() => {
        renewals.count++
        return inner.renewSlot(r)
      })
  })

describe("lease renewal stops with the slot", () => {
  it.scoped("an early permit.release stops renewing: no renew call after it, no lease counted lost", () =>
    Effect.gen(function*() {
      const id = fresh("early")
      const renewals = { count: 0 }
      const limiter = yield* RateLimiter.make({
        stores: { default: countingRenewals(yield* MemoryStore.make(), renewals) },
        limiters: { [id]: { maxConcurrent: 1, lease: "300 millis" } }
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const permit = yield* limiter.acquire(id)
        // Renewed every 100 ms while held.
        for (let i = 0; i < 5; i++) yield* TestClock.adjust("50 millis")
        assert.strictEqual(renewals.count, 2)
        yield* permit.release
        // The permit's scope stays open well past several renew intervals.
        for (let i = 0; i < 20; i++) yield* TestClock.adjust("50 millis")
        assert.strictEqual(renewals.count, 2, "renewed after the release")
      }))
      const m = yield* limiter.metrics(id)
      assert.deepStrictEqual([m.leasesLost, m.totalReleases, m.currentConcurrent], [0, 1, 0])
    }))

  it.scoped("a slot given back because the rate part failed is not renewed either", () =>
    Effect.gen(function*() {
      const id = fresh("ratefail")
      const renewals = { count: 0 }
      const limiter = yield* RateLimiter.make({
        stores: { default: countingRenewals(yield* MemoryStore.make(), renewals) },
        limiters: { [id]: { maxConcurrent: 2, ratePerSecond: 1, lease: "300 millis" } }
      })
      yield* Effect.scoped(limiter.acquire(id))
      yield* Effect.scoped(Effect.gen(function*() {
        // The slot is free, the token is not: the slot is taken, then given back when the rate fails.
        const e = yield* Effect.flip(limiter.acquire(id, { timeout: 0 }))
        assert.strictEqual(e._tag, "RateLimitExceeded")
        for (let i = 0; i < 20; i++) yield* TestClock.adjust("50 millis")
      }))
      assert.strictEqual(renewals.count, 0)
      const m = yield* limiter.metrics(id)
      assert.deepStrictEqual([m.leasesLost, m.totalReleases, m.currentConcurrent], [0, 2, 0])
    }))
})

describe("interrupt at every step", () => {
  it.scoped("no concurrency slot leaks whichever store call the interruption lands on", () =>
    Effect.gen(function*() {
      const inner = yield* MemoryStore.make()
      let step = 0
      let completedUninterrupted = false
      // Each step gates one more store call (before it runs, then after it ran), interrupts there.
      while (!completedUninterrupted && step < 200) {
        const id = fresh("irq")
        const reached = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const limiter = yield* RateLimiter.make({
          stores: { default: gatedStore(inner, step, reached, gate) },
          limiters: { [id]: { maxConcurrent: 1, ratePerSecond: 1, burst: 1, lease: "1 second" } }
        })
        const scenario = Effect.gen(function*() {
          yield* Effect.scoped(Effect.andThen(limiter.acquire(id), Effect.sleep("1500 millis")))
          yield* Effect.scoped(Effect.andThen(limiter.acquire(id), Effect.sleep("100 millis")))
        })
        const fiber = yield* T.fork(scenario)
        let done = false
        while (!done) {
          const hit = yield* Deferred.isDone(reached)
          if (hit) break
          const poll = yield* T.poll(fiber)
          if (poll._tag === "Some") {
            done = true
            break
          }
          yield* TestClock.adjust("50 millis")
        }
        if (done) {
          completedUninterrupted = true
          break
        }
        const interrupting = yield* T.fork(Fiber.interrupt(fiber))
        yield* T.yieldNow
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(interrupting)
        const peek = yield* inner.peek({ algorithm: "concurrency", limiter: id, key: "", limit: 1 })
        assert.strictEqual(peek.remaining, 1, `slot leaked when interrupted at gate ${step}`)
        const m = yield* limiter.metrics(id)
        assert.strictEqual(m.currentConcurrent, 0, `in-flight count wrong at gate ${step}`)
        step++
      }
      assert.isTrue(completedUninterrupted, "the scenario should finish once no gate is left")
      assert.isTrue(step >= 16, `expected to interrupt at many steps, got ${step}`)
    }))
})

describe("check on an in-process store", () => {
  it.scoped("decides in one synchronous step with exactly the answers of the effectful operations", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryStore.make()
      assert.isDefined(memory.unsafeTake, "the memory store offers the synchronous form")
      // another memory store without its synchronous form: every check goes through the effects
      const { unsafeTake: _, ...rest } = yield* MemoryStore.make()
      const effectful = RateLimitStore.make(rest)
      const limiters: Record<string, LimiterDefinition.LimiterDefinition> = {
        tb: { ratePerSecond: 5, burst: 3 },
        sw: { algorithm: "sliding_window", limit: 4, window: "1 second" },
        fw: { algorithm: "fixed_window", limit: 4, window: "1 second" }
      }
      const sync = yield* RateLimiter.make({ stores: { default: memory }, limiters })
      const viaEffects = yield* RateLimiter.make({ stores: { default: effectful }, limiters })
      const seen: Array<unknown> = []
      for (let step = 0; step < 40; step++) {
        for (const id of ["tb", "sw", "fw"]) {
          const key = `k${step % 3}`
          const a = yield* sync.check(id, { key, cost: 1 + (step % 2) })
          const b = yield* viaEffects.check(id, { key, cost: 1 + (step % 2) })
          const { spec: _a, ...da } = a
          const { spec: _b, ...db } = b
          assert.deepStrictEqual(da, db, `${id} step ${step}`)
          seen.push(a.allowed)
        }
        yield* TestClock.adjust(Duration.millis(90))
      }
      assert.isTrue(seen.includes(true) && seen.includes(false), "both admits and refusals were compared")
      for (const id of ["tb", "sw", "fw"]) {
        const a = yield* sync.metrics(id)
        const b = yield* viaEffects.metrics(id)
        assert.deepStrictEqual([a.totalAcquisitions, a.refusals], [b.totalAcquisitions, b.refusals])
      }
    }))
})

/**
 * What an untyped JavaScript caller can pass, seen through the type the API declares. A typed
 * boundary on purpose: these tests give the API what its types forbid.
 */
const untyped = <T>(value: unknown): T => value as T

describe("per-call options from any caller", () => {
  it.effect("a timeout Duration cannot decode, or a negative / NaN one, is a ConfigError at options.timeout", () => {
    const id = fresh("badtimeout")
    return Effect.gen(function*() {
      const bad: ReadonlyArray<readonly [unknown, string]> = [
        ["abc", `"abc"`],
        ["2 sekonds", `"2 sekonds"`],
        [-1, "-1"],
        [Number.NaN, "NaN"],
        [-Infinity, "-Infinity"],
        ["-1 seconds", `"-1 seconds"`],
        [[-1, 0], "an array"]
      ]
      for (const [timeout, received] of bad) {
        const options = { timeout: untyped<T.DurationInput>(timeout) }
        const errors = [
          yield* Effect.flip(Effect.scoped(RateLimiter.acquire(id, options))),
          yield* Effect.flip(Effect.scoped(RateLimiter.tryAcquire(id, options))),
          yield* Effect.flip(Effect.void.pipe(RateLimiter.withRateLimit(id, options)))
        ]
        for (const e of errors) {
          assert.strictEqual(e._tag, "ConfigError", `timeout ${received}`)
          if (e._tag === "ConfigError") {
            assert.deepStrictEqual([e.path, e.expected, e.received], [
              "options.timeout",
              `a duration of 0 or more (a ${T.durationInputName})`,
              received
            ])
          }
        }
      }
      // Nothing was taken by the refused calls; good timeouts still work, 0 and infinite included.
      assert.strictEqual((yield* RateLimiter.check(id)).remaining, 1)
      assert.isTrue(yield* Effect.scoped(RateLimiter.tryAcquire(id, { timeout: Duration.infinity })))
      assert.isFalse(yield* Effect.scoped(RateLimiter.tryAcquire(id, { timeout: 0 })))
      assert.strictEqual((yield* RateLimiter.metrics(id)).totalAcquisitions, 2)
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 1, burst: 2 } })))
  })

  it.effect("tryAcquire waits up to its own timeout before answering false; with none it answers at once", () => {
    const rate = fresh("tryrate")
    const conc = fresh("tryconc")
    return Effect.gen(function*() {
      yield* Effect.scoped(RateLimiter.acquire(rate))
      // No timeout: at once, whatever the limiter's own (10 s) timeout says.
      const atOnce = yield* T.fork(Effect.scoped(RateLimiter.tryAcquire(rate)))
      assert.isFalse(yield* Fiber.join(atOnce))
      // The next token is 1 s away: within a 2 s timeout it waits for it and answers true.
      const waiting = yield* T.fork(Effect.scoped(RateLimiter.tryAcquire(rate, { timeout: "2 seconds" })))
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* T.poll(waiting)), "answered before the token came")
      yield* TestClock.adjust("1 millis")
      assert.isTrue(yield* Fiber.join(waiting))
      // Further than the timeout: false (a token-bucket reservation is refused at once).
      assert.isFalse(yield* Effect.scoped(RateLimiter.tryAcquire(rate, { timeout: "500 millis" })))

      // Concurrency: a slot freed within the timeout is taken.
      const held = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const holder = yield* T.fork(
        Effect.andThen(Deferred.succeed(held, undefined), Deferred.await(done)).pipe(RateLimiter.withRateLimit(conc))
      )
      yield* Deferred.await(held)
      assert.isFalse(yield* Effect.scoped(RateLimiter.tryAcquire(conc)))
      const slotWaiter = yield* T.fork(Effect.scoped(RateLimiter.tryAcquire(conc, { timeout: "300 millis" })))
      yield* TestClock.adjust("100 millis")
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(holder)
      yield* TestClock.adjust("200 millis")
      assert.isTrue(yield* Fiber.join(slotWaiter))
      // A slot never freed: false once the timeout ran out, counted as a timeout.
      yield* Effect.scoped(Effect.gen(function*() {
        yield* RateLimiter.acquire(conc)
        const late = yield* T.fork(Effect.scoped(RateLimiter.tryAcquire(conc, { timeout: "300 millis" })))
        yield* TestClock.adjust("300 millis")
        assert.isFalse(yield* Fiber.join(late))
      }))
      assert.strictEqual((yield* RateLimiter.metrics(conc)).timeouts, 1)
    }).pipe(Effect.provide(withLimiters({ [rate]: { ratePerSecond: 1, timeout: "10 seconds" }, [conc]: { maxConcurrent: 1 } })))
  })

  it.effect("a cost or key of the wrong type is a typed failure with a readable received", () => {
    const id = fresh("types")
    return Effect.gen(function*() {
      const cost = untyped<number>("2")
      for (const e of [
        yield* Effect.flip(Effect.scoped(RateLimiter.acquire(id, { cost }))),
        yield* Effect.flip(Effect.scoped(RateLimiter.tryAcquire(id, { cost }))),
        yield* Effect.flip(RateLimiter.check(id, { cost }))
      ]) {
        assert.strictEqual(e._tag, "InvalidCost")
        if (e._tag === "InvalidCost") {
          assert.deepStrictEqual([e.limiterId, e.cost, e.max, e.received], [id, Number.NaN, 5, `"2"`])
          assert.strictEqual(e.message, `Invalid cost for limiter "${id}": expected a whole number in [1, 5], received "2"`)
        }
      }
      const key = untyped<string>(5)
      const k = yield* Effect.flip(Effect.scoped(RateLimiter.acquire(id, { key })))
      assert.strictEqual(k._tag, "ConfigError")
      if (k._tag === "ConfigError") assert.deepStrictEqual([k.path, k.expected, k.received], ["options.key", "a string", "5"])
      // `check` and `reset` answer the same typed error
      for (const e of [yield* Effect.flip(RateLimiter.check(id, { key })), yield* Effect.flip(RateLimiter.reset(id, key))]) {
        assert.strictEqual(e._tag, "ConfigError")
        if (e._tag === "ConfigError") assert.deepStrictEqual([e.path, e.expected, e.received], ["options.key", "a string", "5"])
      }
      // A limiter id of the wrong type is not found, not a defect.
      const missing = yield* Effect.flip(RateLimiter.check(untyped<string>(7)))
      assert.deepStrictEqual([missing._tag, missing._tag === "LimiterNotFound" ? missing.limiterId : ""], ["LimiterNotFound", "7"])
      assert.strictEqual((yield* RateLimiter.check(id)).remaining, 4, "nothing was taken by the refused calls")
    }).pipe(Effect.provide(withLimiters({ [id]: { ratePerSecond: 1, burst: 5 } })))
  })
})

describe("limiter definitions from any caller", () => {
  const accepted = "one of the limiter fields: store, algorithm, ratePerSecond, rate, burst, maxConcurrent, limit, window, timeout, failClosed, lease, blockCache"

  it.effect("an unknown field is a ConfigError naming it and listing the accepted fields, as TOML does", () =>
    Effect.gen(function*() {
      const typo = untyped<LimiterDefinition.LimiterDefinition>({ ratePerSecnd: 1, maxConcurrent: 1 })
      const e = yield* Effect.flip(RateLimiter.configureLimiter("x", typo))
      assert.strictEqual(e._tag, "ConfigError")
      if (e._tag === "ConfigError") {
        assert.deepStrictEqual([e.path, e.expected, e.received], ["limiters.x.ratePerSecnd", accepted, "an unknown field"])
      }
      assert.strictEqual((yield* Effect.flip(RateLimiter.get("x")))._tag, "LimiterNotFound")
      // cloneLimiter overrides too: a misspelt override is refused, not dropped.
      yield* RateLimiter.configureLimiter("base", { ratePerSecond: 1 })
      const o = yield* Effect.flip(RateLimiter.cloneLimiter("base", "copy", untyped<LimiterDefinition.LimiterOverrides>({ burts: 5 })))
      assert.strictEqual(o._tag, "ConfigError")
      if (o._tag === "ConfigError") assert.deepStrictEqual([o.path, o.expected], ["limiters.copy.burts", accepted])
      assert.strictEqual((yield* Effect.flip(RateLimiter.get("copy")))._tag, "LimiterNotFound")
      // at layer build as well
      const built = yield* Effect.flip(Layer.build(withLimiters({ y: typo })).pipe(Effect.scoped))
      assert.strictEqual(built._tag, "ConfigError")
      if (built._tag === "ConfigError") assert.strictEqual(built.path, "limiters.y.ratePerSecnd")
    }).pipe(Effect.provide(withLimiters({}))))

  it.effect("a store id or definition of the wrong type is a ConfigError, not a defect", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [unknown, string, string, string]> = [
        [{ store: 5, ratePerSecond: 1 }, "limiters.x.store", "a store id (a non-empty string)", "5"],
        [{ store: "", ratePerSecond: 1 }, "limiters.x.store", "a store id (a non-empty string)", `""`],
        [null, "limiters.x", "a limiter definition (an object of limiter fields)", "null"],
        ["fast", "limiters.x", "a limiter definition (an object of limiter fields)", `"fast"`]
      ]
      for (const [definition, path, expected, received] of cases) {
        const e = yield* Effect.flip(RateLimiter.configureLimiter("x", untyped<LimiterDefinition.LimiterDefinition>(definition)))
        assert.strictEqual(e._tag, "ConfigError", path)
        if (e._tag === "ConfigError") assert.deepStrictEqual([e.path, e.expected, e.received], [path, expected, received])
      }
      // A negative timeout in a definition is refused too (Duration would read it as 0).
      const negative = yield* Effect.flip(RateLimiter.configureLimiter("x", { ratePerSecond: 1, timeout: -1 }))
      assert.strictEqual(negative._tag, "ConfigError")
      if (negative._tag === "ConfigError") assert.deepStrictEqual([negative.path, negative.received], ["limiters.x.timeout", "-1"])
    }).pipe(Effect.provide(withLimiters({}))))
})

describe("check bookkeeping", () => {
  it.effect("check on a concurrency-only limiter peeks: no acquisition is counted; a refused peek is a refusal", () => {
    const id = fresh("peek")
    return Effect.gen(function*() {
      for (let i = 0; i < 3; i++) assert.isTrue((yield* RateLimiter.check(id)).allowed)
      const acquisitions = T.counterCount(RateLimitMetrics.acquisitions, { limiter: id })
      let m = yield* RateLimiter.metrics(id)
      assert.deepStrictEqual([m.totalAcquisitions, m.lastAcquisitionAt, m.refusals], [0, undefined, 0])
      assert.strictEqual(yield* acquisitions, 0)
      yield* Effect.scoped(Effect.gen(function*() {
        yield* RateLimiter.acquire(id)
        const refused = yield* RateLimiter.check(id)
        assert.deepStrictEqual([refused.allowed, refused.remaining], [false, 0])
      }))
      m = yield* RateLimiter.metrics(id)
      assert.deepStrictEqual([m.totalAcquisitions, m.refusals, m.totalReleases], [1, 1, 1])
      assert.strictEqual(yield* acquisitions, 1)
    }).pipe(Effect.provide(withLimiters({ [id]: { maxConcurrent: 1 } })))
  })
})

/**
 * The memory store behind a key encoding like a networked store's: keys travel as UTF-8 (every
 * lone surrogate becomes U+FFFD) and a key holding NUL is refused (PostgreSQL text) or, in the
 * synchronous form, cut at the NUL (a C string).
 */
const utf8Store = (inner: RateLimitStore.RateLimitStoreService, seen: Array<string>): RateLimitStore.RateLimitStoreService => {
  const utf8 = (key: string) => Buffer.from(key, "utf8").toString("utf8")
  const wire = <R extends { readonly key: string }, A>(
    operation: string,
    run: (r: R) => Effect.Effect<A, RateLimitStore.StoreError>
  ) =>
  (r: R): Effect.Effect<A, RateLimitStore.StoreError> =>
    Effect.suspend(() => {
      seen.push(r.key)
      return r.key.includes("\0")
        ? Effect.fail(new RateLimitStore.StoreError({ engine: "utf8", operation, message: "invalid byte sequence: 0x00" }))
        : run({ ...r, key: utf8(r.key) })
    })
  const cString = (key: string) => utf8(key.split("\0")[0] ?? "")
  const sync = inner.unsafeTake
  return RateLimitStore.make({
    engine: "utf8",
    tokenBucket: wire("tokenBucket", inner.tokenBucket),
    slidingWindow: wire("slidingWindow", inner.slidingWindow),
    fixedWindow: wire("fixedWindow", inner.fixedWindow),
    acquireSlot: wire("acquireSlot", inner.acquireSlot),
    renewSlot: wire("renewSlot", inner.renewSlot),
    releaseSlot: wire("releaseSlot", inner.releaseSlot),
    peek: wire("peek", inner.peek),
    reset: (limiter, key) => inner.reset(limiter, key === undefined ? undefined : utf8(key)),
    initialize: inner.initialize,
    ...(sync === undefined ? {} : {
      unsafeTake: {
        tokenBucket: (r, now) => {
          seen.push(r.key)
          return sync.tokenBucket({ ...r, key: cString(r.key) }, now)
        },
        slidingWindow: (r, now) => sync.slidingWindow({ ...r, key: cString(r.key) }, now),
        fixedWindow: (r, now) => sync.fixedWindow({ ...r, key: cString(r.key) }, now)
      }
    })
  })
}

const isWellFormed = (s: string) => Buffer.from(s, "utf8").toString("utf8") === s

describe("store keys", () => {
  // Distinct as JavaScript strings; several collapse once encoded as UTF-8 or cut at NUL.
  const tricky = ["\uD800", "\uDFFF", "\uDBFF", "\uFFFD", "a\uD800", "a\uDC00", "\uDC00\uD800", "a\0b", "a\0c", "a", "\0", "", "\u0001d800", "\u0001"]

  it("storeKey passes ordinary keys unchanged and maps every other one injectively to a well-formed, NUL-free key", () => {
    for (const key of ["", "user-42", "1.2.3.4", "2001:db8::/64", "ключ", "😀 emoji pair", "\uD83D\uDE00", "tab\there"]) {
      assert.strictEqual(storeKey(key), key)
    }
    const mapped = tricky.map(storeKey)
    assert.strictEqual(new Set(mapped).size, tricky.length)
    for (const k of mapped) assert.isTrue(isWellFormed(k) && !k.includes("\0"), JSON.stringify(k))
    assert.strictEqual(storeKey("\uD800"), "\u0001d800")
    assert.strictEqual(storeKey("a\0b"), "\u0001006100000062")
    assert.strictEqual(storeKey("\u0001d800"), "\u00010001006400380030" + "0030")
  })

  for (const synchronous of [false, true]) {
    it.scoped(`lone surrogates and NUL keep their own state (memory store, ${synchronous ? "synchronous" : "effectful"} check)`, () =>
      Effect.gen(function*() {
        const memory = yield* MemoryStore.make()
        const { unsafeTake: _, ...effectful } = memory
        const seen: Array<string> = []
        const store = utf8Store(synchronous ? memory : RateLimitStore.make(effectful), seen)
        const limiter = yield* RateLimiter.make({
          stores: { default: store },
          limiters: { bucket: { ratePerSecond: 1 }, slots: { maxConcurrent: 1, timeout: 0 } }
        })
        for (const key of tricky) {
          const first = yield* limiter.check("bucket", { key })
          assert.deepStrictEqual([first.allowed, first.failedOpen, first.key], [true, false, key], `first ${JSON.stringify(key)}`)
        }
        for (const key of tricky) {
          const second = yield* limiter.check("bucket", { key })
          assert.deepStrictEqual([second.allowed, second.failedOpen], [false, false], `second ${JSON.stringify(key)}`)
        }
        // Every key the store saw survives its encoding.
        assert.isTrue(seen.length > 0 && seen.every((k) => isWellFormed(k) && !k.includes("\0")))
        assert.strictEqual((yield* limiter.metrics("bucket")).failOpenAdmits, 0)
        // reset addresses the same store key: only that key's state goes.
        yield* limiter.reset("bucket", "\uD800")
        assert.isTrue((yield* limiter.check("bucket", { key: "\uD800" })).allowed)
        assert.isFalse((yield* limiter.check("bucket", { key: "\uDFFF" })).allowed)
        assert.isFalse((yield* limiter.check("bucket", { key: "a\0c" })).allowed)
        // Slots (acquire, peek) too; errors and permits report the key as given.
        yield* Effect.scoped(Effect.gen(function*() {
          const permit = yield* limiter.acquire("slots", { key: "\uD800" })
          assert.strictEqual(permit.key, "\uD800")
          assert.isTrue(yield* limiter.tryAcquire("slots", { key: "\uDFFF" }))
          assert.isTrue(yield* limiter.tryAcquire("slots", { key: "a\0b" }))
          const refused = yield* Effect.flip(limiter.acquire("slots", { key: "\uD800" }))
          assert.strictEqual(refused._tag, "RateLimitExceeded")
          if (refused._tag === "RateLimitExceeded") assert.strictEqual(refused.key, "\uD800")
          assert.isFalse((yield* limiter.check("slots", { key: "\uD800" })).allowed)
          assert.isTrue((yield* limiter.check("slots", { key: "a\0c" })).allowed)
        }))
        assert.strictEqual((yield* limiter.metrics("slots")).failOpenAdmits, 0)
      }))
  }
})
