/**
 * Batching against a redis-server this file starts on its own port (so the server's command
 * counters are this file's alone): the calls of one tick leave as one batch script, every call of a
 * batch gets its own exact answer, `maxBatchSize` bounds a batch, and a flushed script cache is
 * recovered by the batch too.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Redacted } from "effect"
import type { RateLimitStore } from "effect-rate-sync"
import { RedisStore } from "effect-rate-sync/redis"
import { redisBinariesAvailable, redisServer, type RedisServer } from "../utils/redisServer.js"
import { describeWhenUp } from "../utils/services.js"
import * as T from "#test/effect"

const available = redisBinariesAvailable()

class Server extends T.Service<Server, RedisServer>()("test/RedisBatchServer") {}

/** Calls of `EVALSHA` and `EVAL` the server has run so far (failed ones included). */
const scriptCalls = (server: RedisServer) =>
  Effect.promise(() => server.cli("INFO", "commandstats")).pipe(
    Effect.map((info) => {
      const calls = (command: string) => {
        const line = info.split("\n").find((l) => l.startsWith(`cmdstat_${command}:`)) ?? ""
        const field = (name: string) => Number(new RegExp(`${name}=(\\d+)`).exec(line)?.[1] ?? 0)
        return field("calls") + field("rejected_calls") + field("failed_calls")
      }
      return { evalsha: calls("evalsha"), eval: calls("eval") }
    })
  )

const storeOn = (server: RedisServer, maxBatchSize?: number) =>
  RedisStore.make({ url: Redacted.make(server.url), keyPrefix: `batch-${crypto.randomUUID()}`, maxBatchSize })

/** 64 calls of every kind, issued together; checks each answer. */
const mixedTick = (store: RateLimitStore.RateLimitStoreService) =>
  Effect.gen(function*() {
    const limiter = crypto.randomUUID()
    const fixed = Array.from({ length: 24 }, () => store.fixedWindow({ limiter, key: "fw", limit: 10, windowMs: 60_000, cost: 1 }))
    const sliding = Array.from(
      { length: 16 },
      () => store.slidingWindow({ limiter, key: "sw", limit: 5, windowMs: 60_000, cost: 1 })
    )
    const buckets = Array.from(
      { length: 16 },
      (_, i) => store.tokenBucket({ limiter, key: `tb-${i % 4}`, ratePerSecond: 1, burst: 3, cost: 1, maxWaitMs: 0 })
    )
    const slots = Array.from(
      { length: 8 },
      (_, i) => store.acquireSlot({ limiter, key: "cc", holder: `h${i}`, limit: 2, leaseMs: 60_000 })
    )
    const [f, s, b, c] = yield* Effect.all(
      [
        Effect.all(fixed, { concurrency: "unbounded" }),
        Effect.all(sliding, { concurrency: "unbounded" }),
        Effect.all(buckets, { concurrency: "unbounded" }),
        Effect.all(slots, { concurrency: "unbounded" })
      ],
      { concurrency: "unbounded" }
    )
    // each call of the batch saw the state the calls before it left
    const admitted = f.filter((d) => d.allowed)
    assert.strictEqual(admitted.length, 10)
    assert.deepStrictEqual(admitted.map((d) => d.remaining).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert.strictEqual(s.filter((d) => d.allowed).length, 5)
    assert.strictEqual(b.filter((d) => d.allowed).length, 12)
    assert.isTrue(b.filter((d) => !d.allowed).every((d) => d.retryAfterMs > 0 && d.retryAfterMs <= 1000))
    assert.strictEqual(c.filter((d) => d.acquired).length, 2)
  })

describeWhenUp(available)("RedisStore batching (own redis-server)", () => {
  layer(T.layerScoped(Server, redisServer()), { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.scoped("64 calls of one tick: a few batch commands of at most 16 calls, every answer exact", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const store = yield* storeOn(server)
        const before = yield* scriptCalls(server)
        yield* mixedTick(store)
        const after = yield* scriptCalls(server)
        const commands = after.evalsha - before.evalsha
        // batches of at most 16 (the default): 4 when the whole tick is one flush
        assert.isTrue(commands >= 4 && commands <= 16, `${commands} EVALSHA for 64 decisions`)
      }))

    it.scoped("maxBatchSize bounds a batch; 1 sends every call on its own", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const unbatched = yield* storeOn(server, 1)
        const before = yield* scriptCalls(server)
        yield* mixedTick(unbatched)
        const middle = yield* scriptCalls(server)
        assert.strictEqual(middle.evalsha - before.evalsha, 64)
        const large = yield* storeOn(server, 64)
        yield* mixedTick(large)
        const after = yield* scriptCalls(server)
        const commands = after.evalsha - middle.evalsha
        assert.isTrue(commands >= 1 && commands <= 8, `${commands} EVALSHA for 64 decisions in batches of up to 64`)
      }))

    it.scoped("calls of one script with different arguments, interleaved in a batch, each decided by its own", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const store = yield* storeOn(server, 64)
        const limiter = crypto.randomUUID()
        // a batch marks a call whose script and arguments are those of the call before it (`=`);
        // alternating bursts and windows must never take the arguments of the neighbour
        const before = yield* scriptCalls(server)
        const calls = Array.from({ length: 48 }, (_, i) =>
          i % 3 === 2
            ? store.fixedWindow({ limiter, key: `fw-${i % 2}`, limit: 1 + (i % 2) * 4, windowMs: 60_000, cost: 1 }).pipe(
              Effect.map((d) => ({ kind: `fw-${i % 2}`, allowed: d.allowed }))
            )
            : store.tokenBucket({ limiter, key: `tb-${i % 2}`, ratePerSecond: 0.001, burst: 2 + (i % 2) * 5, cost: 1, maxWaitMs: 0 })
              .pipe(Effect.map((d) => ({ kind: `tb-${i % 2}`, allowed: d.allowed }))))
        const answers = yield* Effect.all(calls, { concurrency: "unbounded" })
        const after = yield* scriptCalls(server)
        assert.isTrue(after.evalsha - before.evalsha <= 4, `${after.evalsha - before.evalsha} EVALSHA: the calls were batched`)
        const admitted = (kind: string) => answers.filter((a) => a.kind === kind && a.allowed).length
        // 16 calls per token-bucket key, 8 per fixed-window key
        assert.deepStrictEqual(
          { tb0: admitted("tb-0"), tb1: admitted("tb-1"), fw0: admitted("fw-0"), fw1: admitted("fw-1") },
          { tb0: 2, tb1: 7, fw0: 1, fw1: 5 }
        )
      }))

    it.scoped("a holder id with a newline (the batch's separator) still gets exact answers", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const store = yield* storeOn(server)
        const base = { limiter: crypto.randomUUID(), key: "cc", limit: 2, leaseMs: 60_000 }
        const holders = Array.from({ length: 16 }, (_, i) => i % 2 === 0 ? `h\n${i}` : `h${i}`)
        const taken = yield* Effect.all(holders.map((holder) => store.acquireSlot({ ...base, holder })), {
          concurrency: "unbounded"
        })
        const owners = holders.filter((_, i) => taken[i]?.acquired === true)
        assert.strictEqual(owners.length, 2)
        const released = yield* Effect.all(owners.map((holder) => store.releaseSlot({ ...base, holder })), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(released, [true, true])
      }))

    it.scoped("after SCRIPT FLUSH a batch reloads its script and answers", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const store = yield* storeOn(server)
        yield* Effect.promise(() => server.cli("SCRIPT", "FLUSH"))
        const before = yield* scriptCalls(server)
        yield* mixedTick(store)
        const after = yield* scriptCalls(server)
        assert.isTrue(after.eval - before.eval >= 1, "the batch was sent with EVAL after NOSCRIPT")
        yield* mixedTick(store)
        const again = yield* scriptCalls(server)
        assert.strictEqual(again.eval, after.eval, "cached again: EVALSHA only")
      }))
  })
})
