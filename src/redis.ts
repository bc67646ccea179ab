/**
 * The `effect-rate-sync/redis` entry: the Redis store (needs the optional peer `ioredis`).
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as RedisStore from "./RedisStore.js"

/**
 * The Redis store read from the environment (`RATE_SYNC_REDIS_URL`, ...).
 *
 * @since 0.1.0
 * @category layers
 */
export { RedisStoreLive } from "./RedisStore.js"
