/**
 * The PostgreSQL store under overload, on a database whose default isolation is not READ
 * COMMITTED, and with window lengths changing under live state (a rolling deploy of a new
 * `window`), against the real server on 127.0.0.1:5432 (database `test`, user `postgres`). Each
 * test works in a fresh table (and, where it needs one, a fresh role) that it drops when it ends.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Exit, Fiber, Layer, Queue, Redacted, Schedule, Scope } from "effect"
import type { RateLimitStore } from "effect-rate-sync"
import { PostgresStore } from "effect-rate-sync/postgres"
import { freshTable, FUNCTIONS, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"
import * as Fx from "#fx/core"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

/** The administration pool of the block (superuser `postgres`). */
const Admin = Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 4 })

/** Drops the table, the store's functions and `extra` statements' objects when the scope closes. */
const dropAtEnd = (table: string, extra: ReadonlyArray<string> = []) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.addFinalizer(() =>
      Sql.script(
        sql,
        [
          `DROP TABLE IF EXISTS "public"."${table}"`,
          ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${table}_${f}"`),
          ...extra
        ].join(";\n")
      ).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
    ))

/** A pool of its own (closed with the test's scope), and the store on it. */
const storeOnPool = (pool: Sql.PgPoolConfig, options: PostgresStore.PostgresStoreOptions) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(Sql.pgLayer(pool))
    const store = yield* Effect.provide(PostgresStore.make(options), context)
    return { store, sql: Effect.provide(SqlClient.SqlClient, context) }
  })

type StoreError = RateLimitStore.StoreError

const isStoreError = (e: unknown): e is StoreError =>
  typeof e === "object" && e !== null && Reflect.get(e, "_tag") === "StoreError"

describeWhenUp(available)("PostgresStore: overload, isolation levels, window changes", () => {
  layer(Admin, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped(
      "10 000 concurrent takes on a pool of 2: every call answers or fails with StoreError, no crash, the store works after",
      () =>
        Effect.gen(function*() {
          const table = freshTable()
          yield* dropAtEnd(table)
          const { store } = yield* storeOnPool(
            { url: Redacted.make(URL), maxConnections: 2 },
            { tableName: table, statementTimeout: "2 seconds" }
          )
          const limiter = "storm"
          const start = Date.now()
          // Half on one hot key (serialized on its row lock), half on distinct keys. Before the
          // store bounded its statements, the callers that timed out while queued in pg-pool left
          // dead waiters there, released back recursively when a connection freed: the process
          // died with "Maximum call stack size exceeded".
          const results = yield* Effect.forEach(
            Array.from({ length: 10_000 }, (_, i) => i),
            (i) =>
              T.result(
                store.tokenBucket({
                  limiter,
                  key: i % 2 === 0 ? "hot" : `k${i}`,
                  ratePerSecond: 1,
                  burst: 10,
                  cost: 1,
                  maxWaitMs: 0
                })
              ).pipe(Effect.map((r) => ({ r, hot: i % 2 === 0 }))),
            { concurrency: "unbounded" }
          )
          const elapsedS = (Date.now() - start) / 1000
          const failures = results.flatMap(({ r }) => (T.isErr(r) ? [T.errOf(r)] : []))
          for (const e of failures) {
            assert.isTrue(isStoreError(e), String(e))
            assert.strictEqual(e.operation, "tokenBucket")
            assert.match(e.message, /no answer within 2000 ms|overloaded/)
          }
          const hotAdmitted = results.filter(({ r, hot }) => hot && T.isOk(r) && T.valueOf(r).allowed).length
          assert.isTrue(hotAdmitted <= 10 + Math.ceil(elapsedS) + 1, `hot key admitted ${hotAdmitted} in ${elapsedS} s`)
          // Every slot came back: once the statements still running for callers that timed out
          // have ended (each within statementTimeout), 20 concurrent calls all answer. Until then
          // some may be refused as overloaded at the pace measured during the storm.
          const stormEnd = Date.now()
          let round = 0
          const after = yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            (i) => store.tokenBucket({ limiter, key: `after${round}-${i}`, ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 }),
            { concurrency: "unbounded" }
          ).pipe(
            Effect.tap(() => Effect.sync(() => round++)),
            Effect.tapError(() => Effect.sync(() => round++)),
            Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 40 })
          )
          assert.isTrue(after.every((d) => d.allowed))
          const recoveredMs = Date.now() - stormEnd
          assert.isTrue(recoveredMs <= 2 * 2000, `answering again ${recoveredMs} ms after the storm`)
        })
    )

    it.scoped("past maxQueuedStatements a call fails at once with StoreError (overloaded) instead of queueing", () =>
      Effect.gen(function*() {
        const table = freshTable()
        yield* dropAtEnd(table)
        const sql = yield* SqlClient.SqlClient
        const { store } = yield* storeOnPool(
          { url: Redacted.make(URL), maxConnections: 4 },
          { tableName: table, statementTimeout: "10 seconds", maxConcurrentStatements: 1, maxQueuedStatements: 3 }
        )
        const limiter = "queue"
        const take = (key: string) => store.tokenBucket({ limiter, key, ratePerSecond: 1, burst: 5, cost: 1, maxWaitMs: 0 })
        assert.isTrue((yield* take("locked")).allowed)
        // Another session holds the row of "locked": a take on it holds the store's only slot.
        const locked = yield* T.makeLatch()
        const release = yield* T.makeLatch()
        const holder = yield* T.fork(
          sql.withTransaction(
            Effect.gen(function*() {
              yield* sql.unsafe(`SELECT 1 FROM "public"."${table}" WHERE key = 'locked' FOR UPDATE`)
              yield* locked.open
              yield* release.await
            })
          )
        )
        yield* locked.await
        yield* Effect.addFinalizer(() => release.open) // before the table is dropped, even on failure
        const blocked = yield* T.fork(take("locked"))
        // wait until the server shows that take waiting for the row lock
        yield* sql.unsafe<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`%${table}_tb_take%`]
        ).pipe(Effect.repeat({ until: (rows) => (rows[0]?.n ?? 0) >= 1, schedule: Schedule.spaced("10 millis") }))
        // 8 more calls on other keys: 3 queue for the slot, 5 are refused at once.
        const settled = yield* Queue.unbounded<T.Result<unknown, unknown>>()
        const fibers = yield* Effect.forEach(
          Array.from({ length: 8 }, (_, i) => i),
          (i) => T.fork(T.result(take(`other${i}`)).pipe(Effect.tap((r) => Queue.offer(settled, r)))),
          // forked one after another by this fiber: on Effect 4 fibers forked inside an unbounded
          // forEach's workers are interrupted when those workers end
          { concurrency: 1 }
        )
        const refused = yield* Queue.takeN(settled, 5)
        for (const r of refused) {
          assert.isTrue(T.isErr(r), "refused, not answered (the only slot is held)")
          if (T.isErr(r)) {
            assert.isTrue(isStoreError(T.errOf(r)))
            assert.match(String(Reflect.get(Object(T.errOf(r)), "message")), /overloaded: 3 calls already wait.*maxQueuedStatements/)
          }
        }
        yield* release.open
        yield* Fiber.await(holder)
        const answered = yield* Queue.takeN(settled, 3)
        for (const r of answered) {
          assert.isTrue(T.isOk(r), `queued call answered once the slot freed: ${String(r)}`)
        }
        assert.isTrue((yield* Fiber.await(blocked))._tag === "Success")
        yield* Effect.forEach(fibers, (f) => Fiber.await(f))
      }))

    it.scoped("a role whose default isolation is SERIALIZABLE: concurrent decisions on one key never fail", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const role = `rs_ser_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`
        const table = freshTable()
        // finalizers run in reverse: the store's pool closes first, then its objects and the role go
        yield* Effect.addFinalizer(() =>
          Sql.script(sql, `DROP OWNED BY "${role}"; DROP ROLE IF EXISTS "${role}"`).pipe(
            Effect.timeoutOption("5 seconds"),
            Effect.ignore
          )
        )
        yield* sql.unsafe(`CREATE ROLE "${role}" LOGIN SUPERUSER`)
        yield* sql.unsafe(`ALTER ROLE "${role}" SET default_transaction_isolation = 'serializable'`)
        const { sql: roleSql, store } = yield* storeOnPool(
          { url: Redacted.make(`postgres://${role}@127.0.0.1:5432/test`), maxConnections: 20 },
          { tableName: table }
        )
        const [level] = yield* Effect.flatMap(roleSql, (s) => s.unsafe<{ level: string }>(`SELECT current_setting('transaction_isolation') AS level`))
        assert.strictEqual(level?.level, "serializable", "the role's sessions default to SERIALIZABLE")
        const all = <A>(n: number, f: (i: number) => Effect.Effect<A, StoreError>) =>
          Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) => T.result(f(i)), { concurrency: "unbounded" })
        const rights = <A>(rs: ReadonlyArray<T.Result<A, StoreError>>) => {
          const errors = rs.flatMap((r) => (T.isErr(r) ? [T.errOf(r).message] : []))
          assert.deepStrictEqual(errors, [], "no StoreError (SQLSTATE 40001 before)")
          return rs.flatMap((r) => (T.isOk(r) ? [T.valueOf(r)] : []))
        }
        const tb = rights(
          yield* all(100, () =>
            store.tokenBucket({ limiter: "ser", key: "hot", ratePerSecond: 0.001, burst: 50, cost: 1, maxWaitMs: 0 }))
        )
        assert.strictEqual(tb.filter((d) => d.allowed).length, 50)
        const sw = rights(yield* all(100, () => store.slidingWindow({ limiter: "ser", key: "hot", limit: 30, windowMs: 60_000, cost: 1 })))
        assert.strictEqual(sw.filter((d) => d.allowed).length, 30)
        const cc = rights(
          yield* all(50, (i) => store.acquireSlot({ limiter: "ser", key: "hot", holder: `h${i}`, limit: 5, leaseMs: 30_000 }))
        )
        assert.strictEqual(cc.filter((d) => d.acquired).length, 5)
        const released = rights(
          yield* all(50, (i) => store.releaseSlot({ limiter: "ser", key: "hot", holder: `h${i}`, limit: 5, leaseMs: 30_000 }))
        )
        assert.strictEqual(released.filter((r) => r).length, 5)
        rights(yield* all(10, () => store.reset("ser", "hot")))
      }))

    it.scoped("SQLSTATE 40001 and 40P01 are retried within statementTimeout; a decision retried counts once", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        const inject = `"public"."${table}_inject"`
        yield* dropAtEnd(table, [`DROP FUNCTION IF EXISTS ${inject}()`, `DROP SEQUENCE IF EXISTS ${inject}`])
        const { store } = yield* storeOnPool(
          { url: Redacted.make(URL), maxConnections: 4 },
          { tableName: table, statementTimeout: "400 millis" }
        )
        // A trigger on the store's table fails updates on demand, as a serialization failure or a
        // deadlock would (the transaction is rolled back).
        yield* sql.unsafe(`CREATE SEQUENCE ${inject}`)
        yield* sql.unsafe(`CREATE FUNCTION ${inject}() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF NEW.key = 'always' THEN RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001'; END IF;
  IF NEW.key = 'twice' AND nextval('${inject}') <= 2 THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40001'; END IF;
  IF NEW.key = 'deadlock' AND nextval('${inject}') <= 3 THEN RAISE EXCEPTION 'injected' USING ERRCODE = '40P01'; END IF;
  RETURN NEW;
END $f$`)
        yield* sql.unsafe(`CREATE TRIGGER inject BEFORE UPDATE ON "public"."${table}" FOR EACH ROW EXECUTE FUNCTION ${inject}()`)
        const req = { limiter: "retry", ratePerSecond: 0.001, burst: 5, cost: 1, maxWaitMs: 0 }
        const twice = yield* store.tokenBucket({ ...req, key: "twice" })
        assert.deepStrictEqual([twice.allowed, twice.remaining], [true, 4], "admitted once, after two failed attempts")
        const deadlock = yield* store.tokenBucket({ ...req, key: "deadlock" })
        assert.deepStrictEqual([deadlock.allowed, deadlock.remaining], [true, 4])
        const [attempts] = yield* sql.unsafe<{ n: string }>(`SELECT last_value::text AS n FROM ${inject}`)
        assert.strictEqual(attempts?.n, "4", "2 + 1 injected failures, each retried")
        const start = Date.now()
        const error = yield* Effect.flip(store.tokenBucket({ ...req, key: "always" }))
        const waited = Date.now() - start
        assert.strictEqual(error.operation, "tokenBucket")
        assert.match(error.message, /injected serialization failure|no answer within 400 ms/)
        assert.isTrue(waited < 1500, `gave up after ${waited} ms`)
      }))

    it.scoped("retries stop at the call's start plus statementTimeout, not that long after the first retry", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        const inject = `"public"."${table}_inject"`
        const calls = `"public"."${table}_calls"`
        const last = `"public"."${table}_last"`
        yield* dropAtEnd(table, [
          `DROP FUNCTION IF EXISTS ${inject}()`,
          `DROP SEQUENCE IF EXISTS ${calls}`,
          `DROP SEQUENCE IF EXISTS ${last}`
        ])
        const { store } = yield* storeOnPool(
          { url: Redacted.make(URL), maxConnections: 2 },
          { tableName: table, statementTimeout: "800 millis" }
        )
        // Every attempt fails with 40001 (sequences are not rolled back: they record the attempts);
        // the first one only after 600 ms.
        yield* Sql.script(sql, `CREATE SEQUENCE ${calls}; CREATE SEQUENCE ${last}`)
        yield* sql.unsafe(`CREATE FUNCTION ${inject}() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF nextval('${calls}') = 1 THEN PERFORM pg_sleep(0.6); END IF;
  PERFORM setval('${last}', (extract(epoch from clock_timestamp()) * 1000)::bigint);
  RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
END $f$`)
        yield* sql.unsafe(`CREATE TRIGGER inject BEFORE UPDATE ON "public"."${table}" FOR EACH ROW EXECUTE FUNCTION ${inject}()`)
        const [before] = yield* sql.unsafe<{ ms: number }>(`SELECT extract(epoch from clock_timestamp())::float8 * 1000 AS ms`)
        const error = yield* Effect.flip(
          store.tokenBucket({ limiter: "late", key: "", ratePerSecond: 0.001, burst: 5, cost: 1, maxWaitMs: 0 })
        )
        assert.match(error.message, /injected serialization failure|no answer within 800 ms/)
        yield* Effect.sleep("1200 millis") // past where the old schedule stopped (time, not synchronization)
        const [row] = yield* sql.unsafe<{ last: string; calls: string }>(
          `SELECT (SELECT last_value::text FROM ${last}) AS last, (SELECT last_value::text FROM ${calls}) AS calls`
        )
        const lastAttempt = Number(row?.last) - (before?.ms ?? Number.NaN)
        assert.isTrue(Number(row?.calls) > 1, `${row?.calls} attempts`)
        // before, the retries went on until ~600 + 800 ms
        assert.isTrue(lastAttempt < 950, `last attempt ${Math.round(lastAttempt)} ms after the call`)
      }))

    it.scoped("fixed window: each window length keeps its own count (alternating 60 s and 30 s, limit 3 each)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        yield* dropAtEnd(table)
        // two processes of a rolling deploy, one per window length
        const a = (yield* storeOnPool({ url: Redacted.make(URL), maxConnections: 2 }, { tableName: table })).store
        const b = (yield* storeOnPool({ url: Redacted.make(URL), maxConnections: 2 }, { tableName: table })).store
        const serverMs = Effect.map(
          sql.unsafe<{ ms: number }>(`SELECT extract(epoch from clock_timestamp())::float8 * 1000 AS ms`),
          (rows) => rows[0]?.ms ?? Number.NaN
        )
        const before = yield* serverMs
        let admitted = 0
        for (let i = 0; i < 20; i++) {
          const d = yield* (i % 2 === 0 ? a : b).fixedWindow({
            limiter: "deploy",
            key: "alice",
            limit: 3,
            windowMs: i % 2 === 0 ? 60_000 : 30_000,
            cost: 1
          })
          if (d.allowed) admitted++
        }
        const after = yield* serverMs
        // 3 per aligned window of each length the calls spanned (one each, unless a boundary passed)
        const windows = (w: number) => Math.floor(after / w) - Math.floor(before / w) + 1
        const bound = 3 * windows(60_000) + 3 * windows(30_000)
        assert.isTrue(admitted >= 6 && admitted <= bound, `admitted ${admitted} of 20, bound ${bound}`)
        const rows = yield* sql.unsafe<{ kind: string; win_count: number }>(
          `SELECT kind, win_count FROM "public"."${table}" WHERE limiter = 'deploy' ORDER BY kind`
        )
        assert.deepStrictEqual(rows.map((r) => r.kind), ["fw:30000", "fw:60000"])
        // each length reads its own counter; a third length starts its own
        const peek = (windowMs: number) => a.peek({ algorithm: "fixed_window", limiter: "deploy", key: "alice", limit: 3, windowMs })
        if (bound === 6) {
          assert.strictEqual((yield* peek(60_000)).remaining, 0)
          assert.strictEqual((yield* peek(30_000)).remaining, 0)
        }
        assert.strictEqual((yield* peek(10_000)).remaining, 3)
        // the state of a length no longer in use expires and is cleaned up on its own
        assert.isTrue((yield* a.fixedWindow({ limiter: "deploy", key: "bob", limit: 3, windowMs: 200, cost: 1 })).allowed)
        const taken = yield* serverMs
        assert.isTrue((yield* a.fixedWindow({ limiter: "deploy", key: "bob", limit: 3, windowMs: 60_000, cost: 1 })).allowed)
        yield* Effect.sleep("450 millis") // let the 200 ms window pass (time, not synchronization)
        yield* PostgresStore.deleteExpired({ tableName: table })
        const cleaned = yield* serverMs
        const bob = yield* sql.unsafe<{ kind: string }>(
          `SELECT kind FROM "public"."${table}" WHERE limiter = 'deploy' AND key = 'bob' ORDER BY kind`
        )
        // the 60 s window is still in use, unless an (epoch-aligned) end passed around its take and
        // the cleanup: then its row may have expired as well; the 200 ms one is gone either way
        if (Math.floor(taken / 60_000) === Math.floor(cleaned / 60_000)) {
          assert.deepStrictEqual(bob.map((r) => r.kind), ["fw:60000"])
        } else {
          assert.notInclude(bob.map((r) => r.kind), "fw:200")
        }
      }))

    it.scoped("sliding window: a caller with a shorter window never prunes entries a longer window still counts", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        yield* dropAtEnd(table)
        const { store } = yield* storeOnPool({ url: Redacted.make(URL), maxConnections: 2 }, { tableName: table })
        const take = (windowMs: number) => store.slidingWindow({ limiter: "sw-deploy", key: "", limit: 3, windowMs, cost: 1 })
        for (let i = 0; i < 3; i++) assert.isTrue((yield* take(1500)).allowed)
        assert.isFalse((yield* take(1500)).allowed)
        yield* Effect.sleep("450 millis") // the three entries leave the 400 ms window (time, not synchronization)
        assert.isTrue((yield* take(400)).allowed, "the 400 ms window holds none of them")
        // Before, that take pruned every entry older than 400 ms from the row: the 1.5 s window
        // then counted 1 and admitted again.
        const long = yield* take(1500)
        assert.isFalse(long.allowed, "the 1.5 s window still holds its 3 entries (and the new one)")
        assert.strictEqual(long.remaining, 0)
        const [row] = yield* sql.unsafe<{ n: number; win_ms: number }>(
          `SELECT cardinality(times) AS n, win_ms FROM "public"."${table}" WHERE limiter = 'sw-deploy'`
        )
        assert.deepStrictEqual([row?.n, row?.win_ms], [4, 1500], "entries kept for the longest window in use")
      }))

    it.scoped("sliding window: once the longer window's caller stops for its whole window, the row shrinks to the shorter window", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        yield* dropAtEnd(table)
        const { store } = yield* storeOnPool({ url: Redacted.make(URL), maxConnections: 2 }, { tableName: table })
        const take = (windowMs: number) =>
          store.slidingWindow({ limiter: "sw-shrink", key: "", limit: 1_000_000, windowMs, cost: 1 })
        assert.isTrue((yield* take(300)).allowed)
        // Steady traffic of a 30 ms window, well past the end of the 300 ms one. Before, the row
        // kept 300 ms of entries (win_ms 300) as long as its newest entry was younger than that.
        const start = Date.now()
        let takes = 0
        while (Date.now() - start < 700) {
          assert.isTrue((yield* take(30)).allowed)
          takes++
        }
        const [row] = yield* sql.unsafe<{ n: number; win_ms: number; span: number }>(
          `SELECT cardinality(times) AS n, win_ms, times[cardinality(times)] - times[1] AS span
           FROM "public"."${table}" WHERE limiter = 'sw-shrink'`
        )
        assert.strictEqual(row?.win_ms, 30, "entries kept for the 30 ms window only")
        assert.isTrue((row?.span ?? Infinity) < 30, `the kept entries span ${row?.span} ms`)
        assert.isTrue((row?.n ?? Infinity) < takes, `${row?.n} entries kept of ${takes} takes`)
      }))

    it.scoped("ids with quotes, backslashes and other characters reach the server unchanged (decisions are sent as literals)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = freshTable()
        yield* dropAtEnd(table)
        const { store } = yield* storeOnPool({ url: Redacted.make(URL), maxConnections: 2 }, { tableName: table })
        const keys = ["a'b", "a\\'b", "\\", "'); DROP TABLE x; --", "$1", "$$", "E'\\x41'", "é\u{1F600}\t\n", "' || pg_sleep(1) || '"]
        for (const key of keys) {
          assert.isTrue((yield* store.fixedWindow({ limiter: "lit'\\", key, limit: 1, windowMs: 60_000, cost: 1 })).allowed, key)
          assert.isFalse((yield* store.fixedWindow({ limiter: "lit'\\", key, limit: 1, windowMs: 60_000, cost: 1 })).allowed, key)
          assert.isTrue(
            (yield* store.acquireSlot({ limiter: "lit'\\", key, holder: key, limit: 1, leaseMs: 10_000 })).acquired,
            key
          )
        }
        const stored = yield* sql.unsafe<{ key: string }>(
          `SELECT DISTINCT key FROM "public"."${table}" WHERE limiter = $1`,
          ["lit'\\"]
        )
        assert.deepStrictEqual(stored.map((r) => r.key).sort(), [...keys].sort())
        yield* store.reset("lit'\\", keys[0] ?? "")
        assert.strictEqual(
          (yield* sql.unsafe(`SELECT 1 FROM "public"."${table}" WHERE limiter = $1`, ["lit'\\"])).length,
          2 * (keys.length - 1)
        )
      }))

    it.scoped("a closed store answers every call at once: queued ones and later ones fail with StoreError (closed), none waits forever", () =>
      Effect.gen(function*() {
        const table = freshTable()
        yield* dropAtEnd(table)
        const scope = yield* Scope.make()
        const { store } = yield* Fx.scopeExtend(
          storeOnPool({ url: Redacted.make(URL), maxConnections: 1 }, { tableName: table, maxConcurrentStatements: 1 }),
          scope
        )
        const slot = { limiter: "closed", key: "k", holder: "h", limit: 1, leaseMs: 10_000 }
        assert.isTrue((yield* store.acquireSlot(slot)).acquired)
        // one statement on the only worker, many queued behind it when the store closes
        const calls = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => T.fork(T.result(store.fixedWindow({ limiter: "closed", key: `q${i}`, limit: 9, windowMs: 60_000, cost: 1 })))
        )
        yield* T.yieldNow
        yield* Scope.close(scope, Exit.void)
        const results = yield* Effect.forEach(calls, Fiber.join)
        assert.strictEqual(results.length, 50)
        for (const r of results) {
          if (T.isOk(r)) continue // ran before the store closed
          const e = T.errOf(r)
          assert.isTrue(isStoreError(e), String(e))
          assert.match(e.message, /the store is closed/)
        }
        // a release of a slot taken before the store was replaced answers, with the reason
        const late = yield* Effect.flip(store.releaseSlot(slot))
        assert.isTrue(isStoreError(late), String(late))
        assert.match(late.message, /the store is closed/)
      }))
  })
})
