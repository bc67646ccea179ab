/**
 * effect-rate-sync: distributed rate limiting for Effect.
 *
 * The root holds the driver-free modules only; drivers live behind subpaths
 * (`effect-rate-sync/redis`, `effect-rate-sync/http`), so importing the root never loads an
 * optional peer dependency.
 *
 * @since 0.1.0
 */

/**
 * The registry of limiters: `acquire`, `tryAcquire`, `check`, `withRateLimit`, registration,
 * inspection and metrics.
 *
 * @since 0.1.0
 */
export * as RateLimiter from "./RateLimiter.js"

/**
 * The store SPI every store implements.
 *
 * @since 0.1.0
 */
export * as RateLimitStore from "./RateLimitStore.js"

/**
 * The embedded in-process store.
 *
 * @since 0.1.0
 */
export * as MemoryStore from "./MemoryStore.js"

/**
 * Zero-config: `rate-sync.toml` plus environment overrides.
 *
 * @since 0.1.0
 */
export * as RateSync from "./RateSync.js"

/**
 * Loading and validating `rate-sync.toml`.
 *
 * @since 0.1.0
 */
export * as RateSyncConfig from "./RateSyncConfig.js"

/**
 * Errors.
 *
 * @since 0.1.0
 */
export * as RateLimitError from "./RateLimitError.js"

/**
 * The Effect metrics the library updates.
 *
 * @since 0.1.0
 */
export * as RateLimitMetrics from "./RateLimitMetrics.js"

/**
 * Limiter definitions, validation and rate strings.
 *
 * @since 0.1.0
 */
export * as LimiterDefinition from "./LimiterDefinition.js"

/**
 * Store definitions per engine.
 *
 * @since 0.1.0
 */
export * as StoreDefinition from "./StoreDefinition.js"
