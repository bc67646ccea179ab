/**
 * Where a registry's metrics go (`Fx.metricContext` of the context `RateLimiter.make` ran in: on
 * Effect 4 its `Metric.MetricRegistry`), kept beside the registry's service, so that the HTTP
 * request counter of a middleware using that service lands beside the limiters' own metrics.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import type { RateLimiterService } from "../../RateLimiter.js"

/** One object per registry (its identity keys the counters' series), the context inside. @internal */
export interface Metrics {
  readonly context: Fx.MetricContext
}

const byService = new WeakMap<RateLimiterService, Metrics>()

/** Records where `service`'s metrics go (once, when the registry is made). @internal */
export const recordMetricContext = (service: RateLimiterService, context: Fx.MetricContext): void => {
  byService.set(service, { context })
}

/** Where `service`'s metrics go; `undefined` for a service not made by `RateLimiter.make` (a test double). @internal */
export const metricContextOf = (service: RateLimiterService): Metrics | undefined => byService.get(service)

/**
 * The updates of `counter`'s series `{limiter, outcome}` (the HTTP request counter), each bound
 * once to where the metrics of a registry go (`Fx.updater`: no allocation per update), for the
 * Effect middleware and the framework adapters alike. @internal
 */
export const makeOutcomeSeries = (counter: Fx.Counter) => {
  const byRegistry = new WeakMap<Metrics, Map<string, (n: number) => void>>()
  const unknown = new Map<string, (n: number) => void>()
  return (metrics: Metrics | undefined, limiter: string, outcome: string): ((n: number) => void) => {
    let series = metrics === undefined ? unknown : byRegistry.get(metrics)
    if (series === undefined) {
      series = new Map()
      if (metrics !== undefined) byRegistry.set(metrics, series)
    }
    const id = `${limiter}\u0000${outcome}`
    let update = series.get(id)
    if (update === undefined) {
      update = Fx.updater(counter, Fx.labels({ limiter, outcome }), metrics?.context)
      series.set(id, update)
    }
    return update
  }
}
