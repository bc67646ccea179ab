/**
 * The wait-time histogram before its unit label: the library updates it with a limiter's labels
 * and the unit label together, bound once per limiter (`LimiterEntry.series.waitTime`, through
 * `Fx.updater`), which costs what an untagged update costs on either major;
 * `RateLimitMetrics.waitTime` is the same series with the unit label applied, for readers.
 * (Updating the tagged metric merges the labels on every call, which measured ~25% of a
 * memory-store `tryAcquire` on Effect 3.)
 *
 * @internal
 */
import * as Fx from "#fx/core"

/**
 * `unit=ms`: the label OpenTelemetry exporters (`@effect/opentelemetry`) read as the instrument's
 * unit (UCUM `ms`); without it they report `1`. @internal
 */
export const waitTimeUnit: Readonly<Record<string, string>> = { unit: "ms" }

/**
 * The labels of a limiter's wait-time series: the unit label, then `limiter`, in the order
 * `RateLimitMetrics.waitTime` tagged by limiter builds (an Effect 3 metric key's labels are
 * ordered; Effect 4 sorts them). Made once per limiter. @internal
 */
export const waitTimeLabels = (limiter: string): Fx.Labels => Fx.labels({ ...waitTimeUnit, limiter })

/** @internal */
export const waitTimeHistogram: Fx.Histogram = Fx.exponentialHistogram("rate_sync_wait_time_ms", {
  // `count` includes the `+Inf` bucket: 17 finite bounds, 2^0 .. 2^16 ms.
  start: 1,
  factor: 2,
  count: 18,
  description: "Time acquire waited for a token or slot, in milliseconds"
})
