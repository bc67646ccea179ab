/** The block cache of src/core/blockCache.ts: plain data, no Effect, time passed in. */
import { assert, describe, it } from "#test/vitest"
import { BlockCache, DEFAULT_MAX_ENTRIES } from "../../src/core/blockCache.js"

describe("BlockCache", () => {
  it("answers a blocked key until the retry-after, then drops the entry", () => {
    const cache = new BlockCache()
    cache.block("k", 1, 1000, 250, 900, 0)
    assert.deepStrictEqual(cache.lookup("k", 1, 1000), { until: 1250, cost: 1, remaining: 0, resetAt: 1900 })
    assert.isDefined(cache.lookup("k", 1, 1249.9))
    assert.isUndefined(cache.lookup("k", 1, 1250))
    assert.strictEqual(cache.size, 0)
    assert.isUndefined(cache.lookup("other", 1, 1000))
  })

  it("answers only calls of at least the refused cost", () => {
    const cache = new BlockCache()
    cache.block("k", 3, 0, 100, 100, 2)
    assert.isUndefined(cache.lookup("k", 1, 10))
    assert.isUndefined(cache.lookup("k", 2, 10))
    assert.strictEqual(cache.lookup("k", 3, 10)?.remaining, 2)
    assert.isDefined(cache.lookup("k", 7, 10))
    // the smaller cost's call was not answered, and the entry is kept for the others
    assert.strictEqual(cache.size, 1)
  })

  it("a later refusal replaces the key's entry (a smaller cost blocks more calls)", () => {
    const cache = new BlockCache()
    cache.block("k", 3, 0, 300, 300, 2)
    cache.block("k", 1, 10, 50, 300, 0)
    assert.deepStrictEqual(cache.lookup("k", 1, 20), { until: 60, cost: 1, remaining: 0, resetAt: 310 })
    assert.strictEqual(cache.size, 1)
  })

  it("records no refusal with nothing to wait or an infinite wait", () => {
    const cache = new BlockCache()
    cache.block("a", 1, 0, 0, 0, 0)
    cache.block("b", 1, 0, Infinity, Infinity, 0)
    cache.block("c", 1, 0, Number.NaN, 0, 0)
    cache.block("d", 1, 0, -5, 0, 0)
    assert.strictEqual(cache.size, 0)
  })

  it("reports the reset no earlier than the retry-after", () => {
    const cache = new BlockCache()
    cache.block("k", 1, 0, 100, 40, 0)
    assert.strictEqual(cache.lookup("k", 1, 0)?.resetAt, 100)
  })

  it("never holds more than maxEntries: expired entries go first, then the oldest", () => {
    const cache = new BlockCache(3)
    cache.block("a", 1, 0, 10, 10, 0)
    cache.block("b", 1, 0, 1000, 1000, 0)
    cache.block("c", 1, 0, 1000, 1000, 0)
    // full; "a" expired at 10: it goes, the live ones stay
    cache.block("d", 1, 20, 1000, 1000, 0)
    assert.strictEqual(cache.size, 3)
    assert.isDefined(cache.lookup("b", 1, 20))
    assert.isDefined(cache.lookup("c", 1, 20))
    assert.isDefined(cache.lookup("d", 1, 20))
    // full of live entries: the oldest block goes
    cache.block("e", 1, 30, 1000, 1000, 0)
    assert.strictEqual(cache.size, 3)
    assert.isUndefined(cache.lookup("b", 1, 30))
    assert.isDefined(cache.lookup("e", 1, 30))
    // a re-block moves the key to the end: "c" is then the newest, "d" the oldest
    cache.block("c", 1, 40, 1000, 1000, 0)
    cache.block("f", 1, 40, 1000, 1000, 0)
    assert.isUndefined(cache.lookup("d", 1, 40))
    assert.isDefined(cache.lookup("c", 1, 40))
    for (let i = 0; i < 100; i++) cache.block(`k${i}`, 1, 50, 1000, 1000, 0)
    assert.strictEqual(cache.size, 3)
  })

  it("clear drops one key, clearAll every key", () => {
    const cache = new BlockCache()
    cache.block("a", 1, 0, 100, 100, 0)
    cache.block("b", 1, 0, 100, 100, 0)
    cache.clear("a")
    assert.isUndefined(cache.lookup("a", 1, 1))
    assert.isDefined(cache.lookup("b", 1, 1))
    cache.clearAll()
    assert.strictEqual(cache.size, 0)
    assert.strictEqual(new BlockCache().maxEntries, DEFAULT_MAX_ENTRIES)
  })
})
