/**
 * The PostgreSQL store's objects: installing (or checking) its table and functions at start-up,
 * and deleting expired rows, now or every `cleanupInterval`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Fx from "#fx/core"
import * as Sql from "#fx/sql"
import { describe } from "../../core/postgres/errors.js"
import { namesOf, serverTimeoutMs } from "../../core/postgres/names.js"
import type { Row } from "../../core/postgres/rows.js"
import { lastRows, num } from "../../core/postgres/rows.js"
import * as pgSql from "../../core/postgres/sql.js"
import type { PostgresStoreOptions } from "../../PostgresStore.js"
import { StoreError } from "../../RateLimitStore.js"
import { toMillis } from "../store/options.js"
import { ATTR_DB_SYSTEM_NAME } from "../store/telemetry.js"
import * as Call from "./call.js"
import { batchSizeOf, type Driver, ENGINE } from "./driver.js"
import { sanitizeWith } from "./secrets.js"

/** `PostgresStore.ddl`: the SQL `autoCreate` applies, for a DBA to run. @internal */
export const ddl = (options: PostgresStoreOptions): Effect.Effect<string, StoreError> =>
  Effect.suspend(() => {
    const n = namesOf(options)
    return typeof n === "string"
      ? Effect.fail(new StoreError({ engine: ENGINE, operation: "configure", message: n }))
      : Effect.succeed(pgSql.install(n, options.unlogged ?? false))
  })

/** Installs the table and functions on `conn` when their version changed (one transaction). @internal */
export const installOn = (driver: Driver, conn: Sql.Connection): Effect.Effect<ReadonlyArray<Row>, unknown> =>
  Sql.scriptOn(conn, pgSql.installIfChanged(driver.names, driver.settings.unlogged))

/**
 * The store's `initialize`: with `autoCreate` installs the table and functions, else checks they
 * exist; bounded by `initializeTimeout`.
 *
 * @internal
 */
export const initialize = (driver: Driver): Effect.Effect<void, StoreError> =>
  // data-first: Effect 4 takes `captureStackTrace` only there
  Effect.withSpan(
    driver.settings.autoCreate
      ? Effect.asVoid(Call.bounded(driver.call, "initialize", driver.settings.initTimeoutMs, (conn) => installOn(driver, conn)))
      : checkInstalled(driver),
    `RateLimitStore.${ENGINE}.initialize`,
    { kind: "client", captureStackTrace: false, attributes: { [ATTR_DB_SYSTEM_NAME]: "postgresql" } }
  )

const checkInstalled = (driver: Driver): Effect.Effect<void, StoreError> =>
  Call.bounded(
    driver.call,
    "initialize",
    driver.settings.initTimeoutMs,
    (conn) => Sql.scriptOn(conn, pgSql.missingObjects(driver.names))
  ).pipe(
    Effect.flatMap((rows) =>
      rows.length === 0 ? Effect.void : Effect.fail(
        driver.failures.fail(
          "initialize",
          `autoCreate is false and ${rows.map((r) => String(r[0])).join(", ")} ${
            rows.length === 1 ? "is" : "are"
          } missing: apply PostgresStore.ddl(options) with a role that may create them`
        )
      )
    )
  )

/** Deletes expired rows, batch by batch (at most 10 batches) with `once`; answers how many. */
const deleteExpiredWith = (
  batchSize: number,
  once: Effect.Effect<ReadonlyArray<Row>, StoreError>
): Effect.Effect<number, StoreError> => {
  const loop = (batch: number, total: number): Effect.Effect<number, StoreError> =>
    Effect.flatMap(once, (rows) => {
      const deleted = num(rows[0]?.[0])
      const sum = total + (Number.isNaN(deleted) ? 0 : deleted)
      return deleted >= batchSize && batch < 10 ? loop(batch + 1, sum) : Effect.succeed(sum)
    })
  return loop(1, 0)
}

/** `PostgresStore.deleteExpired`: the expired rows of the store's table deleted now, on the `SqlClient` in context. @internal */
export const deleteExpired = (options: PostgresStoreOptions): Effect.Effect<number, StoreError, Sql.SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const n = namesOf(options)
    if (typeof n === "string") return yield* Effect.fail(new StoreError({ engine: ENGINE, operation: "cleanup", message: n }))
    const sql = (yield* Sql.SqlClient.SqlClient).withoutTransforms()
    const batchSize = batchSizeOf(options)
    const statement = pgSql.cleanup(n, serverTimeoutMs(toMillis(options.statementTimeout, 2000)), batchSize)
    return yield* deleteExpiredWith(
      batchSize,
      Effect.mapError(
        Effect.map(Call.outsideTransactions(sql, Sql.script(sql, statement)), lastRows),
        (e) => new StoreError({ engine: ENGINE, operation: "cleanup", message: sanitizeWith([])(describe(e)) })
      )
    )
  })

/** Forks, in the store's scope, the deletion of expired rows every `cleanupInterval` (failures logged at debug). @internal */
export const forkCleanup = (driver: Driver): Effect.Effect<void, never, Scope.Scope> => {
  const { batchSize, cleanupEvery, lockMs, timeoutMs } = driver.settings
  const statement = pgSql.cleanup(driver.names, lockMs, batchSize)
  const once = deleteExpiredWith(
    batchSize,
    Call.bounded(driver.call, "cleanup", timeoutMs, (conn) => Sql.scriptOn(conn, statement))
  )
  return Effect.asVoid(Effect.forkScoped(
    Effect.interruptible(
      Effect.forever(
        Effect.andThen(
          Effect.sleep(cleanupEvery),
          once.pipe(Fx.catchAll((e) => Effect.logDebug(`rate-sync postgres cleanup failed: ${e.message}`)))
        )
      )
    )
  ))
}
