/**
 * Every Effect `Metric` the library updates. Each is tagged with `limiter` (the limiter id, never
 * the rate-limit key), so an OpenTelemetry or Prometheus exporter picks them up with no glue.
 *
 * @since 0.1.0
 */
import * as Fx from "#fx/core"
import { waitTimeHistogram, waitTimeUnit } from "./internal/metrics.js"

/**
 * Calls admitted (acquire, tryAcquire and allowed checks).
 *
 * @since 0.1.0
 * @category metrics
 */
export const acquisitions = Fx.counter("rate_sync_acquisitions_total", {
  description: "Calls admitted by a limiter",
  incremental: true
})

/**
 * Calls refused (tryAcquire false, refused check, acquire that could not wait long enough).
 *
 * @since 0.1.0
 * @category metrics
 */
export const refusals = Fx.counter("rate_sync_refusals_total", {
  description: "Calls refused by a limiter",
  incremental: true
})

/**
 * `acquire` calls that ran out of their timeout.
 *
 * @since 0.1.0
 * @category metrics
 */
export const timeouts = Fx.counter("rate_sync_timeouts_total", {
  description: "acquire calls that timed out",
  incremental: true
})

/**
 * Failed store round trips.
 *
 * @since 0.1.0
 * @category metrics
 */
export const storeErrors = Fx.counter("rate_sync_store_errors_total", {
  description: "Store round trips that failed",
  incremental: true
})

/**
 * Calls let through by the fail-open policy while the store failed.
 *
 * @since 0.1.0
 * @category metrics
 */
export const failOpen = Fx.counter("rate_sync_fail_open_total", {
  description: "Calls admitted because the store failed and the limiter is fail-open",
  incremental: true
})

/**
 * Concurrency slots released.
 *
 * @since 0.1.0
 * @category metrics
 */
export const releases = Fx.counter("rate_sync_releases_total", {
  description: "Concurrency slots released",
  incremental: true
})

/**
 * Concurrency leases found expired when renewing.
 *
 * @since 0.1.0
 * @category metrics
 */
export const leasesLost = Fx.counter("rate_sync_leases_lost_total", {
  description: "Concurrency leases that expired while held",
  incremental: true
})

/**
 * Concurrency slots currently held by this process.
 *
 * @since 0.1.0
 * @category metrics
 */
export const inFlight = Fx.gauge("rate_sync_in_flight", {
  description: "Concurrency slots held by this process"
})

/**
 * Time `acquire` waited, in milliseconds: exponential buckets from 1 ms, doubling up to 65 536 ms
 * (about 65 s; 32 s is the bucket below it), then `+Inf`. Tagged `unit=ms`, which OpenTelemetry
 * exporters read as the instrument's unit.
 *
 * @since 0.1.0
 * @category metrics
 */
export const waitTime: Fx.Histogram = Fx.withLabels(waitTimeHistogram, waitTimeUnit)

/**
 * The counters of a limiter, each tagged `limiter=<id>`: every one shows a series (at 0) from the
 * limiter's registration on, so an alert on one that never moved has a series to watch.
 *
 * @since 0.1.0
 * @category metrics
 */
export const counters = [
  acquisitions,
  refusals,
  timeouts,
  storeErrors,
  failOpen,
  releases,
  leasesLost
] as const
