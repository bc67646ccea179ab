/**
 * The `effect-rate-sync/postgres` entry: the PostgreSQL store (needs the optional peers
 * `@effect/sql` and `@effect/sql-pg` on Effect 3, `@effect/sql-pg` alone on Effect 4, whose
 * `SqlClient` is in `effect` itself).
 *
 * Without them installed, importing this entry fails with an error (`code`
 * `ERR_MODULE_NOT_FOUND`, Node's error as its `cause`) that ends with the install line
 * (`npm install @effect/sql @effect/sql-pg` on Effect 3, `npm install @effect/sql-pg` on
 * Effect 4). To report it, the store module is loaded with a
 * top-level `await import(...)`: this entry is an async module, so `require` of it is refused
 * (`ERR_REQUIRE_ASYNC_MODULE`) where `require` of ES modules works; use `import`.
 *
 * @since 0.1.0
 */
import * as Fx from "#fx/core"
import { importDriver } from "./internal/peer.js"
import type * as PostgresStoreModule from "./PostgresStore.js"

/** The optional peers the store needs on this build's Effect major (`#fx/core` imports `effect` only). */
const major: number = Fx.major
const PEERS = major === 4 ? ["@effect/sql-pg"] : ["@effect/sql", "@effect/sql-pg"]

const loaded = await importDriver("postgres", PEERS, () => import("./PostgresStore.js"))

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
