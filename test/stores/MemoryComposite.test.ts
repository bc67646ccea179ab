/**
 * The composite conformance suite (takeAll, adjust, refs, peek with a cost) on the memory store:
 * under TestClock (exact numbers) and on the live clock (the bounds the networked stores get),
 * plus what only the memory store promises: its synchronous forms answer as the effectful ones,
 * and a composite call the key bound refuses charges nothing.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect } from "effect"
import { MemoryStore, type RateLimitStore } from "effect-rate-sync"
import { fw, liveTime, runCompositeSuite, sw, tb, testTime } from "../conformance/CompositeSuite.js"

const fresh = (label: string) => `${label}-${crypto.randomUUID()}`

// The memory-only tests come first: `layer(...)` (used by `runCompositeSuite`) mutates the shared
// `it`, so tests registered after it would run in that layer's runtime.

describe("memory store: composite calls", () => {
  it.scoped("unsafeTake.takeAll and unsafeTake.adjust answer as takeAll and adjust at the same instant", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const sync = store.unsafeTake
      assert.isDefined(sync?.takeAll)
      assert.isDefined(sync?.adjust)
      if (sync?.takeAll === undefined || sync.adjust === undefined || store.takeAll === undefined) return
      const takes: ReadonlyArray<RateLimitStore.RateTake> = [
        tb(fresh("sync-tb"), "", { rate: 1, burst: 2 }),
        sw(fresh("sync-sw"), "", { limit: 2, windowMs: 1000 }),
        fw(fresh("sync-fw"), "", { limit: 2, windowMs: 1000 })
      ]
      const effectful = yield* store.takeAll(takes)
      // TestClock has not moved: the same instant.
      const direct = sync.takeAll(takes, 0)
      assert.isTrue(effectful.allowed && direct.allowed)
      assert.deepStrictEqual(direct.decisions.map((d) => d.remaining), [0, 0, 0])
      assert.isFalse(sync.takeAll(takes, 0).allowed, "both charged the same states")
      const take = takes[1]
      if (take === undefined) return
      assert.deepStrictEqual(sync.adjust({ take, delta: -1, ref: direct.decisions[1]?.ref }, 0), {
        applied: -1,
        remaining: 1,
        resetAfterMs: 1000
      })
    }))

  it.scoped("a composite call the key bound refuses charges nothing, and stores no key", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 2 })
      if (store.takeAll === undefined) return assert.fail("takeAll")
      // Two keys that a single request throttles for a minute: neither can be evicted.
      const strict = { rate: 1 / 60, burst: 1 }
      const l = fresh("bound")
      assert.isTrue((yield* store.takeAll([tb(l, "a", strict), tb(l, "b", strict)])).allowed)
      assert.strictEqual(yield* store.size, 2)
      const other = fresh("bound-other")
      const existing = tb(other, "x", { rate: 1 / 60, burst: 5 })
      const d = yield* store.takeAll([existing, tb(l, "c", strict)])
      assert.isFalse(d.allowed)
      assert.deepStrictEqual(d.decisions.map((x) => x.allowed), [true, false], "the new key is the violation")
      assert.isTrue((d.decisions[1]?.retryAfterMs ?? 0) > 0)
      const peek = yield* store.peek({ algorithm: "token_bucket", limiter: other, key: "x", ratePerSecond: 1 / 60, burst: 5 })
      assert.strictEqual(peek.remaining, 5, "the other take was not charged")
      assert.isTrue((yield* store.size) <= 2)
    }))

  it.scoped("sliding-window refs stay unique across an expiry and a reset", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make()
      const s = sw(fresh("refs"), "", { limit: 5, windowMs: 1000 })
      const first = yield* store.slidingWindow(s)
      yield* store.reset(s.limiter)
      const second = yield* store.slidingWindow(s)
      assert.notStrictEqual(first.ref, second.ref)
      if (store.adjust === undefined) return assert.fail("adjust")
      const stale = yield* store.adjust({ take: s, delta: -1, ref: first.ref })
      assert.strictEqual(stale.applied, 0, "a ref from before the reset names nothing")
    }))
})

runCompositeSuite("memory store, composite (TestClock)", MemoryStore.layer(), testTime)
runCompositeSuite("memory store, composite (live clock)", MemoryStore.layer(), liveTime)
