import { assert, describe, it } from "#test/vitest"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Option } from "effect"
import { MemoryStore } from "effect-rate-sync"
import { runStoreSuite } from "../conformance/RateLimitStoreSuite.js"
import { TestClock } from "#test/effect"
import * as T from "#test/effect"

// The memory-only tests come first: @effect/vitest's `layer(...)` (used by `runStoreSuite`) mutates
// the shared `it`, so `it.effect`/`it.scoped` registered after it would run in that layer's runtime.

const fresh = (label: string) => `${label}-${crypto.randomUUID()}`

// A bucket a single request throttles for a minute.
const strict = { ratePerSecond: 1 / 60, burst: 1, cost: 1, maxWaitMs: 0 }
// A bucket one request leaves with room (not throttled).
const roomy = { ratePerSecond: 1, burst: 5, cost: 1, maxWaitMs: 0 }

describe("memory store: bounds and eviction", () => {
  it.scoped("never holds more than maxKeys states", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 10 })
      const l = fresh("bound")
      for (let i = 0; i < 50; i++) {
        const d = yield* store.tokenBucket({ limiter: l, key: `k${i}`, ...roomy })
        assert.isTrue(d.allowed, `key ${i}: room is made by evicting keys that are not throttled`)
        assert.isTrue((yield* store.size) <= 10, `size ${yield* store.size} after key ${i}`)
      }
      // Observable too: at most 10 of the 50 keys still remember their take.
      let remembered = 0
      for (let i = 0; i < 50; i++) {
        const p = yield* store.peek({ algorithm: "token_bucket", limiter: l, key: `k${i}`, ratePerSecond: 1, burst: 5 })
        if (p.remaining < 5) remembered++
      }
      assert.isTrue(remembered > 0 && remembered <= 10, `remembered ${remembered}`)
      // The most recent keys are the ones kept (oldest evicted first).
      const last = yield* store.peek({ algorithm: "token_bucket", limiter: l, key: "k49", ratePerSecond: 1, burst: 5 })
      assert.strictEqual(last.remaining, 4)
    }))

  it.scoped("expired state is evicted before any live key", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 10, sweepInterval: "1 hour" })
      const l = fresh("expired-first")
      // 5 keys whose state lasts 100 ms, 5 keys whose state lasts 10 s (not throttled).
      for (let i = 0; i < 5; i++) {
        yield* store.tokenBucket({ limiter: l, key: `short${i}`, ratePerSecond: 10, burst: 5, cost: 1, maxWaitMs: 0 })
        yield* store.tokenBucket({ limiter: l, key: `long${i}`, ratePerSecond: 0.1, burst: 5, cost: 1, maxWaitMs: 0 })
      }
      assert.strictEqual(yield* store.size, 10)
      yield* TestClock.adjust("200 millis")
      for (let i = 0; i < 5; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: l, key: `new${i}`, ...roomy })).allowed)
      }
      assert.strictEqual(yield* store.size, 10)
      for (let i = 0; i < 5; i++) {
        const p = yield* store.peek({ algorithm: "token_bucket", limiter: l, key: `long${i}`, ratePerSecond: 0.1, burst: 5 })
        assert.strictEqual(p.remaining, 4, `long${i} was kept`)
      }
    }))

  it.scoped("an attacker flooding new keys never lifts a throttled key's block", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 20 })
      const l = fresh("flood")
      const victimKeys = Array.from({ length: 5 }, (_, i) => `blocked${i}`)
      for (const key of victimKeys) {
        assert.isTrue((yield* store.tokenBucket({ limiter: l, key, ...strict })).allowed)
        assert.isFalse((yield* store.tokenBucket({ limiter: l, key, ...strict })).allowed)
      }
      // A sliding window and a fixed window that refuse, and a key holding a live lease.
      const w = { limit: 1, windowMs: 60_000, cost: 1 }
      assert.isTrue((yield* store.slidingWindow({ limiter: l, key: "sw", ...w })).allowed)
      assert.isTrue((yield* store.fixedWindow({ limiter: l, key: "fw", ...w })).allowed)
      const slot = { limiter: l, key: "slot", holder: "h", limit: 5, leaseMs: 60_000 }
      assert.isTrue((yield* store.acquireSlot(slot)).acquired)
      // Flood: many new keys, each one request (roomy buckets: not throttled, hence evictable).
      for (let i = 0; i < 500; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: l, key: `attacker${i}`, ...roomy })).allowed)
        if (i % 25 === 24) yield* TestClock.adjust("250 millis")
      }
      // 5 s later: nothing throttled was evicted.
      for (const key of victimKeys) {
        const d = yield* store.tokenBucket({ limiter: l, key, ...strict })
        assert.isFalse(d.allowed, `${key} is still blocked`)
        assert.isTrue(d.retryAfterMs > 50_000, `${key} retryAfter ${d.retryAfterMs}`)
      }
      assert.isFalse((yield* store.slidingWindow({ limiter: l, key: "sw", ...w })).allowed)
      assert.isFalse((yield* store.fixedWindow({ limiter: l, key: "fw", ...w })).allowed)
      assert.isTrue(yield* store.renewSlot(slot), "the lease survived the flood")
      assert.isTrue((yield* store.size) <= 20)
    }))

  it.scoped("when every stored key is throttled, a new key is refused with a retryAfter hint", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 10 })
      const l = fresh("full")
      const start = yield* Clock.currentTimeMillis
      // The attacker's own keys: each throttled by its first request (burst 1, one per minute).
      for (let i = 0; i < 10; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: l, key: `a${i}`, ...strict })).allowed)
        yield* TestClock.adjust("1 second")
      }
      const refused = yield* store.tokenBucket({ limiter: l, key: "newcomer", ...strict })
      assert.isFalse(refused.allowed, "no room and nothing evictable")
      // a0 stops being throttled 60 s after its take.
      const now = yield* Clock.currentTimeMillis
      assert.strictEqual(refused.retryAfterMs, start + 60_000 - now)
      assert.strictEqual(refused.delayMs, 0)
      assert.strictEqual(yield* store.size, 10)
      // The same for every kind of new state.
      const w = { limiter: l, key: "newcomer", limit: 5, windowMs: 1000, cost: 1 }
      assert.isFalse((yield* store.slidingWindow(w)).allowed)
      assert.isFalse((yield* store.fixedWindow(w)).allowed)
      const slot = yield* store.acquireSlot({ limiter: l, key: "newcomer", holder: "h", limit: 1, leaseMs: 1000 })
      assert.isFalse(slot.acquired)
      assert.isTrue(slot.retryAfterMs > 0)
      // Throttled keys are still throttled, existing keys still work.
      assert.isFalse((yield* store.tokenBucket({ limiter: l, key: "a3", ...strict })).allowed)
      // Peeks of the new key answer but store nothing.
      const peek = yield* store.peek({ algorithm: "token_bucket", limiter: l, key: "newcomer", ratePerSecond: 1, burst: 1 })
      assert.isTrue(peek.allowed)
      assert.strictEqual(yield* store.size, 10)
      // Once a0's bucket refills it may be evicted: the newcomer gets in.
      yield* TestClock.adjust(Duration.millis(refused.retryAfterMs))
      assert.isTrue((yield* store.tokenBucket({ limiter: l, key: "newcomer", ...strict })).allowed)
      assert.isFalse((yield* store.tokenBucket({ limiter: l, key: "a5", ...strict })).allowed, "a5 still blocked")
    }))

  it.scoped("a key holding a live lease is never evicted; releasing it lets new keys in", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 3 })
      const l = fresh("leases")
      const slot = (key: string) => ({ limiter: l, key, holder: "h", limit: 1, leaseMs: 60_000 })
      for (const key of ["a", "b", "c"]) assert.isTrue((yield* store.acquireSlot(slot(key))).acquired)
      const refused = yield* store.acquireSlot(slot("d"))
      assert.isFalse(refused.acquired)
      assert.strictEqual(refused.retryAfterMs, 60_000)
      assert.isTrue(yield* store.releaseSlot(slot("b")))
      assert.isTrue((yield* store.acquireSlot(slot("d"))).acquired, "b had no lease left: evictable")
      for (const key of ["a", "c", "d"]) assert.isTrue(yield* store.renewSlot(slot(key)), `${key} kept its lease`)
    }))
})

describe("memory store: expiry", () => {
  it.scoped("expired state of keys never touched again is swept by the store's later operations", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ sweepInterval: "1 second" })
      const l = fresh("sweep")
      for (let i = 0; i < 20; i++) {
        yield* store.tokenBucket({ limiter: l, key: `tb${i}`, ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 })
        yield* store.slidingWindow({ limiter: l, key: `sw${i}`, limit: 5, windowMs: 500, cost: 1 })
        yield* store.fixedWindow({ limiter: l, key: `fw${i}`, limit: 5, windowMs: 500, cost: 1 })
        yield* store.acquireSlot({ limiter: l, key: `slot${i}`, holder: "h", limit: 1, leaseMs: 500 })
      }
      const lasting = { limiter: l, key: "lasting", ratePerSecond: 0.01, burst: 1, cost: 1, maxWaitMs: 0 }
      yield* store.tokenBucket(lasting)
      assert.strictEqual(yield* store.size, 81)
      // Another limiter's traffic drives the sweep of this one's keys.
      const other = { algorithm: "token_bucket" as const, limiter: fresh("other"), key: "x", ratePerSecond: 1, burst: 1 }
      yield* TestClock.adjust("999 millis")
      for (let i = 0; i < 10; i++) yield* store.peek(other)
      assert.strictEqual(yield* store.size, 81, "no sweep before the interval")
      yield* TestClock.adjust("1 millis")
      for (let i = 0; i < 10; i++) yield* store.peek(other)
      assert.strictEqual(yield* store.size, 1, "swept; the key whose state still matters stays")
      yield* TestClock.adjust("2 minutes")
      for (let i = 0; i < 10; i++) yield* store.peek(other)
      assert.strictEqual(yield* store.size, 0)
    }))

  it.scoped("a sweep is amortized: one operation examines a bounded batch of states", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ sweepInterval: "1 second" })
      const l = fresh("amortized")
      for (let i = 0; i < 1000; i++) {
        yield* store.tokenBucket({ limiter: l, key: `k${i}`, ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 })
      }
      yield* TestClock.adjust("1 second")
      const other = { algorithm: "token_bucket" as const, limiter: fresh("other"), key: "x", ratePerSecond: 1, burst: 1 }
      yield* store.peek(other)
      const afterOne = yield* store.size
      assert.isTrue(afterOne < 1000 && afterOne > 500, `one operation swept part of the store (size ${afterOne})`)
      let calls = 1
      while ((yield* store.size) > 0 && calls < 1000) {
        yield* store.peek(other)
        calls++
      }
      assert.strictEqual(yield* store.size, 0, "later operations finish the sweep")
      assert.isTrue(calls > 2 && calls < 100, `${calls} operations`)
    }))

  it.scoped("a sweep never judges live state by a map that reset removed while it was being swept", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ sweepInterval: "1 second" })
      const a = fresh("a")
      const b = fresh("b")
      for (let i = 0; i < 200; i++) {
        yield* store.tokenBucket({ limiter: a, key: `k${i}`, ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 })
      }
      yield* store.tokenBucket({ limiter: b, key: "k", ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 })
      yield* TestClock.adjust("1 second")
      yield* store.peek({ algorithm: "token_bucket", limiter: b, key: "other", ratePerSecond: 1, burst: 1 })
      // Mid-sweep of `a`: reset it, then store new live state under a key the sweep had yet to
      // reach in the removed map (where that key's state has expired).
      yield* store.reset(a)
      const live = { limiter: a, key: "k199", ratePerSecond: 0.01, burst: 1, cost: 1, maxWaitMs: 0 }
      assert.isTrue((yield* store.tokenBucket(live)).allowed)
      for (let i = 0; i < 20; i++) {
        yield* store.peek({ algorithm: "token_bucket", limiter: b, key: "other", ratePerSecond: 1, burst: 1 })
      }
      assert.strictEqual(yield* store.size, 1, "size counts exactly the live state")
      assert.isFalse((yield* store.tokenBucket(live)).allowed, "the new state was kept")
    }))

  it.scoped("expired state is also dropped when it is next touched", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ sweepInterval: "1 hour" })
      const l = fresh("lazy")
      yield* store.tokenBucket({ limiter: l, key: "k", ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 })
      yield* store.acquireSlot({ limiter: l, key: "s", holder: "h", limit: 1, leaseMs: 100 })
      assert.strictEqual(yield* store.size, 2)
      yield* TestClock.adjust("1 second")
      yield* store.peek({ algorithm: "token_bucket", limiter: l, key: "k", ratePerSecond: 10, burst: 1 })
      assert.strictEqual(yield* store.size, 1)
      assert.isFalse(yield* store.renewSlot({ limiter: l, key: "s", holder: "h", limit: 1, leaseMs: 100 }))
      assert.strictEqual(yield* store.size, 0)
    }))

  it.scoped("releasing the last lease drops the key", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const slot = { limiter: fresh("release"), key: "", holder: "h", limit: 1, leaseMs: 60_000 }
      yield* store.acquireSlot(slot)
      assert.strictEqual(yield* store.size, 1)
      assert.isTrue(yield* store.releaseSlot(slot))
      assert.strictEqual(yield* store.size, 0)
    }))
})

describe("memory store: awaitSlot", () => {
  it.scoped("completes as soon as a slot is released, without time passing", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const awaitSlot = store.awaitSlot
      assert.isDefined(awaitSlot)
      if (awaitSlot === undefined) return
      const l = fresh("await")
      const slot = { limiter: l, key: "k", holder: "h", limit: 1, leaseMs: 60_000 }
      yield* store.acquireSlot(slot)
      const start = yield* Clock.currentTimeMillis
      const waiter = yield* T.fork(awaitSlot(l, "k", 10_000))
      const otherKey = yield* T.fork(awaitSlot(l, "other", 10_000))
      yield* T.yieldNow
      assert.isTrue((yield* T.poll(waiter))._tag === "None", "waiting")
      // A release that frees nothing does not wake it.
      assert.isFalse(yield* store.releaseSlot({ ...slot, holder: "someone-else" }))
      yield* T.yieldNow
      assert.isTrue((yield* T.poll(waiter))._tag === "None", "still waiting")
      assert.isTrue(yield* store.releaseSlot(slot))
      yield* Fiber.join(waiter)
      assert.strictEqual(yield* Clock.currentTimeMillis, start, "woken by the release, not by time")
      assert.isTrue((yield* T.poll(otherKey))._tag === "None", "another key's waiter is not woken")
      yield* Fiber.interrupt(otherKey)
    }))

  it.scoped("completes on reset of the key or of the limiter", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const awaitSlot = store.awaitSlot
      if (awaitSlot === undefined) return assert.fail("awaitSlot is implemented")
      const l = fresh("await-reset")
      const start = yield* Clock.currentTimeMillis
      // Completed (successfully) by now? TestClock never moves here, so only the reset can do it.
      const completed = (fiber: T.RuntimeFiber<void>) =>
        Effect.map(T.poll(fiber), (exit) => Option.isSome(exit) && Exit.isSuccess(exit.value))
      const settle = Effect.repeat(T.yieldNow, { times: 5 })
      const one = yield* T.fork(awaitSlot(l, "k", 10_000))
      const two = yield* T.fork(awaitSlot(l, "k", 10_000))
      const other = yield* T.fork(awaitSlot(l, "other", 10_000))
      yield* settle
      assert.isFalse(yield* completed(one), "waiting before the reset")
      yield* store.reset(l, "k")
      yield* settle
      assert.isTrue(yield* completed(one), "woken by the reset of its key")
      assert.isTrue(yield* completed(two), "every waiter of the key is woken")
      assert.isFalse(yield* completed(other), "another key's waiter is not woken by a key reset")
      const three = yield* T.fork(awaitSlot(l, "a", 10_000))
      const four = yield* T.fork(awaitSlot(l, "b", 10_000))
      yield* settle
      assert.isFalse(yield* completed(three))
      yield* store.reset(l)
      yield* settle
      assert.isTrue(yield* completed(three), "woken by the reset of the limiter")
      assert.isTrue(yield* completed(four))
      assert.isTrue(yield* completed(other))
      assert.strictEqual(yield* Clock.currentTimeMillis, start, "no time passed: not a timeout")
    }))

  it.scoped("gives up after maxWaitMs of TestClock time", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const awaitSlot = store.awaitSlot
      if (awaitSlot === undefined) return assert.fail("awaitSlot is implemented")
      const l = fresh("await-timeout")
      const waiter = yield* T.fork(awaitSlot(l, "k", 1000))
      yield* TestClock.adjust("999 millis")
      assert.isTrue((yield* T.poll(waiter))._tag === "None")
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(waiter)
      // The waiter is gone: a later release wakes only later waiters.
      const later = yield* T.fork(awaitSlot(l, "k", 1000))
      yield* T.yieldNow
      yield* store.acquireSlot({ limiter: l, key: "k", holder: "h", limit: 1, leaseMs: 1000 })
      yield* store.releaseSlot({ limiter: l, key: "k", holder: "h", limit: 1, leaseMs: 1000 })
      yield* Fiber.join(later)
    }))
})

describe("memory store: options", () => {
  it.scoped("invalid options are defects", () =>
    Effect.gen(function*() {
      const invalid: ReadonlyArray<MemoryStore.MemoryStoreOptions> = [
        { maxKeys: 0 },
        { maxKeys: 1.5 },
        { maxBytes: 0 },
        { maxBytes: -1 },
        { maxBytes: Number.NaN },
        { maxBytes: Infinity },
        { sweepInterval: "0 millis" }
      ]
      for (const options of invalid) {
        const exit = yield* Effect.exit(MemoryStore.make(options))
        assert.isTrue(Exit.isFailure(exit), `${JSON.stringify(options)} is refused`)
        if (Exit.isSuccess(exit)) continue
        // A defect, not a typed failure: the cause holds a die and no fail.
        assert.isTrue(T.isDie(exit.cause), `${JSON.stringify(options)}: a defect`)
        assert.isTrue(Option.isNone(T.causeFailure(exit.cause)), "no typed failure")
        assert.include(Cause.pretty(exit.cause), "MemoryStore:")
      }
      const ok = yield* Effect.exit(MemoryStore.make({ maxKeys: 1, maxBytes: 1024, sweepInterval: "1 millis" }))
      assert.isTrue(Exit.isSuccess(ok), "valid options build a store")
    }))
})

runStoreSuite("memory store (TestClock)", MemoryStore.layer(), { clock: "test" })
runStoreSuite("memory store (live clock)", MemoryStore.layer(), { clock: "live" })
