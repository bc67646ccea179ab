/**
 * A registered limiter as the registry keeps it: its spec, the store entry it is bound to, its
 * rate operations bound once, its statistics and the bookkeeping every answer gets.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"
import type { LimiterSpec } from "../../LimiterDefinition.js"
import { StoreUnavailable } from "../../RateLimitError.js"
import type { LimiterInfo, RateLimiterMetrics } from "../../RateLimiter.js"
import * as Metrics from "../../RateLimitMetrics.js"
import { waitTimeHistogram, waitTimeLabels } from "../metrics.js"
import type { PeekRequest, RateLimitStoreService, RateTake, StoreDecision, StoreError } from "../../RateLimitStore.js"
import type { Blocks } from "./blockCache.js"

/** @internal */
export interface Stats {
  totalAcquisitions: number
  totalWaitTimeMs: number
  maxWaitTimeMs: number
  casFailures: number
  timeouts: number
  lastAcquisitionAt: number | undefined
  currentConcurrent: number
  maxConcurrentReached: number
  totalReleases: number
  refusals: number
  storeErrors: number
  failOpenAdmits: number
  leasesLost: number
  cachedRefusals: number
}

const newStats = (): Stats => ({
  totalAcquisitions: 0,
  totalWaitTimeMs: 0,
  maxWaitTimeMs: 0,
  casFailures: 0,
  timeouts: 0,
  lastAcquisitionAt: undefined,
  currentConcurrent: 0,
  maxConcurrentReached: 0,
  totalReleases: 0,
  refusals: 0,
  storeErrors: 0,
  failOpenAdmits: 0,
  leasesLost: 0,
  cachedRefusals: 0
})

/** @internal */
export interface StoreEntry {
  readonly id: string
  store: RateLimitStoreService
  /** The child scope of the registry's scope the store was built in: closed when it is replaced. */
  scope: Fx.Closeable
  initialized: boolean
  /**
   * The block cache is on for the limiters on this store: neither the registry's
   * `blockCache.stores` nor its definition's `blockCache` turn it off.
   */
  blockCache: boolean
}

/** One rate decision of a limiter, its parameters bound. */
type Take = (key: string, cost: number, maxWaitMs: number) => Effect.Effect<StoreDecision, StoreError>

/**
 * The Effect metric series of one limiter (`limiter=<id>`), each update bound once
 * (`Fx.updater`): an update on the hot path allocates nothing.
 *
 * @internal
 */
export interface Series {
  readonly acquisitions: (n: number) => void
  readonly refusals: (n: number) => void
  readonly timeouts: (n: number) => void
  readonly storeErrors: (n: number) => void
  readonly failOpen: (n: number) => void
  readonly releases: (n: number) => void
  readonly leasesLost: (n: number) => void
  /** Sets the in-flight gauge. */
  readonly inFlight: (n: number) => void
  /** The wait histogram, with its `unit=ms` label (see `internal/metrics.ts`). */
  readonly waitTime: (ms: number) => void
}

/** @internal */
export interface LimiterEntry {
  readonly id: string
  readonly spec: LimiterSpec
  readonly storeEntry: StoreEntry
  readonly stats: Stats
  readonly series: Series
  /** Largest cost a single call may ask for. */
  readonly capacity: number
  /** The capacity a decision reports: burst, window limit, or max concurrent when rate-less. */
  readonly limit: number
  /** One rate decision, or undefined for a concurrency-only limiter. */
  readonly take: Take | undefined
  /**
   * The same decision (`maxWaitMs` 0) taken synchronously at `now`, when the limiter's current
   * store decides in-process (`unsafeTake`); `undefined` when it does not, or for a
   * concurrency-only limiter.
   */
  readonly takeNow: ((key: string, cost: number, now: number) => StoreDecision | undefined) | undefined
  /**
   * The limiter's rate take as the composite SPI names it (`takeAll`, `adjust`), or undefined for
   * a concurrency-only limiter. `key` is the store key.
   */
  readonly rateTake: ((key: string, cost: number, maxWaitMs: number) => RateTake) | undefined
  /** What `peek` is asked for `key` (the store key) and `cost`: the rate state, or the slots when rate-less. */
  readonly peekRequest: (key: string, cost: number) => PeekRequest
  /** The options of the `RateLimiter.acquire` span (made once). */
  readonly spanOptions: Tracer.SpanOptions
  /**
   * The local block cache (`blockCache.ts`): `undefined` when it is off (for the limiter or the
   * registry) or the limiter has no rate.
   */
  readonly blocks: Blocks | undefined
}

/** The rate operations of a limiter, bound to its parameters once. */
const makeTakes = (
  id: string,
  spec: LimiterSpec,
  storeEntry: StoreEntry
): Pick<LimiterEntry, "take" | "takeNow" | "rateTake" | "peekRequest"> => {
  switch (spec.algorithm) {
    case "token_bucket": {
      const rate = spec.ratePerSecond
      if (rate === undefined) {
        const limit = spec.maxConcurrent ?? 0
        return {
          take: undefined,
          takeNow: undefined,
          rateTake: undefined,
          peekRequest: (key) => ({ algorithm: "concurrency", limiter: id, key, limit })
        }
      }
      const burst = spec.burst
      const request = (key: string, cost: number, maxWaitMs: number) => ({
        limiter: id,
        key,
        ratePerSecond: rate,
        burst,
        cost,
        maxWaitMs
      })
      return {
        take: (key, cost, maxWaitMs) => storeEntry.store.tokenBucket(request(key, cost, maxWaitMs)),
        takeNow: (key, cost, now) => storeEntry.store.unsafeTake?.tokenBucket(request(key, cost, 0), now),
        rateTake: (key, cost, maxWaitMs) => ({ algorithm: "token_bucket", ...request(key, cost, maxWaitMs) }),
        peekRequest: (key, cost) => ({ algorithm: "token_bucket", limiter: id, key, ratePerSecond: rate, burst, cost })
      }
    }
    case "sliding_window":
    case "fixed_window": {
      const algorithm = spec.algorithm
      const limit = spec.limit ?? 0
      const windowMs = spec.windowMs ?? 0
      const sliding = algorithm === "sliding_window"
      const request = (key: string, cost: number) => ({ limiter: id, key, limit, windowMs, cost })
      return {
        take: (key, cost) =>
          sliding
            ? storeEntry.store.slidingWindow(request(key, cost))
            : storeEntry.store.fixedWindow(request(key, cost)),
        takeNow: (key, cost, now) => {
          const sync = storeEntry.store.unsafeTake
          if (sync === undefined) return undefined
          return sliding ? sync.slidingWindow(request(key, cost), now) : sync.fixedWindow(request(key, cost), now)
        },
        rateTake: (key, cost) => ({ algorithm, ...request(key, cost) }),
        peekRequest: (key, cost) => ({ algorithm, ...request(key, cost) })
      }
    }
  }
}

/**
 * The metric series of a newly registered limiter. Every counter is updated by 0, so each shows a
 * series from the first export on; an update by 0 of an existing series changes nothing. (The
 * in-flight gauge is left alone: setting it would overwrite another registry's value.) On Effect 4
 * they go to the registry of `metrics`, the `Metric.MetricRegistry` where the limiters' registry
 * was made.
 */
const newSeries = (id: string, metrics: Fx.MetricContext): Series => {
  const labels = Fx.labels({ limiter: id })
  const series: Series = {
    acquisitions: Fx.updater(Metrics.acquisitions, labels, metrics),
    refusals: Fx.updater(Metrics.refusals, labels, metrics),
    timeouts: Fx.updater(Metrics.timeouts, labels, metrics),
    storeErrors: Fx.updater(Metrics.storeErrors, labels, metrics),
    failOpen: Fx.updater(Metrics.failOpen, labels, metrics),
    releases: Fx.updater(Metrics.releases, labels, metrics),
    leasesLost: Fx.updater(Metrics.leasesLost, labels, metrics),
    inFlight: Fx.updater(Metrics.inFlight, labels, metrics),
    waitTime: Fx.updater(waitTimeHistogram, waitTimeLabels(id), metrics)
  }
  for (const counter of Metrics.counters) Fx.updater(counter, labels, metrics)(0)
  return series
}

const rateless = (spec: LimiterSpec): boolean => spec.algorithm === "token_bucket" && spec.ratePerSecond === undefined

/**
 * A limiter entry for `spec` on `storeEntry`; a re-registration under the same id keeps the
 * statistics and metric series of the entry it replaces.
 *
 * @internal
 */
export const makeEntry = (
  spec: LimiterSpec,
  storeEntry: StoreEntry,
  previous: LimiterEntry | undefined,
  blocks: Blocks | undefined,
  metrics: Fx.MetricContext
): LimiterEntry => ({
  id: spec.id,
  spec,
  storeEntry,
  stats: previous?.stats ?? newStats(),
  series: previous?.series ?? newSeries(spec.id, metrics),
  capacity: rateless(spec) ? Number.MAX_SAFE_INTEGER : spec.burst,
  limit: rateless(spec) ? spec.maxConcurrent ?? 0 : spec.burst,
  ...makeTakes(spec.id, spec, storeEntry),
  spanOptions: {
    attributes: { "rate_sync.limiter": spec.id, "rate_sync.store": storeEntry.id },
    kind: "internal",
    ...Fx.noSpanStack
  },
  blocks: rateless(spec) ? undefined : blocks
})

// ---------------------------------------------------------------------------------------------
// bookkeeping: the statistics and the Effect metrics, moved together

/** @internal */
export const recordStoreError = (entry: LimiterEntry): void => {
  entry.stats.storeErrors++
  entry.series.storeErrors(1)
}

/** @internal */
export const recordFailOpen = (entry: LimiterEntry): void => {
  entry.stats.failOpenAdmits++
  entry.series.failOpen(1)
}

/** @internal */
export const recordRefusal = (entry: LimiterEntry): void => {
  entry.stats.refusals++
  entry.series.refusals(1)
}

/** A wait that a caller's own timeout (set, finite, greater than 0) cut short. @internal */
export const recordTimeout = (entry: LimiterEntry): void => {
  entry.stats.timeouts++
  entry.series.timeouts(1)
}

/** @internal */
export const recordAcquisition = (entry: LimiterEntry, now: number, waitedMs: number): void => {
  const s = entry.stats
  s.totalAcquisitions++
  s.totalWaitTimeMs += waitedMs
  if (waitedMs > s.maxWaitTimeMs) s.maxWaitTimeMs = waitedMs
  s.lastAcquisitionAt = now
  entry.series.acquisitions(1)
}

/** The store answered: it is up, and its compare-and-set retries count. @internal */
export const recordAnswer = (entry: LimiterEntry, retries: number | undefined): void => {
  entry.storeEntry.initialized = true
  if (retries !== undefined) entry.stats.casFailures += retries
}

// ---------------------------------------------------------------------------------------------
// store failures

/** @internal */
export const unavailable = (storeEntry: StoreEntry, e: StoreError): StoreUnavailable =>
  new StoreUnavailable({
    storeId: storeEntry.id,
    engine: storeEntry.store.engine,
    cause: e.kind === "rejected" ? `the store rejected the request (${e.operation}): ${e.message}` : e.message
  })

/**
 * The fail-open / fail-closed policy, applied to a failed store round trip: `admitted` when the
 * limiter is fail-open, else `StoreUnavailable`. Fail-open is for a store that is unavailable; a
 * store that answered and rejected the request itself (`kind: "rejected"`, caused by the
 * request) never admits it, whatever the policy.
 *
 * @internal
 */
export const storeFailed = <A>(entry: LimiterEntry, e: StoreError, admitted: A): Effect.Effect<A, StoreUnavailable> => {
  recordStoreError(entry)
  if (entry.spec.failClosed || e.kind === "rejected") return Effect.fail(unavailable(entry.storeEntry, e))
  recordFailOpen(entry)
  return Effect.succeed(admitted)
}

// ---------------------------------------------------------------------------------------------
// inspection

/** @internal */
export const info = (entry: LimiterEntry): LimiterInfo => ({
  id: entry.id,
  store: entry.storeEntry.id,
  engine: entry.storeEntry.store.engine,
  spec: entry.spec,
  initialized: entry.storeEntry.initialized
})

/** @internal */
export const metricsOf = (entry: LimiterEntry): RateLimiterMetrics => {
  const s = entry.stats
  return {
    totalAcquisitions: s.totalAcquisitions,
    totalWaitTimeMs: s.totalWaitTimeMs,
    avgWaitTimeMs: s.totalAcquisitions === 0 ? 0 : s.totalWaitTimeMs / s.totalAcquisitions,
    maxWaitTimeMs: s.maxWaitTimeMs,
    casFailures: s.casFailures,
    timeouts: s.timeouts,
    lastAcquisitionAt: s.lastAcquisitionAt,
    currentConcurrent: s.currentConcurrent,
    maxConcurrentReached: s.maxConcurrentReached,
    totalReleases: s.totalReleases,
    refusals: s.refusals,
    storeErrors: s.storeErrors,
    failOpenAdmits: s.failOpenAdmits,
    leasesLost: s.leasesLost,
    cachedRefusals: s.cachedRefusals
  }
}
