/**
 * The memory store under hostile input: a clock stepping backwards, one limiter's caller-chosen
 * keys filling the key budget, long keys filling memory. A caller-chosen key must never open the
 * gate (admit beyond the documented limits) nor jam it for another limiter.
 */
import { assert, describe, it } from "#test/vitest"
import { Clock, Effect } from "effect"
import { MemoryStore } from "effect-rate-sync"
import { TestClock } from "#test/effect"

// A bucket a single request throttles for a minute.
const strict = { ratePerSecond: 1 / 60, burst: 1, cost: 1, maxWaitMs: 0 }
// A bucket one request leaves with room (not throttled).
const roomy = { ratePerSecond: 1, burst: 5, cost: 1, maxWaitMs: 0 }

const setTime = (ms: number) =>
  Effect.gen(function*() {
    yield* TestClock.setTime(ms)
    // TestClock.setTime moves time back too (effect 3.22): the tests below rely on it.
    assert.strictEqual(yield* Clock.currentTimeMillis, ms)
  })

describe("memory store: a clock that steps backwards", () => {
  it.scoped("fixed window: a step back across a window boundary does not reopen the earlier window", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const w = { limiter: "fw", key: "k", limit: 3, windowMs: 1000, cost: 1 }
      yield* setTime(10_500)
      for (let i = 0; i < 3; i++) assert.isTrue((yield* store.fixedWindow(w)).allowed)
      assert.isFalse((yield* store.fixedWindow(w)).allowed, "the window [10 000, 11 000) is drained")
      // An NTP step back into the previous window: still counted in the drained one.
      yield* setTime(9_900)
      const back = yield* store.fixedWindow(w)
      assert.isFalse(back.allowed, "no fresh window after the step back")
      assert.strictEqual(back.retryAfterMs, 11_000 - 9_900, "until the stored window's end, on this clock")
      const peek = yield* store.peek({ algorithm: "fixed_window", ...w })
      assert.isFalse(peek.allowed, "peek sees the same window")
      yield* setTime(10_999)
      assert.isFalse((yield* store.fixedWindow(w)).allowed)
      yield* setTime(11_000)
      assert.isTrue((yield* store.fixedWindow(w)).allowed, "the next window opens as usual")
    }))

  it.scoped("fixed window: the takes after a step back count against the latest window the store has read", () =>
    Effect.gen(function*() {
      // Even when the key's own state is gone (swept once its window ended on the forward clock).
      const store = yield* MemoryStore.make({ sweepInterval: "1 millis" })
      const w = { limiter: "fw", key: "k", limit: 3, windowMs: 1000, cost: 1 }
      yield* setTime(10_500)
      for (let i = 0; i < 3; i++) assert.isTrue((yield* store.fixedWindow(w)).allowed)
      yield* setTime(11_500)
      for (let i = 0; i < 5; i++) yield* store.peek({ algorithm: "token_bucket", limiter: "x", key: "", ratePerSecond: 1, burst: 1 })
      assert.strictEqual(yield* store.size, 0, "the drained window's state was swept")
      yield* setTime(10_600)
      let admitted = 0
      for (let i = 0; i < 5; i++) if ((yield* store.fixedWindow(w)).allowed) admitted++
      assert.strictEqual(admitted, 3, "counted in [11 000, 12 000), the store's latest window")
      yield* setTime(11_600)
      assert.isFalse((yield* store.fixedWindow(w)).allowed, "so that window holds at most its limit")
      yield* setTime(12_000)
      assert.isTrue((yield* store.fixedWindow(w)).allowed)
    }))

  it.scoped("token bucket: a step back credits nothing", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const tb = { limiter: "tb", key: "k", ratePerSecond: 1, burst: 3, cost: 1, maxWaitMs: 0 }
      yield* setTime(10_000)
      for (let i = 0; i < 3; i++) assert.isTrue((yield* store.tokenBucket(tb)).allowed)
      assert.isFalse((yield* store.tokenBucket(tb)).allowed)
      yield* setTime(5_000)
      const back = yield* store.tokenBucket(tb)
      assert.isFalse(back.allowed, "stepping back refills nothing")
      assert.strictEqual(back.retryAfterMs, 11_000 - 5_000)
      yield* setTime(10_999)
      assert.isFalse((yield* store.tokenBucket(tb)).allowed)
      yield* setTime(11_000)
      assert.isTrue((yield* store.tokenBucket(tb)).allowed, "one token, 1 s after the drain")
      assert.isFalse((yield* store.tokenBucket(tb)).allowed)
    }))

  it.scoped("sliding window: a step back credits nothing", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const w = { limiter: "sw", key: "k", limit: 3, windowMs: 1000, cost: 1 }
      yield* setTime(10_000)
      for (let i = 0; i < 3; i++) assert.isTrue((yield* store.slidingWindow(w)).allowed)
      yield* setTime(8_000)
      assert.isFalse((yield* store.slidingWindow(w)).allowed, "entries stamped later still count")
      yield* setTime(10_999)
      assert.isFalse((yield* store.slidingWindow(w)).allowed)
      yield* setTime(11_000)
      let admitted = 0
      for (let i = 0; i < 5; i++) if ((yield* store.slidingWindow(w)).allowed) admitted++
      assert.strictEqual(admitted, 3)
    }))
})

describe("memory store: one limiter's keys never lock the others out", () => {
  it.scoped("a limiter full of self-throttled keys leaves other limiters their fair share", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 100 })
      // The attacker's limiter: caller-chosen keys, each throttled for a minute by its first call.
      for (let i = 0; i < 100; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: "attacked", key: `junk${i}`, ...strict })).allowed)
      }
      assert.isFalse(
        (yield* store.tokenBucket({ limiter: "attacked", key: "more", ...strict })).allowed,
        "the over-share limiter's new keys are refused"
      )
      // Another limiter sharing the store still takes new keys, up to its share (100 / 2).
      let admitted = 0
      for (let i = 0; i < 80; i++) {
        if ((yield* store.tokenBucket({ limiter: "other", key: `user${i}`, ...strict })).allowed) admitted++
      }
      assert.strictEqual(admitted, 50, "the other limiter got exactly its fair share")
      assert.isTrue((yield* store.size) <= 100)
      // A third limiter arriving later gets in too (share 100 / 3).
      assert.isTrue((yield* store.fixedWindow({ limiter: "third", key: "a", limit: 1, windowMs: 60_000, cost: 1 })).allowed)
      assert.isTrue((yield* store.size) <= 100)
      // Nothing was opened: every key that was throttled is still refused, stored or evicted.
      for (let i = 0; i < 100; i++) {
        const d = yield* store.tokenBucket({ limiter: "attacked", key: `junk${i}`, ...strict })
        assert.isFalse(d.allowed, `junk${i} is still blocked`)
        assert.isTrue(d.retryAfterMs > 0 && d.retryAfterMs <= 60_000, `junk${i} retryAfter ${d.retryAfterMs}`)
      }
      for (let i = 0; i < 50; i++) {
        assert.isFalse((yield* store.tokenBucket({ limiter: "other", key: `user${i}`, ...strict })).allowed)
      }
      // A peek of an evicted key answers what a take would: refused.
      const peek = yield* store.peek({ algorithm: "token_bucket", limiter: "attacked", key: "junk0", ratePerSecond: 1 / 60, burst: 1 })
      assert.isFalse(peek.allowed)
      // Once the blocks have run out, the attacked limiter takes new keys again.
      yield* TestClock.adjust("61 seconds")
      assert.isTrue((yield* store.tokenBucket({ limiter: "attacked", key: "later", ...strict })).allowed)
    }))

  it.scoped("the under-share limiter's keys are not evicted by the over-share limiter's flood", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 100 })
      // A quiet limiter with 10 keys that have room (evictable under the old rule).
      for (let i = 0; i < 10; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: "quiet", key: `q${i}`, ...roomy })).allowed)
      }
      // A flood of roomy keys on another limiter: it evicts only its own.
      for (let i = 0; i < 500; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: "flood", key: `f${i}`, ...roomy })).allowed)
      }
      for (let i = 0; i < 10; i++) {
        const p = yield* store.peek({ algorithm: "token_bucket", limiter: "quiet", key: `q${i}`, ratePerSecond: 1, burst: 5 })
        assert.strictEqual(p.remaining, 4, `q${i} kept its state`)
      }
    }))
})

describe("memory store: the byte budget", () => {
  const longKey = (i: number) => `${i}:`.padEnd(16 * 1024, "x")

  it.scoped("long keys are bounded by maxBytes, not only by maxKeys", () =>
    Effect.gen(function*() {
      const maxBytes = 1024 * 1024
      const store = yield* MemoryStore.make({ maxKeys: 10_000, maxBytes })
      for (let i = 0; i < 1000; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: "l", key: longKey(i), ...roomy })).allowed)
        assert.isTrue((yield* store.bytes) <= maxBytes, `bytes ${yield* store.bytes} after key ${i}`)
      }
      const size = yield* store.size
      assert.isTrue(size > 0 && size <= maxBytes / (2 * 16 * 1024), `size ${size}`)
    }))

  it.scoped("long throttled keys of one limiter leave the others room; a key larger than the budget is refused", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxBytes: 1024 * 1024 })
      let admitted = 0
      for (let i = 0; i < 100; i++) {
        if ((yield* store.tokenBucket({ limiter: "attacked", key: longKey(i), ...strict })).allowed) admitted++
      }
      assert.isTrue(admitted > 0 && admitted < 32, `admitted ${admitted}`)
      assert.isTrue((yield* store.size) === admitted)
      for (let i = 0; i < 10; i++) {
        assert.isTrue((yield* store.tokenBucket({ limiter: "other", key: `user${i}`, ...strict })).allowed)
      }
      assert.isTrue((yield* store.bytes) <= 1024 * 1024)
      for (let i = 0; i < 100; i++) {
        assert.isFalse((yield* store.tokenBucket({ limiter: "attacked", key: longKey(i), ...strict })).allowed)
      }
      const huge = yield* store.tokenBucket({ limiter: "other", key: "x".repeat(600 * 1024), ...roomy })
      assert.isFalse(huge.allowed)
      assert.strictEqual(huge.retryAfterMs, Infinity)
    }))

  it.scoped("bytes are returned when state is dropped", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      assert.strictEqual(yield* store.bytes, 0)
      yield* store.tokenBucket({ limiter: "l", key: "a", ...strict })
      yield* store.fixedWindow({ limiter: "l", key: "b", limit: 1, windowMs: 1000, cost: 1 })
      yield* store.acquireSlot({ limiter: "m", key: "c", holder: "h", limit: 1, leaseMs: 1000 })
      assert.isTrue((yield* store.bytes) > 0)
      yield* store.reset("l", "a")
      yield* store.reset("l")
      assert.isTrue(yield* store.releaseSlot({ limiter: "m", key: "c", holder: "h", limit: 1, leaseMs: 1000 }))
      assert.strictEqual(yield* store.size, 0)
      assert.strictEqual(yield* store.bytes, 0)
    }))
})
