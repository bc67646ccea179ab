/**
 * The HTTP integration, behind the `effect-rate-sync/http` subpath so the root import never loads
 * the HTTP modules: `@effect/platform` on Effect 3, `effect/http` and `effect/http-api` on Effect 4.
 *
 * @since 0.1.0
 */

/**
 * Rate-limit middleware, per-route limits, `HttpApi` middleware and IETF `RateLimit` headers.
 *
 * @since 0.1.0
 */
export * as HttpRateLimit from "./HttpRateLimit.js"
