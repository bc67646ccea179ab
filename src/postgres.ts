/**
 * The `effect-rate-sync/postgres` entry: the PostgreSQL store (needs the optional peers
 * `@effect/sql` and `@effect/sql-pg`).
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as PostgresStore from "./PostgresStore.js"

/**
 * The PostgreSQL store read from the environment (`RATE_SYNC_POSTGRES_URL`, ...).
 *
 * @since 0.1.0
 * @category layers
 */
export { PostgresStoreLive } from "./PostgresStore.js"
