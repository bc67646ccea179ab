/**
 * An HTTP server rate limited per client IP, on the in-process memory store: Effect 3, with
 * `@effect/platform` (HttpRouter.empty / HttpServer.serve). The Effect 4 version is
 * examples/effect4/http-server.ts.
 *
 *   npm run example:http              # serve on a free port, send a few requests, print the answers, exit
 *   npm run example:http -- --serve   # serve on http://127.0.0.1:3000 (PORT to change)
 *
 * - every route but /health: limiter "api", 5 requests per minute per client (sliding window),
 *   IETF `RateLimit` / `RateLimit-Policy` and legacy `X-RateLimit-*` headers on each response;
 * - POST /login: in addition, two limits charged as one unit (all or nothing): "login", 3 per 5
 *   minutes per client, and "login-global", 100 per 5 minutes for everyone; fail-closed (503 if
 *   the store is down);
 * - GET /search: in addition, a limit chosen per request by plan (`x-plan: pro`): "search-pro",
 *   100 per minute, else "search-free", 2 per minute, each keyed by client;
 * - requests from loopback may name the client in `X-Forwarded-For` (a local reverse proxy);
 * - a request with `x-api-key: internal` is exempt.
 *
 * Try: curl -i http://127.0.0.1:3000/hello   (six times)
 *      curl -i -H 'x-forwarded-for: 203.0.113.9' http://127.0.0.1:3000/hello
 */
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { MemoryStore, RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"

const demo = !process.argv.includes("--serve")
const port = demo ? 0 : Number(process.env["PORT"] ?? 3000)

const Limiters = RateLimiter.layer({
  api: { algorithm: "sliding_window", limit: 5, window: "1 minute" },
  login: { algorithm: "sliding_window", limit: 3, window: "5 minutes", failClosed: true },
  "login-global": { algorithm: "sliding_window", limit: 100, window: "5 minutes", failClosed: true },
  "search-free": { algorithm: "sliding_window", limit: 2, window: "1 minute" },
  "search-pro": { algorithm: "sliding_window", limit: 100, window: "1 minute" }
}).pipe(Layer.provide(MemoryStore.layer()))

// the plan picks the limiter (tiered plans); the key is the client, as for "api"
const searchLimits: HttpRateLimit.LimitOptions = {
  trustedProxies: ["loopback"],
  limits: (request) => Effect.succeed(request.headers["x-plan"] === "pro" ? "search-pro" : "search-free")
}

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/health", HttpServerResponse.text("ok")),
  HttpRouter.get("/hello", HttpServerResponse.text("hello\n")),
  HttpRouter.get("/search", HttpServerResponse.text("results\n").pipe(HttpRateLimit.limit("search-free", searchLimits))),
  HttpRouter.post(
    "/login",
    HttpServerResponse.text("welcome\n").pipe(HttpRateLimit.limit(["login", { limiter: "login-global", key: "all" }], {
        failOpen: false,
        trustedProxies: ["loopback"]
      }))
  )
)

const limitApi = HttpRateLimit.middleware({
  limiter: "api",
  exclude: ["/health"],
  trustedProxies: ["loopback"],
  key: (request, client) =>
    Effect.succeed(request.headers["x-api-key"] === "internal" ? HttpRateLimit.Exempt : client ?? "unknown")
})

const Server = HttpServer.serve(router, limitApi).pipe(
  Layer.provide(Limiters),
  Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host: "127.0.0.1" }))
)

const show = (base: string, method: string, path: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${base}${path}`, { method, headers })
    const body = await response.text()
    const pick = ["ratelimit-policy", "ratelimit", "x-ratelimit-remaining", "retry-after"]
      .flatMap((name) => {
        const value = response.headers.get(name)
        return value === null ? [] : [`${name}: ${value}`]
      })
      .join(" | ")
    return `${method} ${path} ${JSON.stringify(headers)} -> ${response.status} ${pick}${
      response.status >= 400 ? `\n    ${body}` : ""
    }`
  }).pipe(Effect.flatMap(Console.log))

const runDemo = Effect.gen(function*() {
  const base = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
  yield* Console.log(`listening on ${base}\n`)
  for (let i = 0; i < 6; i++) yield* show(base, "GET", "/hello")
  yield* show(base, "GET", "/health")
  yield* show(base, "GET", "/hello", { "x-forwarded-for": "203.0.113.9" })
  yield* show(base, "GET", "/hello", { "x-api-key": "internal" })
  for (let i = 0; i < 4; i++) yield* show(base, "POST", "/login", { "x-forwarded-for": "198.51.100.4" })
  for (let i = 0; i < 3; i++) yield* show(base, "GET", "/search", { "x-forwarded-for": "192.0.2.7" })
  yield* show(base, "GET", "/search", { "x-forwarded-for": "192.0.2.7", "x-plan": "pro" })
})

if (demo) {
  NodeRuntime.runMain(runDemo.pipe(Effect.provide(Server)))
} else {
  NodeRuntime.runMain(
    HttpServer.logAddress.pipe(Effect.andThen(Effect.never), Effect.provide(Server))
  )
}
