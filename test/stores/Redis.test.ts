/**
 * The Redis store against the real Redis on 127.0.0.1:6379: the conformance suite (live clock),
 * then what is specific to Redis (key layout, TTLs, server scripts, reset by SCAN).
 */
import { assert, layer } from "#test/vitest"
import { Clock, Effect, Fiber, Layer, Redacted } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { RedisStore, RedisStoreLive } from "effect-rate-sync/redis"
import { Redis } from "ioredis"
import { runStoreSuite } from "../conformance/RateLimitStoreSuite.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import * as Scripts from "../../src/core/redis/scripts.js"

const available = await requireService("Redis", "127.0.0.1", 6379)

const PREFIX = `rs-test-${crypto.randomUUID()}`
const fresh = (name: string) => `${name}-${crypto.randomUUID()}`
/** The store's encoding of a hash-tag part (see RedisStore's module doc). */
const part = (s: string) => /^[A-Za-z0-9_-]+$/.test(s) ? `=${s}` : Buffer.from(s, "utf8").toString("base64url")
const keyOf = (limiter: string, key: string, state: string) => `${PREFIX}:{${part(limiter)}.${part(key)}}:${state}`

/** A raw client, to look at what the store wrote. */
const raw = Effect.acquireRelease(
  Effect.sync(() => new Redis({ host: "127.0.0.1", port: 6379, lazyConnect: false })),
  (client) => Effect.promise(() => client.quit()).pipe(Effect.ignore)
)

const StoreLive = RedisStore.layer({ url: Redacted.make("redis://127.0.0.1:6379"), keyPrefix: PREFIX })

describeWhenUp(available)("RedisStore on 127.0.0.1:6379", () => {
  runStoreSuite("conformance (redis, live clock)", StoreLive, { clock: "live" })

  layer(StoreLive, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.scoped("token bucket: burst, refusal with retryAfter, then a reservation", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("tb")
        const req = { limiter, key: "", ratePerSecond: 10, burst: 5, cost: 1, maxWaitMs: 0 }
        const remaining: Array<number> = []
        for (let i = 0; i < 5; i++) {
          const d = yield* store.tokenBucket(req)
          assert.isTrue(d.allowed)
          assert.strictEqual(d.delayMs, 0)
          remaining.push(d.remaining)
        }
        assert.deepStrictEqual(remaining, [4, 3, 2, 1, 0])
        const refused = yield* store.tokenBucket(req)
        assert.isFalse(refused.allowed)
        assert.isTrue(refused.retryAfterMs > 0 && refused.retryAfterMs <= 100, `retryAfter ${refused.retryAfterMs}`)
        const reserved = yield* store.tokenBucket({ ...req, cost: 2, maxWaitMs: 1000 })
        assert.isTrue(reserved.allowed)
        assert.isTrue(reserved.delayMs > 100 && reserved.delayMs <= 200, `delay ${reserved.delayMs}`)
        const tooBig = yield* store.tokenBucket({ ...req, cost: 6, maxWaitMs: 60_000 })
        assert.isFalse(tooBig.allowed)
        assert.strictEqual(tooBig.retryAfterMs, Infinity)
      }))

    it.scoped("token bucket with a fractional interval (3/s) keeps whole remaining counts", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const req = { limiter: fresh("tb3"), key: "k", ratePerSecond: 3, burst: 3, cost: 1, maxWaitMs: 0 }
        const a = yield* store.tokenBucket(req)
        const b = yield* store.tokenBucket(req)
        const c = yield* store.tokenBucket(req)
        const d = yield* store.tokenBucket(req)
        assert.deepStrictEqual([a.remaining, b.remaining, c.remaining], [2, 1, 0])
        assert.isFalse(d.allowed)
        assert.isTrue(d.retryAfterMs > 300 && d.retryAfterMs <= 334, `retryAfter ${d.retryAfterMs}`)
      }))

    it.scoped("every key gets a TTL in the same step, and keys carry the encoded hash tag", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw
        const limiter = fresh("ttl")
        const key = "user:{42}"
        yield* store.tokenBucket({ limiter, key, ratePerSecond: 1, burst: 10, cost: 4, maxWaitMs: 0 })
        yield* store.slidingWindow({ limiter, key, limit: 5, windowMs: 2000, cost: 1 })
        yield* store.fixedWindow({ limiter, key, limit: 5, windowMs: 60_000, cost: 1 })
        yield* store.acquireSlot({ limiter, key, holder: "h1", limit: 2, leaseMs: 3000 })
        const ttls = yield* Effect.promise(() =>
          Promise.all(["tb", "sw", "swm", "fw", "cc"].map((s) => client.pttl(keyOf(limiter, key, s))))
        )
        const [tb, sw, swm, fw, cc] = ttls
        assert.isTrue(tb !== undefined && tb > 3000 && tb <= 4000, `tb ${tb}`)
        assert.isTrue(sw !== undefined && sw > 1500 && sw <= 2000, `sw ${sw}`)
        assert.isTrue(swm !== undefined && swm > 1500 && swm <= 2000, `swm ${swm}`)
        assert.isTrue(fw !== undefined && fw > 0 && fw <= 60_000, `fw ${fw}`)
        assert.isTrue(cc !== undefined && cc > 2500 && cc <= 3000, `cc ${cc}`)
        const all = yield* Effect.promise(() => client.keys(`${PREFIX}:{${part(limiter)}.*`))
        assert.strictEqual(all.length, 5)
      }))

    it.scoped("a refused hit does not extend a window's expiry", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw
        const limiter = fresh("noextend")
        const req = { limiter, key: "", limit: 1, windowMs: 1000, cost: 1 }
        assert.isTrue((yield* store.slidingWindow(req)).allowed)
        yield* Effect.sleep("300 millis")
        assert.isFalse((yield* store.slidingWindow(req)).allowed)
        const ttl = yield* Effect.promise(() => client.pttl(keyOf(limiter, "", "sw")))
        assert.isTrue(ttl > 0 && ttl <= 700, `ttl ${ttl}`)
      }))

    it.scoped("distinct (limiter, key) pairs never collide, whatever characters they hold", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const base = fresh("collide")
        const pairs: ReadonlyArray<readonly [string, string]> = [
          [`${base}.x`, ""],
          [base, "x"],
          [`${base}`, ".x"],
          [`${base}}`, "{x"],
          [`${base}:`, "x"],
          [base, "abc"],
          [base, "=abc"],
          [base, "PWFiYw"],
          [base, ""],
          [base, "="],
          [base, "é"]
        ]
        for (const [limiter, key] of pairs) {
          const d = yield* store.fixedWindow({ limiter, key, limit: 1, windowMs: 60_000, cost: 1 })
          assert.isTrue(d.allowed, `${limiter} / ${key}`)
        }
      }))

    it.scoped("sliding window is exact and answers retryAfter from the oldest entries", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const req = { limiter: fresh("sw"), key: "k", limit: 3, windowMs: 400, cost: 1 }
        assert.isTrue((yield* store.slidingWindow({ ...req, cost: 2 })).allowed)
        const second = yield* store.slidingWindow(req)
        assert.isTrue(second.allowed)
        assert.strictEqual(second.remaining, 0)
        const refused = yield* store.slidingWindow(req)
        assert.isFalse(refused.allowed)
        assert.isTrue(refused.retryAfterMs > 0 && refused.retryAfterMs <= 400, `retry ${refused.retryAfterMs}`)
        const peek = yield* store.peek({ algorithm: "sliding_window", limiter: req.limiter, key: "k", limit: 3, windowMs: 400 })
        assert.isFalse(peek.allowed)
        yield* Effect.sleep(`${Math.ceil(refused.retryAfterMs) + 20} millis`)
        const after = yield* store.slidingWindow({ ...req, cost: 2 })
        assert.isTrue(after.allowed, "the cost-2 entry left the window")
      }))

    it.scoped("fixed window counts per aligned window and refusals do not count", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const req = { limiter: fresh("fw"), key: "", limit: 2, windowMs: 60_000, cost: 1 }
        const a = yield* store.fixedWindow(req)
        const b = yield* store.fixedWindow(req)
        const c = yield* store.fixedWindow(req)
        assert.deepStrictEqual([a.allowed, b.allowed, c.allowed], [true, true, false])
        assert.strictEqual(c.retryAfterMs, c.resetAfterMs)
        const peek = yield* store.peek({ algorithm: "fixed_window", limiter: req.limiter, key: "", limit: 2, windowMs: 60_000 })
        assert.strictEqual(peek.remaining, 0)
      }))

    it.scoped("fixed window of 1 ms admits at most one per millisecond of server time, last millisecond included", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw
        const serverMs = Effect.promise(() => client.time()).pipe(
          Effect.map(([s, us]) => Number(s) * 1000 + Math.floor(Number(us) / 1000))
        )
        const req = { limiter: fresh("fw1"), key: "", limit: 1, windowMs: 1, cost: 1 }
        const before = yield* serverMs
        const decisions = yield* Effect.all(Array.from({ length: 300 }, () => store.fixedWindow(req)), {
          concurrency: "unbounded"
        })
        const after = yield* serverMs
        const admitted = decisions.filter((d) => d.allowed)
        // every millisecond is one window of limit 1: one admission per window (its ref, the window's start)
        const windows = new Set(admitted.map((d) => d.ref))
        assert.strictEqual(windows.size, admitted.length, `admitted ${admitted.length} in ${windows.size} windows`)
        assert.isTrue(
          admitted.length >= 1 && admitted.length <= after - before + 1,
          `admitted ${admitted.length} in ${after - before + 1} ms`
        )
      }))

    it.scoped("a batch that runs past its window's end keeps the window's count (the key is not expired mid-batch)", () =>
      Effect.gen(function*() {
        const client = yield* raw
        // 3000 token bucket takes of other keys (several ms of server work), then three takes of one
        // fixed window of 1 ms, limit 1: the batch runs at one server instant, so they fall in one
        // window and exactly one is admitted. The window's key is written after its window has ended
        // by the server's clock; an absolute expiry at that end would delete it at once.
        const fw = keyOf(fresh("fwb"), "", "fw")
        const slow = Array.from({ length: 3000 }, (_, i) => keyOf(fresh("tbb"), String(i), "tb"))
        const keys = [...slow, fw, fw, fw]
        let packed = `${keys.length}\n`
        const tb = Scripts.batchable.indexOf(Scripts.tokenBucketTake) + 1
        const fwOp = Scripts.batchable.indexOf(Scripts.fixedWindowTake) + 1
        for (let i = 0; i < slow.length; i++) packed += `${tb}\n1\n4\n1000\n10\n1\n0\n`
        for (let i = 0; i < 3; i++) packed += `${fwOp}\n1\n3\n1\n1\n1\n`
        const reply = yield* Effect.promise(() => client.eval(Scripts.batch, keys.length, ...keys, packed))
        assert.isTrue(Array.isArray(reply) && reply.length === keys.length, "one reply per operation")
        const fixed = Array.isArray(reply) ? reply.slice(slow.length) : []
        const admitted = fixed.filter((d) => Array.isArray(d) && d[2] === 0).length
        assert.strictEqual(admitted, 1, `fixed window replies ${JSON.stringify(fixed)}`)
        yield* Effect.promise(() => client.del(fw, ...slow))
      }))

    it.scoped("fixed window: each window length keeps its own count (a rolling change of window)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw
        const limiter = fresh("fwlen")
        const long = { limiter, key: "k", limit: 3, windowMs: 3_600_000, cost: 1 }
        const short = { ...long, windowMs: 1_800_000 }
        // old and new processes alternate: neither resets the other's count
        const decisions = []
        for (let i = 0; i < 10; i++) {
          decisions.push(yield* store.fixedWindow(long))
          decisions.push(yield* store.fixedWindow(short))
        }
        const admitted = decisions.filter((d) => d.allowed).length
        assert.isTrue(admitted <= 6, `admitted ${admitted} (at most 3 per length)`)
        assert.isTrue(admitted >= 4, `admitted ${admitted}`)
        const peek = yield* store.peek({ algorithm: "fixed_window", limiter, key: "k", limit: 3, windowMs: 3_600_000 })
        assert.strictEqual(peek.remaining, 0)
        // the key lives as long as the latest window it holds
        const ttl = yield* Effect.promise(() => client.pttl(keyOf(limiter, "k", "fw")))
        assert.isTrue(ttl > 0 && ttl <= 3_600_000, `ttl ${ttl}`)
      }))

    it.scoped("fixed window: a retired window length leaves nothing behind", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw
        const limiter = fresh("fwretire")
        const long = { limiter, key: "k", limit: 3, windowMs: 3_600_000, cost: 1 }
        // the hour-long window keeps the key alive
        assert.isTrue((yield* store.fixedWindow(long)).allowed)
        assert.isTrue((yield* store.fixedWindow({ ...long, windowMs: 20 })).allowed)
        const fields = () => Effect.promise(() => client.hkeys(keyOf(limiter, "k", "fw"))).pipe(Effect.map((f) => [...f].sort()))
        assert.deepStrictEqual(yield* fields(), ["n20", "n3600000", "w20", "w3600000"])
        // the 20 ms window ends on the server's clock; the next new window of any length drops it
        yield* Effect.sleep("50 millis")
        assert.isTrue((yield* store.fixedWindow({ ...long, windowMs: 30 })).allowed)
        assert.deepStrictEqual(yield* fields(), ["n30", "n3600000", "w30", "w3600000"])
      }))

    it.scoped("a URL whose database path is not a number, or a bad db, is refused before connecting", () =>
      Effect.gen(function*() {
        const secret = `pw-${crypto.randomUUID()}`
        for (
          const [options, pattern] of [
            [{ url: Redacted.make(`redis://:${secret}@127.0.0.1:6379/abc`) }, /database path must be a whole number, received "abc"/],
            [{ url: Redacted.make(`http://:${secret}@127.0.0.1:6379`) }, /redis:\/\/ or rediss:\/\//],
            [{ db: -1 }, /db must be a whole number/]
          ] as const
        ) {
          const error = yield* Effect.flip(RedisStore.make(options))
          assert.strictEqual(error._tag, "StoreError")
          assert.strictEqual(error._tag === "StoreError" ? error.operation : error._tag, "configure")
          assert.match(error.message, pattern)
          assert.notInclude(`${String(error)} ${JSON.stringify(error)}`, secret)
        }
      }))

    it.scoped("awaitSlot wakes on a release made through another connection (another process)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const other = yield* RedisStore.make({ url: Redacted.make("redis://127.0.0.1:6379"), keyPrefix: PREFIX })
        const client = yield* raw
        const awaitSlot = store.awaitSlot
        if (awaitSlot === undefined) return assert.fail("the standalone Redis store notifies")
        const limiter = fresh("await")
        const slot = { limiter, key: "k", holder: "h", limit: 1, leaseMs: 60_000 }
        assert.isTrue((yield* other.acquireSlot(slot)).acquired)
        // the subscription is made on first use: wait until Redis has it (no notification exists
        // for that), bounded
        yield* awaitSlot(limiter, "warm-up", 1)
        for (let i = 0; i < 200; i++) {
          const [, subscribers] = yield* Effect.promise(() => client.pubsub("NUMSUB", `${PREFIX}:slot-freed`))
          if (Number(subscribers) >= 1) break
          yield* Effect.sleep("10 millis")
        }
        const start = yield* Clock.currentTimeMillis
        const waiter = yield* T.fork(awaitSlot(limiter, "k", 20_000))
        const second = yield* T.fork(awaitSlot(limiter, "k", 20_000))
        const otherKey = yield* T.fork(awaitSlot(limiter, "other", 20_000))
        const otherKey2 = yield* T.fork(awaitSlot(limiter, "other", 20_000))
        yield* T.yieldNow
        assert.isTrue(yield* other.releaseSlot(slot))
        yield* Fiber.join(waiter)
        const elapsed = (yield* Clock.currentTimeMillis) - start
        assert.isTrue(elapsed < 5_000, `woken ${elapsed} ms after the release, not by its 20 s bound`)
        // one release frees one slot: only the oldest waiter of the process wakes
        assert.isTrue((yield* T.poll(second))._tag === "None", "a release wakes one waiter, not all")
        assert.isTrue((yield* T.poll(otherKey))._tag === "None", "another key's waiter is not woken")
        // a reset frees every slot of the key: all its waiters wake
        yield* other.reset(limiter, "other")
        yield* Fiber.join(otherKey)
        yield* Fiber.join(otherKey2)
        assert.isTrue((yield* T.poll(second))._tag === "None", "a reset of another key wakes nobody here")
        assert.isTrue(yield* other.acquireSlot(slot).pipe(Effect.map((d) => d.acquired)))
        assert.isTrue(yield* other.releaseSlot(slot))
        yield* Fiber.join(second)
        assert.isTrue((yield* Clock.currentTimeMillis) - start < 10_000)
      }))

    it.scoped("slots: limit, idempotent acquire, release, lost lease is not renewed", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const base = { limiter: fresh("cc"), key: "", limit: 2, leaseMs: 5000 }
        assert.isTrue((yield* store.acquireSlot({ ...base, holder: "a" })).acquired)
        assert.isTrue((yield* store.acquireSlot({ ...base, holder: "a" })).acquired)
        const b = yield* store.acquireSlot({ ...base, holder: "b" })
        assert.isTrue(b.acquired)
        assert.strictEqual(b.active, 2)
        const c = yield* store.acquireSlot({ ...base, holder: "c" })
        assert.isFalse(c.acquired)
        assert.isTrue(c.retryAfterMs > 4000 && c.retryAfterMs <= 5000)
        assert.isTrue(yield* store.releaseSlot({ ...base, holder: "a" }))
        assert.isFalse(yield* store.releaseSlot({ ...base, holder: "a" }))
        assert.isTrue((yield* store.acquireSlot({ ...base, holder: "c" })).acquired)
        const short = { ...base, holder: "d", limiter: fresh("lease"), leaseMs: 100 }
        assert.isTrue((yield* store.acquireSlot(short)).acquired)
        assert.isTrue(yield* store.renewSlot(short))
        yield* Effect.sleep("150 millis")
        assert.isFalse(yield* store.renewSlot(short))
        const peek = yield* store.peek({ algorithm: "concurrency", limiter: short.limiter, key: "", limit: 1 })
        assert.isTrue(peek.allowed)
        assert.strictEqual(peek.remaining, 1)
      }))

    it.scoped("reset(limiter, key) drops one key; reset(limiter) scans every key of the limiter only", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("reset")
        const other = `${limiter}x`
        const take = (l: string, key: string) => store.fixedWindow({ limiter: l, key, limit: 1, windowMs: 60_000, cost: 1 })
        for (const key of ["a", "b", "c"]) yield* take(limiter, key)
        yield* take(other, "a")
        yield* store.reset(limiter, "a")
        assert.isTrue((yield* take(limiter, "a")).allowed)
        assert.isFalse((yield* take(limiter, "b")).allowed)
        yield* store.reset(limiter)
        assert.isTrue((yield* take(limiter, "b")).allowed)
        assert.isTrue((yield* take(limiter, "c")).allowed)
        assert.isFalse((yield* take(other, "a")).allowed, "a limiter whose id extends the other is untouched")
      }))

    it.scoped("scripts are reloaded after SCRIPT FLUSH (NOSCRIPT fallback)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw
        const req = { limiter: fresh("flush"), key: "", ratePerSecond: 1, burst: 2, cost: 1, maxWaitMs: 0 }
        assert.isTrue((yield* store.tokenBucket(req)).allowed)
        yield* Effect.promise(() => client.script("FLUSH"))
        const d = yield* store.tokenBucket(req)
        assert.isTrue(d.allowed)
        assert.strictEqual(d.remaining, 0)
        yield* store.initialize
      }))
  })

  layer(Layer.empty, { excludeTestServices: true })((it) => {
    it.scoped("a prefix with braces is refused (it would choose the cluster slot)", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(RedisStore.make({ keyPrefix: "a{b}" }))
        assert.strictEqual(error._tag, "StoreError")
        assert.include(error.message, "keyPrefix")
      }))

    it.scoped("RedisStoreLive reads RATE_SYNC_REDIS_* from the environment", () =>
      Effect.gen(function*() {
        const prefix = `env-${crypto.randomUUID()}`
        const env = new Map([
          ["RATE_SYNC_REDIS_URL", "redis://127.0.0.1:6379/0"],
          ["RATE_SYNC_REDIS_KEY_PREFIX", prefix],
          ["RATE_SYNC_REDIS_COMMAND_TIMEOUT", "0.5"],
          ["RATE_SYNC_REDIS_SOCKET_CONNECT_TIMEOUT", "2 seconds"]
        ])
        const limiter = fresh("env")
        const decision = yield* Effect.flatMap(
          RateLimitStore.RateLimitStore,
          (store) => store.fixedWindow({ limiter, key: "", limit: 1, windowMs: 60_000, cost: 1 })
        ).pipe(
          Effect.provide(RedisStoreLive),
          T.withConfigProvider(T.configProvider(env, { pathDelim: "_" }))
        )
        assert.isTrue(decision.allowed)
        const client = yield* raw
        const keys = yield* Effect.promise(() => client.keys(`${prefix}:*`))
        assert.strictEqual(keys.length, 1, "the key prefix came from the environment")
        const bad = yield* Effect.flip(
          RateLimitStore.RateLimitStore.pipe(
            Effect.provide(RedisStoreLive),
            T.withConfigProvider(
              T.configProvider(new Map([["RATE_SYNC_REDIS_COMMAND_TIMEOUT", "soon"]]), { pathDelim: "_" })
            )
          )
        )
        assert.include(String(bad), "COMMAND_TIMEOUT")
      }))

    it.scoped("timingMarginMs pads every non-zero wait, a refused slot's retry included; zero and Infinity stay", () =>
      Effect.gen(function*() {
        const options = { url: Redacted.make("redis://127.0.0.1:6379"), keyPrefix: PREFIX }
        const padded = yield* RedisStore.make({ ...options, timingMarginMs: 1000 })
        const limiter = fresh("margin")
        const req = { limiter, key: "", ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 }
        const admitted = yield* padded.tokenBucket(req)
        assert.strictEqual(admitted.delayMs, 0, "an admission now is not delayed")
        const refused = yield* padded.tokenBucket(req)
        assert.isTrue(refused.retryAfterMs > 1000 && refused.retryAfterMs <= 1100, `retryAfter ${refused.retryAfterMs}`)
        const reserved = yield* padded.tokenBucket({ ...req, maxWaitMs: 10_000 })
        assert.isTrue(reserved.delayMs > 1000 && reserved.delayMs <= 1200, `delay ${reserved.delayMs}`)
        const never = yield* padded.tokenBucket({ ...req, cost: 2, maxWaitMs: 60_000 })
        assert.strictEqual(never.retryAfterMs, Infinity)
        const slot = { limiter, key: "s", holder: "a", limit: 1, leaseMs: 500 }
        const held = yield* padded.acquireSlot(slot)
        assert.isTrue(held.acquired)
        assert.strictEqual(held.retryAfterMs, 0)
        const busy = yield* padded.acquireSlot({ ...slot, holder: "b" })
        assert.isFalse(busy.acquired)
        assert.isTrue(busy.retryAfterMs > 1000 && busy.retryAfterMs <= 1500, `slot retryAfter ${busy.retryAfterMs}`)
      }))

    it.scoped("fromDefinition builds the store a TOML / configureStore definition names", () =>
      Effect.gen(function*() {
        const prefix = `def-${crypto.randomUUID()}`
        const store = yield* RedisStore.fromDefinition({
          engine: "redis",
          url: Redacted.make("redis://127.0.0.1:6379"),
          keyPrefix: prefix,
          socketTimeout: "5 seconds",
          commandTimeout: "500 millis"
        })
        assert.strictEqual(store.engine, "redis")
        const d = yield* store.tokenBucket({ limiter: fresh("def"), key: "k", ratePerSecond: 1, burst: 3, cost: 1, maxWaitMs: 0 })
        assert.isTrue(d.allowed)
        assert.strictEqual(d.remaining, 2)
        const client = yield* raw
        assert.strictEqual((yield* Effect.promise(() => client.keys(`${prefix}:*`))).length, 1)
      }))
  })
})
