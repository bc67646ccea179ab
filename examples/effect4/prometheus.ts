/**
 * Prometheus metrics of the limiters on Effect 4, with no glue: effect 4's own
 * `PrometheusMetrics.layerHttp()` serves `/metrics` from Effect's metric registry, where every
 * `rate_sync_*` metric lives (docs/observability.md).
 *
 *   npm run example:prometheus:effect4              # serve on a free port, admit and refuse a few calls, print one scrape, exit
 *   npm run example:prometheus:effect4 -- --serve   # serve on http://127.0.0.1:9464/metrics (PORT to change)
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as Layer from "effect/Layer"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import { MemoryStore, RateLimiter } from "effect-rate-sync"

const demo = !process.argv.includes("--serve")
const port = demo ? 0 : Number(process.env["PORT"] ?? 9464)

const Limiters = RateLimiter.layer({
  api: { ratePerSecond: 2, burst: 3 },
  login: { algorithm: "sliding_window", limit: 2, window: "1 minute" }
}).pipe(Layer.provide(MemoryStore.layer()))

const Metrics = HttpRouter.serve(PrometheusMetrics.layerHttp(), { disableLogger: true, disableListenLog: demo }).pipe(
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
  NodeRuntime.runMain(Layer.launch(Layer.merge(Limiters, Metrics)))
}
