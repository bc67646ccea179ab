/**
 * The Effect 3 half of the PostgreSQL store's per-major names: the SQL client modules, the pool's
 * configuration and layer, the pool size of a client, statements kept out of the caller's
 * transaction, and how a multi-statement text runs. Its twin is `src/fx/v4/sql.ts`; the two export
 * the same names with the same meaning. Shared code imports them from `#fx/sql`.
 *
 * On Effect 3 the client is `@effect/sql`'s `SqlClient` with `@effect/sql-pg` 0.53 (on `pg`); on
 * Effect 4 it is `effect/sql/SqlClient` with `@effect/sql-pg` 4 (its own wire protocol).
 *
 * @internal
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError_ from "@effect/sql/SqlError"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
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
