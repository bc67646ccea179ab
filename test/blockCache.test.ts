/**
 * The local block cache on the limiter's side (src/internal/limiter/blockCache.ts), on TestClock.
 * The store is the memory store with its in-process path (`unsafeTake`) taken away, so the
 * limiter treats it as a networked store and uses the cache; its rate operations are counted so a
 * test can say which calls reached it. (The real-server count is test/blockCache.redis.test.ts.)
 */
import { assert, describe, it } from "#test/vitest"
import { Clock, Duration, Effect, Fiber } from "effect"
import {
  type LimiterDefinition,
  MemoryStore,
  RateLimiter,
  RateLimitMetrics,
  RateLimitStore,
  RateSyncConfig
} from "effect-rate-sync"
import { TestClock } from "#test/effect"
import * as T from "#test/effect"

/** A memory store without `unsafeTake` (so it is asked by round trips), its rate takes counted. */
const networkedMemory = Effect.gen(function*() {
  const inner = yield* MemoryStore.make()
  const calls = { n: 0, slots: 0 }
  const store = RateLimitStore.make({
    ...inner,
    unsafeTake: undefined,
    acquireSlot: (r) => Effect.suspend(() => (calls.slots++, inner.acquireSlot(r))),
    tokenBucket: (r) => Effect.suspend(() => (calls.n++, inner.tokenBucket(r))),
    fixedWindow: (r) => Effect.suspend(() => (calls.n++, inner.fixedWindow(r))),
    slidingWindow: (r) => Effect.suspend(() => (calls.n++, inner.slidingWindow(r)))
  })
  return { store, calls }
})

const registry = (
  limiters: Record<string, LimiterDefinition.LimiterDefinition>,
  blockCache?: RateLimiter.MakeOptions["blockCache"]
) =>
  Effect.gen(function*() {
    const { store, calls } = yield* networkedMemory
    const rl = yield* RateLimiter.make({ stores: { default: store }, limiters, blockCache })
    return { rl, calls }
  })

describe("block cache (networked store emulated on memory, TestClock)", () => {
  it.scoped("a refused key is answered locally until its retry-after, as the store answers it", () =>
    Effect.gen(function*() {
      const { calls, rl } = yield* registry({ api: { ratePerSecond: 1, burst: 2 } })
      const t0 = yield* Clock.currentTimeMillis
      assert.isTrue((yield* rl.check("api", { key: "u" })).allowed)
      assert.isTrue((yield* rl.check("api", { key: "u" })).allowed)
      const refused = yield* rl.check("api", { key: "u" })
      assert.deepStrictEqual([refused.allowed, refused.remaining, refused.retryAfterMs], [false, 0, 1000])
      assert.strictEqual(calls.n, 3)
      yield* TestClock.adjust(Duration.millis(400))
      for (let i = 0; i < 50; i++) {
        const d = yield* rl.check("api", { key: "u" })
        assert.deepStrictEqual(
          [d.allowed, d.remaining, d.retryAfterMs, d.resetAfterMs, d.limit, d.failedOpen],
          [false, 0, 600, refused.resetAfterMs - 400, 2, false]
        )
      }
      assert.isFalse(yield* rl.tryAcquire("api", { key: "u" }))
      const e = yield* Effect.flip(Effect.scoped(rl.acquire("api", { key: "u", timeout: "100 millis" })))
      assert.strictEqual(e._tag, "RateLimitExceeded")
      if (e._tag === "RateLimitExceeded") assert.strictEqual(Duration.toMillis(e.retryAfter), 600)
      assert.strictEqual(calls.n, 3, "no round trip while blocked")
      // another key is its own
      assert.isTrue((yield* rl.check("api", { key: "v" })).allowed)
      assert.strictEqual(calls.n, 4)
      const m = yield* rl.metrics("api")
      assert.deepStrictEqual([m.refusals, m.cachedRefusals, m.timeouts], [53, 52, 1])
      // at the retry-after the store is asked again, and admits
      yield* TestClock.adjust(Duration.millis(599))
      assert.isFalse((yield* rl.check("api", { key: "u" })).allowed)
      assert.strictEqual(calls.n, 4)
      yield* TestClock.adjust(Duration.millis(1))
      assert.strictEqual((yield* Clock.currentTimeMillis) - t0, 1000)
      assert.isTrue((yield* rl.check("api", { key: "u" })).allowed)
      assert.strictEqual(calls.n, 5)
    }))

  it.scoped("only a cost at least the refused one is answered locally", () =>
    Effect.gen(function*() {
      const { calls, rl } = yield* registry({ api: { ratePerSecond: 1, burst: 5 } })
      assert.isTrue((yield* rl.check("api", { cost: 4 })).allowed)
      const refused = yield* rl.check("api", { cost: 3 })
      assert.deepStrictEqual([refused.allowed, refused.remaining, refused.retryAfterMs], [false, 1, 2000])
      assert.strictEqual(calls.n, 2)
      // a smaller cost may fit: the store is asked (and admits it)
      assert.isTrue((yield* rl.check("api", { cost: 1 })).allowed)
      assert.strictEqual(calls.n, 3)
      // the refused cost and more: answered locally
      assert.isFalse((yield* rl.check("api", { cost: 3 })).allowed)
      assert.isFalse((yield* rl.check("api", { cost: 5 })).allowed)
      assert.strictEqual(calls.n, 3)
      // a smaller one again: the store, which refuses it and blocks that cost from now on
      const two = yield* rl.check("api", { cost: 2 })
      assert.deepStrictEqual([two.allowed, two.retryAfterMs], [false, 2000])
      assert.strictEqual(calls.n, 4)
      assert.isFalse((yield* rl.check("api", { cost: 2 })).allowed)
      assert.strictEqual(calls.n, 4)
      assert.strictEqual((yield* rl.metrics("api")).cachedRefusals, 3)
    }))

  it.scoped("fixed and sliding windows: blocked to the retry-after the store gave", () =>
    Effect.gen(function*() {
      const { calls, rl } = yield* registry({
        fw: { algorithm: "fixed_window", limit: 2, window: "1 second" },
        sw: { algorithm: "sliding_window", limit: 2, window: "1 second" }
      })
      const start = yield* Clock.currentTimeMillis
      yield* TestClock.adjust(Duration.millis(1000 - (start % 1000) + 100))
      for (const id of ["fw", "sw"]) {
        assert.isTrue((yield* rl.check(id)).allowed)
        yield* TestClock.adjust(Duration.millis(300))
        assert.isTrue((yield* rl.check(id)).allowed)
      }
      const fw = yield* rl.check("fw")
      const sw = yield* rl.check("sw")
      assert.deepStrictEqual([fw.allowed, sw.allowed], [false, false])
      const before = calls.n
      for (let i = 0; i < 10; i++) {
        assert.strictEqual((yield* rl.check("fw")).retryAfterMs, fw.retryAfterMs)
        assert.strictEqual((yield* rl.check("sw")).retryAfterMs, sw.retryAfterMs)
        assert.isFalse(yield* rl.tryAcquire("fw"))
      }
      assert.strictEqual(calls.n, before)
      // an acquire that may wait past the block is not refused locally: it waits and is admitted
      const fiber = yield* T.fork(Effect.scoped(rl.acquire("fw", { timeout: "1 second" })))
      yield* TestClock.adjust(Duration.millis(fw.retryAfterMs))
      assert.strictEqual((yield* Fiber.join(fiber)).waitedMs, fw.retryAfterMs)
      yield* TestClock.adjust(Duration.millis(sw.retryAfterMs))
      assert.isTrue((yield* rl.check("sw")).allowed)
    }))

  it.scoped("a token-bucket acquire that may wait long enough reserves at the store, not refused locally", () =>
    Effect.gen(function*() {
      const { calls, rl } = yield* registry({ api: { ratePerSecond: 10, burst: 1 } })
      assert.isTrue((yield* rl.check("api")).allowed)
      assert.isFalse((yield* rl.check("api")).allowed)
      assert.strictEqual(calls.n, 2)
      const fiber = yield* T.fork(Effect.scoped(rl.acquire("api", { timeout: "1 second" })))
      yield* TestClock.adjust(Duration.millis(100))
      const permit = yield* Fiber.join(fiber)
      assert.strictEqual(permit.waitedMs, 100)
      assert.strictEqual(calls.n, 3)
    }))

  it.scoped("a limiter with slots and a rate: a blocked rate refuses before any slot is asked for", () =>
    Effect.gen(function*() {
      const { calls, rl } = yield* registry({ api: { ratePerSecond: 1, burst: 1, maxConcurrent: 5 } })
      assert.isTrue(yield* rl.tryAcquire("api"))
      assert.isFalse(yield* rl.tryAcquire("api"))
      assert.deepStrictEqual([calls.n, calls.slots], [2, 2])
      for (let i = 0; i < 5; i++) assert.isFalse(yield* rl.tryAcquire("api"))
      assert.deepStrictEqual([calls.n, calls.slots], [2, 2])
      const m = yield* rl.metrics("api")
      // the admitted call holds its slot until the scope closes; the refused one gave its back
      assert.deepStrictEqual([m.cachedRefusals, m.currentConcurrent, m.totalReleases], [5, 1, 1])
    }))

  it.scoped("this process's reset, refund and negative adjust clear the key's block", () =>
    Effect.gen(function*() {
      const { calls, rl } = yield* registry({ api: { ratePerSecond: 1, burst: 2 } })
      assert.isTrue((yield* rl.check("api", { key: "a" })).allowed)
      assert.isTrue((yield* rl.check("api", { key: "a" })).allowed)
      assert.isFalse((yield* rl.check("api", { key: "a" })).allowed)
      yield* rl.reset("api", "a")
      assert.isTrue((yield* rl.check("api", { key: "a" })).allowed)
      // the whole limiter
      assert.isTrue((yield* rl.check("api", { key: "b" })).allowed)
      assert.isTrue((yield* rl.check("api", { key: "b" })).allowed)
      assert.isFalse((yield* rl.check("api", { key: "b" })).allowed)
      yield* rl.reset("api")
      assert.isTrue((yield* rl.check("api", { key: "b" })).allowed)
      // a refund
      yield* Effect.scoped(Effect.gen(function*() {
        const permit = yield* rl.acquire("api", { key: "c", cost: 2 })
        assert.isFalse((yield* rl.check("api", { key: "c" })).allowed)
        const n = calls.n
        assert.isFalse((yield* rl.check("api", { key: "c" })).allowed)
        assert.strictEqual(calls.n, n)
        yield* permit.refund
        assert.isTrue((yield* rl.check("api", { key: "c" })).allowed)
        assert.strictEqual(calls.n, n + 1)
      }))
      // a negative adjust
      yield* Effect.scoped(Effect.gen(function*() {
        const permit = yield* rl.acquire("api", { key: "d", cost: 2 })
        assert.isFalse((yield* rl.check("api", { key: "d" })).allowed)
        const n = calls.n
        assert.isFalse((yield* rl.check("api", { key: "d" })).allowed)
        assert.strictEqual(calls.n, n)
        const [adjusted] = yield* permit.adjust(-1)
        assert.strictEqual(adjusted?.applied, -1)
        assert.isTrue((yield* rl.check("api", { key: "d" })).allowed)
        assert.strictEqual(calls.n, n + 1)
      }))
    }))

  it.scoped("memory is bounded by maxEntries: the oldest block goes first", () =>
    Effect.gen(function*() {
      const { calls, rl } = yield* registry({ api: { ratePerSecond: 1, burst: 1 } }, { maxEntries: 3 })
      const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
      for (const key of keys) {
        assert.isTrue((yield* rl.check("api", { key })).allowed)
        assert.isFalse((yield* rl.check("api", { key })).allowed)
      }
      assert.strictEqual(calls.n, 20)
      // the last three are still blocked here; the others were evicted and go to the store
      for (const key of keys.slice(7)) assert.isFalse((yield* rl.check("api", { key })).allowed)
      assert.strictEqual(calls.n, 20)
      assert.isFalse((yield* rl.check("api", { key: "k0" })).allowed)
      assert.strictEqual(calls.n, 21)
    }))

  it.scoped("off per limiter, per store and per registry; never on the memory store or for slots", () =>
    Effect.gen(function*() {
      const floods = (rl: RateLimiter.RateLimiterService, id: string) =>
        Effect.gen(function*() {
          for (let i = 0; i < 5; i++) yield* rl.check(id)
          return (yield* rl.metrics(id)).cachedRefusals
        })
      const defs = { api: { ratePerSecond: 1, burst: 1 }, off: { ratePerSecond: 1, burst: 1, blockCache: false } }
      const on = yield* registry(defs)
      assert.strictEqual(yield* floods(on.rl, "api"), 3)
      assert.strictEqual(yield* floods(on.rl, "off"), 0)
      assert.strictEqual(on.calls.n, 2 + 5)
      const offRegistry = yield* registry(defs, false)
      assert.strictEqual(yield* floods(offRegistry.rl, "api"), 0)
      const offDisabled = yield* registry(defs, { enabled: false })
      assert.strictEqual(yield* floods(offDisabled.rl, "api"), 0)
      const offStore = yield* registry(defs, { stores: { default: false } })
      assert.strictEqual(yield* floods(offStore.rl, "api"), 0)
      // the memory store decides in-process: no cache there
      const memory = yield* RateLimiter.make({ stores: { default: { engine: "memory" } }, limiters: defs })
      assert.strictEqual(yield* floods(memory, "api"), 0)
      assert.strictEqual((yield* memory.metrics("api")).refusals, 4)
      // concurrency-only: a peek every time
      const slots = yield* registry({ cc: { maxConcurrent: 1 } })
      yield* slots.rl.acquire("cc")
      assert.strictEqual(yield* floods(slots.rl, "cc"), 0)
    }))

  it.scoped("telemetry: the refusal metric counts cache answers; the acquire span says it came from the cache", () =>
    Effect.gen(function*() {
      const id = `tel-${crypto.randomUUID()}`
      const { rl } = yield* registry({ [id]: { ratePerSecond: 1, burst: 1 } })
      assert.isTrue((yield* rl.check(id)).allowed)
      assert.isFalse((yield* rl.check(id)).allowed)
      const { spans, tracer } = yield* T.recordingTracer
      assert.isFalse(yield* rl.tryAcquire(id).pipe(Effect.withTracer(tracer)))
      assert.isFalse((yield* rl.check(id)).allowed)
      assert.strictEqual(yield* T.counterCount(RateLimitMetrics.refusals, { limiter: id }), 3)
      assert.strictEqual((yield* rl.metrics(id)).cachedRefusals, 2)
      const span = spans.find((s) => s.name === "RateLimiter.acquire")
      assert.deepStrictEqual(
        [span?.attributes.get("rate_sync.block_cache"), span?.attributes.get("rate_sync.outcome")],
        ["hit", "refused"]
      )
    }))

  it.scoped("a bad registry option is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const { store } = yield* networkedMemory
      const bad = (blockCache: unknown) =>
        Effect.flip(RateLimiter.make({ stores: { default: store }, blockCache: untyped<RateLimiter.MakeOptions["blockCache"]>(blockCache) }))
      const e1 = yield* bad({ maxEntries: 0 })
      assert.deepStrictEqual([e1._tag, e1._tag === "ConfigError" ? e1.path : ""], ["ConfigError", "blockCache.maxEntries"])
      const e2 = yield* bad({ maxEntry: 5 })
      assert.strictEqual(e2._tag === "ConfigError" ? e2.path : "", "blockCache.maxEntry")
      const e3 = yield* bad("yes")
      assert.strictEqual(e3._tag === "ConfigError" ? e3.path : "", "blockCache")
      const e4 = yield* Effect.flip(RateLimiter.make({ stores: { default: store }, limiters: { x: { ratePerSecond: 1, blockCache: untyped<boolean>("no") } } }))
      assert.strictEqual(e4._tag === "ConfigError" ? e4.path : "", "limiters.x.blockCache")
    }))
})

describe("block cache option in rate-sync.toml", () => {
  const text = `[limiters.a]\nrate_per_second = 1\nblock_cache = false\n\n[limiters.b]\nrate_per_second = 1\n`
  const parse = (vars: Record<string, string>) =>
    RateSyncConfig.parse(text, "test.toml").pipe(T.withConfigProvider(T.configProvider(vars)))

  it.effect("block_cache = false turns it off for the limiter; the environment overrides it; a bad value names the field", () =>
    Effect.gen(function*() {
      const plain = yield* parse({})
      assert.deepStrictEqual([plain.limiters["a"]?.blockCache, plain.limiters["b"]?.blockCache], [false, undefined])
      const env = yield* parse({ RATE_SYNC_LIMITERS_B_BLOCK_CACHE: "off", RATE_SYNC_LIMITERS_A_BLOCK_CACHE: "yes" })
      assert.deepStrictEqual([env.limiters["a"]?.blockCache, env.limiters["b"]?.blockCache], [true, false])
      const bad = yield* Effect.flip(parse({ RATE_SYNC_LIMITERS_B_BLOCK_CACHE: "maybe" }))
      assert.strictEqual(bad.path, "limiters.b.block_cache")
      const badFile = yield* Effect.flip(RateSyncConfig.parse(`[limiters.c]\nrate_per_second = 1\nblock_cache = "no"\n`, "t.toml"))
      assert.strictEqual(badFile.path, "limiters.c.block_cache")
    }))

  it.effect("[stores.<id>] block_cache = false is the store definition's blockCache; the environment overrides it; memory has no such field", () =>
    Effect.gen(function*() {
      const stores = `[stores.main]\nengine = "redis"\nblock_cache = false\n\n[stores.other]\nengine = "postgres"\n`
      const read = (vars: Record<string, string>) =>
        RateSyncConfig.parse(stores, "s.toml").pipe(T.withConfigProvider(T.configProvider(vars)))
      const plain = yield* read({})
      assert.deepStrictEqual([Reflect.get(plain.stores["main"] ?? {}, "blockCache"), Reflect.get(plain.stores["other"] ?? {}, "blockCache")], [false, undefined])
      const env = yield* read({ RATE_SYNC_STORES_MAIN_BLOCK_CACHE: "on", RATE_SYNC_STORES_OTHER_BLOCK_CACHE: "0" })
      assert.deepStrictEqual([Reflect.get(env.stores["main"] ?? {}, "blockCache"), Reflect.get(env.stores["other"] ?? {}, "blockCache")], [true, false])
      const bad = yield* Effect.flip(RateSyncConfig.parse(`[stores.n]\nengine = "nats"\nblock_cache = 1\n`, "s.toml"))
      assert.deepStrictEqual([bad.path, bad.expected], ["stores.n.block_cache", "true or false"])
      const memory = yield* Effect.flip(RateSyncConfig.parse(`[stores.m]\nengine = "memory"\nblock_cache = false\n`, "s.toml"))
      assert.deepStrictEqual([memory.path, memory.received], ["stores.m.block_cache", "an unknown field"])
    }))
})

/** A value where another type is declared (what JavaScript can pass): the one cast, at this boundary. */
const untyped = <A>(u: unknown): A => u as A
