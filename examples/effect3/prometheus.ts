/**
 * Prometheus metrics of the limiters on Effect 3. Effect 3 has no Prometheus exporter of its own
 * (the Effect 4 version, examples/effect4/prometheus.ts, uses `effect/observability`), so this file
 * renders `Metric.snapshot` (Effect's default metric registry, where every `rate_sync_*` metric
 * lives: docs/observability.md) to the Prometheus text exposition format in one small function,
 * `toPrometheus`, and serves it on `GET /metrics` with `@effect/platform`'s HttpRouter. The output
 * is line for line what Effect 4's `PrometheusMetrics` gives for the same traffic.
 *
 *   npm run example:prometheus              # serve on a free port, admit and refuse a few calls, print one scrape, exit
 *   npm run example:prometheus -- --serve   # serve on http://127.0.0.1:9464/metrics (PORT to change)
 *
 * With `@effect/opentelemetry` and the OpenTelemetry SDK installed, `@opentelemetry/exporter-prometheus`
 * does the same job as `toPrometheus` (docs/observability.md, "Exporting, per Effect major").
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Metric, MetricState, Option } from "effect"
import type { MetricLabel, MetricPair } from "effect"
import { createServer } from "node:http"
import { MemoryStore, RateLimiter } from "effect-rate-sync"

const demo = !process.argv.includes("--serve")
const port = demo ? 0 : Number(process.env["PORT"] ?? 9464)

// ---------------------------------------------------------------------------------------------
// Metric.snapshot -> Prometheus text format (version 0.0.4)

/** A metric or label name as Prometheus allows it: `[a-zA-Z_][a-zA-Z0-9_]*` (`:` too in metric names). */
const sanitize = (name: string, extra = ""): string => {
  const safe = name.replace(new RegExp(`[^a-zA-Z0-9_${extra}]`, "g"), "_")
  return /^[0-9]/.test(safe) ? `_${safe}` : safe
}

/** A label value, quoted: backslash, double quote and newline escaped. */
const quote = (value: string): string => `"${value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")}"`

/** A sample value: integers and floats as JavaScript prints them, infinities as `+Inf` / `-Inf`. */
const sample = (value: number | bigint): string =>
  typeof value === "bigint" ? value.toString() : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value)

/**
 * `{name="value",…}` from a metric's tags, then `extra` (`le`, `quantile`, `key`). A `unit` or
 * `time_unit` tag is metadata, not a series label: rate-sync tags its wait histogram `unit=ms` for
 * OpenTelemetry exporters, and the name already says it (`rate_sync_wait_time_ms`), as Effect 4's
 * exporter drops it too.
 */
const labels = (tags: ReadonlyArray<MetricLabel.MetricLabel>, extra: ReadonlyArray<readonly [string, string]> = []): string => {
  const pairs = [
    ...tags.filter((tag) => tag.key !== "unit" && tag.key !== "time_unit").map((tag): readonly [string, string] => [tag.key, tag.value]),
    ...extra
  ]
  return pairs.length === 0 ? "" : `{${pairs.map(([key, value]) => `${sanitize(key)}=${quote(value)}`).join(",")}}`
}

/**
 * The samples of one series, by state:
 * - counter: `name{…} count` (the name as the metric is named: rate-sync's counters end in `_total`);
 * - gauge: `name{…} value`;
 * - histogram: `name_bucket{…,le="b"}` for each bound, cumulative (Effect 3's buckets already are),
 *   then `le="+Inf"` (every observation), `name_sum`, `name_count`;
 * - summary: `name{…,quantile="q"}` for each quantile with a value, `name_sum`, `name_count`;
 * - frequency: one counter sample per value seen, labelled `key`.
 */
const samples = (name: string, tags: ReadonlyArray<MetricLabel.MetricLabel>, state: MetricState.MetricState.Untyped): Array<string> => {
  if (MetricState.isCounterState(state)) return [`${name}${labels(tags)} ${sample(state.count)}`]
  if (MetricState.isGaugeState(state)) return [`${name}${labels(tags)} ${sample(state.value)}`]
  if (MetricState.isHistogramState(state)) {
    return [
      ...Array.from(state.buckets)
        .filter(([bound]) => bound !== Infinity) // Effect 3's last bound is Infinity: written as +Inf below
        .map(([bound, cumulative]) => `${name}_bucket${labels(tags, [["le", String(bound)]])} ${cumulative}`),
      `${name}_bucket${labels(tags, [["le", "+Inf"]])} ${state.count}`,
      `${name}_sum${labels(tags)} ${sample(state.sum)}`,
      `${name}_count${labels(tags)} ${state.count}`
    ]
  }
  if (MetricState.isSummaryState(state)) {
    return [
      ...Array.from(state.quantiles).flatMap(([q, value]) =>
        Option.isSome(value) ? [`${name}${labels(tags, [["quantile", String(q)]])} ${sample(value.value)}`] : []
      ),
      `${name}_sum${labels(tags)} ${sample(state.sum)}`,
      `${name}_count${labels(tags)} ${state.count}`
    ]
  }
  if (MetricState.isFrequencyState(state)) {
    return Array.from(state.occurrences).map(([key, count]) => `${name}${labels(tags, [["key", key]])} ${count}`)
  }
  return []
}

/** The Prometheus type of a state (a frequency is a family of counters). */
const typeOf = (state: MetricState.MetricState.Untyped): string =>
  MetricState.isCounterState(state) || MetricState.isFrequencyState(state)
    ? "counter"
    : MetricState.isGaugeState(state)
    ? "gauge"
    : MetricState.isHistogramState(state)
    ? "histogram"
    : "summary"

/**
 * The whole snapshot as Prometheus text: one family per metric name (in the order the registry
 * lists them, its series sorted by labels), each with `# HELP` (when the metric has a description)
 * and `# TYPE`, then its samples.
 */
const toPrometheus = (snapshot: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Array<MetricPair.MetricPair.Untyped>>()
  for (const pair of snapshot) {
    const name = sanitize(pair.metricKey.name, ":")
    const family = families.get(name)
    if (family === undefined) families.set(name, [pair])
    else family.push(pair)
  }
  const lines: Array<string> = []
  for (const [name, pairs] of families) {
    const first = pairs[0]
    if (first === undefined) continue
    const help = Option.getOrUndefined(first.metricKey.description)
    if (help !== undefined) lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`)
    lines.push(`# TYPE ${name} ${typeOf(first.metricState)}`)
    const series = pairs.map((pair) => ({ pair, key: labels(pair.metricKey.tags) }))
    series.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    for (const { pair } of series) lines.push(...samples(name, pair.metricKey.tags, pair.metricState))
  }
  return `${lines.join("\n")}\n`
}

// ---------------------------------------------------------------------------------------------
// The limiters, the /metrics route, the traffic

const Limiters = RateLimiter.layer({
  api: { ratePerSecond: 2, burst: 3 },
  login: { algorithm: "sliding_window", limit: 2, window: "1 minute" }
}).pipe(Layer.provide(MemoryStore.layer()))

const router = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/metrics",
    Effect.map(Metric.snapshot, (snapshot) =>
      HttpServerResponse.text(toPrometheus(snapshot), { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
  )
)

const Metrics = HttpServer.serve(router).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)

/** Some traffic: 3 api calls admitted at once (the burst), a 4th waits; 2 logins admitted, a 3rd refused. */
const traffic = Effect.gen(function*() {
  yield* Effect.forEach([1, 2, 3, 4], () => Effect.scoped(RateLimiter.acquire("api")), { discard: true })
  for (let i = 0; i < 3; i++) yield* RateLimiter.check("login", { key: "203.0.113.7" })
})

const scrape = Effect.gen(function*() {
  const base = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
  const text = yield* Effect.promise(() => fetch(`${base}/metrics`).then((response) => response.text()))
  yield* Console.log(text.split("\n").filter((line) => line.startsWith("rate_sync_") || line.startsWith("# TYPE rate_sync_")).join("\n"))
})

if (demo) {
  NodeRuntime.runMain(Effect.andThen(traffic, scrape).pipe(Effect.provide(Layer.merge(Limiters, Metrics))))
} else {
  NodeRuntime.runMain(HttpServer.logAddress.pipe(Effect.andThen(Effect.never), Effect.provide(Layer.merge(Limiters, Metrics))))
}
