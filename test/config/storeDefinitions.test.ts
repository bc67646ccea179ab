/**
 * Store definitions written in code (`configureStore`, `RateLimiter.make`): validated by the rules
 * of the `[stores.<id>]` tables before anything is opened, and built in a scope of their own that
 * is closed when the build fails or the store is replaced.
 */
import { assert, describe, it } from "#test/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Redacted } from "effect"
import { MemoryStore, RateLimiter, RateSyncConfig, type StoreDefinition } from "effect-rate-sync"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

/**
 * What an untyped JavaScript caller can pass, seen through the type the API declares. A typed
 * boundary on purpose: these tests give the API what its types forbid.
 */
const untyped = <T>(value: unknown): T => value as T

const SECRET = "hunter2-s3cr3t"

const registry = RateLimiter.layer({}).pipe(Layer.provide(MemoryStore.layer()))

/** [definition, path, expected, received] */
const bad: ReadonlyArray<readonly [unknown, string, string, string]> = [
  [{ engine: "mongo" }, "stores.s.engine", `one of "memory", "redis", "nats", "postgres"`, `"mongo"`],
  [{}, "stores.s.engine", `one of "memory", "redis", "nats", "postgres"`, "nothing"],
  [5, "stores.s", "a store definition (an object with an engine)", "5"],
  [null, "stores.s", "a store definition (an object with an engine)", "null"],
  [{ engine: "memory", maxKeys: -1 }, "stores.s.maxKeys", "a whole number greater than 0", "-1"],
  [{ engine: "memory", maxKeys: "10" }, "stores.s.maxKeys", "a number", `"10"`],
  [{ engine: "memory", sweepInterval: "soon" }, "stores.s.sweepInterval", "a finite duration greater than 0", `"soon"`],
  [{ engine: "memory", sweepInterval: 0 }, "stores.s.sweepInterval", "a finite duration greater than 0", "0"],
  [
    { engine: "memory", sweepInterval: Duration.infinity },
    "stores.s.sweepInterval",
    "a finite duration greater than 0",
    "Infinity (a Duration)"
  ],
  [
    { engine: "memory", maxkeys: 5 },
    "stores.s.maxkeys",
    "one of the memory store fields: engine, maxKeys, maxBytes, sweepInterval",
    "an unknown field"
  ],
  [
    { engine: "redis", keyPrefix: "a{b" },
    "stores.s.keyPrefix",
    "a non-empty key prefix without { or } (they mark Redis Cluster hash tags)",
    `"a{b"`
  ],
  [{ engine: "redis", db: 1.5 }, "stores.s.db", "a whole number of 0 or more", "1.5"],
  [
    { engine: "redis", poolMinSize: 5, poolMaxSize: 2 },
    "stores.s.poolMinSize",
    "a whole number no greater than poolMaxSize (2)",
    "5"
  ],
  [{ engine: "redis", clusterNodes: ["nohost"] }, "stores.s.clusterNodes[0]", `a "host:port" string (port 1-65535)`, `"nohost"`],
  [{ engine: "redis", hashTags: ["rpm=key", "tpm"] }, "stores.s.hashTags[1]", `"<limiter>=key" or "<limiter>=group:<name>"`, `"tpm"`],
  [
    { engine: "redis", url: Redacted.make(`http://user:${SECRET}@host`) },
    "stores.s.url",
    "a redis:// or rediss:// URL",
    `<redacted> (scheme "http:")`
  ],
  [
    { engine: "redis", url: `redis://:${SECRET}@127.0.0.1:6379` },
    "stores.s.url",
    "a Redacted value (Redacted.make(...)) holding a redis:// or rediss:// URL",
    "<redacted> (not Redacted)"
  ],
  [{ engine: "nats", bucketName: "bad.name" }, "stores.s.bucketName", "a NATS KV bucket name ([A-Za-z0-9_-]+)", `"bad.name"`],
  [{ engine: "nats", maxRetries: -1 }, "stores.s.maxRetries", "a whole number of 0 or more", "-1"],
  [{ engine: "nats", retryInterval: -5 }, "stores.s.retryInterval", "a finite duration greater than 0", "-5"],
  [
    { engine: "postgres", tableName: "bad-name" },
    "stores.s.tableName",
    "an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 48 characters)",
    `"bad-name"`
  ],
  [
    { engine: "postgres", schemaName: "x; drop" },
    "stores.s.schemaName",
    "an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters)",
    `"x; drop"`
  ],
  [{ engine: "postgres", autoCreate: "yes" }, "stores.s.autoCreate", "true or false", `"yes"`]
]

describe("store definitions written in code", () => {
  it.effect("decodeStoreDefinition applies the [stores.<id>] rules, naming the TypeScript field", () =>
    Effect.gen(function*() {
      for (const [definition, path, expected, received] of bad) {
        const result = RateSyncConfig.decodeStoreDefinition("s", definition)
        assert.isTrue(T.isErr(result), path)
        if (T.isErr(result)) {
          const e = T.errOf(result)
          assert.deepStrictEqual([e.path, e.expected, e.received], [path, expected, received])
          assert.notInclude(e.message, SECRET)
        }
      }
      // A good one comes back with its durations as Durations and its secrets still Redacted.
      const good = T.getOk(RateSyncConfig.decodeStoreDefinition("s", {
        engine: "redis",
        url: Redacted.make("redis://127.0.0.1:6379/2"),
        keyPrefix: "rl",
        commandTimeout: "2 seconds",
        clusterNodes: ["127.0.0.1:7000"]
      }))
      assert.strictEqual(good.engine, "redis")
      if (good.engine === "redis") {
        assert.strictEqual(good.url === undefined ? "" : Redacted.value(good.url), "redis://127.0.0.1:6379/2")
        assert.deepStrictEqual(good.commandTimeout, Duration.millis(2000))
        assert.deepStrictEqual([good.keyPrefix, good.clusterNodes], ["rl", ["127.0.0.1:7000"]])
      }
      assert.deepStrictEqual(RateSyncConfig.decodeStoreDefinition("m", { engine: "memory" }), T.ok({ engine: "memory" }))
    }))

  it.effect("configureStore fails with that ConfigError before building anything, and registers nothing", () =>
    Effect.gen(function*() {
      for (const [definition, path, expected, received] of bad) {
        const e = yield* Effect.flip(RateLimiter.configureStore("s", untyped<StoreDefinition.StoreDefinition>(definition)))
        assert.strictEqual(e._tag, "ConfigError", path)
        if (e._tag === "ConfigError") assert.deepStrictEqual([e.path, e.expected, e.received], [path, expected, received])
      }
      assert.deepStrictEqual((yield* RateLimiter.listStores).map((s) => s.id), ["default"])
      // A store id that is not a non-empty string.
      const id = yield* Effect.flip(RateLimiter.configureStore("", { engine: "memory" }))
      assert.strictEqual(id._tag, "ConfigError")
      // The same rules at registry construction.
      const made = yield* Effect.flip(
        RateLimiter.make({ stores: { main: untyped<StoreDefinition.StoreDefinition>({ engine: "memory", maxKeys: 0 }) } })
          .pipe(Effect.scoped)
      )
      assert.strictEqual(made._tag, "ConfigError")
      if (made._tag === "ConfigError") assert.strictEqual(made.path, "stores.main.maxKeys")
    }).pipe(Effect.provide(registry)))
})

const postgresUp = await requireService("PostgreSQL", "127.0.0.1", 5432)
const PG_URL = "postgres://postgres@127.0.0.1:5432/test"

const admin = Sql.pgLayer({ url: Redacted.make(PG_URL) })

/**
 * Connections the server holds for `application`, once they have settled to `expected` (a closed
 * pool's backends exit asynchronously): polled for at most 2 seconds, then the last count.
 */
const connectionsOf = (application: string, expected: number): Effect.Effect<number> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const count = sql<{ readonly n: number }>`
      SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = ${application}`.pipe(
      Effect.map((rows) => rows[0]?.n ?? -1)
    )
    const poll = (attempts: number): Effect.Effect<number, Sql.SqlError> =>
      Effect.flatMap(count, (n) =>
        n === expected || attempts === 0 ? Effect.succeed(n) : Effect.andThen(Effect.sleep("50 millis"), poll(attempts - 1)))
    return poll(40)
  }).pipe(Effect.provide(admin), Effect.orDie)

describeWhenUp(postgresUp)("store scopes (PostgreSQL)", () => {
  it.live("a failed build closes the pool it opened; replacing a store closes the old one", () => {
    const schema = `scope_${crypto.randomUUID().replaceAll("-", "")}`
    // The URL's application_name tags this test's connections, so the count is its own.
    const application = `rs-scope-${crypto.randomUUID().slice(0, 8)}`
    const url = Redacted.make(`${PG_URL}?application_name=${application}`)
    return Effect.gen(function*() {
      // The table is missing and may not be created: the build fails after its pool connected.
      for (let i = 0; i < 3; i++) {
        const e = yield* Effect.flip(
          RateLimiter.configureStore("broken", { engine: "postgres", url, schemaName: schema, autoCreate: false })
        )
        assert.strictEqual(e._tag, "StoreUnavailable")
      }
      assert.strictEqual(yield* connectionsOf(application, 0), 0, "connections of failed builds kept open")

      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`)).pipe(
        Effect.provide(admin),
        Effect.orDie
      )
      yield* RateLimiter.configureLimiter("pg", { store: "default", ratePerSecond: 1, burst: 2 })
      for (let i = 0; i < 5; i++) {
        yield* RateLimiter.configureStore("main", { engine: "postgres", url, schemaName: schema, poolMaxSize: 1 })
        yield* RateLimiter.configureLimiter("pg", { store: "main", ratePerSecond: 1, burst: 2 })
        // The limiter runs on the newest store.
        const d = yield* RateLimiter.check("pg", { key: `k${i}` })
        assert.deepStrictEqual([d.allowed, d.failedOpen], [true, false])
      }
      // Only the newest store's pool is open: at most its one connection. Effect 3's pg pool keeps
      // that connection idle (exactly 1); Effect 4's sql-pg pool may already have closed it.
      const held = yield* connectionsOf(application, 1)
      if ((T.major as number) === 3) assert.strictEqual(held, 1, "replaced stores kept their connections")
      else assert.isAtMost(held, 1, "replaced stores kept their connections")
      const stores = (yield* RateLimiter.listStores).map((s) => `${s.id}:${s.engine}`).sort()
      assert.deepStrictEqual(stores, ["default:memory", "main:postgres"])
    }).pipe(
      Effect.provide(registry),
      Effect.andThen(Effect.suspend(() => connectionsOf(application, 0))),
      Effect.tap((left) => Effect.sync(() => assert.strictEqual(left, 0, "connections left once the registry closed"))),
      Effect.ensuring(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).pipe(
          Effect.provide(admin),
          Effect.orDie
        )
      )
    )
  })

  it.live("a waiter for a slot moves to the store that replaced the old one: never admitted fail-open", () => {
    const schema = `wait_${crypto.randomUUID().replaceAll("-", "")}`
    const url = Redacted.make(PG_URL)
    return Effect.gen(function*() {
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`)).pipe(
        Effect.provide(admin),
        Effect.orDie
      )
      const store = { engine: "postgres", url, schemaName: schema, poolMaxSize: 2 } as const
      yield* RateLimiter.configureStore("main", store)
      yield* RateLimiter.configureLimiter("cc", { store: "main", maxConcurrent: 1, lease: "1 second" })
      const held = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      const holder = yield* T.fork(Effect.scoped(Effect.andThen(
        Effect.andThen(RateLimiter.acquire("cc"), Deferred.succeed(held, undefined)),
        Deferred.await(done)
      )))
      yield* Deferred.await(held)
      const waiter = yield* T.fork(Effect.scoped(Effect.map(RateLimiter.acquire("cc", { timeout: "20 seconds" }), (p) => p.failedOpen)))
      // the waiter has been refused once (it now backs off and tries again)
      for (let i = 0; i < 200 && (yield* RateLimiter.metrics("cc")).maxConcurrentReached === 0; i++) {
        yield* Effect.sleep("10 millis")
      }
      assert.isAbove((yield* RateLimiter.metrics("cc")).maxConcurrentReached, 0)
      // The old store's pool is closed: a waiter still asking it would fail and be let through.
      yield* RateLimiter.configureStore("main", store)
      const failedOpen = yield* Fiber.join(waiter)
      assert.isFalse(failedOpen, "the waiter was admitted without a slot")
      assert.strictEqual((yield* RateLimiter.metrics("cc")).failOpenAdmits, 0)
      yield* Deferred.succeed(done, undefined)
      yield* Fiber.join(holder)
    }).pipe(
      Effect.provide(registry),
      Effect.ensuring(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).pipe(
          Effect.provide(admin),
          Effect.orDie
        )
      )
    )
  })
})
