/**
 * The HTTP integration for `@effect/platform`, behind the `effect-rate-sync/http` subpath so the
 * root import never loads `@effect/platform`.
 *
 * @since 0.1.0
 */

/**
 * Rate-limit middleware, per-route limits, `HttpApi` middleware and IETF `RateLimit` headers.
 *
 * @since 0.1.0
 */
export * as HttpRateLimit from "./HttpRateLimit.js"
