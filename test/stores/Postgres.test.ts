/**
 * The PostgreSQL store against the real server on 127.0.0.1:5432 (database `test`, user
 * `postgres`): what is specific to PostgreSQL (concurrency on one key, rows and their expiry,
 * cleanup, bounded calls, initialization, errors), then the conformance suite (live clock). Every
 * block works in a fresh table that its layer drops (with the store's functions) when it ends.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Fiber, Layer, Redacted, Ref } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { PostgresStore, PostgresStoreLive } from "effect-rate-sync/postgres"
import { runStoreSuite } from "../conformance/RateLimitStoreSuite.js"
import { freshTable, FUNCTIONS, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

const fresh = (name: string) => `${name}-${crypto.randomUUID()}`

const PgLive = Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 10 })

/** Drops `schema.table` and the store's functions when the layer that holds it is released. */
const dropTable = (table: string, schema = "public") =>
  T.layerScopedDiscard(
    Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        if (schema !== "public") {
          yield* sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
          return
        }
        yield* Sql.script(sql,
          [
            `DROP TABLE IF EXISTS "${schema}"."${table}"`,
            ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "${schema}"."${table}_${f}"`)
          ].join(";\n")
        )
      }).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
    )
  )

/** The store on a fresh table, plus the `SqlClient` to look at what it wrote. */
const storeOn = (table: string, options: PostgresStore.PostgresStoreOptions = {}) =>
  PostgresStore.layer({ tableName: table, ...options }).pipe(
    Layer.provideMerge(dropTable(table, options.schemaName)),
    Layer.provideMerge(PgLive)
  )

const TABLE = freshTable()

const rowsOf = (limiter: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql.unsafe<{ key: string; kind: string; live: boolean }>(
        `SELECT key, kind, expires_at > clock_timestamp() AS live FROM "public"."${TABLE}" WHERE limiter = $1 ORDER BY key, kind`,
        [limiter]
      )
  )

describeWhenUp(available)("PostgresStore on 127.0.0.1:5432", () => {
  layer(storeOn(TABLE), { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.scoped("50 concurrent fibers on one key: the GCRA bound holds (takes and reservations)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        // No waiting: rate 1/s, burst 10. Whatever the interleaving, at most burst + rate·t pass.
        const limiter = fresh("tb-race")
        const start = Date.now()
        const takes = yield* Effect.forEach(
          Array.from({ length: 50 }, () => 0),
          () => store.tokenBucket({ limiter, key: "k", ratePerSecond: 1, burst: 10, cost: 1, maxWaitMs: 0 }),
          { concurrency: "unbounded" }
        )
        const elapsedS = (Date.now() - start) / 1000
        const admitted = takes.filter((d) => d.allowed).length
        assert.isTrue(admitted >= 10, `admitted ${admitted}: the burst is available at once`)
        assert.isTrue(admitted <= 10 + Math.floor(elapsedS * 1) + 1, `admitted ${admitted} in ${elapsedS} s`)
        // Reservations: rate 100/s (T = 10 ms), burst 5: every one of 50 gets its own slot, spaced by T.
        const reserving = fresh("tb-reserve-race")
        const t0 = Date.now()
        const reserved = yield* Effect.forEach(
          Array.from({ length: 50 }, () => 0),
          () =>
            Effect.map(
              store.tokenBucket({ limiter: reserving, key: "", ratePerSecond: 100, burst: 5, cost: 1, maxWaitMs: 10_000 }),
              (d) => ({ ...d, at: Date.now() - t0 })
            ),
          { concurrency: "unbounded" }
        )
        assert.isTrue(reserved.every((d) => d.allowed))
        // Admission instants (answer time + delay) sorted: the i-th (0-based) is not before (i − 5)·T,
        // up to the time it took to answer (a reservation is relative to its own decision).
        const instants = reserved.map((d) => d.at + d.delayMs).sort((a, b) => a - b)
        const lastAnswer = Math.max(...reserved.map((d) => d.at))
        instants.forEach((instant, i) => {
          assert.isTrue(instant >= (i - 5) * 10 - 1, `reservation ${i} admitted at ${instant} ms, before ${(i - 5) * 10} ms`)
        })
        const maxDelay = Math.max(...reserved.map((d) => d.delayMs))
        assert.isTrue(maxDelay >= 450 - lastAnswer - 1 && maxDelay <= 450 + 1, `last reservation delay ${maxDelay}`)
        const peek = yield* store.peek({ algorithm: "token_bucket", limiter: reserving, key: "", ratePerSecond: 100, burst: 5 })
        assert.isFalse(peek.allowed, "all 50 reservations are held by the state")
      }))

    it.scoped("50 concurrent fibers on one key: the concurrency limit and the sliding window hold", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("cc-race")
        const limit = 5
        const held = yield* Ref.make(0)
        const peak = yield* Ref.make(0)
        const granted = yield* Ref.make(0)
        // Each fiber tries 8 times: acquire; when granted, count itself in, yield, count out, release.
        yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => `h${i}`),
          (holder) =>
            Effect.repeat(
              Effect.gen(function*() {
                const req = { limiter, key: "k", holder, limit, leaseMs: 30_000 }
                const d = yield* store.acquireSlot(req)
                assert.isTrue(d.active <= limit, `active ${d.active}`)
                if (!d.acquired) return
                const now = yield* Ref.updateAndGet(held, (n) => n + 1)
                yield* Ref.update(peak, (p) => Math.max(p, now))
                yield* Ref.update(granted, (n) => n + 1)
                yield* Effect.sleep("2 millis")
                yield* Ref.update(held, (n) => n - 1)
                assert.isTrue(yield* store.releaseSlot(req))
              }),
              { times: 7 }
            ),
          { concurrency: "unbounded" }
        )
        const maxHeld = yield* Ref.get(peak)
        assert.isTrue(maxHeld <= limit && maxHeld >= 1, `peak ${maxHeld} holders`)
        assert.isTrue((yield* Ref.get(granted)) >= limit, "slots were granted")
        assert.strictEqual((yield* store.peek({ algorithm: "concurrency", limiter, key: "k", limit })).remaining, limit)
        // Sliding window: 50 at once against a limit of 7 in 60 s admit exactly 7.
        const sw = fresh("sw-race")
        const takes = yield* Effect.forEach(
          Array.from({ length: 50 }, () => 0),
          () => store.slidingWindow({ limiter: sw, key: "", limit: 7, windowMs: 60_000, cost: 1 }),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(takes.filter((d) => d.allowed).length, 7)
        const fw = fresh("fw-race")
        const fwTakes = yield* Effect.forEach(
          Array.from({ length: 50 }, () => 0),
          () => store.fixedWindow({ limiter: fw, key: "", limit: 7, windowMs: 3_600_000, cost: 1 }),
          { concurrency: "unbounded" }
        )
        const fwAdmitted = fwTakes.filter((d) => d.allowed).length
        assert.isTrue(fwAdmitted === 7 || fwAdmitted === 14, `fixed window admitted ${fwAdmitted}`)
      }))

    it.scoped("one row per (limiter, key, kind), each with an expiry; reset deletes the limiter's rows", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("rows")
        const key = "user:{42} é"
        yield* store.tokenBucket({ limiter, key, ratePerSecond: 1, burst: 10, cost: 4, maxWaitMs: 0 })
        yield* store.slidingWindow({ limiter, key, limit: 5, windowMs: 2000, cost: 1 })
        yield* store.fixedWindow({ limiter, key, limit: 5, windowMs: 60_000, cost: 1 })
        yield* store.acquireSlot({ limiter, key, holder: "h1", limit: 2, leaseMs: 3000 })
        yield* store.fixedWindow({ limiter, key: "other", limit: 5, windowMs: 60_000, cost: 1 })
        const rows = yield* rowsOf(limiter)
        assert.deepStrictEqual(rows.map((r) => [r.key, r.kind, r.live]), [
          ["other", "fw:60000", true],
          [key, "cc", true],
          [key, "fw:60000", true],
          [key, "sw", true],
          [key, "tb", true]
        ])
        yield* store.reset(limiter, key)
        assert.deepStrictEqual((yield* rowsOf(limiter)).map((r) => r.key), ["other"])
        yield* store.reset(limiter)
        assert.strictEqual((yield* rowsOf(limiter)).length, 0)
      }))

    it.scoped("a refusal does not move a row's expiry; expired rows are deleted by the cleanup", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const sql = yield* SqlClient.SqlClient
        const limiter = fresh("expiry")
        const expiresAt = () =>
          Effect.map(
            sql.unsafe<{ at: number }>(
              `SELECT extract(epoch from expires_at)::float8 * 1000 AS at FROM "public"."${TABLE}" WHERE limiter = $1`,
              [limiter]
            ),
            (rows) => rows[0]?.at
          )
        const req = { limiter, key: "", limit: 1, windowMs: 300, cost: 1 }
        assert.isTrue((yield* store.slidingWindow(req)).allowed)
        const before = yield* expiresAt()
        yield* Effect.sleep("50 millis")
        assert.isFalse((yield* store.slidingWindow(req)).allowed)
        assert.strictEqual(yield* expiresAt(), before, "the refusal left expires_at alone")
        yield* Effect.sleep("350 millis")
        const deleted = yield* PostgresStore.deleteExpired({ tableName: TABLE })
        assert.isTrue(deleted >= 1, `deleted ${deleted}`)
        assert.strictEqual((yield* rowsOf(limiter)).length, 0)
        assert.isTrue((yield* store.slidingWindow(req)).allowed)
      }))

    it.scoped("the store's cleanup fiber deletes expired rows every cleanupInterval", () =>
      Effect.gen(function*() {
        yield* PostgresStore.make({ tableName: TABLE, cleanupInterval: "100 millis" })
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("sweep")
        yield* store.tokenBucket({ limiter, key: "", ratePerSecond: 20, burst: 2, cost: 1, maxWaitMs: 0 }) // full again after 50 ms
        assert.strictEqual((yield* rowsOf(limiter)).length, 1)
        yield* Effect.sleep("400 millis")
        assert.strictEqual((yield* rowsOf(limiter)).length, 0, "the row was deleted without any call")
      }))

    it.scoped("a call blocked on a row lock fails with StoreError within statementTimeout", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* PostgresStore.make({ tableName: TABLE, statementTimeout: "300 millis" })
        const limiter = fresh("blocked")
        const req = { limiter, key: "", ratePerSecond: 10, burst: 5, cost: 1, maxWaitMs: 0 }
        assert.isTrue((yield* store.tokenBucket(req)).allowed)
        const locked = yield* T.makeLatch()
        const release = yield* T.makeLatch()
        // Another session holds the row lock until released.
        const holder = yield* T.fork(
          sql.withTransaction(
            Effect.gen(function*() {
              yield* sql.unsafe(`SELECT 1 FROM "public"."${TABLE}" WHERE limiter = $1 FOR UPDATE`, [limiter])
              yield* locked.open
              yield* release.await
            })
          )
        )
        yield* locked.await
        const start = Date.now()
        const error = yield* Effect.flip(store.tokenBucket(req))
        const waited = Date.now() - start
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual(error.engine, "postgres")
        assert.strictEqual(error.operation, "tokenBucket")
        // the client's timeout or the server's lock_timeout / statement_timeout (the same bound),
        // whichever fires first
        assert.match(error.message, /300 ms|lock timeout|statement timeout/)
        assert.isTrue(waited < 1000, `waited ${waited} ms`)
        yield* release.open
        yield* Fiber.await(holder)
        assert.isTrue((yield* store.tokenBucket(req)).allowed, "works again once the lock is gone")
      }))

    it.scoped("a writing statement the client gave up on is cancelled by the server (statement_timeout)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        const slow = `"public"."${table}_slow"`
        yield* Effect.addFinalizer(() =>
          Sql.script(sql,
            [
              `DROP TABLE IF EXISTS "public"."${table}"`,
              `DROP FUNCTION IF EXISTS ${slow}()`,
              ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${table}_${f}"`)
            ].join(";\n")
          ).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
        )
        const store = yield* PostgresStore.make({ tableName: table, statementTimeout: "300 millis" })
        // A statement that holds its connection without waiting for any lock (lock_timeout cannot end it).
        yield* sql.unsafe(
          `CREATE FUNCTION ${slow}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $f$`
        )
        yield* sql.unsafe(`CREATE TRIGGER slow BEFORE UPDATE ON "public"."${table}" FOR EACH ROW EXECUTE FUNCTION ${slow}()`)
        const start = Date.now()
        const error = yield* Effect.flip(
          store.tokenBucket({ limiter: fresh("slow"), key: "", ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 })
        )
        assert.match(error.message, /300 ms|statement timeout/)
        const running = sql.unsafe<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1`,
          [`%${table}_tb_take%`]
        )
        let active = 1
        while (active > 0 && Date.now() - start < 2000) {
          active = (yield* running)[0]?.n ?? 0
          if (active > 0) yield* Effect.sleep("50 millis")
        }
        const ended = Date.now() - start
        assert.strictEqual(active, 0, "the statement still runs on the server")
        // before, it slept its 3 s out, holding a connection and a slot of the store
        assert.isTrue(ended < 1500, `ended on the server after ${ended} ms`)
      }))

    it.scoped("a table created by the previous version gets the new column when the store initializes", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        yield* Effect.addFinalizer(() =>
          Sql.script(sql,
            [`DROP TABLE IF EXISTS "public"."${table}"`, ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${table}_${f}"`)]
              .join(";\n")
          ).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
        )
        yield* PostgresStore.make({ tableName: table })
        // the table as the previous version left it: no win_until, its own version comment
        yield* Sql.script(sql,
          `ALTER TABLE "public"."${table}" DROP COLUMN win_until; COMMENT ON TABLE "public"."${table}" IS 'effect-rate-sync 0000000000000000'`
        )
        const store = yield* PostgresStore.make({ tableName: table })
        const columns = yield* sql.unsafe<{ n: number }>(
          `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = $1 AND column_name = 'win_until'`,
          [table]
        )
        assert.strictEqual(columns[0]?.n, 1)
        const take = () => store.slidingWindow({ limiter: fresh("upgrade"), key: "", limit: 1, windowMs: 60_000, cost: 1 })
        assert.isTrue((yield* take()).allowed)
      }))

    it.scoped("a decision made inside the caller's transaction commits on its own", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const sql = yield* SqlClient.SqlClient
        const limiter = fresh("tx")
        const req = { limiter, key: "", limit: 1, windowMs: 3_600_000, cost: 1 }
        const rolledBack = yield* Effect.flip(
          sql.withTransaction(
            Effect.gen(function*() {
              assert.isTrue((yield* store.fixedWindow(req)).allowed)
              return yield* Effect.fail("roll back" as const)
            })
          )
        )
        assert.strictEqual(rolledBack, "roll back")
        assert.isFalse((yield* store.fixedWindow(req)).allowed, "the take survived the caller's rollback")
      }))

    it.scoped("a dropped function is installed again on first use (autoCreate)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(`DROP FUNCTION "public"."${TABLE}_fw_take"`)
        const d = yield* store.fixedWindow({ limiter: fresh("reinstall"), key: "", limit: 1, windowMs: 60_000, cost: 1 })
        assert.isTrue(d.allowed)
      }))

    it.scoped("concurrent initialization of a new table from several stores is safe", () =>
      Effect.gen(function*() {
        const schema = `rs_test_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`
        const sql = yield* SqlClient.SqlClient
        yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)))
        const stores = yield* Effect.forEach(
          Array.from({ length: 6 }, () => 0),
          () => PostgresStore.make({ schemaName: schema, tableName: "limits" }),
          { concurrency: "unbounded" }
        )
        const limiter = fresh("init")
        const decisions = yield* Effect.forEach(
          stores,
          (store) => store.fixedWindow({ limiter, key: "", limit: 3, windowMs: 3_600_000, cost: 1 }),
          { concurrency: "unbounded" }
        )
        const admitted = decisions.filter((d) => d.allowed).length
        assert.isTrue(admitted === 3 || admitted === 6, `admitted ${admitted}: the stores share one table`)
      }))

    it.scoped("initialize again writes nothing to the catalogs when the installed version matches", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const sql = yield* SqlClient.SqlClient
        const versions = sql.unsafe<{ proname: string; xmin: string }>(
          `SELECT proname, xmin::text AS xmin FROM pg_proc WHERE proname LIKE $1 ORDER BY proname`,
          [`${TABLE}_%`]
        )
        const before = yield* versions
        assert.strictEqual(before.length, FUNCTIONS.length)
        yield* store.initialize
        yield* PostgresStore.make({ tableName: TABLE })
        assert.deepStrictEqual(yield* versions, before)
      }))

    it.scoped("names are validated; autoCreate false names what is missing", () =>
      Effect.gen(function*() {
        for (const options of [{ tableName: "bad-name" }, { tableName: `x"; DROP TABLE y; --` }, { schemaName: "1abc" }]) {
          const error = yield* Effect.flip(PostgresStore.make(options))
          assert.strictEqual(error.operation, "configure", JSON.stringify(options))
        }
        const missing = yield* Effect.flip(PostgresStore.make({ tableName: freshTable(), autoCreate: false }))
        assert.strictEqual(missing.operation, "initialize")
        assert.include(missing.message, "autoCreate is false")
        assert.include(missing.message, "_tb_take")
        // The existing table and functions are accepted without autoCreate.
        const store = yield* PostgresStore.make({ tableName: TABLE, autoCreate: false })
        assert.isTrue((yield* store.tokenBucket({ limiter: fresh("noauto"), key: "", ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 })).allowed)
        const nul = yield* Effect.flip(
          store.fixedWindow({ limiter: fresh("nul"), key: "a\u0000b", limit: 1, windowMs: 1000, cost: 1 })
        )
        assert.include(nul.message, "NUL")
        const ddl = yield* PostgresStore.ddl({ tableName: "t", schemaName: "s" })
        assert.include(ddl, `CREATE TABLE IF NOT EXISTS "s"."t"`)
      }))
  })

  layer(Layer.empty, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.scoped("an unreachable server fails with a StoreError that holds no password", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Effect.scoped(PostgresStore.fromDefinition({
            engine: "postgres",
            url: Redacted.make("postgres://postgres:s3cr3t-pw@127.0.0.1:1/test")
          }))
        )
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual(error._tag === "StoreError" ? error.engine : error._tag, "postgres")
        assert.notInclude(error.message, "s3cr3t-pw")
        assert.notInclude(String(error), "s3cr3t-pw")
        const badTable = yield* Effect.flip(
          RateLimitStore.RateLimitStore.pipe(
            Effect.provide(PostgresStore.layerWithPgClient({ url: Redacted.make(URL) }, { tableName: "no such" }))
          )
        )
        assert.strictEqual(badTable._tag === "StoreError" ? badTable.operation : badTable._tag, "configure")
      }))

    it.scoped("layerConfig reads the store options on the SqlClient in context", () =>
      Effect.gen(function*() {
        const table = freshTable()
        const limiter = fresh("cfg")
        const Store = PostgresStore.layerConfig({
          tableName: T.configString("TABLE"),
          timingMarginMs: T.configNumber("MARGIN")
        }).pipe(Layer.provideMerge(dropTable(table)), Layer.provideMerge(PgLive))
        const [refused, rows] = yield* Effect.gen(function*() {
          const store = yield* RateLimitStore.RateLimitStore
          const sql = yield* SqlClient.SqlClient
          const req = { limiter, key: "", limit: 1, windowMs: 60_000, cost: 1 }
          yield* store.fixedWindow(req)
          const refused = yield* store.fixedWindow(req)
          const rows = yield* sql.unsafe(`SELECT 1 FROM "public"."${table}" WHERE limiter = $1`, [limiter])
          return [refused, rows.length] as const
        }).pipe(
          Effect.provide(Store),
          T.withConfigProvider(T.configProvider(new Map([["TABLE", table], ["MARGIN", "7"]])))
        )
        assert.strictEqual(rows, 1, "the state went to the configured table")
        assert.isFalse(refused.allowed)
        assert.closeTo(refused.retryAfterMs - refused.resetAfterMs, 7, 1e-6, "timingMarginMs pads retryAfter")
      }))

    it.scoped("fromDefinition and PostgresStoreLive build their own pool", () =>
      Effect.gen(function*() {
        const table = freshTable()
        yield* Effect.addFinalizer(() =>
          Effect.scoped(Effect.flatMap(Layer.build(dropTable(table).pipe(Layer.provide(PgLive))), () => Effect.void)).pipe(
            Effect.ignore
          )
        )
        const store = yield* PostgresStore.fromDefinition({
          engine: "postgres",
          url: Redacted.make(URL),
          tableName: table,
          poolMinSize: 1,
          poolMaxSize: 2
        })
        assert.strictEqual(store.engine, "postgres")
        const limiter = fresh("def")
        const d = yield* store.tokenBucket({ limiter, key: "k", ratePerSecond: 1, burst: 3, cost: 1, maxWaitMs: 0 })
        assert.deepStrictEqual([d.allowed, d.remaining], [true, 2])
        const env = new Map([
          ["RATE_SYNC_POSTGRES_URL", URL],
          ["RATE_SYNC_POSTGRES_TABLE_NAME", table],
          ["RATE_SYNC_POSTGRES_POOL_MAX_SIZE", "2"]
        ])
        const viaEnv = yield* Effect.flatMap(
          RateLimitStore.RateLimitStore,
          (s) => s.peek({ algorithm: "token_bucket", limiter, key: "k", ratePerSecond: 1, burst: 3 })
        ).pipe(
          Effect.provide(PostgresStoreLive),
          T.withConfigProvider(T.configProvider(env, { pathDelim: "_" }))
        )
        assert.strictEqual(viaEnv.remaining, 2, "the environment named the same table")
        // the block-cache switch: carried on the service from the definition and the environment
        assert.strictEqual(store.blockCache, undefined, "on by default")
        const off = yield* PostgresStore.fromDefinition({ engine: "postgres", url: Redacted.make(URL), tableName: table, poolMaxSize: 1, blockCache: false })
        assert.strictEqual(off.blockCache, false)
        const offEnv = yield* RateLimitStore.RateLimitStore.pipe(
          Effect.provide(PostgresStoreLive),
          T.withConfigProvider(T.configProvider(new Map([...env, ["RATE_SYNC_POSTGRES_BLOCK_CACHE", "0"]]), { pathDelim: "_" }))
        )
        assert.strictEqual(offEnv.blockCache, false)
        const untyped: Record<string, unknown> = { tableName: table, blockCache: "no" }
        const notBoolean = yield* Effect.flip(PostgresStore.make(untyped).pipe(Effect.provide(PgLive)))
        assert.strictEqual(notBoolean._tag, "StoreError")
        if (notBoolean._tag === "StoreError") assert.strictEqual(notBoolean.operation, "configure")
        assert.include(notBoolean.message, "Invalid configuration at blockCache: expected true or false, received \"no\"")
        const bad = yield* Effect.flip(
          RateLimitStore.RateLimitStore.pipe(
            Effect.provide(PostgresStoreLive),
            T.withConfigProvider(
              T.configProvider(new Map([["RATE_SYNC_POSTGRES_TABLE_NAME", "a-b"]]), { pathDelim: "_" })
            )
          )
        )
        assert.include(String(bad), "tableName")
      }))
  })

  runStoreSuite("conformance (postgres, live clock)", storeOn(freshTable()), { clock: "live" })
})
