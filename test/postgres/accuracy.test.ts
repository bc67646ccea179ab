/**
 * Multi-process accuracy against the PostgreSQL server on 127.0.0.1:5432 (a fresh table, dropped
 * with its functions at the end): 4 Node
 * processes × 50 fibers share one limiter of 100/s, burst 10, for 10 s, measured after each process
 * warmed up, from an instant every process is told on a signal. The admissions that proceed within
 * the 5 s must be within [0.97, 1.00] × (burst + 100·10), never above.
 */
import { layer } from "#test/vitest"
import { Effect, Layer, Redacted } from "effect"
import { PostgresStore } from "effect-rate-sync/postgres"
import { rateAccuracy } from "../utils/accuracy.js"
import { freshTable, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

const TABLE = freshTable()

/**
 * Drops the table and every function named `<table>_…` (as the bench's cleanup does): read from
 * `pg_proc` with their argument lists, so an overload or a function the store adds later goes too.
 */
const dropTableAndFunctions = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    // the row type is the driver's generic parameter: the query names the one text column `f`
    const functions = yield* sql.unsafe<{ readonly f: string }>(
      `SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS f
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND starts_with(p.proname, $1)`,
      [`${TABLE}_`]
    )
    yield* Sql.script(
      sql,
      [`DROP TABLE IF EXISTS "public"."${TABLE}"`, ...functions.map((row) => `DROP FUNCTION IF EXISTS ${row.f}`)].join(";\n")
    )
  })

/** The store's table, installed before the workers start (they find it), dropped with its functions at the end. */
const TableLive = T.layerScopedDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.addFinalizer(() => dropTableAndFunctions(sql).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore))
    yield* PostgresStore.make({ tableName: TABLE })
  })
).pipe(Layer.provide(Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 2 })))

describeWhenUp(available)("PostgresStore multi-process accuracy (4 processes × 50 fibers)", () => {
  layer(TableLive, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("one limiter of 100/s, burst 10, admits [0.97, 1.0] × (burst + 100·10) in 10 s", () =>
      rateAccuracy("PostgreSQL", "test/postgres/fixtures/worker.ts", (rateId) => ["accuracy", URL, TABLE, rateId]))
  })
})
