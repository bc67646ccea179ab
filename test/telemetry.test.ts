/**
 * Telemetry as an APM tool and a metrics exporter see it: spans recorded by a real `Tracer` (the
 * native one, wrapped to keep every span it makes), and the metric registry's snapshot.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect, Exit, Tracer } from "effect"
import { MemoryStore, RateLimiter, RateLimitMetrics, RateLimitStore } from "effect-rate-sync"
import * as T from "#test/effect"

let counter = 0
const fresh = (name: string) => `${name}-telemetry-${++counter}`

/** The native tracer, keeping each span it makes. */
const recording = T.recordingTracer

/** The one ended `RateLimiter.acquire` span, with its exit and attributes. */
const acquireSpan = (spans: ReadonlyArray<Tracer.Span>) => {
  const found = spans.filter((s) => s.name === "RateLimiter.acquire")
  assert.strictEqual(found.length, 1, "one RateLimiter.acquire span")
  const span = found[0]
  if (span === undefined) throw new Error("no span")
  const status = span.status
  if (status._tag !== "Ended") throw new Error("span not ended")
  return { exit: status.exit, attributes: span.attributes }
}

/** A store whose rate operations all fail as unavailable (its connection is down). */
const downStore = Effect.map(MemoryStore.make(), (memory) => {
  const { unsafeTake: _, ...effectful } = memory
  const down = (operation: string) => () =>
    Effect.fail(new RateLimitStore.StoreError({ engine: "down", operation, message: "connection refused" }))
  return RateLimitStore.make({
    ...effectful,
    engine: "down",
    tokenBucket: down("tokenBucket"),
    slidingWindow: down("slidingWindow"),
    fixedWindow: down("fixedWindow")
  })
})

describe("spans", () => {
  it.scoped("an admitted tryAcquire ends its span OK, outcome admitted, with cost, wait and key presence (never the key)", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recording
      const limiter = yield* RateLimiter.make({ stores: { default: yield* MemoryStore.make() }, limiters: { api: { ratePerSecond: 1, burst: 3 } } })
      assert.isTrue(yield* limiter.tryAcquire("api", { key: "user@example.com", cost: 2 }).pipe(Effect.withTracer(tracer)))
      const { attributes, exit } = acquireSpan(spans)
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(attributes.get("rate_sync.outcome"), "admitted")
      assert.strictEqual(attributes.get("rate_sync.cost"), 2)
      assert.strictEqual(attributes.get("rate_sync.wait_ms"), 0)
      assert.strictEqual(attributes.get("rate_sync.key_present"), true)
      assert.strictEqual(attributes.get("rate_sync.limiter"), "api")
      for (const value of attributes.values()) assert.notInclude(String(value), "user@example.com")
    }))

  it.scoped("a refused tryAcquire ends its span OK (not an error), outcome refused; the caller still gets false", () =>
    Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({ stores: { default: yield* MemoryStore.make() }, limiters: { api: { ratePerSecond: 1 } } })
      assert.isTrue(yield* limiter.tryAcquire("api"))
      const { spans, tracer } = yield* recording
      assert.isFalse(yield* limiter.tryAcquire("api").pipe(Effect.withTracer(tracer)))
      const { attributes, exit } = acquireSpan(spans)
      assert.isTrue(Exit.isSuccess(exit), "a refusal is an outcome, not a span error")
      assert.strictEqual(attributes.get("rate_sync.outcome"), "refused")
      assert.strictEqual(attributes.get("rate_sync.key_present"), false)
      assert.strictEqual(attributes.get("rate_sync.cost"), 1)
      assert.isFalse(attributes.has("code.stacktrace"))
      // acquire still fails with RateLimitExceeded, outside the span.
      const refused = yield* Effect.exit(Effect.scoped(limiter.acquire("api", { timeout: 0 })))
      assert.isTrue(Exit.isFailure(refused))
      assert.strictEqual((yield* limiter.metrics("api")).refusals, 2)
    }))

  it.scoped("a store failure on a fail-closed limiter ends the span as an error, outcome error", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recording
      const limiter = yield* RateLimiter.make({ stores: { default: yield* downStore }, limiters: { closed: { ratePerSecond: 10, failClosed: true } } })
      const result = yield* Effect.exit(limiter.tryAcquire("closed").pipe(Effect.withTracer(tracer)))
      assert.isTrue(Exit.isFailure(result))
      const { attributes, exit } = acquireSpan(spans)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(attributes.get("rate_sync.outcome"), "error")
    }))

  it.scoped("a store failure on a fail-open limiter ends the span OK, outcome failed_open", () =>
    Effect.gen(function*() {
      const { spans, tracer } = yield* recording
      const limiter = yield* RateLimiter.make({ stores: { default: yield* downStore }, limiters: { open: { ratePerSecond: 10 } } })
      assert.isTrue(yield* limiter.tryAcquire("open").pipe(Effect.withTracer(tracer)))
      const { attributes, exit } = acquireSpan(spans)
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(attributes.get("rate_sync.outcome"), "failed_open")
    }))
})

const forLimiter = (series: T.Series, id: string) => series.labels["limiter"] === id

describe("metrics", () => {
  it.scoped("every counter of a freshly registered limiter exports a series at 0 before anything happened", () =>
    Effect.gen(function*() {
      const id = fresh("zero")
      yield* RateLimiter.make({ stores: { default: yield* MemoryStore.make() }, limiters: { [id]: { ratePerSecond: 1 } } })
      // The snapshot first: Metric.value would create a missing series itself.
      const snapshot = yield* T.metricSeries
      for (const name of [
        "rate_sync_acquisitions_total",
        "rate_sync_refusals_total",
        "rate_sync_timeouts_total",
        "rate_sync_store_errors_total",
        "rate_sync_fail_open_total",
        "rate_sync_releases_total",
        "rate_sync_leases_lost_total"
      ]) {
        assert.isTrue(snapshot.some((p) => p.name === name && forLimiter(p, id)), `${name} exported for ${id}`)
      }
      assert.strictEqual(RateLimitMetrics.counters.length, 7)
      for (const c of RateLimitMetrics.counters) {
        assert.strictEqual(yield* T.counterCount(c, { limiter: id }), 0)
      }
    }))

  it.scoped("the wait histogram is in milliseconds (name, description, unit=ms tag), buckets 1 ms doubling to 65 536 ms (past 32 s)", () =>
    Effect.gen(function*() {
      const bounds = yield* T.histogramBounds(RateLimitMetrics.waitTime)
      assert.deepStrictEqual(bounds, Array.from({ length: 17 }, (_, i) => 2 ** i))
      assert.include(bounds, 32_768)
      const id = fresh("wait")
      const limiter = yield* RateLimiter.make({ stores: { default: yield* MemoryStore.make() }, limiters: { [id]: { ratePerSecond: 1 } } })
      assert.isTrue(yield* limiter.tryAcquire(id))
      const snapshot = yield* T.metricSeries
      const series = snapshot.find((p) => p.name === "rate_sync_wait_time_ms" && forLimiter(p, id))
      if (series === undefined) throw new Error("no wait-time series")
      assert.strictEqual(series.labels["unit"], "ms")
      assert.include(series.description ?? "", "milliseconds")
      // RateLimitMetrics.waitTime, tagged by limiter, reads that same series.
      assert.strictEqual(yield* T.histogramCount(RateLimitMetrics.waitTime, { limiter: id }), 1)
    }))
})
