/**
 * The Redis store on a real 3-master Redis Cluster that this file starts on loopback ports
 * (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`) and tears down.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Layer } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { RedisStore } from "effect-rate-sync/redis"
import { Cluster } from "ioredis"
import { runStoreSuite } from "../conformance/RateLimitStoreSuite.js"
import { describeWhenUp } from "../utils/services.js"
import { redisBinariesAvailable, redisCluster, type RedisClusterHandle } from "../utils/redisServer.js"
import * as T from "#test/effect"

const available = redisBinariesAvailable()

const PREFIX = `rs-cluster-${crypto.randomUUID()}`
const fresh = (name: string) => `${name}-${crypto.randomUUID()}`

class ClusterHandle extends T.Service<ClusterHandle, RedisClusterHandle>()("test/ClusterHandle") {}

/** The cluster, then the store on it (the store closes before the servers stop). */
const ClusterLive = T.layerScoped(ClusterHandle, redisCluster(3))
const StoreLive = T.layerUnwrap(
  Effect.gen(function*() {
    const cluster = yield* ClusterHandle
    return RedisStore.layer({ clusterNodes: cluster.seeds, keyPrefix: PREFIX })
  })
)
const Live = StoreLive.pipe(Layer.provideMerge(ClusterLive))

const rawCluster = (seeds: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    T.callback<Cluster>((resume) => {
      const client = new Cluster(seeds.map((s) => ({ host: "127.0.0.1", port: Number(s.split(":")[1]) })))
      client.once("ready", () => resume(Effect.succeed(client)))
    }),
    (client) => Effect.promise(() => client.quit()).pipe(Effect.ignore)
  )

describeWhenUp(available)("RedisStore on a 3-master Redis Cluster", () => {
  // the suite block builds its own copy of the layer: a cluster of its own, torn down after it
  runStoreSuite("conformance (redis cluster, live clock)", Live, { clock: "live" })

  layer(Live, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("every operation works on keys spread over all masters", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const cluster = yield* ClusterHandle
        const client = yield* rawCluster(cluster.seeds)
        const limiter = fresh("spread")
        const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`)
        for (const key of keys) {
          assert.isTrue((yield* store.tokenBucket({ limiter, key, ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 })).allowed)
          assert.isFalse((yield* store.tokenBucket({ limiter, key, ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 })).allowed)
          assert.isTrue((yield* store.slidingWindow({ limiter, key, limit: 1, windowMs: 10_000, cost: 1 })).allowed)
          assert.isTrue((yield* store.fixedWindow({ limiter, key, limit: 1, windowMs: 10_000, cost: 1 })).allowed)
          assert.isTrue((yield* store.acquireSlot({ limiter, key, holder: "h", limit: 1, leaseMs: 10_000 })).acquired)
          assert.isFalse((yield* store.acquireSlot({ limiter, key, holder: "other", limit: 1, leaseMs: 10_000 })).acquired)
        }
        // the keys of every master together hold all of them, and each master holds some
        const perMaster = yield* Effect.promise(() =>
          Promise.all(client.nodes("master").map((node) => node.keys(`${PREFIX}:*`).then((ks) => ks.length)))
        )
        assert.strictEqual(perMaster.length, 3)
        assert.isTrue(perMaster.every((n) => n > 0), `keys per master: ${perMaster.join(",")}`)
        // one (limiter, key) lives in one slot, so one Lua script can touch all of its state
        const slots = yield* Effect.promise(() =>
          Promise.all(
            ["tb", "sw", "swm", "fw", "cc"].map((s) =>
              client.cluster("KEYSLOT", `${PREFIX}:{=${limiter}.=user-0}:${s}`)
            )
          )
        )
        assert.strictEqual(new Set(slots).size, 1)
        // reset(limiter) scans every master
        yield* store.reset(limiter)
        const left = yield* Effect.promise(() =>
          Promise.all(client.nodes("master").map((node) => node.keys(`${PREFIX}:*`).then((ks) => ks.length)))
        )
        assert.deepStrictEqual(left, [0, 0, 0])
        assert.isTrue((yield* store.acquireSlot({ limiter, key: "user-7", holder: "other", limit: 1, leaseMs: 10_000 })).acquired)
      }))

    it.scoped("scripts come back after SCRIPT FLUSH on every master", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const cluster = yield* ClusterHandle
        yield* Effect.promise(() => Promise.all(cluster.nodes.map((n) => n.cli("SCRIPT", "FLUSH"))))
        const limiter = fresh("flush")
        for (let i = 0; i < 10; i++) {
          const d = yield* store.fixedWindow({ limiter, key: `k${i}`, limit: 1, windowMs: 10_000, cost: 1 })
          assert.isTrue(d.allowed)
        }
      }))
  })
})
