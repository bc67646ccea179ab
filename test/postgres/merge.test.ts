/**
 * Single takes of different keys merged on PostgreSQL (internal/postgres/gate.ts `MergeGroup`,
 * `tb_take_keys`), against the real server on 127.0.0.1:5432 in a fresh table dropped at the end:
 * token bucket, fixed window and sliding window takes, and slot acquires and releases, that wait for a statement slot together are decided by one statement (counted
 * by a trigger that records each row write's transaction), each caller answered as its own
 * statement would answer it; stores sharing keys, their merged statements locking shared rows,
 * never fail and never over-admit; a merged statement the server rejects fails only the take that caused it.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Fiber, Layer, Redacted, Schedule } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { PostgresStore } from "effect-rate-sync/postgres"
import { freshTable, tableWithTrigger, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

const fresh = (name: string) => `${name}-${crypto.randomUUID()}`

const TABLE = freshTable()
const WRITES = `"public"."${TABLE}_writes"`
const PgLive = Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 6 })

/** The store's table with a trigger recording each row write's limiter, key and transaction. */
const setUp = tableWithTrigger(
  TABLE,
  "limiter text NOT NULL, key text NOT NULL, tx bigint NOT NULL",
  `INSERT INTO ${WRITES} VALUES (NEW.limiter, NEW.key, txid_current()); RETURN NEW;`
)

/** Two statement slots: a flood of takes queues, and what queues together is merged. */
const StoreLive = PostgresStore.layer({ tableName: TABLE, maxConcurrentStatements: 2 }).pipe(
  Layer.provideMerge(setUp),
  Layer.provideMerge(PgLive)
)

/** The limiter's row writes, and the transactions (statements) they were made in. */
const writesOf = (limiter: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ writes: number; statements: number }>(
      `SELECT count(*)::int AS writes, count(DISTINCT tx)::int AS statements FROM ${WRITES} WHERE limiter = $1`,
      [limiter]
    )).pipe(Effect.map((rows) => rows[0] ?? { writes: -1, statements: -1 }))

describeWhenUp(available)("PostgresStore: single takes of different keys merged", () => {
  layer(StoreLive, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect("200 takes of 200 keys: far fewer statements, each caller its own key's decision", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("keys")
        const req = (i: number) => ({ limiter, key: `k${i}`, ratePerSecond: 0.01, burst: 3 + (i % 3), cost: 1 + (i % 2), maxWaitMs: 0 })
        const decisions = yield* Effect.all(Array.from({ length: 200 }, (_, i) => store.tokenBucket(req(i))), {
          concurrency: "unbounded"
        })
        // each as its own first take: admitted, told what its own bucket has left
        decisions.forEach((d, i) => {
          const r = req(i)
          assert.isTrue(d.allowed, `take ${i}`)
          assert.strictEqual(d.limit, r.burst)
          assert.strictEqual(d.remaining, r.burst - r.cost, `take ${i}`)
        })
        const { statements, writes } = yield* writesOf(limiter)
        assert.strictEqual(writes, 200, "one row write per take")
        assert.isTrue(statements <= 100, `${statements} statements for 200 takes on 2 statement slots`)
        // each key's state is its own take's
        const checked = [0, 1, 2, 199]
        const peeks = yield* Effect.all(checked.map((i) => store.peek({ algorithm: "token_bucket", ...req(i) })))
        assert.deepStrictEqual(peeks.map((p) => p.remaining), checked.map((i) => req(i).burst - req(i).cost))
      }))

    it.effect("fixed window: 100 takes of 100 keys, far fewer statements, each admitted in its own key's window", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("fw-keys")
        const req = (i: number) => ({ limiter, key: `f${i}`, limit: 4, windowMs: 86_400_000, cost: 1 + (i % 3) })
        const decisions = yield* Effect.all(Array.from({ length: 100 }, (_, i) => store.fixedWindow(req(i))), {
          concurrency: "unbounded"
        })
        decisions.forEach((d, i) => {
          assert.isTrue(d.allowed, `take ${i}`)
          assert.strictEqual(d.remaining, 4 - req(i).cost, `take ${i}`)
        })
        // one day-long window for all (but once a day, at its boundary)
        assert.isTrue(new Set(decisions.map((d) => d.ref)).size <= 2)
        const { statements, writes } = yield* writesOf(limiter)
        assert.strictEqual(writes, 100, "one row write per take")
        assert.isTrue(statements <= 50, `${statements} statements for 100 takes on 2 statement slots`)
        // a refusal after them is its own key's: f0 (cost 1) has 3 left, f2 (cost 3) has 1
        const more = yield* Effect.all([0, 2].map((i) => store.fixedWindow({ ...req(i), cost: 2 })))
        assert.deepStrictEqual(more.map((d) => d.allowed), [true, false])
      }))

    it.effect("sliding window: 100 takes of 100 keys, far fewer statements, each an entry of its own key", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("sw-keys")
        const req = (i: number) => ({ limiter, key: `w${i}`, limit: 4, windowMs: 600_000, cost: 1 + (i % 3) })
        const decisions = yield* Effect.all(Array.from({ length: 100 }, (_, i) => store.slidingWindow(req(i))), {
          concurrency: "unbounded"
        })
        decisions.forEach((d, i) => {
          assert.isTrue(d.allowed, `take ${i}`)
          assert.strictEqual(d.remaining, 4 - req(i).cost, `take ${i}`)
          assert.isDefined(d.ref, `take ${i} names its entry`)
        })
        const { statements, writes } = yield* writesOf(limiter)
        assert.strictEqual(writes, 100, "one row write per take")
        assert.isTrue(statements <= 50, `${statements} statements for 100 takes on 2 statement slots`)
        // each key holds its own entry: w0 (cost 1) has 3 left, w2 (cost 3) has 1
        const more = yield* Effect.all([0, 2].map((i) => store.slidingWindow({ ...req(i), cost: 2 })))
        assert.deepStrictEqual(more.map((d) => d.allowed), [true, false])
        assert.isUndefined(more[1]?.ref, "a refusal names no entry")
      }))

    it.effect("slots: 150 acquires of 50 keys (limit 2) and their releases, far fewer statements, each key exactly its limit", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("cc-keys")
        const slot = (key: number, holder: number) => ({ limiter, key: `c${key}`, holder: `h${key}-${holder}`, limit: 2, leaseMs: 600_000 })
        const all = Array.from({ length: 150 }, (_, i) => slot(i % 50, Math.floor(i / 50)))
        const acquired = yield* Effect.all(all.map((r) => store.acquireSlot(r)), { concurrency: "unbounded" })
        for (let key = 0; key < 50; key++) {
          const mine = acquired.filter((_, i) => i % 50 === key)
          assert.strictEqual(mine.filter((d) => d.acquired).length, 2, `key ${key}: exactly its limit`)
          // each answer counts its own key's leases only (the loop clears what the take before left)
          for (const d of mine) {
            assert.isTrue(d.active >= 1 && d.active <= 2, `key ${key}: active ${d.active}`)
            if (!d.acquired) assert.strictEqual(d.active, 2)
          }
        }
        const acquires = yield* writesOf(limiter)
        assert.strictEqual(acquires.writes, 100, "one row write per granted lease")
        assert.isTrue(acquires.statements <= 50, `${acquires.statements} statements for 150 acquires on 2 statement slots`)
        // one lease of each key released (the other stays: a row update each), then again (none left)
        const releases = Array.from({ length: 50 }, (_, key) => all.find((_, i) => i % 50 === key && acquired[i]?.acquired === true))
          .flatMap((r) => (r === undefined ? [] : [r]))
        assert.strictEqual(releases.length, 50)
        const released = yield* Effect.all(releases.map((r) => store.releaseSlot(r)), { concurrency: "unbounded" })
        assert.deepStrictEqual(released, releases.map(() => true))
        const again = yield* Effect.all(releases.map((r) => store.releaseSlot(r)), { concurrency: "unbounded" })
        assert.deepStrictEqual(again, releases.map(() => false), "a released lease is released once")
        const after = yield* writesOf(limiter)
        assert.strictEqual(after.writes - acquires.writes, 50, "one row write per lease released")
        assert.isTrue(after.statements - acquires.statements <= 25, `${after.statements - acquires.statements} statements for 50 releases`)
        // each key has one free slot again: a new holder gets it, the next does not
        const next = yield* Effect.all(Array.from({ length: 50 }, (_, key) => store.acquireSlot(slot(key, 7))), { concurrency: "unbounded" })
        assert.deepStrictEqual(next.map((d) => [d.acquired, d.active]), next.map(() => [true, 2]))
        const full = yield* Effect.all(Array.from({ length: 50 }, (_, key) => store.acquireSlot(slot(key, 8))), { concurrency: "unbounded" })
        assert.deepStrictEqual(full.map((d) => d.acquired), full.map(() => false))
      }))

    it.scoped("slots: acquires merged into a statement that answers after their deadline are released (Effect 4: it is cancelled)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const limiter = fresh("cc-late")
        // a second trigger, on this limiter only: the lease row of "w" takes 0.5 s to write, those
        // of a, b, c 0.25 s each (the merged statement's three writes: 0.75 s on the server)
        const slowFn = `"public"."${TABLE}_slow"`
        yield* Effect.addFinalizer(() =>
          Sql.script(sql, [`DROP TRIGGER IF EXISTS on_write_slow ON "public"."${TABLE}"`, `DROP FUNCTION IF EXISTS ${slowFn}()`].join(";\n"))
            .pipe(Effect.ignore)
        )
        yield* sql.unsafe(`CREATE FUNCTION ${slowFn}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN
          IF NEW.limiter = '${limiter}' THEN PERFORM pg_sleep(CASE WHEN NEW.key = 'w' THEN 0.5 ELSE 0.25 END); END IF;
          RETURN NEW; END $f$`)
        yield* sql.unsafe(`CREATE TRIGGER on_write_slow BEFORE UPDATE ON "public"."${TABLE}" FOR EACH ROW EXECUTE FUNCTION ${slowFn}()`)
        // one statement slot, 1 s per call: w runs alone (0.5 s); a, b and c wait behind it, then go
        // as one statement that answers about 1.25 s after they were called, past their deadline
        // (the server's own bound, 1 s from the statement's arrival, is not reached)
        const store = yield* PostgresStore.make({ tableName: TABLE, maxConcurrentStatements: 1, statementTimeout: "1 second" })
        const slot = (key: string) => ({ limiter, key, holder: `${key}-1`, limit: 1, leaseMs: 60_000 })
        const first = yield* T.fork(store.acquireSlot(slot("w")))
        // w's statement on the server (in its trigger's sleep) before the others are called: it runs alone
        yield* sql.unsafe<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE $1`,
          [`%${TABLE}_cc_acquire%`]
        ).pipe(
          Effect.flatMap((rows) => ((rows[0]?.n ?? 0) > 0 ? Effect.void : Effect.fail("w is not running yet"))),
          Effect.retry(Schedule.spaced("5 millis").pipe(T.upTo("5 seconds")))
        )
        const late = yield* Effect.all(["a", "b", "c"].map((k) => T.result(store.acquireSlot(slot(k)))), { concurrency: "unbounded" })
        const w = yield* Fiber.join(first)
        assert.isTrue(w.acquired, "w, alone, answered in time")
        for (const r of late) {
          assert.isFalse(T.isOk(r), "a merged acquire answered past its deadline fails for its caller")
          if (!T.isOk(r)) assert.match(T.getErr(r).message, /no answer within 1000 ms/)
        }
        // each lease the late statement granted is released by the store: the slot is free again
        const free = (key: string) =>
          store.peek({ algorithm: "concurrency", limiter, key, limit: 1 }).pipe(
            Effect.flatMap((d) => (d.remaining === 1 ? Effect.succeed(d) : Effect.fail(`${key}: ${d.remaining} left`))),
            Effect.retry(Schedule.spaced("50 millis").pipe(T.upTo("5 seconds"))),
            T.result
          )
        const freed = yield* Effect.all(["a", "b", "c"].map(free), { concurrency: "unbounded" })
        assert.deepStrictEqual(freed.map(T.isOk), [true, true, true], JSON.stringify(freed))
        const { statements, writes } = yield* writesOf(limiter)
        const major: number = T.major
        if (major === 3) {
          // and the statement did grant them (the writes happened): three lease rows written in one statement
          assert.deepStrictEqual([writes, statements], [4, 2], "w alone, then a, b and c in one statement")
        } else {
          // Effect 4 cancels a statement nobody waits for: the merged one, once its last member's
          // caller was answered, mid-way through its writes (rolled back)
          assert.deepStrictEqual([writes, statements], [1, 1], "w alone; the merged statement of a, b and c cancelled")
        }
      }))

    it.effect("sliding window, one hot key: 20 concurrent takes merged, exactly the limit, an entry each", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("sw-hot")
        const req = { limiter, key: "hot", limit: 7, windowMs: 600_000, cost: 1 }
        const decisions = yield* Effect.all(Array.from({ length: 20 }, () => store.slidingWindow(req)), {
          concurrency: "unbounded"
        })
        // the takes of one key meet in merged statements (a sliding window is not coalesced): each
        // decided on what the ones before it left
        const admitted = decisions.filter((d) => d.allowed)
        assert.strictEqual(admitted.length, 7)
        assert.deepStrictEqual(admitted.map((d) => d.remaining).sort(), [0, 1, 2, 3, 4, 5, 6])
        assert.strictEqual(new Set(admitted.map((d) => d.ref)).size, 7, "an entry of its own each")
        assert.isTrue(decisions.filter((d) => !d.allowed).every((d) => d.ref === undefined && d.retryAfterMs > 0))
        const { statements, writes } = yield* writesOf(limiter)
        assert.strictEqual(writes, 7, "one row write per admitted take")
        assert.isTrue(statements <= 6, `${statements} statements for 20 takes of one key on 2 statement slots`)
      }))

    it.effect("three stores flooding 10 shared keys, each in its own order: no failure, each key admits its burst exactly", () =>
      Effect.gen(function*() {
        const limiter = fresh("shared")
        const stores = [
          yield* RateLimitStore.RateLimitStore,
          yield* PostgresStore.make({ tableName: TABLE, maxConcurrentStatements: 2 }),
          yield* PostgresStore.make({ tableName: TABLE, maxConcurrentStatements: 2 })
        ]
        // store s visits the keys in its own order: their merged statements share rows, and lock
        // them in one order (limiter, key) whatever order the takes came in
        const orders = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], [3, 7, 1, 9, 5, 0, 8, 2, 6, 4]]
        const takes = stores.flatMap((store, s) =>
          Array.from({ length: 60 }, (_, i) => {
            const key = `s${orders[s]?.[i % 10] ?? 0}`
            return Effect.map(
              store.tokenBucket({ limiter, key, ratePerSecond: 0.01, burst: 5, cost: 1, maxWaitMs: 0 }),
              (d) => [key, d.allowed] as const
            )
          }))
        const decisions = yield* Effect.all(takes, { concurrency: "unbounded" })
        const admitted = new Map<string, number>()
        for (const [key, allowed] of decisions) if (allowed) admitted.set(key, (admitted.get(key) ?? 0) + 1)
        assert.deepStrictEqual(
          [...admitted.entries()].sort(([a], [b]) => a.localeCompare(b)),
          Array.from({ length: 10 }, (_, k) => [`s${k}`, 5] as const)
        )
      }).pipe(Effect.scoped))

    it.effect("3000 callers taking 6000 keys with a 3 s statementTimeout: no overloaded refusal (the statements ahead counted with merging)", () =>
      Effect.gen(function*() {
        // the default slots (4); a merged statement answers up to 64 of the ~3000 calls waiting: at
        // the pace of a statement per call the queue would look like seconds of work, and calls
        // would be refused `overloaded` that the store answers within milliseconds
        const store = yield* PostgresStore.make({ tableName: TABLE, statementTimeout: "3 seconds" })
        const limiter = fresh("flood")
        const results = yield* Effect.all(
          Array.from({ length: 6000 }, (_, i) =>
            T.result(store.tokenBucket({ limiter, key: `f${i}`, ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 }))),
          { concurrency: 3000 }
        )
        const failures = results.flatMap((r) => (T.isOk(r) ? [] : [T.errOf(r).message]))
        assert.deepStrictEqual(failures.slice(0, 3), [], `${failures.length} failures, the first: ${failures[0]}`)
        assert.isTrue(results.every((r) => T.isOk(r) && T.getOk(r).allowed))
      }).pipe(Effect.scoped), { timeout: 60_000 })

    it.effect("a merged statement the server rejects (one caller's cost overflows float8) fails that caller only", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("overflow")
        // (cost − burst) · interval overflows float8 for a cost of −1e308: the server raises 22003
        const BAD = -1e308
        const costs = Array.from({ length: 40 }, (_, i) => (i === 25 ? BAD : 1))
        const results = yield* Effect.all(
          costs.map((cost, i) =>
            T.result(store.tokenBucket({ limiter, key: `o${i}`, ratePerSecond: 1, burst: 10, cost, maxWaitMs: 0 }))
          ),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(results.map(T.isOk), costs.map((c) => c === 1))
        const errors = results.flatMap((r) => (T.isOk(r) ? [] : [T.errOf(r)]))
        assert.deepStrictEqual(errors.map((e) => e.kind), ["rejected"])
        assert.isTrue(results.every((r) => !T.isOk(r) || T.getOk(r).allowed))
      }))
  })
})
