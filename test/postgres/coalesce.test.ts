/**
 * Hot keys coalesced on PostgreSQL (internal/postgres/coalesce.ts, `tb_take_many`,
 * `fw_take_many`), against the real server on 127.0.0.1:5432 in a fresh table dropped at the end:
 * concurrent takes of one process on one key reach the server as a few statements, not one each
 * (counted by a trigger on the table: one row write per statement that admits); every caller gets
 * its own decision, admitted in arrival order, the bounds unchanged; reservations in one batch
 * are booked one after another; a batch the server rejects fails only the take that caused it; a
 * queued caller interrupted before its batch is sent is not charged; queued callers settle within `statementTimeout` when the statement before them hangs.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Fiber, Layer, Redacted } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { PostgresStore } from "effect-rate-sync/postgres"
import { freshTable, tableWithTrigger, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

const fresh = (name: string) => `${name}-${crypto.randomUUID()}`
/** A day-long fixed window: no window boundary falls inside a test (but once a day). */
const DAY = 86_400_000

const TABLE = freshTable()
const WRITES = `"public"."${TABLE}_writes"`
const PgLive = Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 10 })

/**
 * The store's table with a trigger that counts the row writes per limiter (and holds the update of
 * a limiter named `slow-…` for 0.3 s, a statement in flight long enough to queue behind, and of
 * `stall-…` for 1 s, past a short `statementTimeout`).
 */
const setUp = tableWithTrigger(
  TABLE,
  "limiter text NOT NULL",
  `INSERT INTO ${WRITES} VALUES (NEW.limiter);
    IF NEW.limiter LIKE 'slow-%' THEN PERFORM pg_sleep(0.3); END IF;
    IF NEW.limiter LIKE 'stall-%' THEN PERFORM pg_sleep(1); END IF;
    RETURN NEW;`
)

const StoreLive = PostgresStore.layer({ tableName: TABLE }).pipe(Layer.provideMerge(setUp), Layer.provideMerge(PgLive))

/** How many row writes the limiter's takes made. */
const writesOf = (limiter: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${WRITES} WHERE limiter = $1`, [limiter])).pipe(
      Effect.map((rows) => rows[0]?.n ?? -1)
    )

describeWhenUp(available)("PostgresStore: hot keys coalesced", () => {
  layer(StoreLive, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect("100 concurrent takes on one key: a few statements, each caller its own decision, the bound exact", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("hot")
        const req = { limiter, key: "k", ratePerSecond: 1, burst: 40, cost: 1, maxWaitMs: 0 }
        const decisions = yield* Effect.all(Array.from({ length: 100 }, () => store.tokenBucket(req)), { concurrency: "unbounded" })
        const admitted = decisions.filter((d) => d.allowed)
        assert.strictEqual(admitted.length, 40, "exactly the burst (1/s: at most one more slot in the run)")
        // arrival order: the first 40 callers are the admitted ones, each told what is left after it
        assert.deepStrictEqual(decisions.slice(0, 40).map((d) => d.allowed), Array.from({ length: 40 }, () => true))
        assert.deepStrictEqual(admitted.map((d) => d.remaining), Array.from({ length: 40 }, (_, i) => 39 - i))
        for (const d of decisions.slice(40)) {
          assert.strictEqual(d.remaining, 0)
          assert.isTrue(d.retryAfterMs > 0 && d.retryAfterMs <= 1000, `retryAfter ${d.retryAfterMs}`)
        }
        const writes = yield* writesOf(limiter)
        assert.isTrue(writes >= 1 && writes <= 10, `${writes} row writes for 40 admissions`)
        // the state is what 40 takes one after another leave
        const peek = yield* store.peek({ algorithm: "token_bucket", limiter, key: "k", ratePerSecond: 1, burst: 40 })
        assert.strictEqual(peek.remaining, 0)
      }))

    it.effect("fixed window: the limit exact in arrival order, every admitted take names the window it charged", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("fw")
        const req = { limiter, key: "f", limit: 7, windowMs: DAY, cost: 1 }
        const decisions = yield* Effect.all(Array.from({ length: 20 }, () => store.fixedWindow(req)), { concurrency: "unbounded" })
        assert.deepStrictEqual(decisions.map((d) => d.allowed), Array.from({ length: 20 }, (_, i) => i < 7))
        assert.deepStrictEqual(decisions.slice(0, 7).map((d) => d.remaining), [6, 5, 4, 3, 2, 1, 0])
        const refs = new Set(decisions.filter((d) => d.allowed).map((d) => d.ref))
        assert.strictEqual(refs.size, 1, "one window")
        assert.isTrue(decisions.slice(7).every((d) => d.ref === undefined && d.retryAfterMs > 0))
        assert.isTrue((yield* writesOf(limiter)) <= 4, "a few statements")
        // a take of the batch is given back in its window
        const adjust = store.adjust
        if (adjust === undefined) return assert.fail("the PostgreSQL store adjusts")
        const adjusted = yield* adjust({ take: { algorithm: "fixed_window", ...req }, delta: -1, ref: decisions[5]?.ref })
        assert.strictEqual(adjusted.applied, -1)
        assert.strictEqual(adjusted.remaining, 1)
        // mixed costs: each decided on what the ones before it left
        const mixed = fresh("fw-mixed")
        const costs = [3, 3, 3, 1, 2, 1]
        const out = yield* Effect.all(costs.map((cost) => store.fixedWindow({ ...req, limiter: mixed, limit: 8, cost })), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(out.map((d) => d.allowed), [true, true, false, true, false, true])
        assert.deepStrictEqual(out.map((d) => d.remaining), [5, 2, 2, 1, 1, 0])
      }))

    it.effect("reservations in one batch are booked one after another (delays one interval apart)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("reserve")
        const req = { limiter, key: "r", ratePerSecond: 10, burst: 2, cost: 1, maxWaitMs: 1000 }
        const decisions = yield* Effect.all(Array.from({ length: 8 }, () => store.tokenBucket(req)), { concurrency: "unbounded" })
        assert.isTrue(decisions.every((d) => d.allowed))
        assert.deepStrictEqual(decisions.slice(0, 2).map((d) => d.delayMs), [0, 0])
        const delays = decisions.slice(2).map((d) => d.delayMs)
        for (const [i, d] of delays.entries()) {
          // the k-th reservation waits k intervals from the first take, less the time since it
          assert.isTrue(d > (i + 1) * 100 - 60 && d <= (i + 1) * 100 + 1, `reservation ${i + 1}: ${d} ms`)
        }
        const over = yield* store.tokenBucket({ ...req, maxWaitMs: 100 })
        assert.isFalse(over.allowed, "the bookings count: a short wait is refused")
      }))

    it.effect("a batch the server rejects (one caller's cost overflows float8) fails that caller only", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("overflow")
        // (cost − burst) · interval overflows float8 for a cost of −1e308: the server raises 22003
        const BAD = -1e308
        const req = { limiter, key: "k", ratePerSecond: 1, burst: 100, cost: 1, maxWaitMs: 0 }
        const alone = yield* Effect.flip(store.tokenBucket({ ...req, cost: BAD }))
        assert.strictEqual(alone.kind, "rejected", `alone: ${alone.message}`)
        // the first take goes alone, the next 9 wait and go as one batch with the bad one among them
        const costs = [1, 1, 1, BAD, 1, 1, 1, 1, 1, 1]
        const results = yield* Effect.all(costs.map((cost) => T.result(store.tokenBucket({ ...req, cost }))), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(results.map(T.isOk), costs.map((c) => c === 1))
        const errors = results.flatMap((r) => (T.isOk(r) ? [] : [T.errOf(r)]))
        assert.deepStrictEqual(errors.map((e) => e.kind), ["rejected"])
      }))

    it.effect("a queued caller interrupted before its batch is sent is not charged", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("slow-interrupt")
        const req = { limiter, key: "k", limit: 100, windowMs: DAY, cost: 1 }
        // the first take creates the row; the next one is held 0.3 s by the trigger, in flight
        assert.isTrue((yield* store.fixedWindow(req)).allowed)
        const leader = yield* T.fork(store.fixedWindow(req))
        yield* T.yieldNow
        const queued = yield* Effect.all(Array.from({ length: 10 }, () => T.fork(store.fixedWindow(req))))
        yield* T.yieldNow
        for (const f of queued.filter((_, i) => i % 2 === 0)) yield* Fiber.interrupt(f)
        assert.isTrue((yield* Fiber.join(leader)).allowed)
        for (const f of queued.filter((_, i) => i % 2 === 1)) assert.isTrue((yield* Fiber.join(f)).allowed)
        const peek = yield* store.peek({ algorithm: "fixed_window", limiter, key: "k", limit: 100, windowMs: DAY })
        assert.strictEqual(peek.remaining, 100 - 7, "the first take, the leader and the 5 callers left waiting, no more")
        assert.strictEqual(yield* writesOf(limiter), 3, "one write each: the first take, the leader, one batch of 5")
      }))

    it.scoped("callers queued behind a statement that hangs settle within statementTimeout", () =>
      Effect.gen(function*() {
        const store = yield* PostgresStore.make({ tableName: TABLE, statementTimeout: "300 millis" })
        const limiter = fresh("stall-deadline")
        const req = { limiter, key: "k", ratePerSecond: 1, burst: 100, cost: 1, maxWaitMs: 0 }
        const start = Date.now()
        const results = yield* Effect.all(Array.from({ length: 10 }, () => T.result(store.tokenBucket(req))), {
          concurrency: "unbounded"
        })
        const elapsed = Date.now() - start
        for (const r of results) {
          assert.isFalse(T.isOk(r), "the trigger holds every write 1 s: past the 300 ms statementTimeout")
        }
        assert.isTrue(elapsed < 1500, `settled after ${elapsed} ms`)
      }))
  })
})
