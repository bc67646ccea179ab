/**
 * The Effect 3 half of the PostgreSQL store's per-major names: the SQL client modules, the pool's
 * configuration and layer, the pool size of a client, statements kept out of the caller's
 * transaction, how a multi-statement text runs, and how the store's statement workers call its
 * functions on a connection they hold. Its twin is `src/fx/v4/sql.ts`; the two export the same
 * names with the same meaning. Shared code imports them from `#fx/sql`.
 *
 * On Effect 3 the client is `@effect/sql`'s `SqlClient` with `@effect/sql-pg` 0.53 (on `pg`); on
 * Effect 4 it is `effect/sql/SqlClient` with `@effect/sql-pg` 4 (its own wire protocol).
 *
 * @internal
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type * as SqlError_ from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Row } from "../../core/postgres/rows.js"
import { lastRows } from "../../core/postgres/rows.js"
import type { FunctionCall } from "../../core/postgres/sql.js"
import { literalCall, READ_COMMITTED, statementTimeout } from "../../core/postgres/sql.js"
import * as Fx from "./core.js"

/**
 * The SQL client module (Effect 3 `@effect/sql/SqlClient`, Effect 4 `effect/sql/SqlClient`):
 * `SqlClient.SqlClient` is the tag and the service type. @internal
 */
export { SqlClient }

/** The PostgreSQL client module (`@effect/sql-pg/PgClient` on both; 0.53 on Effect 3, 4.x on Effect 4). @internal */
export { PgClient }

/**
 * What a statement fails with (Effect 3 `@effect/sql/SqlError` `SqlError`, whose `cause` is the
 * driver's error; Effect 4 `effect/sql/SqlError` `SqlError`, whose `cause` is a reason wrapping it). @internal
 */
export type SqlError = SqlError_.SqlError

/**
 * The configuration of a pg pool: connection and pool size (`maxConnections`, `minConnections`)
 * (Effect 3 `PgClient.PgClientConfig`, Effect 4 `PgClient.PgPoolConfig`). @internal
 */
export type PgPoolConfig = PgClient.PgClientConfig

/**
 * A pool of connections (`PgClient` and `SqlClient`), opened and checked with one statement when the
 * layer is built (a server that cannot be reached fails the layer), closed with it (Effect 3
 * `PgClient.layer`, which checks; Effect 4 `PgClient.layer`, whose pool opens connections lazily,
 * plus the check). @internal
 */
export const pgLayer = (config: PgPoolConfig): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> =>
  PgClient.layer(config)

/**
 * The most connections `client`'s pool opens, when its configuration says (Effect 3
 * `client.config.maxConnections`; Effect 4 reads the same field of the pool configuration the
 * client was made with, typed there as the connection configuration only). @internal
 */
export const poolSizeOf = (client: PgClient.PgClient): number | undefined => client.config.maxConnections

/**
 * `effect` with `sql`'s transaction, if the caller is in one, taken out of its context: its
 * statements take a connection of their own and commit on their own (Effect 3:
 * `Context.omit(SqlClient.TransactionConnection)`, one tag for every client; Effect 4:
 * `Context.omit(sql.transactionService)`, a tag per client). @internal
 */
export const outsideTransactions = <A, E>(_sql: SqlClient.SqlClient, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Fx.updateContext(effect, (context: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(context))

/**
 * Runs `text`, one or several statements separated by `;`, as one transaction, and answers its
 * rows: those of each statement (an array of row arrays) when there are several, of the statement
 * otherwise (`core/postgres/rows.ts` `lastRows` reads either). Effect 3: one simple-protocol message
 * (`sql.unsafe(text)`, one round trip; PostgreSQL runs the statements as one implicit transaction).
 * Effect 4 (extended protocol only): the one statement unprepared, or `BEGIN`, each statement,
 * `COMMIT` on one connection (one round trip each), rolled back whole on a failure. @internal
 */
export const script = (sql: SqlClient.SqlClient, text: string): Effect.Effect<ReadonlyArray<unknown>, SqlError> =>
  sql.unsafe<object>(text)

/**
 * A connection of the pool, held by one of the store's statement workers (Effect 3
 * `@effect/sql/SqlConnection` `Connection`; Effect 4 `effect/sql/SqlConnection` `Connection`). @internal
 */
export type Connection = SqlConnection.Connection

/**
 * A connection of `sql`'s pool for the scope, outside any transaction of the caller (`sql.reserve`
 * on both; Effect 3: pg-pool's `connect`, which must not be interrupted while it waits). @internal
 */
export const reserve = (sql: SqlClient.SqlClient): Effect.Effect<Connection, SqlError, Scope.Scope> => sql.reserve

/** How a store function is called (see {@link callFunction}). @internal */
export interface CallOptions {
  /** Run it in a READ COMMITTED transaction of its own (the session's isolation is another). */
  readonly readCommitted: boolean
  /** Effect 3: `SET LOCAL statement_timeout` (ms) in the same message, the server's bound on the call (writes). */
  readonly boundMs: number | undefined
}

/**
 * One call of a store function on `conn`, its rows as arrays of values. Effect 3: one
 * simple-protocol message of literals, `SELECT * FROM <fn>(…)` (`@effect/sql-pg` 0.53 keeps no
 * prepared statement, and this measured faster than the parameterized form: see
 * docs/engines/postgres.md), preceded in the same message, for a write, by `SET LOCAL
 * statement_timeout` (the only server-side bound on a statement the client gave up on, on a pool
 * the application opened) and, when `readCommitted`, by `SET TRANSACTION ISOLATION LEVEL READ
 * COMMITTED`: one round trip either way. Effect 4: the prepared statement `SELECT * FROM
 * <fn>($1::text, …)` (planned once per connection), in `BEGIN ISOLATION LEVEL READ COMMITTED` …
 * `COMMIT` when `readCommitted`; its server-side bound is the cancel at the deadline (see
 * {@link cancelsLate}). @internal
 */
export const callFunction = (
  conn: Connection,
  call: FunctionCall,
  options: CallOptions
): Effect.Effect<ReadonlyArray<Row>, SqlError> => {
  const select = literalCall(call)
  const bound = options.boundMs === undefined ? "" : `${statementTimeout(options.boundMs)} `
  const text = options.readCommitted ? `${READ_COMMITTED} ${bound}${select}` : `${bound}${select}`
  return Effect.map(conn.execute(text, [], undefined), lastRows)
}

/**
 * Runs `text`, one or several statements separated by `;`, on `conn` as one transaction (see
 * {@link script}), its last statement's rows as arrays of values. @internal
 */
export const scriptOn = (conn: Connection, text: string): Effect.Effect<ReadonlyArray<Row>, SqlError> =>
  Effect.map(conn.execute(text, [], undefined), lastRows)

/**
 * Whether the store cancels, on the server, a statement still running at its caller's deadline:
 * Effect 3 `false` (interrupting `@effect/sql-pg` 0.53's query sends `pg_cancel_backend` through
 * the pool, where it queues behind the statements it should cancel; the server's bound is the
 * message's `SET LOCAL statement_timeout`); Effect 4 `true` (`@effect/sql-pg` 4 sends a
 * `CancelRequest` on a side connection when the statement's fiber is interrupted). @internal
 */
export const cancelsLate: boolean = false

/**
 * Interrupts `fiber` without waiting for it (Effect 3 `fiber.unsafeInterruptAsFork(FiberId.none)`,
 * Effect 4 `fiber.interruptUnsafe()`). @internal
 */
export const interruptUnsafe = <A, E>(fiber: Fx.RuntimeFiber<A, E>): void => fiber.unsafeInterruptAsFork(FiberId.none)
