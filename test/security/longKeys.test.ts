/**
 * No input opens the gate: a caller-chosen key of any length or content is limited like any
 * other, on every store (memory, and the real Redis, PostgreSQL and NATS servers on loopback),
 * directly and through the HTTP middleware behind a real `NodeHttpServer`.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect, Layer, Redacted } from "effect"
import { HttpRateLimit } from "effect-rate-sync/http"
import { MemoryStore, RateLimiter, RateLimitStore } from "effect-rate-sync"
import { NatsStore } from "effect-rate-sync/nats"
import { PostgresStore } from "effect-rate-sync/postgres"
import { RedisStore } from "effect-rate-sync/redis"
import { randomBytes } from "node:crypto"
import { dropBucket, URL as NATS_URL } from "../utils/nats.js"
import { freshTable, FUNCTIONS, URL as PG_URL } from "../utils/postgres.js"
import { required, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"
import { HttpServerResponse } from "#fx/http"
import * as H from "#test/http"

const up = {
  redis: await requireService("Redis", "127.0.0.1", 6379),
  postgres: await requireService("PostgreSQL", "127.0.0.1", 5432),
  nats: await requireService("NATS", "127.0.0.1", 4222)
}

const table = freshTable()
const bucket = `rs-test-${crypto.randomUUID()}`

const dropTable = T.layerScopedDiscard(
  Effect.addFinalizer(() =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Sql.script(sql,
        [`DROP TABLE IF EXISTS "public"."${table}"`, ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${table}_${f}"`)]
          .join(";\n")
      )).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
  )
)

const stores: ReadonlyArray<readonly [string, boolean, () => Layer.Layer<RateLimitStore.RateLimitStore>]> = [
  ["memory", true, () => MemoryStore.layer()],
  [
    "redis",
    up.redis,
    () => RedisStore.layer({ url: Redacted.make("redis://127.0.0.1:6379"), keyPrefix: `rs-test-${crypto.randomUUID()}` }).pipe(Layer.orDie)
  ],
  [
    "postgres",
    up.postgres,
    () =>
      PostgresStore.layer({ tableName: table }).pipe(
        Layer.provide(dropTable),
        Layer.provide(Sql.pgLayer({ url: Redacted.make(PG_URL), maxConnections: 4 })),
        Layer.orDie
      )
  ],
  [
    "nats",
    up.nats,
    () => NatsStore.layer({ url: Redacted.make(NATS_URL), bucketName: bucket }).pipe(Layer.provide(dropBucket(bucket)), Layer.orDie)
  ]
]

/** Random text of `n` characters (incompressible: PostgreSQL compresses a repetitive index entry). */
const noise = (n: number) => randomBytes(n).toString("base64").slice(0, n)

/** Keys a hostile caller would choose: long, very long, with NUL, lone surrogates, a marker. */
const hostileKeys = [
  noise(2_800),
  "ü" + noise(5_000),
  noise(100_000),
  "a\0".repeat(2_000),
  "\uD800".repeat(3_000),
  "\u0002" + "k".repeat(200)
]

for (const [engine, available, storeLayer] of stores) {
  describe(`hostile keys on the ${engine} store`, () => {
    if (!available) {
      it("server unreachable: not run (allowed only without RATE_SYNC_REQUIRE_SERVICES=1)", () => {
        assert.isFalse(required)
      })
      return
    }

    it.live("a sliding window of 3 admits 3 of 10 calls for every hostile key, each key on its own", () =>
      Effect.gen(function*() {
        const limiter = `login-${crypto.randomUUID()}`
        yield* RateLimiter.configureLimiter(limiter, { algorithm: "sliding_window", limit: 3, window: "1 minute" })
        for (const key of hostileKeys) {
          const admitted: Array<boolean> = []
          for (let i = 0; i < 10; i++) {
            const d = yield* RateLimiter.check(limiter, { key })
            assert.isFalse(d.failedOpen, `${engine}: key of ${key.length} failed open`)
            admitted.push(d.allowed)
          }
          assert.deepStrictEqual(admitted.filter(Boolean).length, 3, `${engine}: key of ${key.length} characters`)
        }
        // two long keys that differ in their last character keep their own state
        const common = noise(4_000)
        const a = common + "a"
        const b = common + "b"
        assert.isTrue((yield* RateLimiter.check(limiter, { key: a, cost: 3 })).allowed)
        assert.isFalse((yield* RateLimiter.check(limiter, { key: a })).allowed)
        assert.isTrue((yield* RateLimiter.check(limiter, { key: b })).allowed)
        const m = yield* RateLimiter.metrics(limiter)
        assert.strictEqual(m.storeErrors, 0)
        assert.strictEqual(m.failOpenAdmits, 0)
      }).pipe(Effect.provide(RateLimiter.layer({}).pipe(Layer.provide(storeLayer())))))

    it.live("token bucket and concurrency hold for a long key, and reset clears it", () =>
      Effect.gen(function*() {
        const limiter = `api-${crypto.randomUUID()}`
        const key = noise(10_000)
        yield* RateLimiter.configureLimiter(limiter, { ratePerSecond: 0.01, burst: 2, maxConcurrent: 1, timeout: 0 })
        const first = yield* Effect.scoped(RateLimiter.tryAcquire(limiter, { key }))
        const second = yield* Effect.scoped(
          Effect.zipWith(RateLimiter.acquire(limiter, { key }), RateLimiter.tryAcquire(limiter, { key }), (_, b) => b)
        )
        const third = yield* Effect.scoped(RateLimiter.tryAcquire(limiter, { key }))
        assert.deepStrictEqual([first, second, third], [true, false, false])
        yield* RateLimiter.reset(limiter, key)
        assert.isTrue(yield* Effect.scoped(RateLimiter.tryAcquire(limiter, { key })))
        assert.strictEqual((yield* RateLimiter.metrics(limiter)).failOpenAdmits, 0)
      }).pipe(Effect.provide(RateLimiter.layer({}).pipe(Layer.provide(storeLayer())))))

    it.live("HTTP login limit of 5 keyed by user name: the 6th request of a long name gets 429", () => {
      const limiter = `http-login-${crypto.randomUUID()}`
      // every path answers "ok" (the test posts to /login only)
      const app = HttpRateLimit.middleware({
        limiter,
        key: (request) => Effect.succeed(request.headers["x-user"] ?? "anonymous")
      })(Effect.succeed(HttpServerResponse.text("ok")))
      return Effect.gen(function*() {
        const base = yield* H.baseUrl
        const statuses = (user: string) =>
          Effect.promise(async () => {
            const out: Array<number> = []
            for (let i = 0; i < 20; i++) {
              const response = await fetch(`${base}/login`, {
                method: "POST",
                headers: { connection: "close", "x-user": user }
              })
              await response.text()
              out.push(response.status)
            }
            return out
          })
        const expected = [...Array(5).fill(200), ...Array(15).fill(429)]
        assert.deepStrictEqual(yield* statuses("alice"), expected)
        assert.deepStrictEqual(yield* statuses(noise(8_000)), expected)
      }).pipe(
        Effect.provide(
          H.serve(app).pipe(
            Layer.provide(
              RateLimiter.layer({ [limiter]: { algorithm: "sliding_window", limit: 5, window: "5 minutes" } }).pipe(
                Layer.provide(storeLayer())
              )
            ),
            Layer.orDie
          )
        )
      )
    })
  })
}
