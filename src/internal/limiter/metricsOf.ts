/**
 * Where a registry's metrics go (`Fx.metricContext` of the context `RateLimiter.make` ran in: on
 * Effect 4 its `Metric.MetricRegistry`), kept beside the registry's service, so that the HTTP
 * request counter of a middleware using that service lands beside the limiters' own metrics.
 *
 * @internal
 */
import type * as Fx from "#fx/core"
import type { RateLimiterService } from "../../RateLimiter.js"

/** One object per registry (its identity keys the counters' series), the context inside. @internal */
export interface Metrics {
  readonly context: Fx.MetricContext
}

const byService = new WeakMap<RateLimiterService, Metrics>()

/** Records where `service`'s metrics go (once, when the registry is made). @internal */
export const setMetricsOf = (service: RateLimiterService, context: Fx.MetricContext): void => {
  byService.set(service, { context })
}

/** Where `service`'s metrics go; `undefined` for a service not made by `RateLimiter.make` (a test double). @internal */
export const metricsOf = (service: RateLimiterService): Metrics | undefined => byService.get(service)
