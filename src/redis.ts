/**
 * The `effect-rate-sync/redis` entry: the Redis store (needs the optional peer `ioredis`).
 *
 * Without `ioredis` installed, importing this entry fails with an error (`code`
 * `ERR_MODULE_NOT_FOUND`, Node's error as its `cause`) that ends with `npm install ioredis`. To
 * report it, the store module is loaded with a top-level `await import(...)`: this entry is an
 * async module, so `require("effect-rate-sync/redis")` is refused (`ERR_REQUIRE_ASYNC_MODULE`)
 * where `require` of ES modules works; use `import`.
 *
 * @since 0.1.0
 */
import { importDriver } from "./internal/peer.js"
import type * as RedisStoreModule from "./RedisStore.js"

const loaded = await importDriver("redis", ["ioredis"], () => import("./RedisStore.js"))

/**
 * The Redis store module (`RedisStore.layer`, `RedisStore.make`, ...).
 *
 * @since 0.1.0
 */
export const RedisStore: typeof RedisStoreModule = loaded

/**
 * @since 0.1.0
 */
export declare namespace RedisStore {
  /**
   * @since 0.1.0
   */
  export type RedisStoreOptions = RedisStoreModule.RedisStoreOptions
}

/**
 * The Redis store read from the environment (`RATE_SYNC_REDIS_URL`, ...).
 *
 * @since 0.1.0
 * @category layers
 */
export const RedisStoreLive: typeof RedisStoreModule.RedisStoreLive = loaded.RedisStoreLive
