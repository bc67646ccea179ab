/**
 * How the PostgreSQL store classifies its failures (`StoreError.kind`): the SQLSTATE classifier on
 * its own, then requests the real server on 127.0.0.1:5432 refuses (`rejected`: never a fail-open
 * admission; a store that cannot answer in time is `unavailable`, see stall.test.ts).
 */
import { randomBytes } from "node:crypto"
import { assert, describe, it, layer } from "#test/vitest"
import { Clock, Duration, Effect, Fiber, Layer, Random, Redacted } from "effect"
import { RateLimiter, RateLimitStore } from "effect-rate-sync"
import { PostgresStore } from "effect-rate-sync/postgres"
import { rollbackRetryMs } from "../../src/core/backoff.js"
import { errorKind, isRetryable, sqlStateOf } from "../../src/core/postgres/errors.js"
import { retryUntil } from "../../src/internal/postgres/call.js"
import { freshTable, FUNCTIONS, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import { TestClock } from "#test/effect"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

describe("postgresSql.errorKind", () => {
  it("the server refused the request itself: rejected", () => {
    for (
      const code of [
        "22008", // datetime field overflow ("timestamp out of range")
        "22003", // numeric value out of range
        "22021", // character not in repertoire (bad bytes, NUL)
        "22P02", // invalid text representation
        "23505", // unique violation
        "23514", // check violation
        "42601", // syntax error
        "42703", // undefined column
        "42501", // insufficient privilege
        "54000", // program limit exceeded (index row too large)
        "54001", // statement too complex
        "P0001", // RAISE EXCEPTION
        "P0004" // assert failure
      ]
    ) assert.strictEqual(errorKind(code), "rejected", code)
  })

  it("everything else: unavailable", () => {
    for (
      const code of [
        undefined, // no SQLSTATE: the link, our own deadline, the overloaded gate
        "08006", // connection failure
        "08001", // unable to connect
        "53300", // too many connections
        "53100", // disk full
        "57014", // statement timeout / cancel
        "57P01", // admin shutdown
        "58030", // I/O error
        "XX000", // internal error
        "40001", // serialization failure (after the retries)
        "40P01", // deadlock (after the retries)
        "55P03", // lock not available (lock_timeout)
        "3F000", // the store's schema is missing
        "42P01", // the store's table is missing: the deployment, not the request
        "42883", // the store's function is missing
        "ECONNRESET", // a Node error code, not a SQLSTATE
        "EPIPE", // five characters, still not a SQLSTATE class we know
        "",
        "22"
      ]
    ) assert.strictEqual(errorKind(code), "unavailable", String(code))
  })
})

describe("postgresSql.sqlStateOf", () => {
  it("reads the SQLSTATE where Effect 3's SqlError puts it: e.cause.code (pg's DatabaseError)", () => {
    assert.strictEqual(sqlStateOf({ message: "failed", cause: { message: "deadlock detected", code: "40P01" } }), "40P01")
  })

  it("and one level deeper, where Effect 4's puts it: e.cause.cause.code (a reason wrapping the driver's error)", () => {
    const v4 = { _tag: "SqlError", cause: { _tag: "UnknownError", cause: { message: "could not serialize", code: "40001" } } }
    assert.strictEqual(sqlStateOf(v4), "40001")
    assert.isTrue(isRetryable(v4))
    assert.strictEqual(errorKind(sqlStateOf({ cause: { cause: { code: "22003" } } })), "rejected")
  })

  it("the outer level first; none at either (a connection error, not an object): undefined", () => {
    assert.strictEqual(sqlStateOf({ cause: { code: "42P01", cause: { code: "40001" } } }), "42P01")
    assert.strictEqual(sqlStateOf({ cause: { code: "", cause: { code: "57014" } } }), "57014")
    for (
      const e of [
        undefined,
        null,
        "40001",
        { code: "40001" }, // on the SqlError itself: not where either major puts it
        { cause: { message: "connect ECONNREFUSED" } },
        { cause: { cause: { code: 40001 } } },
        { cause: { cause: { cause: { code: "40001" } } } }, // deeper still: no
        { cause: "40001" }
      ]
    ) assert.strictEqual(sqlStateOf(e), undefined, JSON.stringify(e))
  })
})

describe("postgresSql.retryUntil", () => {
  /** A statement failing with `code` on every attempt, recording when each attempt ran. */
  const failing = (code: string) => {
    const at: Array<number> = []
    const once = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      at.push(now)
      return Effect.fail({ cause: { code }, attempt: at.length })
    })
    return { at, once }
  }

  it.effect("waits rollbackRetryMs(k, Random.next) before the k-th retry; none that would reach the deadline", () =>
    Effect.gen(function*() {
      const deadlineMs = 100
      const { at, once } = failing("40001")
      const fiber = yield* T.fork(Effect.flip(retryUntil(once, deadlineMs)).pipe(T.withSeed("pg")))
      yield* TestClock.adjust("1 second")
      const last = yield* Fiber.join(fiber)
      // the same draws, judged by the same rule: now + wait < deadline, else the last error
      const expected = yield* Effect.gen(function*() {
        const times = [0]
        for (let k = 0;; k++) {
          const wait = Duration.toMillis(Duration.millis(rollbackRetryMs(k, yield* Random.next)))
          const now = times[times.length - 1] ?? 0
          if (!(now + wait < deadlineMs)) return times
          times.push(now + wait)
        }
      }).pipe(T.withSeed("pg"))
      assert.deepStrictEqual(at, expected)
      assert.isTrue(at.length > 5, `${at.length} attempts`)
      assert.deepStrictEqual(last, { cause: { code: "40001" }, attempt: at.length }, "the last error")
    }))

  it.effect("a deadline too close for the first wait: the first error, no retry", () =>
    Effect.gen(function*() {
      const { at, once } = failing("40P01")
      const e = yield* Effect.flip(retryUntil(once, 0.5))
      assert.deepStrictEqual([at, e], [[0], { cause: { code: "40P01" }, attempt: 1 }])
    }))

  it.effect("other failures are not retried; a retried statement that succeeds answers", () =>
    Effect.gen(function*() {
      const { at, once } = failing("23505")
      assert.deepStrictEqual(yield* Effect.flip(retryUntil(once, 1_000)), { cause: { code: "23505" }, attempt: 1 })
      assert.strictEqual(at.length, 1)
      let attempts = 0
      const twice = Effect.suspend(() => ++attempts <= 2 ? Effect.fail({ cause: { code: "40001" } }) : Effect.succeed("ok"))
      const fiber = yield* T.fork(retryUntil(twice, 1_000))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual([yield* Fiber.join(fiber), attempts], ["ok", 3])
    }))
})

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

const PgLive = Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 4 })

const TABLE = freshTable()

const DropTable = T.layerScopedDiscard(
  Effect.addFinalizer(() =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Sql.script(sql,
        [
          `DROP TABLE IF EXISTS "public"."${TABLE}"`,
          ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${TABLE}_${f}"`)
        ].join(";\n")
      )).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
  )
)

const StoreLive = PostgresStore.layer({ tableName: TABLE }).pipe(
  Layer.provideMerge(DropTable),
  Layer.provideMerge(PgLive)
)

/**
 * A key too large for the primary key's btree (2,704 bytes at most per row): incompressible
 * (`"x".repeat(3000)` compresses below the limit and is accepted).
 */
const hugeKey = () => randomBytes(3000).toString("base64")

const take = (store: RateLimitStore.RateLimitStoreService, limiter: string, key: string, ratePerSecond = 10) =>
  store.tokenBucket({ limiter, key, ratePerSecond, burst: 1, cost: 1, maxWaitMs: 0 })

describeWhenUp(available)("PostgresStore: rejected vs unavailable against the real server", () => {
  layer(StoreLive, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.effect("a key over the btree row size: the server refuses it (54000), StoreError kind rejected", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const e = yield* Effect.flip(take(store, "errors", hugeKey()))
        assert.strictEqual(e._tag, "StoreError")
        assert.strictEqual(e.kind, "rejected")
        assert.include(e.message, "index row size")
        // the store itself is fine
        assert.isTrue((yield* take(store, "errors", "ok")).allowed)
      }))

    it.effect("a datetime overflow (a rate so small its state would expire past year 294 276): rejected", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const e = yield* Effect.flip(take(store, "errors", "tiny-rate", 1e-300))
        assert.strictEqual(e.kind, "rejected")
        assert.include(e.message, "out of range")
      }))

    it.effect("a NUL in a limiter id (refused before sending, as the server would): rejected", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const e = yield* Effect.flip(take(store, "err\u0000ors", "k"))
        assert.strictEqual(e.kind, "rejected")
      }))

    it.scoped("through a fail-open limiter, a request the server rejects is not admitted (StoreUnavailable)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        // The limiter hands stores keys they can hold (long ones digested), so the rejection is
        // provoked below it: every take of this store sends a key the server refuses.
        const refusing = RateLimitStore.make({
          ...store,
          tokenBucket: (request) => store.tokenBucket({ ...request, key: hugeKey() })
        })
        const registry = yield* RateLimiter.make({
          stores: { default: refusing },
          limiters: { open: { ratePerSecond: 10, failClosed: false } }
        })
        const run = <A, E>(effect: Effect.Effect<A, E, RateLimiter.RateLimiter>) =>
          Effect.provideService(effect, RateLimiter.RateLimiter, registry)
        const outcome = Effect.match({ onFailure: (e: { readonly _tag: string }) => e._tag, onSuccess: () => "admitted" })
        const checked = yield* outcome(run(RateLimiter.check("open", { key: "k" })))
        assert.strictEqual(checked, "StoreUnavailable", "check is not admitted")
        const acquired = yield* outcome(run(Effect.scoped(RateLimiter.acquire("open", { key: "k" }))))
        assert.strictEqual(acquired, "StoreUnavailable", "acquire is not admitted")
        const metrics = yield* run(RateLimiter.metrics("open"))
        assert.strictEqual(metrics.failOpenAdmits, 0)
      }))
  })
})
