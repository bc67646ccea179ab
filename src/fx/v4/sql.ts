/**
 * The Effect 4 half of the PostgreSQL store's per-major names: the same names as
 * `src/fx/v3/sql.ts`, with the same meaning, answered with `effect/sql` and `@effect/sql-pg` 4
 * (which speaks the PostgreSQL protocol itself, extended protocol only). See that file for what
 * this module is; each doc comment there says the Effect 3 and Effect 4 spelling of the name.
 *
 * @internal
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as PgTypes from "@effect/sql-pg/PgTypes"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import * as SqlError_ from "effect/sql/SqlError"
import type { Row } from "../../core/postgres/rows.js"
import type { ArgType, ArgValue, FunctionCall } from "../../core/postgres/sql.js"
import { intValue } from "../../core/postgres/sql.js"
import { scriptOf } from "../../internal/postgres/script.js"
import * as Fx from "./core.js"

/** The SQL client module: `SqlClient.SqlClient` is the tag and the service type. @internal */
export { SqlClient }

/** The PostgreSQL client module. @internal */
export { PgClient }

/** What a statement fails with: its `cause` is a reason (`ConnectionError`, `SqlSyntaxError`, …) wrapping the driver's error. @internal */
export type SqlError = SqlError_.SqlError

/** The configuration of a pg pool: connection and pool size (`maxConnections`, `minConnections`). @internal */
export type PgPoolConfig = PgClient.PgPoolConfig

/**
 * How long the check of a new pool may take when the configuration does not say
 * (`connectTimeout`): 5 seconds, as `@effect/sql-pg` 0.53's own check on Effect 3.
 */
const CHECK_TIMEOUT = Duration.seconds(5)

/**
 * A pool of connections, opened and checked with one statement when the layer is built (a server
 * that cannot be reached fails the layer, as on Effect 3; `@effect/sql-pg` 4 opens connections
 * lazily), closed with it. @internal
 */
export const pgLayer = (config: PgPoolConfig): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  PgClient.layerFrom(
    Effect.tap(PgClient.make(config), (client) =>
      Fx.timeoutFail(client.unsafe("SELECT 1").unprepared, {
        duration: config.connectTimeout ?? CHECK_TIMEOUT,
        onTimeout: () =>
          new SqlError_.SqlError({
            reason: new SqlError_.ConnectionError({
              cause: new Error("Connection timed out"),
              message: "PgClient: Connection timed out",
              operation: "connect"
            })
          })
      }))
  )

/**
 * The most connections `client`'s pool opens, when its configuration says: `PgClient.make` keeps
 * the pool configuration it was given as `client.config`, typed as the connection configuration
 * only, so the field is read untyped. @internal
 */
export const poolSizeOf = (client: PgClient.PgClient): number | undefined => {
  const max: unknown = Reflect.get(client.config, "maxConnections")
  return typeof max === "number" ? max : undefined
}

/** `effect` with `sql`'s transaction, if the caller is in one, taken out of its context. @internal */
export const outsideTransactions = <A, E>(sql: SqlClient.SqlClient, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Fx.updateContext(effect, (context: Context.Context<never>) => Context.omit(sql.transactionService)(context))

/**
 * Runs `text`, one or several statements separated by `;`, as one transaction, and answers the
 * rows of its last statement. The driver has no simple-protocol message, and a prepared statement
 * holds one command, so a single statement runs unprepared (its text holds literals: caching it
 * would only churn the cache), several in `sql.withTransaction` on one connection, a leading
 * `SET TRANSACTION <modes>` folded into its `BEGIN <modes>` (`SqlClient.BeginTransaction`). @internal
 */
export const script = (sql: SqlClient.SqlClient, text: string): Effect.Effect<ReadonlyArray<unknown>, SqlError> =>
  Effect.suspend(() => {
    const { begin, statements } = scriptOf(text)
    const run = (statement: string) => sql.unsafe<object>(statement).unprepared
    if (begin === undefined && statements.length <= 1) return run(statements[0] ?? text)
    const none: ReadonlyArray<object> = []
    const all = Effect.reduce(statements, () => none, (_, statement) => run(statement))
    const transaction = sql.withTransaction(all)
    return begin === undefined ? transaction : Effect.provideService(transaction, SqlClient.BeginTransaction, begin)
  })

/** A connection of the pool, held by one of the store's statement workers. @internal */
export type Connection = SqlConnection.Connection

/** A connection of `sql`'s pool for the scope, outside any transaction of the caller. @internal */
export const reserve = (sql: SqlClient.SqlClient): Effect.Effect<Connection, SqlError, Scope.Scope> => sql.reserve

/** How a store function is called (see {@link callFunction}). @internal */
export interface CallOptions {
  /** Run it in a READ COMMITTED transaction of its own (the session's isolation is another). */
  readonly readCommitted: boolean
  /** Effect 3 only (`SET LOCAL statement_timeout`); Effect 4 bounds a call by cancelling it (see {@link cancelsLate}). */
  readonly boundMs: number | undefined
}

/**
 * A parameter of the type its argument is declared with, so that a prepared statement has one
 * set of parameter types (`@effect/sql-pg` 4 infers `int4` for a whole number and `float8`
 * otherwise, and keys its prepared statements by those types).
 */
const parameter = (type: ArgType, value: ArgValue): PgTypes.Parameter => {
  switch (type) {
    case "text":
      return PgTypes.text(value === null ? null : String(value))
    case "float8":
      return PgTypes.float8(value === null ? null : Number(value))
    case "int":
      return PgTypes.int4(value === null ? null : intValue(Number(value)))
    case "boolean":
      return PgTypes.bool(value === null ? null : value === true)
    case "text[]":
      return arrayParameter(value === null ? null : elements(value).map(String), PgTypes.OID.text)
    case "float8[]":
      return arrayParameter(value === null ? null : elements(value).map(Number), PgTypes.OID.float8)
  }
}

/** The elements of an array argument (a scalar where an array is expected is one element). */
const elements = (value: ArgValue): ReadonlyArray<unknown> => (Array.isArray(value) ? value : [value])

/**
 * A one-dimensional array parameter of `text` or `float8` elements. `PgTypes.array` fails only for
 * an element type without a known array type, which these two always have: a failure is a defect.
 */
const arrayParameter = (values: ReadonlyArray<unknown> | null, elementOid: number): PgTypes.Parameter =>
  Result.getOrThrow(PgTypes.array(values, elementOid))

/** `effect` between `begin` and `COMMIT` on `conn`, rolled back when it fails. */
const inTransaction = <A>(
  conn: Connection,
  begin: string,
  effect: Effect.Effect<A, SqlError>
): Effect.Effect<A, SqlError> =>
  Effect.flatMap(conn.executeRaw(begin, []), () =>
    Effect.matchCauseEffect(effect, {
      onFailure: (cause) => Effect.andThen(Effect.ignore(conn.executeRaw("ROLLBACK", [])), Effect.failCause(cause)),
      onSuccess: (a) => Effect.as(conn.executeRaw("COMMIT", []), a)
    }))

/**
 * One call of a store function on `conn`, its rows as arrays of values: the prepared statement
 * `SELECT * FROM <fn>($1::text, …)`, planned once per connection, its parameters typed as the
 * function declares them; in `BEGIN ISOLATION LEVEL READ COMMITTED` … `COMMIT` (three round trips)
 * when `readCommitted`. @internal
 */
export const callFunction = (
  conn: Connection,
  call: FunctionCall,
  options: CallOptions
): Effect.Effect<ReadonlyArray<Row>, SqlError> => {
  const types = call.spec.types
  const params = call.values.map((value, i) => parameter(types[i] ?? "text", value))
  const run = conn.executeValues(call.spec.prepared, params)
  return options.readCommitted ? inTransaction(conn, "BEGIN ISOLATION LEVEL READ COMMITTED", run) : run
}

/**
 * Runs `text`, one or several statements separated by `;`, on `conn` as one transaction (see
 * {@link script}), its last statement's rows as arrays of values. @internal
 */
export const scriptOn = (conn: Connection, text: string): Effect.Effect<ReadonlyArray<Row>, SqlError> =>
  Effect.suspend(() => {
    const { begin, statements } = scriptOf(text)
    const run = (statement: string) => conn.executeValuesUnprepared(statement, [])
    if (begin === undefined && statements.length <= 1) return run(statements[0] ?? text)
    const none: ReadonlyArray<Row> = []
    return inTransaction(conn, begin ?? "BEGIN", Effect.reduce(statements, () => none, (_, statement) => run(statement)))
  })

/**
 * Whether the store cancels, on the server, a statement still running at its caller's deadline:
 * `true` (`@effect/sql-pg` 4 drains the connection and sends a `CancelRequest` on a side connection
 * when the statement's fiber is interrupted; not on a `multiplex` pool, whose connections it does
 * not cancel). @internal
 */
export const cancelsLate: boolean = true

/** Interrupts `fiber` without waiting for it. @internal */
export const interruptUnsafe = <A, E>(fiber: Fx.RuntimeFiber<A, E>): void => fiber.interruptUnsafe()
