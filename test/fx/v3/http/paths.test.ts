/**
 * Path matching of `include` / `exclude`: the three forms of a request target
 * (`Paths.requestPaths`, in src/core/http/paths.ts), and properties checked against the real `HttpRouter`
 * (find-my-way-ts, default configuration): a target the router sends to an included route is
 * always limited, and a target the middleware leaves out as excluded always reaches an excluded
 * route. No socket: the request's url is set as the server would set it, unnormalised.
 *
 * Effect 3 only (test/fx/v3/): the properties compare with `@effect/platform`'s `HttpRouter`; the
 * pure `Paths` tests need no Effect major (they run once, here).
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { assert, describe, it, layer } from "#test/vitest"
import { Effect } from "effect"
import * as Paths from "../../../../src/core/http/paths.js"
import { freshId, limitersOn } from "../../../http/helpers.js"
import { type RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import { FastCheck as fc } from "#test/effect"
import * as T from "#test/effect"

describe("Paths.requestPaths", () => {
  const cases: ReadonlyArray<readonly [target: string, raw: string, routed: string, canonical: string]> = [
    ["/login", "/login", "/login", "/login"],
    ["/LOGIN", "/LOGIN", "/login", "/login"],
    ["/login/", "/login/", "/login", "/login"],
    ["/login;x", "/login;x", "/login", "/login"],
    ["/login;jsessionid=1?a=b#c", "/login;jsessionid=1", "/login", "/login"],
    ["//login/", "//login/", "/login", "/login"],
    ["/%6Cogin", "/%6Cogin", "/login", "/login"],
    ["/a/../login", "/a/../login", "/a/../login", "/login"],
    ["/static/%2e%2E/api", "/static/%2e%2E/api", "/static/../api", "/api"],
    ["/a/./b/../../..", "/a/./b/../../..", "/a/./b/../../..", "/"],
    ["http://evil/login", "http://evil/login", "/login", "/login"],
    ["https://user@evil:8443/Login/?x", "https://user@evil:8443/Login/", "/login", "/login"],
    // the router takes everything up to the first "/" after "://" as the authority
    ["http://evil?x/login", "http://evil", "/login", "/login"],
    // the router strips only a lower-case http(s) scheme; the canonical form strips any
    ["HTTP://evil/login", "HTTP://evil/login", "/ttp:/evil/login", "/login"],
    ["ftp://evil/login", "ftp://evil/login", "/tp:/evil/login", "/login"],
    ["http://evil", "http://evil", "/ttp:/evil", "/"],
    // Node accepts a target starting with "*"; the router never looks at the first character
    ["*login", "*login", "/login", "/login"],
    // reserved escapes stay encoded for the router (a parameter may hold "a/b"), not canonically
    ["/files/a%2Fb", "/files/a%2Fb", "/files/a%2fb", "/files/a/b"],
    ["/login%3Bx", "/login%3Bx", "/login%3bx", "/login;x"],
    ["/%2525", "/%2525", "/%2525", "/%25"],
    // U+212A KELVIN SIGN lower-cases to "k"
    ["/%E2%84%AAey", "/%E2%84%AAey", "/key", "/key"],
    // an invalid escape is kept, never thrown
    ["/login%", "/login%", "/login%", "/login%"],
    ["/%E2%84/login%zz", "/%E2%84/login%zz", "/%e2%84/login%zz", "/%e2%84/login%zz"],
    ["", "/", "/", "/"],
    ["/", "/", "/", "/"],
    ["/?x", "/", "/", "/"]
  ]
  for (const [target, raw, routed, canonical] of cases) {
    it(`${JSON.stringify(target)}`, () => {
      assert.deepStrictEqual(Paths.requestPaths(target), { raw, routed, canonical })
    })
  }
})

// -------------------------------------------------------------------------------------------
// against the router

const text = (body: string) => HttpServerResponse.text(body)

/** The routes of the properties; `other` catches every path no other route takes. */
const router = HttpRouter.empty.pipe(
  HttpRouter.get("/login", text("login")),
  HttpRouter.get("/key", text("key")),
  // the parametric routes answer the path they were given, as the router saw it
  HttpRouter.get("/files/:name", Effect.map(HttpRouter.params, (params) => HttpServerResponse.text(`files:/files/${params["name"] ?? ""}`))),
  HttpRouter.get("/health", text("health")),
  HttpRouter.get("/static", text("static")),
  HttpRouter.get("/static/*", text("static")),
  HttpRouter.get("/*", Effect.map(HttpRouter.params, (params) => HttpServerResponse.text(`other:/${params["*"] ?? ""}`)))
)

const requestAt = (url: string): HttpServerRequest.HttpServerRequest =>
  HttpServerRequest.fromWeb(new Request("http://localhost/")).modify({ url })

/** The route the router picks for `url`: the handler's body ("other:/<path>", "files:/files/<name>"), or "404". */
const routeOf = (url: string): Effect.Effect<string> =>
  router.pipe(
    Effect.flatMap((response) => Effect.succeed(response.body._tag === "Uint8Array" ? new TextDecoder().decode(response.body.body) : "?")),
    T.catchAll(() => Effect.succeed("404")),
    Effect.provideService(HttpServerRequest.HttpServerRequest, requestAt(url))
  )

/**
 * Whether a middleware with these patterns limits `url`: its key function runs only for limited
 * paths (it answers `Exempt`, so there is no store call).
 */
const limits = (
  id: string,
  patterns: { readonly include?: ReadonlyArray<HttpRateLimit.PathPattern>; readonly exclude?: ReadonlyArray<HttpRateLimit.PathPattern> }
) => {
  let seen = false
  const app = HttpRateLimit.middleware({
    limiter: id,
    ...patterns,
    key: () =>
      Effect.sync(() => {
        seen = true
        return HttpRateLimit.Exempt
      })
  })(Effect.succeed(HttpServerResponse.empty()))
  return (url: string): Effect.Effect<boolean, never, RateLimiter.RateLimiter> =>
    Effect.suspend(() => {
      seen = false
      return app.pipe(
        Effect.provideService(HttpServerRequest.HttpServerRequest, requestAt(url)),
        Effect.map(() => seen)
      )
    })
}

/** Targets built from the pieces that routers, proxies and attackers play with. */
const target: fc.Arbitrary<string> = fc.tuple(
  fc.constantFrom("/", "/", "/", "//", "http://evil/", "https://u@evil:1/", "HTTP://evil/", "http://evil", "http://evil?x/", "*", "*/"),
  fc.array(
    fc.constantFrom(
      "/", "/", "/", "//", "login", "LOGIN", "Login", "l", "ogin", "%6C", "%6c", "%4C", "key", "KEY", "%E2%84%AA", "ey",
      "files", "FILES", "a", "%2F", "%2f", "health", "HEALTH", "%68ealth", "static", "x.css", ".", "..", "%2e", "%2E%2E",
      ";", ";x", "?", "?q=/health", "#", "%", "%25", "%3B", "*"
    ),
    { maxLength: 10 }
  )
).map(([prefix, pieces]) => `${prefix}${pieces.join("")}`)

const ids = { include: freshId("include"), exclude: freshId("exclude"), anyHealth: freshId("any-health") }
const includeLimits = limits(ids.include, { include: ["/login", "/key", "/files/*"] })
const excludeLimits = limits(ids.exclude, { exclude: ["/health", "/static/**", "/**/health"] })
const anyHealthLimits = limits(ids.anyHealth, { exclude: ["/**/health"] })
const hour = { algorithm: "sliding_window", limit: 1, window: "1 hour" } as const
const limiters = limitersOn({ [ids.include]: hour, [ids.exclude]: hour, [ids.anyHealth]: hour })

layer(limiters)("include / exclude agree with HttpRouter", (it) => {
  it.effect("the bypass spellings of an included route are all limited", () =>
    Effect.gen(function*() {
      const targets = [
        "/login", "/LOGIN", "/login/", "/login;x", "//login/", "/%6Cogin", "http://evil/login", "*login",
        "http://evil?x/login", "/%E2%84%AAey", "/files//a%2Fb", "/FILES/a%2Fb/", "/files/a;/../../health"
      ]
      for (const url of targets) {
        assert.match(yield* routeOf(url), /^(login|key|files:.*)$/, url)
        assert.isTrue(yield* includeLimits(url), url)
      }
      // a dot segment the router keeps is still limited, as a proxy may resolve it
      assert.strictEqual(yield* routeOf("/a/../login"), "other:/a/../login", "/a/../login")
      assert.isTrue(yield* includeLimits("/a/../login"))
      assert.isFalse(yield* includeLimits("/other"))
    }))

  it.effect("an exclusion is not widened by dot segments, \";\" or escapes", () =>
    Effect.gen(function*() {
      // what the router serves as /health or /static/* (it cuts at ";") stays excluded
      for (const url of ["/health", "/health?x", "/static", "/static/a/b.css", "/static/x;/../../login"]) {
        assert.match(yield* routeOf(url), /^(health|static)$/, url)
        assert.isFalse(yield* excludeLimits(url), url)
      }
      for (const url of ["/health/../login", "/static/../login", "/static/%2e%2e/login", "/HEALTH", "/health/"]) {
        assert.isTrue(yield* excludeLimits(url), url)
      }
      // "/**/health" matches as sent and once dot segments are resolved, but the router cuts at
      // ";" and serves /login
      assert.strictEqual(yield* routeOf("/login;/../health"), "login")
      assert.isTrue(yield* anyHealthLimits("/login;/../health"))
      assert.isFalse(yield* anyHealthLimits("/a/health"))
    }))

  it.effect.prop("a target the router sends to an included route is limited", { url: target }, ({ url }) =>
    Effect.gen(function*() {
      const route = yield* routeOf(url)
      if (route === "login" || route === "key" || route.startsWith("files:")) {
        assert.isTrue(yield* includeLimits(url), `${url} -> ${route}`)
      }
    }), { fastCheck: { numRuns: 2000 } })

  it.effect.prop("a target left out as excluded reaches an excluded route, or none", { url: target }, ({ url }) =>
    Effect.gen(function*() {
      if (!(yield* excludeLimits(url))) {
        // health, static, a parametric route given a path that ends in /health, or no route at all
        assert.match((yield* routeOf(url)).toLowerCase(), /^(health|static|(other|files):(\/.*)?\/health|404)$/, url)
      }
    }), { fastCheck: { numRuns: 2000 } })
})
