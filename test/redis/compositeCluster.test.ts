/**
 * The Redis store's composite calls on a real 3-master Redis Cluster this file starts on loopback
 * ports (test/utils/redisServer.ts) and tears down: with `hashTags`, the keys of one `takeAll`
 * share a slot (by key: a user's limits; by group: a per-IP and a global limit); a call whose
 * keys carry different tags is refused (`StoreError` kind `rejected`) and writes nothing on any
 * master.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Layer } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { RedisStore } from "effect-rate-sync/redis"
import { Cluster } from "ioredis"
import { describeWhenUp } from "../utils/services.js"
import { redisBinariesAvailable, redisCluster, type RedisClusterHandle } from "../utils/redisServer.js"
import * as T from "#test/effect"

const available = redisBinariesAvailable()

type Store = RateLimitStore.RateLimitStoreService

const PREFIX = `rs-ccluster-${crypto.randomUUID()}`
const part = (s: string) => /^[A-Za-z0-9_-]+$/.test(s) ? `=${s}` : Buffer.from(s, "utf8").toString("base64url")
const DAY = 86_400_000

// one id per run, so tagged limiters of two runs never meet (the cluster is fresh anyway)
const run = crypto.randomUUID().slice(0, 8)
const rpm = `rpm-${run}`
const tpm = `tpm-${run}`
const ip = `login-ip-${run}`
const login = `login-${run}`

class ClusterHandle extends T.Service<ClusterHandle, RedisClusterHandle>()("test/CompositeClusterHandle") {}

const ClusterLive = T.layerScoped(ClusterHandle, redisCluster(3))
const StoreLive = T.layerUnwrap(
  Effect.gen(function*() {
    const cluster = yield* ClusterHandle
    return RedisStore.layer({
      clusterNodes: cluster.seeds,
      keyPrefix: PREFIX,
      hashTags: [`${rpm}=key`, `${tpm}=key`, `${ip}=group:login`, `${login}=group:login`]
    })
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

const clientOf = Effect.flatMap(ClusterHandle, (cluster) => rawCluster(cluster.seeds))

const takeAllOf = (store: Store) => {
  const takeAll = store.takeAll
  if (takeAll === undefined) throw new Error("the Redis store offers takeAll")
  return takeAll
}

/** The keys under `pattern` on each master. */
const keysPerMaster = (client: Cluster, pattern: string) =>
  Effect.promise(() => Promise.all(client.nodes("master").map((node) => node.keys(pattern))))

describeWhenUp(available)("RedisStore composite calls on a 3-master Redis Cluster", () => {
  layer(Live, { timeout: "90 seconds", excludeTestServices: true })((it) => {
    it.scoped("\"key\" tags: a user's rpm and tpm share a slot, users spread over every master", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* clientOf
        for (let i = 0; i < 30; i++) {
          const d = yield* takeAllOf(store)([
            { algorithm: "token_bucket", limiter: rpm, key: `user-${i}`, ratePerSecond: 1, burst: 60, cost: 1, maxWaitMs: 0 },
            { algorithm: "fixed_window", limiter: tpm, key: `user-${i}`, limit: 10_000, windowMs: DAY, cost: 500 }
          ])
          assert.isTrue(d.allowed, `user-${i}`)
          assert.strictEqual(d.decisions[1]?.remaining, 9_500)
        }
        const slots = yield* Effect.promise(() =>
          Promise.all([
            client.cluster("KEYSLOT", `${PREFIX}:{~k=user-0}:${part(rpm)}.=user-0:tb`),
            client.cluster("KEYSLOT", `${PREFIX}:{~k=user-0}:${part(tpm)}.=user-0:fw`)
          ])
        )
        assert.strictEqual(new Set(slots).size, 1)
        const perMaster = yield* keysPerMaster(client, `${PREFIX}:{~k*`)
        assert.strictEqual(perMaster.flat().length, 60, "two keys per user")
        assert.isTrue(perMaster.every((ks) => ks.length > 0), `keys per master: ${perMaster.map((ks) => ks.length).join(",")}`)
        // what the calls charged, read back one limit at a time
        const peek = yield* store.peek({ algorithm: "fixed_window", limiter: tpm, key: "user-7", limit: 10_000, windowMs: DAY })
        assert.strictEqual(peek.remaining, 9_500)
      }))

    it.scoped("\"group\" tags: a per-IP and a global limit in one call; the global one binds, and a refusal charges no IP", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* clientOf
        const call = (addr: string) =>
          takeAllOf(store)([
            { algorithm: "sliding_window", limiter: ip, key: addr, limit: 3, windowMs: 60_000, cost: 1 },
            { algorithm: "fixed_window", limiter: login, key: "", limit: 5, windowMs: DAY, cost: 1 }
          ])
        for (let i = 0; i < 5; i++) assert.isTrue((yield* call(`10.0.0.${i}`)).allowed)
        const refused = yield* call("10.0.0.9")
        assert.isFalse(refused.allowed)
        assert.deepStrictEqual(refused.decisions.map((d) => d.allowed), [true, false], "the global limit is the violation")
        const perMaster = yield* keysPerMaster(client, `${PREFIX}:{~g=login}:*`)
        assert.deepStrictEqual(perMaster.map((ks) => ks.length).sort(), [0, 0, 11], "one master holds the group")
        const untouched = yield* store.peek({ algorithm: "sliding_window", limiter: ip, key: "10.0.0.9", limit: 3, windowMs: 60_000 })
        assert.strictEqual(untouched.remaining, 3, "the refused call charged nothing to its IP")
        yield* store.reset(ip)
        assert.strictEqual((yield* keysPerMaster(client, `${PREFIX}:{~g=login}:*`)).flat().length, 1, "reset(limiter) found the tagged keys")
      }))

    it.scoped("keys of different tags: refused (rejected, naming hashTags) before anything is written", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* clientOf
        const [a, b] = [`plain-a-${run}`, `plain-b-${run}`]
        const fwA = { algorithm: "fixed_window" as const, limiter: a, key: "u", limit: 10, windowMs: DAY, cost: 1 }
        const calls = [
          [fwA, { ...fwA, limiter: b }],
          [
            { algorithm: "token_bucket" as const, limiter: rpm, key: "x1", ratePerSecond: 1, burst: 5, cost: 1, maxWaitMs: 0 },
            { ...fwA, limiter: tpm, key: "x2" }
          ],
          [fwA, { ...fwA, limiter: rpm }]
        ]
        for (const takes of calls) {
          const error = yield* Effect.flip(takeAllOf(store)(takes))
          assert.strictEqual(error._tag, "StoreError")
          assert.strictEqual(error.kind, "rejected")
          assert.strictEqual(error.operation, "takeAll")
          assert.include(error.message, "hashTags")
          assert.notInclude(error.message, "\"u\"", "keys are not quoted")
        }
        const written = yield* Effect.all([
          keysPerMaster(client, `${PREFIX}:{${part(a)}.*`),
          keysPerMaster(client, `${PREFIX}:{${part(b)}.*`),
          keysPerMaster(client, `${PREFIX}:{~k=x*`),
          keysPerMaster(client, `${PREFIX}:{~k=u}*`)
        ])
        assert.deepStrictEqual(written.map((perMaster) => perMaster.flat().length), [0, 0, 0, 0])
        // one pair, or several takes of one pair, share a tag in any layout
        assert.isTrue((yield* takeAllOf(store)([fwA])).allowed)
        const again = yield* takeAllOf(store)([fwA, fwA])
        assert.isTrue(again.allowed)
        assert.deepStrictEqual(again.decisions.map((d) => d.remaining), [8, 7])
      }))

    it.scoped("a refused call leaves every key of the slot as it was; adjust works in the tagged layout", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* clientOf
        const user = `u-${crypto.randomUUID()}`
        const tb = { algorithm: "token_bucket" as const, limiter: rpm, key: user, ratePerSecond: 0.001, burst: 3, cost: 1, maxWaitMs: 0 }
        const fw = { algorithm: "fixed_window" as const, limiter: tpm, key: user, limit: 1000, windowMs: DAY, cost: 600 }
        const first = yield* takeAllOf(store)([tb, fw])
        assert.isTrue(first.allowed)
        const tbKey = `${PREFIX}:{~k=${user}}:${part(rpm)}.=${user}:tb`
        const fwKey = `${PREFIX}:{~k=${user}}:${part(tpm)}.=${user}:fw`
        const read = Effect.promise(() =>
          Promise.all([client.get(tbKey), client.hgetall(fwKey).then((h) => Object.entries(h).sort()), client.pttl(tbKey), client.pttl(fwKey)])
        )
        const [tbBefore, fwBefore, tbTtl, fwTtl] = yield* read
        const refused = yield* takeAllOf(store)([tb, fw])
        assert.isFalse(refused.allowed, "600 more tokens do not fit in 1000")
        assert.deepStrictEqual(refused.decisions.map((d) => [d.allowed, d.remaining]), [[true, 2], [false, 400]])
        const [tbAfter, fwAfter, tbTtl2, fwTtl2] = yield* read
        assert.strictEqual(tbAfter, tbBefore)
        assert.deepStrictEqual(fwAfter, fwBefore)
        assert.isTrue(tbTtl2 <= tbTtl && fwTtl2 <= fwTtl, "no expiry pushed")
        // the LLM flow: 600 tokens estimated, 250 used: give 350 back, then the call fits
        const adjust = store.adjust
        if (adjust === undefined) return assert.fail("the Redis store offers adjust")
        const back = yield* adjust({ take: fw, delta: -350, ref: first.decisions[1]?.ref })
        assert.deepStrictEqual([back.applied, back.remaining], [-350, 750])
        const fits = yield* takeAllOf(store)([tb, fw])
        assert.isTrue(fits.allowed)
        assert.deepStrictEqual(fits.decisions.map((d) => d.remaining), [1, 150])
      }))
  })
})
