/**
 * The wait-time histogram before its unit label: the library updates it with a limiter's tags and
 * the unit label in one array made once per limiter (`LimiterEntry.waitTags`), which costs what an
 * untagged update costs; `RateLimitMetrics.waitTime` is the same series with the unit label
 * applied, for readers. (Updating the tagged metric merges the label arrays on every call, which
 * measured ~25% of a memory-store `tryAcquire`.)
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"

/**
 * `unit=ms`: the label OpenTelemetry exporters (`@effect/opentelemetry`) read as the instrument's
 * unit (UCUM `ms`); without it they report `1`. @internal
 */
export const waitTimeUnit = MetricLabel.make("unit", "ms")

/** @internal */
export const waitTimeHistogram = Metric.histogram(
  "rate_sync_wait_time_ms",
  // `count` includes the `+Inf` bucket: 17 finite bounds, 2^0 .. 2^16 ms.
  MetricBoundaries.exponential({ start: 1, factor: 2, count: 18 }),
  "Time acquire waited for a token or slot, in milliseconds"
)
