/**
 * The `effect-rate-sync/postgres` entry: the PostgreSQL store (needs the optional peers
 * `@effect/sql` and `@effect/sql-pg`).
 *
 * Without `@effect/sql` or `@effect/sql-pg` installed, importing this entry fails with an error
 * (`code` `ERR_MODULE_NOT_FOUND`, Node's error as its `cause`) that ends with
 * `npm install @effect/sql @effect/sql-pg`. To report it, the store module is loaded with a
 * top-level `await import(...)`: this entry is an async module, so `require` of it is refused
 * (`ERR_REQUIRE_ASYNC_MODULE`) where `require` of ES modules works; use `import`.
 *
 * @since 0.1.0
 */
import { importDriver } from "./internal/peer.js"
import type * as PostgresStoreModule from "./PostgresStore.js"

const loaded = await importDriver("postgres", ["@effect/sql", "@effect/sql-pg"], () => import("./PostgresStore.js"))

/**
 * The PostgreSQL store module (`PostgresStore.layer`, `PostgresStore.make`, ...).
 *
 * @since 0.1.0
 */
export const PostgresStore: typeof PostgresStoreModule = loaded

/**
 * @since 0.1.0
 */
export declare namespace PostgresStore {
  /**
   * @since 0.1.0
   */
  export type PostgresStoreOptions = PostgresStoreModule.PostgresStoreOptions
}

/**
 * The PostgreSQL store read from the environment (`RATE_SYNC_POSTGRES_URL`, ...).
 *
 * @since 0.1.0
 * @category layers
 */
export const PostgresStoreLive: typeof PostgresStoreModule.PostgresStoreLive = loaded.PostgresStoreLive
