/**
 * The PostgreSQL store's composite operations (issue 12) against the real server on
 * 127.0.0.1:5432 (database `test`, user `postgres`), in a fresh table dropped at the end: the
 * shared composite conformance suite (live clock), then what is specific to PostgreSQL: a refused
 * `takeAll` leaves the table as it found it (the rows read back, not only `peek`), including the
 * rows it had to create to lock them; calls naming the same rows in opposite orders never
 * deadlock (the rows are locked in one fixed order); a sliding window taken twice with two window
 * lengths is refused before any round trip; an LLM-style flow (rpm + tpm, the real cost adjusted
 * afterwards); `RateLimiter`'s composite calls and `permit.adjust` on the store.
 */
import { assert, describe, layer } from "#test/vitest"
import { Effect, Layer, Redacted } from "effect"
import { RateLimiter, RateLimitStore } from "effect-rate-sync"
import { PostgresStore } from "effect-rate-sync/postgres"
import { liveTime, runCompositeSuite } from "../conformance/CompositeSuite.js"
import { freshTable, FUNCTIONS, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

type Store = RateLimitStore.RateLimitStoreService
type RateTake = RateLimitStore.RateTake

const fresh = (name: string) => `${name}-${crypto.randomUUID()}`
/** A day-long fixed window: no window boundary falls inside a test (but once a day). */
const DAY = 86_400_000

const TABLE = freshTable()
const PgLive = Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 10 })

/** Drops the table and the store's functions when the layer is released. */
const dropTable = T.layerScopedDiscard(
  Effect.addFinalizer(() =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      Sql.script(
        sql,
        [`DROP TABLE IF EXISTS "public"."${TABLE}"`, ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${TABLE}_${f}"`)]
          .join(";\n")
      )).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
  )
)

const StoreLive = PostgresStore.layer({ tableName: TABLE }).pipe(Layer.provideMerge(dropTable), Layer.provideMerge(PgLive))

const takeAllOf = (store: Store) => {
  const takeAll = store.takeAll
  if (takeAll === undefined) throw new Error("the PostgreSQL store offers takeAll")
  return takeAll
}
const adjustOf = (store: Store) => {
  const adjust = store.adjust
  if (adjust === undefined) throw new Error("the PostgreSQL store offers adjust")
  return adjust
}

/** Every row the table holds for `limiters`, every column but the expiry as text. */
const rowsOf = (limiters: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe<Record<string, unknown>>(
      `SELECT limiter, key, kind, tat::text, win_start::text, win_ms::text, win_count::text, win_until::text,
          times::text, costs::text, expires_at::text
        FROM "public"."${TABLE}" WHERE limiter = ANY($1::text[]) ORDER BY limiter, key, kind`,
      [limiters]
    ))

describeWhenUp(available)("PostgresStore composite operations on 127.0.0.1:5432", () => {
  runCompositeSuite("composite conformance (postgres, live clock)", StoreLive, liveTime)

  layer(StoreLive, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.effect("a refused takeAll writes nothing: the rows (and the rows it created to lock them) as before", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const [a, b, c, d] = [fresh("no-tb"), fresh("no-sw"), fresh("no-fw"), fresh("no-new")]
        const tb = { limiter: a, key: "u", ratePerSecond: 0.001, burst: 5 }
        const sw = { limiter: b, key: "u", limit: 5, windowMs: 60_000 }
        const fw = { limiter: c, key: "u", limit: 2, windowMs: DAY }
        assert.isTrue((yield* store.tokenBucket({ ...tb, cost: 2, maxWaitMs: 0 })).allowed)
        assert.isTrue((yield* store.slidingWindow({ ...sw, cost: 2 })).allowed)
        assert.isTrue((yield* store.fixedWindow({ ...fw, cost: 2 })).allowed)
        const limiters = [a, b, c, d]
        const before = yield* rowsOf(limiters)
        const refused = yield* takeAllOf(store)([
          { algorithm: "token_bucket", ...tb, cost: 2, maxWaitMs: 0 },
          { algorithm: "sliding_window", ...sw, cost: 1 },
          // a key without a row: created to be locked, deleted with the refusal
          { algorithm: "token_bucket", limiter: d, key: "u", ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 },
          { algorithm: "fixed_window", ...fw, cost: 1 }
        ])
        const after = yield* rowsOf(limiters)
        assert.isFalse(refused.allowed)
        assert.deepStrictEqual(refused.decisions.map((x) => [x.allowed, x.remaining]), [[true, 3], [true, 3], [true, 1], [false, 0]])
        assert.deepStrictEqual(after, before)
        assert.strictEqual(before.length, 3, "no row for the new key")
        console.log("refused takeAll: rows before", JSON.stringify(before), "after", JSON.stringify(after))
      }))

    it.effect("calls naming the same rows in opposite orders never deadlock (one lock order)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiters = Array.from({ length: 4 }, (_, i) => fresh(`order-${i}`))
        const take = (limiter: string): RateTake => ({
          algorithm: "fixed_window",
          limiter,
          key: "k",
          limit: 1_000_000,
          windowMs: DAY,
          cost: 1
        })
        const forward = limiters.map(take)
        const backward = [...forward].reverse()
        const calls = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? forward : backward))
        const results = yield* Effect.forEach(calls, (takes) => takeAllOf(store)(takes), { concurrency: 32 })
        assert.isTrue(results.every((d) => d.allowed), "every call admitted")
        const peeks = yield* Effect.forEach(limiters, (limiter) =>
          store.peek({ algorithm: "fixed_window", limiter, key: "k", limit: 1_000_000, windowMs: DAY }))
        assert.deepStrictEqual(peeks.map((p) => 1_000_000 - p.remaining), [200, 200, 200, 200])
      }))

    it.effect("a sliding window taken twice with two window lengths is refused before any round trip", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const l = fresh("two-windows")
        const error = yield* Effect.flip(takeAllOf(store)([
          { algorithm: "sliding_window", limiter: l, key: "k", limit: 5, windowMs: 1000, cost: 1 },
          { algorithm: "sliding_window", limiter: l, key: "k", limit: 5, windowMs: 2000, cost: 1 }
        ]))
        assert.strictEqual(error.kind, "rejected")
        assert.include(error.message, "two window lengths")
        assert.deepStrictEqual(yield* rowsOf([l]), [])
      }))

    it.effect("an LLM client: rpm and tpm in one call, the tokens adjusted once counted", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const rpm: RateTake = { algorithm: "sliding_window", limiter: fresh("rpm"), key: "user-1", limit: 3, windowMs: 60_000, cost: 1 }
        const tpm: RateTake = {
          algorithm: "token_bucket",
          limiter: fresh("tpm"),
          key: "user-1",
          ratePerSecond: 1000 / 60,
          burst: 1000,
          cost: 500, // the estimate
          maxWaitMs: 0
        }
        const first = yield* takeAllOf(store)([rpm, tpm])
        assert.isTrue(first.allowed)
        // the call used 800 tokens: 300 more
        const more = yield* adjustOf(store)({ take: tpm, delta: 300 })
        assert.strictEqual(more.applied, 300)
        assert.strictEqual(more.remaining, 200)
        // the next estimate of 500 no longer fits: refused, rpm untouched
        const second = yield* takeAllOf(store)([rpm, tpm])
        assert.isFalse(second.allowed)
        assert.deepStrictEqual(second.decisions.map((x) => x.allowed), [true, false])
        assert.strictEqual(second.decisions[0]?.remaining, 2, "rpm: one request counted")
        // a failed call gives its request back
        const back = yield* adjustOf(store)({ take: rpm, delta: -1, ref: first.decisions[0]?.ref })
        assert.deepStrictEqual([back.applied, back.remaining], [-1, 3])
        console.log(
          "LLM flow:",
          JSON.stringify({ first: first.decisions, adjusted: more, refused: second.decisions, givenBack: back })
        )
      }))
  })

  describe("RateLimiter on the PostgreSQL store", () => {
    const api = fresh("api")
    const login = fresh("login")
    const tokens = fresh("tokens")
    const LimiterLive = RateLimiter.layer({
      [api]: { ratePerSecond: 0.001, burst: 5 },
      [login]: { algorithm: "fixed_window", limit: 1, window: "1 day" },
      [tokens]: { ratePerSecond: 0.001, burst: 1000 }
    }).pipe(Layer.provideMerge(StoreLive))

    layer(LimiterLive, { timeout: "60 seconds", excludeTestServices: true })((it) => {
      it.scoped("several limits in one call: a call refused by one limit spends none; a permit adjusts its charge", () =>
        Effect.gen(function*() {
          const first = yield* RateLimiter.check([api, login], { key: "ip-1" })
          assert.isTrue(first.allowed)
          const refused = yield* RateLimiter.check([api, login], { key: "ip-1" })
          assert.isFalse(refused.allowed)
          // api was not charged by the refused call: 5 - 1
          assert.strictEqual((yield* RateLimiter.status(api, { key: "ip-1" })).remaining, 4)
          const permit = yield* RateLimiter.acquire([api, { limiter: tokens, cost: 500 }], { key: "u" })
          yield* permit.adjust({ [tokens]: 300 })
          assert.strictEqual((yield* RateLimiter.status(tokens, { key: "u" })).remaining, 200)
        }))
    })
  })
})
