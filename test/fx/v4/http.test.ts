/**
 * The HTTP middleware on Effect 4 (`effect/http`, `effect/http-api`) behind a real
 * `@effect/platform-node` 4.1 `NodeHttpServer` on a loopback port, driven by `fetch`:
 * - the plain middleware as a global `HttpRouter.middleware` and as a per-route `limit` on an
 *   `HttpRouter.add` registration (the v4 router is a layer of registrations);
 * - `HttpApi` with `HttpRateLimit.HttpApiRateLimit` (an `HttpApiMiddleware.Service`, a wrapper
 *   around the handler on Effect 4) and with a tag of the user's own built by `makeHttpApi`.
 * Each asserts 200s, then a 429 carrying `RateLimit`, `RateLimit-Policy` and `Retry-After` and the
 * `application/problem+json` body: on `HttpApi`, on the response `HttpApi` itself sends for the
 * middleware's typed failure. Real clock, sliding windows of an hour: bounds are generous.
 */
import { assert, describe, it } from "@effect/vitest"
import { NodeHttpServer } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as HttpApi from "effect/http-api/HttpApi"
import * as HttpApiBuilder from "effect/http-api/HttpApiBuilder"
import * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import { type LimiterDefinition, MemoryStore, RateLimiter, RateLimitMetrics, RateLimitStore } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"

interface Reply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

type Send = (path: string, init?: { readonly method?: string }) => Effect.Effect<Reply>

const freshId = (prefix: string): string => `${prefix}-${crypto.randomUUID()}`

const hour = (limit: number): LimiterDefinition.LimiterDefinition => ({ algorithm: "sliding_window", limit, window: "1 hour" })

/** A store whose every round trip fails (with a message a 503 must not show). */
const failingStoreLayer: Layer.Layer<RateLimitStore.RateLimitStore> = (() => {
  const fail = (operation: string) =>
    Effect.fail(
      new RateLimitStore.StoreError({ engine: "redis", operation, message: "redis://admin:hunter2@10.9.8.7:6379/0" })
    )
  return Layer.succeed(
    RateLimitStore.RateLimitStore,
    RateLimitStore.make({
      engine: "failing",
      tokenBucket: () => fail("tokenBucket"),
      slidingWindow: () => fail("slidingWindow"),
      fixedWindow: () => fail("fixedWindow"),
      acquireSlot: () => fail("acquireSlot"),
      renewSlot: () => fail("renewSlot"),
      releaseSlot: () => fail("releaseSlot"),
      peek: () => fail("peek"),
      reset: () => fail("reset"),
      initialize: fail("initialize")
    })
  )
})()

const limitersOn = (
  limiters: Readonly<Record<string, LimiterDefinition.LimiterDefinition>>,
  store: Layer.Layer<RateLimitStore.RateLimitStore> = MemoryStore.layer()
): Layer.Layer<RateLimiter.RateLimiter> => RateLimiter.layer(limiters).pipe(Layer.provide(store), Layer.orDie)

/** The rate-limit headers of a response (everything the middleware may set). */
const rateHeadersOf = (headers: Record<string, string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name of ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"]) {
    const value = headers[name]
    if (value !== undefined) out[name] = value
  }
  return out
}

/**
 * Serves the router layer `app` (`HttpRouter.serve`) on 127.0.0.1:<ephemeral> with `limiters` on
 * `store`, then runs `body` with a function sending real requests to it. The server closes with
 * the test's scope.
 */
const withServer = <A, E, R>(
  app: Layer.Layer<never, E, R>,
  limiters: Readonly<Record<string, LimiterDefinition.LimiterDefinition>>,
  body: (send: Send) => Effect.Effect<A>,
  store?: Layer.Layer<RateLimitStore.RateLimitStore>,
  registry?: Metric.MetricRegistry
) =>
  Effect.gen(function*() {
    const base = yield* HttpServer.addressFormattedWith((address) => Effect.succeed(address))
    assert.match(base, /^http:\/\/127\.0\.0\.1:[0-9]+$/)
    const send: Send = (path, init) =>
      Effect.promise(async () => {
        const response = await fetch(`${base}${path}`, { method: init?.method ?? "GET", headers: { connection: "close" } })
        const headers: Record<string, string> = {}
        response.headers.forEach((value, name) => {
          headers[name] = value
        })
        return { status: response.status, headers, body: await response.text() }
      })
    return yield* body(send)
  }).pipe(
    Effect.provide(
      HttpRouter.serve(app, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
        Layer.provide(
          registry === undefined
            ? limitersOn(limiters, store)
            : limitersOn(limiters, store).pipe(Layer.provide(Layer.succeed(Metric.MetricRegistry, registry)))
        ),
        Layer.orDie
      )
    )
  )

/** The 429 every refusal answers: status, problem+json, the IETF headers, Retry-After, the body. */
const assertRefused = (refused: Reply, id: string, limit: number) => {
  assert.strictEqual(refused.status, 429)
  assert.strictEqual(refused.headers["content-type"], "application/problem+json")
  // the oldest admitted request leaves the window an hour after it came in: a little less now
  const retryAfter = Number(refused.headers["retry-after"])
  assert.isAtLeast(retryAfter, 3600 - 120)
  assert.isAtMost(retryAfter, 3600)
  assert.strictEqual(refused.headers["ratelimit-policy"], `"${id}";q=${limit};w=3600`)
  assert.strictEqual(refused.headers["ratelimit"], `"${id}";r=0;t=${retryAfter}`)
  assert.strictEqual(refused.headers["x-ratelimit-remaining"], "0")
  return { retryAfter, body: JSON.parse(refused.body) as unknown }
}

const problemBody = (id: string, retryAfter: number) => ({
  type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
  title: "Too Many Requests",
  status: 429,
  detail: `Rate limit "${id}" exceeded; retry after ${retryAfter} seconds.`,
  "violated-policies": [id],
  limiter: id,
  retryAfter
})

/** Current value of the HTTP request counter for one limiter and outcome (attributes, on Effect 4). */
const requestCount = (limiter: string, outcome: string): Effect.Effect<number> =>
  Effect.map(Metric.value(Metric.withAttributes(HttpRateLimit.requests, { limiter, outcome })), (state) => state.count)

const ok = HttpServerResponse.text("ok")

describe("HttpRateLimit on Effect 4: HttpRouter over a real NodeHttpServer", () => {
  it.live("a global HttpRouter.middleware: 200s with headers, then 429 with RateLimit, RateLimit-Policy, Retry-After and problem JSON", () => {
    const id = freshId("v4-router")
    const app = Layer.mergeAll(
      HttpRouter.add("GET", "/things", ok),
      HttpRouter.add("GET", "/health", ok),
      HttpRouter.middleware(HttpRateLimit.middleware({ limiter: id, exclude: ["/health"] }), { global: true })
    )
    return withServer(app, { [id]: hour(3) }, (send) =>
      Effect.gen(function*() {
        const first = yield* send("/things")
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.body, "ok")
        assert.deepStrictEqual(rateHeadersOf(first.headers), {
          "ratelimit-policy": `"${id}";q=3;w=3600`,
          "ratelimit": `"${id}";r=2;t=3600`,
          "x-ratelimit-limit": "3",
          "x-ratelimit-remaining": "2",
          "x-ratelimit-reset": "3600"
        })
        for (const remaining of ["1", "0"]) {
          const r = yield* send("/things")
          assert.strictEqual(r.status, 200)
          assert.strictEqual(r.headers["x-ratelimit-remaining"], remaining)
        }
        const { body, retryAfter } = assertRefused(yield* send("/things"), id, 3)
        assert.deepStrictEqual(body, problemBody(id, retryAfter))
        assert.strictEqual(yield* requestCount(id, "allowed"), 3)
        assert.strictEqual(yield* requestCount(id, "refused"), 1)
        // an excluded path is not limited and carries no headers
        const health = yield* send("/health")
        assert.strictEqual(health.status, 200)
        assert.deepStrictEqual(rateHeadersOf(health.headers), {})
      }))
  })

  it.live("a Metric.MetricRegistry under the limiters' layer gets their metrics and the request counter; the default registry none", () => {
    const id = freshId("v4-registry")
    const registry: Metric.MetricRegistry = new Map()
    const app = Layer.mergeAll(
      HttpRouter.add("GET", "/things", ok),
      HttpRouter.middleware(HttpRateLimit.middleware({ limiter: id }), { global: true })
    )
    const counts = Effect.all([
      requestCount(id, "allowed"),
      requestCount(id, "refused"),
      Effect.map(Metric.value(Metric.withAttributes(RateLimitMetrics.acquisitions, { limiter: id })), (s) => s.count),
      Effect.map(Metric.value(Metric.withAttributes(RateLimitMetrics.refusals, { limiter: id })), (s) => s.count)
    ])
    return withServer(app, { [id]: hour(1) }, (send) =>
      Effect.gen(function*() {
        assert.strictEqual((yield* send("/things")).status, 200)
        assert.strictEqual((yield* send("/things")).status, 429)
        assert.deepStrictEqual(yield* Effect.provideService(counts, Metric.MetricRegistry, registry), [1, 1, 1, 1])
        assert.deepStrictEqual(yield* counts, [0, 0, 0, 0])
      }), undefined, registry)
  })

  it.live("a per-route limit on an HttpRouter.add registration limits that route only", () => {
    const login = freshId("v4-login")
    const app = Layer.mergeAll(
      HttpRouter.add("POST", "/login", Effect.succeed(ok).pipe(HttpRateLimit.limit(login, { key: () => Effect.succeed("k") }))),
      HttpRouter.add("GET", "/other", ok)
    )
    return withServer(app, { [login]: hour(2) }, (send) =>
      Effect.gen(function*() {
        for (const remaining of ["1", "0"]) {
          const r = yield* send("/login", { method: "POST" })
          assert.strictEqual(r.status, 200)
          assert.strictEqual(r.headers["ratelimit"], `"${login}";r=${remaining};t=3600`)
        }
        const { body, retryAfter } = assertRefused(yield* send("/login", { method: "POST" }), login, 2)
        assert.deepStrictEqual(body, problemBody(login, retryAfter))
        const other = yield* send("/other")
        assert.strictEqual(other.status, 200)
        assert.deepStrictEqual(rateHeadersOf(other.headers), {})
      }))
  })
})

class Teapot extends Schema.TaggedError<Teapot>()("Teapot", {}, { httpApiStatus: 418 }) {}

class LoginLimit extends HttpApiMiddleware.Service<LoginLimit>()("test/LoginLimit", {
  error: HttpRateLimit.HttpApiFailure
}) {}

class Greetings extends HttpApiGroup.make("greetings")
  .add(HttpApiEndpoint.get("hello", "/hello", { success: Schema.String }))
  .add(HttpApiEndpoint.get("teapot", "/teapot", { success: Schema.String, error: Teapot }))
  .middleware(HttpRateLimit.HttpApiRateLimit)
{}

class Accounts extends HttpApiGroup.make("accounts")
  .add(HttpApiEndpoint.post("login", "/login", { success: Schema.String }).middleware(LoginLimit))
{}

class Api extends HttpApi.make("api").add(Greetings).add(Accounts) {}

/** The API on the router: `HttpApiRateLimit` for limiter `id`, `LoginLimit` for limiter `login`. */
const apiApp = (id: string, login: string | RateLimiter.Limits) =>
  HttpApiBuilder.layer(Api).pipe(
    Layer.provide(
      HttpApiBuilder.group(Api, "greetings", (handlers) =>
        handlers
          .handle("hello", () => Effect.succeed("hi"))
          .handle("teapot", () => Effect.fail(new Teapot())))
    ),
    Layer.provide(HttpApiBuilder.group(Api, "accounts", (handlers) => handlers.handle("login", () => Effect.succeed("in")))),
    Layer.provide(HttpRateLimit.layerHttpApi(id, { failOpen: false })),
    Layer.provide(Layer.effect(LoginLimit, HttpRateLimit.makeHttpApi(login, { key: () => Effect.succeed("user") })))
  )

describe("HttpRateLimit on Effect 4: several limits and per-request limits over a real NodeHttpServer", () => {
  it.live("a global middleware over [per-user, global] with a tiered per-route limit chosen per request", () => {
    const user = freshId("v4-user")
    const global = freshId("v4-global")
    const free = freshId("v4-free")
    const pro = freshId("v4-pro")
    const app = Layer.mergeAll(
      HttpRouter.add(
        "GET",
        "/plan",
        Effect.succeed(ok).pipe(HttpRateLimit.limit(free, {
          key: () => Effect.succeed("u"),
          limits: (request) => Effect.succeed(request.url.includes("pro") ? pro : free),
          headers: "draft"
        }))
      ),
      HttpRouter.middleware(
        HttpRateLimit.middleware({ limiter: [user, { limiter: global, key: "all" }], headers: "draft" }),
        { global: true }
      )
    )
    return withServer(app, { [user]: hour(3), [global]: hour(10), [free]: hour(1), [pro]: hour(50) }, (send) =>
      Effect.gen(function*() {
        const a = yield* send("/plan")
        assert.strictEqual(a.status, 200)
        assert.strictEqual(a.headers["ratelimit"], `"${user}";r=2;t=3600, "${global}";r=9;t=3600, "${free}";r=0;t=3600`)
        const b = yield* send("/plan")
        assert.strictEqual(b.status, 429)
        assert.deepStrictEqual(JSON.parse(b.body)["violated-policies"], [free])
        const c = yield* send("/plan?pro")
        assert.strictEqual(c.status, 200)
        assert.include(c.headers["ratelimit"] ?? "", `"${pro}";r=49;t=3600`)
        const d = yield* send("/plan?pro")
        assert.strictEqual(d.status, 429)
        assert.deepStrictEqual(JSON.parse(d.body)["violated-policies"], [user])
        assert.strictEqual(yield* requestCount(global, "refused"), 1)
        assert.strictEqual(yield* requestCount(user, "allowed"), 3)
      }))
  })
})

describe("HttpRateLimit on Effect 4: HttpApi over a real NodeHttpServer", () => {
  it.live("HttpApiRateLimit: 200s with headers (on a declared error too), then the 429 HttpApi sends carries the headers and the problem JSON", () => {
    const id = freshId("v4-api")
    const login = freshId("v4-api-login")
    return withServer(apiApp(id, login), { [id]: hour(3), [login]: hour(1) }, (send) =>
      Effect.gen(function*() {
        const first = yield* send("/hello")
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.body, "\"hi\"")
        assert.deepStrictEqual(rateHeadersOf(first.headers), {
          "ratelimit-policy": `"${id}";q=3;w=3600`,
          "ratelimit": `"${id}";r=2;t=3600`,
          "x-ratelimit-limit": "3",
          "x-ratelimit-remaining": "2",
          "x-ratelimit-reset": "3600"
        })
        // the handler's own typed error, encoded by HttpApi outside the middleware: headers still on it
        const teapot = yield* send("/teapot")
        assert.strictEqual(teapot.status, 418)
        assert.strictEqual(teapot.headers["ratelimit"], `"${id}";r=1;t=3600`)
        assert.strictEqual((yield* send("/hello")).headers["x-ratelimit-remaining"], "0")
        const { body, retryAfter } = assertRefused(yield* send("/hello"), id, 3)
        assert.deepStrictEqual(body, { _tag: "TooManyRequests", ...problemBody(id, retryAfter) })
      }))
  })

  it.live("a tag of one's own (HttpApiMiddleware.Service with error: HttpApiFailure) implemented by makeHttpApi", () => {
    const id = freshId("v4-api-other")
    const login = freshId("v4-api-own")
    return withServer(apiApp(id, login), { [id]: hour(10), [login]: hour(1) }, (send) =>
      Effect.gen(function*() {
        const first = yield* send("/login", { method: "POST" })
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.headers["ratelimit"], `"${login}";r=0;t=3600`)
        const { body, retryAfter } = assertRefused(yield* send("/login", { method: "POST" }), login, 1)
        assert.deepStrictEqual(body, { _tag: "TooManyRequests", ...problemBody(login, retryAfter) })
        // the other group's limiter is untouched
        assert.strictEqual((yield* send("/hello")).headers["x-ratelimit-remaining"], "9")
      }))
  })

  it.live("makeHttpApi over several limits: one member per limit, the typed 429 names the violated policy, nothing charged", () => {
    const id = freshId("v4-api-x")
    const login = freshId("v4-api-user")
    const global = freshId("v4-api-global")
    return withServer(apiApp(id, [login, { limiter: global, key: "all" }]), { [id]: hour(10), [login]: hour(1), [global]: hour(5) }, (send) =>
      Effect.gen(function*() {
        const first = yield* send("/login", { method: "POST" })
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.headers["ratelimit"], `"${login}";r=0;t=3600, "${global}";r=4;t=3600`)
        assert.strictEqual(first.headers["ratelimit-policy"], `"${login}";q=1;w=3600, "${global}";q=5;w=3600`)
        const refused = yield* send("/login", { method: "POST" })
        assert.strictEqual(refused.status, 429)
        const body = JSON.parse(refused.body)
        assert.strictEqual(body._tag, "TooManyRequests")
        assert.strictEqual(body.type, "https://iana.org/assignments/http-problem-types#quota-exceeded")
        assert.deepStrictEqual(body["violated-policies"], [login])
        assert.match(refused.headers["ratelimit"] ?? "", new RegExp(`^"${login}";r=0;t=[0-9]+, "${global}";r=4;t=3600$`))
      }))
  })

  it.live("503 problem JSON when the store fails and failOpen is false; no store detail leaks", () => {
    const id = freshId("v4-api-down")
    const login = freshId("v4-api-down-login")
    return withServer(apiApp(id, login), { [id]: hour(3), [login]: hour(1) }, (send) =>
      Effect.gen(function*() {
        const r = yield* send("/hello")
        assert.strictEqual(r.status, 503)
        assert.strictEqual(r.headers["content-type"], "application/problem+json")
        assert.deepInclude(JSON.parse(r.body), { _tag: "RateLimitUnavailable", status: 503 })
        for (const secret of ["hunter2", "redis", "10.9.8.7"]) assert.notInclude(JSON.stringify(r), secret)
        assert.strictEqual(yield* requestCount(id, "unavailable"), 1)
      }), failingStoreLayer)
  })
})
