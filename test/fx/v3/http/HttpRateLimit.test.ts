/**
 * Fine-grained middleware behaviour through `HttpApp.toWebHandler` (no socket): headers, refusal
 * bodies, include/exclude, exemptions, costs, fail-open/closed, configuration errors, per-route
 * limits and the HttpApi middleware. Time is the TestClock's, frozen, so every number is exact.
 *
 * Effect 3 only (test/fx/v3/): built on `@effect/platform` routers (`HttpRouter.empty/get/mountApp`),
 * `HttpApp.toWebHandler` and the v3 HttpApi; the Effect 4 middleware is tested in test/fx/v4/http.test.ts.
 */
import {
  HttpApi,
  HttpApiBuilder,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpRouter,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { assert, describe, it } from "#test/vitest"
import { Effect, Exit, Layer, Schema } from "effect"
import { type LimiterDefinition, RateLimitStore, RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import {
  failingStore,
  failingStoreLayer,
  freshId,
  limitersOn,
  rateHeadersOf,
  requestCount,
  SECRET_STORE_MESSAGE,
  webHandler
} from "../../../http/helpers.js"

const ok = HttpServerResponse.text("ok")

const hour = (limit: number): LimiterDefinition.LimiterDefinition => ({ algorithm: "sliding_window", limit, window: "1 hour" })

describe("HttpRateLimit.middleware (web handler)", () => {
  it.effect("admits 100 per window, refuses the 101st with exact headers and a problem+json body", () => {
    const id = freshId("api")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id })(ok))
      const first = yield* send("/things")
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.body, "ok")
      assert.deepStrictEqual(rateHeadersOf(first.headers), {
        "ratelimit-policy": `"${id}";q=100;w=3600`,
        "ratelimit": `"${id}";r=99;t=3600`,
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "99",
        "x-ratelimit-reset": "3600"
      })
      for (let i = 2; i <= 99; i++) {
        const r = yield* send("/things")
        assert.strictEqual(r.status, 200)
      }
      const hundredth = yield* send("/things")
      assert.strictEqual(hundredth.status, 200)
      assert.strictEqual(hundredth.headers["ratelimit"], `"${id}";r=0;t=3600`)
      assert.strictEqual(hundredth.headers["x-ratelimit-remaining"], "0")

      const refused = yield* send("/things")
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.headers["content-type"], "application/problem+json")
      assert.deepStrictEqual(rateHeadersOf(refused.headers), {
        "ratelimit-policy": `"${id}";q=100;w=3600`,
        "ratelimit": `"${id}";r=0;t=3600`,
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "3600",
        "retry-after": "3600"
      })
      assert.deepStrictEqual(JSON.parse(refused.body), {
        type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
        title: "Too Many Requests",
        status: 429,
        detail: `Rate limit "${id}" exceeded; retry after 3600 seconds.`,
        "violated-policies": [id],
        limiter: id,
        retryAfter: 3600
      })
      // another client is not affected
      const other = yield* send("/things", { headers: { "x-test-peer": "198.51.100.2" } })
      assert.strictEqual(other.status, 200)
      assert.strictEqual(yield* requestCount(id, "allowed"), 101)
      assert.strictEqual(yield* requestCount(id, "refused"), 1)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(100) })))
  })

  it.effect("token bucket: q is the burst, w the refill time; Retry-After is whole seconds rounded up", () => {
    const id = freshId("tb")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "draft" })(ok))
      const a = yield* send("/")
      assert.deepStrictEqual(rateHeadersOf(a.headers), {
        "ratelimit-policy": `"${id}";q=2;w=4`,
        "ratelimit": `"${id}";r=1;t=2`
      })
      const b = yield* send("/")
      // t: until the next token (draft-10: "until additional quota is made available"), not until full
      assert.strictEqual(b.headers["ratelimit"], `"${id}";r=0;t=2`)
      const c = yield* send("/")
      assert.strictEqual(c.status, 429)
      // 0.5 token/s: the next token is 2 s away
      assert.strictEqual(c.headers["retry-after"], "2")
      assert.isUndefined(c.headers["x-ratelimit-limit"])
    }).pipe(Effect.provide(limitersOn({ [id]: { ratePerSecond: 0.5, burst: 2 } })))
  })

  it.effect("Retry-After is at least 1 second even when the wait is shorter", () => {
    const id = freshId("fast")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "legacy" })(ok))
      assert.strictEqual((yield* send("/")).status, 200)
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      // 10 tokens/s: 100 ms away, rounded up to 1 s
      assert.deepStrictEqual(rateHeadersOf(refused.headers), {
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "1",
        "retry-after": "1"
      })
    }).pipe(Effect.provide(limitersOn({ [id]: { ratePerSecond: 10, burst: 1 } })))
  })

  it.effect("odd store answers (zero wait on a refusal, NaN, Infinity) never give NaN or Retry-After 0", () => {
    const id = freshId("odd")
    const refuse = Effect.succeed({
      allowed: false,
      limit: 5,
      remaining: Number.NaN,
      resetAfterMs: Number.NaN,
      retryAfterMs: 0,
      delayMs: 0
    })
    const oddStore = RateLimitStore.make({
      ...failingStore,
      slidingWindow: () => refuse
    })
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id })(ok))
      const r = yield* send("/")
      assert.strictEqual(r.status, 429)
      assert.deepStrictEqual(rateHeadersOf(r.headers), {
        "ratelimit-policy": `"${id}";q=5;w=3600`,
        "ratelimit": `"${id}";r=0;t=0`,
        "x-ratelimit-limit": "5",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "0",
        "retry-after": "1"
      })
      assert.deepInclude(JSON.parse(r.body), { retryAfter: 1 })
    }).pipe(Effect.provide(limitersOn({ [id]: hour(5) }, Layer.succeed(RateLimitStore.RateLimitStore, oddStore))))
  })

  it.effect("headers: \"none\" sends no rate headers but a refusal still has Retry-After", () => {
    const id = freshId("none")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "none" })(ok))
      assert.deepStrictEqual(rateHeadersOf((yield* send("/")).headers), {})
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      assert.deepStrictEqual(rateHeadersOf(refused.headers), { "retry-after": "3600" })
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) })))
  })

  it.effect("policy names are structured-field strings", () => {
    const id = freshId("named")
    return Effect.gen(function*() {
      const send = yield* webHandler(
        HttpRateLimit.middleware({ limiter: id, headers: "draft", policyName: "per \"ip\" \\ é" })(ok)
      )
      const r = yield* send("/")
      assert.strictEqual(r.headers["ratelimit-policy"], `"per \\"ip\\" \\\\ ?";q=5;w=60`)
      assert.strictEqual(r.headers["ratelimit"], `"per \\"ip\\" \\\\ ?";r=4;t=60`)
    }).pipe(Effect.provide(limitersOn({ [id]: { algorithm: "fixed_window", limit: 5, window: "1 minute" } })))
  })

  it.effect("excluded paths are never limited and carry no headers; include narrows the scope", () => {
    const id = freshId("paths")
    return Effect.gen(function*() {
      const send = yield* webHandler(
        HttpRateLimit.middleware({
          limiter: id,
          include: ["/api/**", /^\/v[0-9]+\//],
          exclude: ["/api/health", "/api/public/*/info", "/api/static/**"]
        })(ok)
      )
      for (let i = 0; i < 5; i++) {
        for (const path of ["/api/health", "/api/health?x=1", "/api/public/a/info", "/outside", "/v2x/a", "/api/static", "/api/static/a/b.css"]) {
          const r = yield* send(path)
          assert.strictEqual(r.status, 200, path)
          assert.deepStrictEqual(rateHeadersOf(r.headers), {}, path)
        }
      }
      // limited paths share the client's budget of 2
      assert.strictEqual((yield* send("/api")).status, 200)
      assert.strictEqual((yield* send("/v1/x")).status, 200)
      assert.strictEqual((yield* send("/api/public/a/b/info")).status, 429)
      // a dot-segment path that a router could normalise into a limited one is limited, even if
      // its raw form looks excluded or not included
      assert.strictEqual((yield* send("/api/health/../users")).status, 429)
      assert.strictEqual((yield* send("/x/..%2Fapi/users")).status, 429)
      assert.strictEqual((yield* send("/api/static/../users")).status, 429)
      assert.strictEqual((yield* send("/api/static/%2e%2e/users")).status, 429)
      assert.strictEqual(yield* requestCount(id, "allowed"), 2)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(2) })))
  })

  it.effect("a custom key can exempt a request: no store call, no headers", () => {
    const id = freshId("exempt")
    return Effect.gen(function*() {
      const send = yield* webHandler(
        HttpRateLimit.middleware({
          limiter: id,
          failOpen: false,
          key: (request) =>
            Effect.succeed(request.headers["x-internal"] === "yes" ? HttpRateLimit.Exempt : "everyone")
        })(ok)
      )
      // the store fails on every call, and failOpen is false: only an exempt request can pass
      const exempt = yield* send("/", { headers: { "x-internal": "yes" } })
      assert.strictEqual(exempt.status, 200)
      assert.deepStrictEqual(rateHeadersOf(exempt.headers), {})
      const limited = yield* send("/")
      assert.strictEqual(limited.status, 503)
      assert.strictEqual(yield* requestCount(id, "exempt"), 1)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(10) }, failingStoreLayer)))
  })

  it.effect("custom key and per-request cost", () => {
    const id = freshId("cost")
    return Effect.gen(function*() {
      const send = yield* webHandler(
        HttpRateLimit.middleware({
          limiter: id,
          key: (request, client) => Effect.succeed(`${request.headers["x-user"] ?? "anon"}@${client ?? "?"}`),
          cost: (request) => Effect.succeed(request.method === "POST" ? 4 : 1)
        })(ok)
      )
      const post = yield* send("/", { method: "POST", headers: { "x-user": "u1" } })
      assert.strictEqual(post.headers["x-ratelimit-remaining"], "6")
      assert.strictEqual((yield* send("/", { method: "POST", headers: { "x-user": "u1" } })).headers["x-ratelimit-remaining"], 
        "2"
      )
      assert.strictEqual((yield* send("/", { method: "POST", headers: { "x-user": "u1" } })).status, 429)
      assert.strictEqual((yield* send("/", { headers: { "x-user": "u1" } })).headers["x-ratelimit-remaining"], "1")
      // another user, same address
      assert.strictEqual((yield* send("/", { method: "POST", headers: { "x-user": "u2" } })).status, 200)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(10) })))
  })

  it.effect("spoofed X-Forwarded-For from an untrusted peer does not change the key", () => {
    const id = freshId("spoof")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, trustedProxies: ["10.0.0.0/8"] })(ok))
      for (let i = 0; i < 3; i++) {
        const r = yield* send("/", { headers: { "x-forwarded-for": `203.0.113.${i}`, "forwarded": `for=203.0.113.${i}` } })
        assert.strictEqual(r.status, 200)
      }
      const r = yield* send("/", { headers: { "x-forwarded-for": "192.0.2.200" } })
      assert.strictEqual(r.status, 429)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(3) })))
  })

  it.effect("Forwarded (RFC 7239) is read when configured, X-Forwarded-For is then ignored", () => {
    const id = freshId("fwd")
    return Effect.gen(function*() {
      const send = yield* webHandler(
        HttpRateLimit.middleware({ limiter: id, trustedProxies: ["10.0.0.0/8"], proxyHeader: "forwarded" })(ok)
      )
      const peer = { "x-test-peer": "10.0.0.1" }
      const a = { ...peer, forwarded: "for=\"[2001:db8:7:7::1]:1234\";proto=https" }
      const b = { ...peer, forwarded: "for=6.6.6.6, for=\"[2001:db8:7:7:ffff::2]\"", "x-forwarded-for": "192.0.2.9" }
      assert.strictEqual((yield* send("/", { headers: a })).status, 200)
      assert.strictEqual((yield* send("/", { headers: b })).status, 429)
      const c = { ...peer, forwarded: "for=192.0.2.10", "x-forwarded-for": "2001:db8:7:7::1" }
      assert.strictEqual((yield* send("/", { headers: c })).status, 200)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) })))
  })

  it.effect("fail-open (default): store failure lets the request through, marks it, sends no numbers", () => {
    const id = freshId("open")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id })(ok))
      for (let i = 0; i < 3; i++) {
        const r = yield* send("/")
        assert.strictEqual(r.status, 200)
        assert.strictEqual(r.body, "ok")
        assert.deepStrictEqual(rateHeadersOf(r.headers), {})
      }
      assert.strictEqual(yield* requestCount(id, "fail_open"), 3)
      const metrics = yield* RateLimiter.metrics(id)
      assert.strictEqual(metrics.storeErrors, 3)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) }, failingStoreLayer)))
  })

  it.effect("fail-open also overrides a fail-closed limiter", () => {
    const id = freshId("open-closed")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, failOpen: true })(ok))
      assert.strictEqual((yield* send("/")).status, 200)
      assert.strictEqual(yield* requestCount(id, "fail_open"), 1)
    }).pipe(Effect.provide(limitersOn({ [id]: { ...hour(1), failClosed: true } }, failingStoreLayer)))
  })

  it.effect("without failOpen, a fail-closed limiter's policy holds: 503", () => {
    const id = freshId("limiter-closed")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id })(ok))
      const r = yield* send("/")
      assert.strictEqual(r.status, 503)
      assert.strictEqual(yield* requestCount(id, "unavailable"), 1)
      assert.strictEqual(yield* requestCount(id, "fail_open"), 0)
    }).pipe(Effect.provide(limitersOn({ [id]: { ...hour(1), failClosed: true } }, failingStoreLayer)))
  })

  for (const failClosed of [false, true]) {
    it.effect(`fail-closed: 503 with a generic body, nothing of the store leaks (limiter failClosed=${failClosed})`, () => {
      const id = freshId("closed")
      return Effect.gen(function*() {
        let reached = 0
        const app = Effect.sync(() => {
          reached++
          return HttpServerResponse.text("ok")
        })
        const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, failOpen: false })(app))
        const r = yield* send("/")
        assert.strictEqual(r.status, 503)
        assert.strictEqual(reached, 0)
        assert.strictEqual(r.headers["content-type"], "application/problem+json")
        assert.deepStrictEqual(JSON.parse(r.body), {
          type: "about:blank",
          title: "Service Unavailable",
          status: 503,
          detail: "Rate limiting is temporarily unavailable; please retry later."
        })
        const everything = JSON.stringify(r)
        for (const secret of ["hunter2", "redis", "10.9.8.7", "rate_limit", "EVALSHA", "203.0.113.9", "198.51.100.1"]) {
          assert.notInclude(everything, secret)
        }
        assert.include(SECRET_STORE_MESSAGE, "hunter2")
        assert.strictEqual(yield* requestCount(id, "unavailable"), 1)
      }).pipe(Effect.provide(limitersOn({ [id]: { ...hour(1), failClosed } }, failingStoreLayer)))
    })
  }

  it.effect("an unknown limiter is a defect (500), never a 429 or a leak", () => {
    const id = freshId("missing")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id })(ok))
      const r = yield* send("/")
      assert.strictEqual(r.status, 500)
      assert.strictEqual(r.body, "")
    }).pipe(Effect.provide(limitersOn({})))
  })

  it.effect("invalid options fail at construction with a ConfigError naming the option", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.exit(HttpRateLimit.makeMiddleware({ limiter: "x", trustedProxies: ["10.0.0.0/8", "10.0.0.300"] }))
      assert.isTrue(Exit.isFailure(bad))
      const error = yield* Effect.flip(HttpRateLimit.makeMiddleware({ limiter: "x", trustedProxies: ["10.0.0.0/8", "10.0.0.300"] }))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual(error.path, "http.trustedProxies[1]")
      assert.strictEqual(error.received, "\"10.0.0.300\"")
      assert.strictEqual((yield* Effect.flip(HttpRateLimit.makeMiddleware({ limiter: "x", ipv6Prefix: 0 }))).path, "http.ipv6Prefix")
      assert.strictEqual((yield* Effect.flip(HttpRateLimit.makeMiddleware({ limiter: "x", cost: 1.5 }))).path, "http.cost")
      assert.strictEqual((yield* Effect.flip(HttpRateLimit.makeMiddleware({ limiter: "" }))).path, "http.limiter")
      // include / exclude entries come unchecked from plain JavaScript or a config file
      const include: unknown = ["/api/**", 42]
      const badEntry = yield* Effect.flip(
        // a typed boundary: the test feeds what a plain JavaScript caller could pass
        HttpRateLimit.makeMiddleware({ limiter: "x", include: include as ReadonlyArray<string> })
      )
      assert.strictEqual(badEntry.path, "http.include[1]")
      assert.strictEqual(badEntry.received, "42")
      const exclude: unknown = "/health"
      const notArray = yield* Effect.flip(
        HttpRateLimit.makeMiddleware({ limiter: "x", exclude: exclude as ReadonlyArray<string> })
      )
      assert.strictEqual(notArray.path, "http.exclude")
      assert.strictEqual(notArray.received, "\"/health\"")
      const client = yield* HttpRateLimit.clientAddress({ trustedProxies: ["loopback"] })
      const request = HttpServerRequest.fromWeb(
        new Request("http://localhost/", { headers: { "x-forwarded-for": "2001:db8:5:5::1" } })
      ).modify({ remoteAddress: "::1" })
      assert.strictEqual(client(request), "2001:db8:5:5::/64")
    }))

  it.effect("the middleware of invalid options dies on each request (500)", () => {
    const id = freshId("badopts")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, trustedProxies: ["nope"] })(ok))
      assert.strictEqual((yield* send("/")).status, 500)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) })))
  })
})

describe("HttpRateLimit.limit (per route)", () => {
  it.effect("limits one route of a router, and a group, with their own limiters; headers of both", () => {
    const login = freshId("login")
    const api = freshId("api")
    return Effect.gen(function*() {
      const apiGroup = HttpRouter.empty.pipe(
        HttpRouter.get("/a", ok),
        HttpRouter.get("/b", ok),
        HttpRateLimit.limit(api, { headers: "draft" })
      )
      const router = HttpRouter.empty.pipe(
        HttpRouter.post("/login", ok.pipe(HttpRateLimit.limit(login, { headers: "draft" }))),
        HttpRouter.get("/free", ok),
        HttpRouter.mountApp("/api", apiGroup)
      )
      const send = yield* webHandler(router)
      const l1 = yield* send("/login", { method: "POST" })
      assert.strictEqual(l1.status, 200)
      assert.strictEqual(l1.headers["ratelimit"], `"${login}";r=0;t=3600`)
      assert.strictEqual((yield* send("/login", { method: "POST" })).status, 429)
      const free = yield* send("/free")
      assert.strictEqual(free.status, 200)
      assert.deepStrictEqual(rateHeadersOf(free.headers), {})
      assert.strictEqual((yield* send("/api/a")).headers["ratelimit"], `"${api}";r=2;t=3600`)
      assert.strictEqual((yield* send("/api/b")).headers["ratelimit"], `"${api}";r=1;t=3600`)
    }).pipe(Effect.provide(limitersOn({ [login]: hour(1), [api]: hour(3) })))
  })

  it.effect("nested limiters list both policies in the IETF headers; the legacy trio is the most restrictive", () => {
    const outer = freshId("outer")
    const inner = freshId("inner")
    return Effect.gen(function*() {
      const app = ok.pipe(HttpRateLimit.limit(inner), HttpRateLimit.limit(outer))
      const send = yield* webHandler(app)
      const r = yield* send("/")
      assert.deepStrictEqual(rateHeadersOf(r.headers), {
        "ratelimit-policy": `"${outer}";q=10;w=3600, "${inner}";q=2;w=60`,
        "ratelimit": `"${outer}";r=9;t=3600, "${inner}";r=1;t=60`,
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "1",
        "x-ratelimit-reset": "60"
      })
      assert.strictEqual((yield* send("/")).headers["x-ratelimit-remaining"], "0")
      // refused by the inner limiter: its numbers stand, the outer policy is appended
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      assert.deepStrictEqual(rateHeadersOf(refused.headers), {
        "ratelimit-policy": `"${inner}";q=2;w=60, "${outer}";q=10;w=3600`,
        "ratelimit": `"${inner}";r=0;t=60, "${outer}";r=7;t=3600`,
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "60",
        "retry-after": "60"
      })
    }).pipe(Effect.provide(limitersOn({ [outer]: hour(10), [inner]: { algorithm: "fixed_window", limit: 2, window: "1 minute" } })))
  })
})

class Greetings extends HttpApiGroup.make("greetings")
  .add(HttpApiEndpoint.get("hello", "/hello").addSuccess(Schema.String))
  .middleware(HttpRateLimit.HttpApiRateLimit)
{}
class Api extends HttpApi.make("api").add(Greetings) {}

describe("HttpRateLimit.HttpApiRateLimit", () => {
  const build = (id: string | RateLimiter.Limits) =>
    HttpApiBuilder.api(Api).pipe(
      Layer.provide(HttpApiBuilder.group(Api, "greetings", (handlers) => handlers.handle("hello", () => Effect.succeed("hi")))),
      Layer.provide(HttpRateLimit.layerHttpApi(id, { failOpen: false })),
      Layer.orDie
    )

  it.effect("429 in the API's schema, problem+json, with headers and Retry-After", () => {
    const id = freshId("httpapi")
    return Effect.gen(function*() {
      const app = yield* HttpApiBuilder.httpApp.pipe(
        Effect.provide([build(id), HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
      )
      const send = yield* webHandler(app)
      const first = yield* send("/hello")
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.body, "\"hi\"")
      assert.deepStrictEqual(rateHeadersOf(first.headers), {
        "ratelimit-policy": `"${id}";q=1;w=3600`,
        "ratelimit": `"${id}";r=0;t=3600`,
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "3600"
      })
      const refused = yield* send("/hello")
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.headers["content-type"], "application/problem+json")
      assert.strictEqual(refused.headers["retry-after"], "3600")
      assert.strictEqual(refused.headers["ratelimit"], `"${id}";r=0;t=3600`)
      assert.deepStrictEqual(JSON.parse(refused.body), {
        _tag: "TooManyRequests",
        type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
        title: "Too Many Requests",
        status: 429,
        detail: `Rate limit "${id}" exceeded; retry after 3600 seconds.`,
        "violated-policies": [id],
        limiter: id,
        retryAfter: 3600
      })
    }).pipe(Effect.provide([limitersOn({ [id]: hour(1) }), HttpServer.layerContext]))
  })

  it.effect("over several limits: a member per limit, the typed 429 names the violated policy, nothing charged", () => {
    const user = freshId("httpapi-user")
    const global = freshId("httpapi-global")
    return Effect.gen(function*() {
      const app = yield* HttpApiBuilder.httpApp.pipe(
        Effect.provide([build([user, { limiter: global, key: "all" }]), HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
      )
      const send = yield* webHandler(app)
      const first = yield* send("/hello")
      assert.strictEqual(first.headers["ratelimit"], `"${user}";r=0;t=3600, "${global}";r=4;t=3600`)
      const refused = yield* send("/hello")
      assert.strictEqual(refused.status, 429)
      const body = JSON.parse(refused.body)
      assert.strictEqual(body._tag, "TooManyRequests")
      assert.deepStrictEqual(body["violated-policies"], [user])
      assert.strictEqual(refused.headers["ratelimit"], `"${user}";r=0;t=3600, "${global}";r=4;t=3600`)
      assert.strictEqual((yield* RateLimiter.status(global, { key: "all" })).remaining, 4)
    }).pipe(Effect.provide([limitersOn({ [user]: hour(1), [global]: hour(5) }), HttpServer.layerContext]))
  })

  it.effect("503 when the store fails and failOpen is false", () => {
    const id = freshId("httpapi-down")
    return Effect.gen(function*() {
      const app = yield* HttpApiBuilder.httpApp.pipe(
        Effect.provide([build(id), HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer])
      )
      const send = yield* webHandler(app)
      const r = yield* send("/hello")
      assert.strictEqual(r.status, 503)
      assert.notInclude(r.body, "hunter2")
      assert.deepInclude(JSON.parse(r.body), { _tag: "RateLimitUnavailable", status: 503 })
    }).pipe(Effect.provide([limitersOn({ [id]: hour(1) }, failingStoreLayer), HttpServer.layerContext]))
  })
})
