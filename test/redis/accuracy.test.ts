/**
 * Multi-process accuracy against a redis-server this file starts: 4 Node processes × 50 fibers
 * share one limiter of 100/s for 10 s, and a concurrency limiter of 5; then a SIGKILLed holder's
 * slot comes back within its lease + 1 s.
 */
import { assert, layer } from "#test/vitest"
import { Clock, Effect, Layer, Redacted } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { RedisStore } from "effect-rate-sync/redis"
import { worker as spawnWorker } from "../utils/accuracy.js"
import { describeWhenUp } from "../utils/services.js"
import { redisBinariesAvailable, redisServer, type RedisServer } from "../utils/redisServer.js"
import * as T from "#test/effect"

const available = redisBinariesAvailable()

const PROCESSES = 4
const FIBERS = 50
const RATE = 100
const BURST = 100 // the default: max(1, ceil(ratePerSecond))
const DURATION_MS = 10_000

class Server extends T.Service<Server, RedisServer>()("test/RedisAccuracyServer") {}
const ServerLive = T.layerScoped(Server, redisServer())
const Live = T.layerUnwrap(
  Effect.gen(function*() {
    const server = yield* Server
    return RedisStore.layer({ url: Redacted.make(server.url) })
  })
).pipe(Layer.provideMerge(ServerLive))

/** A worker process of this test (killed when the scope closes), with this run's node flags. */
const worker = (args: ReadonlyArray<string>) => spawnWorker("test/redis/fixtures/worker.ts", args)

describeWhenUp(available)("RedisStore multi-process accuracy (4 processes × 50 fibers)", () => {
  layer(Live, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("one 100/s limiter admits [0.97, 1.0] × (burst + 100·10) in 10 s; a limiter of 5 never has 6 holders", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const rateId = `acc-${crypto.randomUUID()}`
        const ccId = `cc-${crypto.randomUUID()}`
        const counterKey = `holders-${crypto.randomUUID()}`
        const children = yield* Effect.all(
          Array.from({ length: PROCESSES }, () =>
            worker(["accuracy", server.url, rateId, ccId, counterKey, String(FIBERS), String(DURATION_MS)])),
          { concurrency: "unbounded" }
        )
        const ready = yield* Effect.promise(() => Promise.all(children.map((c) => c.line())))
        assert.deepStrictEqual(ready, children.map(() => "ready"))
        const startAt = (yield* Clock.currentTimeMillis) + 300
        for (const c of children) c.process.stdin.write(`go ${startAt}\n`)
        const results = yield* Effect.promise(() =>
          Promise.all(children.map((c) => c.line().then((l): { admitted: number; holds: number; maxObserved: number } => JSON.parse(l))))
        )
        const admitted = results.reduce((n, r) => n + r.admitted, 0)
        const holds = results.reduce((n, r) => n + r.holds, 0)
        const maxObserved = Math.max(...results.map((r) => r.maxObserved))
        const bound = BURST + RATE * (DURATION_MS / 1000)
        console.log(
          `accuracy: admitted ${admitted} of bound ${bound} (${(admitted / bound).toFixed(4)}), per process ${
            results.map((r) => r.admitted).join("/")
          }; concurrency: ${holds} holds, max ${maxObserved} holders observed`
        )
        assert.isTrue(admitted <= bound, `admitted ${admitted} > ${bound}`)
        assert.isTrue(admitted >= 0.97 * bound, `admitted ${admitted} < 0.97 × ${bound}`)
        assert.isTrue(results.every((r) => r.admitted > 0), "every process was admitted some")
        assert.isTrue(maxObserved <= 5, `observed ${maxObserved} holders`)
        assert.isTrue(maxObserved >= 2, "the concurrency limiter was contended")
        assert.isTrue(holds > 100)
      }))

    it.scoped("a SIGKILLed holder's slot comes back within its lease + 1 s", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const store = yield* RateLimitStore.RateLimitStore
        const ccId = `kill-${crypto.randomUUID()}`
        const leaseMs = 1000
        const holder = yield* worker(["holder", server.url, ccId, String(leaseMs)])
        assert.strictEqual(yield* Effect.promise(() => holder.line()), "held")
        const probe = { limiter: ccId, key: "", holder: `probe-${crypto.randomUUID()}`, limit: 1, leaseMs: 10_000 }
        assert.isFalse((yield* store.acquireSlot(probe)).acquired, "the holder has the only slot")
        // the holder renews every lease/3: survive two renewals to show the lease is kept alive
        yield* Effect.sleep("800 millis")
        assert.isFalse((yield* store.acquireSlot(probe)).acquired, "the lease is renewed while held")
        const killedAt = yield* Clock.currentTimeMillis
        holder.process.kill("SIGKILL")
        while (!(yield* store.acquireSlot(probe)).acquired) yield* Effect.sleep("20 millis")
        const back = (yield* Clock.currentTimeMillis) - killedAt
        console.log(`a SIGKILLed holder's slot came back after ${back} ms (lease ${leaseMs} ms)`)
        assert.isTrue(back <= leaseMs + 1000, `slot back after ${back} ms`)
      }))
  })
})
