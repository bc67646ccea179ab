/**
 * The scenarios every framework middleware (Express, Fastify, Hono) passes, each against a real
 * server of that framework on 127.0.0.1:<ephemeral>, driven by `fetch`, with the promise facade
 * configured by `useLayer` (memory store, or a store whose every operation fails) and disposed
 * after each test. The expected headers and 429 body are those `HttpRateLimit.middleware` sends
 * for the same limiter (run as a web handler on the same major), not copies of its text.
 * Real clock: windows of an hour, never tight timings.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { type LimiterDefinition, MemoryStore, RateLimitError, RateLimiter, RateLimitMetrics, RateLimitStore } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import * as RS from "effect-rate-sync/promise"
import { HttpServerResponse } from "#fx/http"
import { toWebHandler } from "#test/web"
import * as T from "#test/effect"
import { metricContext } from "#test/metricContext"
import { bytesText, isInnerList, parseList } from "../../src/core/http/structured.js"
import type { AdapterOptions } from "../../src/internal/adapters/core.js"

export interface Reply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** A framework's server, listening. `hits` counts the requests its handler answered. */
export interface Served {
  readonly base: string
  readonly hits: () => number
  readonly close: () => Promise<void>
}

/** What a framework's test file gives the scenarios. */
export interface Framework<Req, Refusal> {
  readonly name: string
  /**
   * Serves every `GET` path, answering `ok` (counted in `hits`), behind `rateLimit(options)` for
   * each of `middlewares`, in order, on 127.0.0.1 and an ephemeral port.
   */
  readonly serve: (middlewares: ReadonlyArray<AdapterOptions<Req, Refusal>>) => Promise<Served>
  /** The framework's `rateLimit` itself (for the option checks). */
  readonly rateLimit: (options: AdapterOptions<Req, Refusal>) => unknown
  /** A request header, as a key function reads it. */
  readonly header: (request: Req, name: string) => string | undefined
  /**
   * A refusal handler answering 429 with the JSON `{ "error": "quota exceeded", "limit": <the
   * decision's limit> }`, the header `x-custom: yes` and its own `retry-after: 99`.
   */
  readonly customRefusal: Refusal
  /** A refusal handler that sets `x-custom: yes` and answers nothing (Express, Fastify: then the default 429 is sent). */
  readonly silentRefusal?: Refusal | undefined
}

/** A field's members as `name;param=value` texts, read by the RFC 9651 parser. */
const membersOf = (value: string | undefined): Array<string> => {
  const parsed = parseList(value ?? "")
  if (!parsed.ok) throw new Error(`not a structured-field list: ${value}`)
  return parsed.value.map((m) => {
    if (isInnerList(m)) throw new Error(`an inner list in ${value}`)
    const params = Array.from(m.params, ([k, v]) => `${k}=${bytesText(v) ?? JSON.stringify(v)}`)
    return [String(m.value), ...params].join(";")
  })
}

/** The HTTP request counter of the Effect middleware, which the adapters update too. */
const requestCount = (limiter: string, outcome: string): Promise<number> =>
  Effect.runPromise(T.counterCount(HttpRateLimit.requests, { limiter, outcome }))

export const freshId = (prefix: string): string => `${prefix}-${crypto.randomUUID()}`

export const hour = (limit: number): LimiterDefinition.LimiterDefinition => ({ algorithm: "sliding_window", limit, window: "1 hour" })

const limiters = (
  definitions: Readonly<Record<string, LimiterDefinition.LimiterDefinition>>,
  store: Layer.Layer<RateLimitStore.RateLimitStore> = MemoryStore.layer()
): Layer.Layer<RateLimiter.RateLimiter> => RateLimiter.layer(definitions).pipe(Layer.provide(store), Layer.orDie)

/** The text a broken store's error would carry: a URL with credentials and a key layout. */
const SECRET = "connect ECONNREFUSED redis://admin:hunter2@10.9.8.7:6379/0 while running EVALSHA on rate_limit:{api}:203.0.113.9"
const SECRET_PARTS = ["hunter2", "redis", "10.9.8.7", "rate_limit", "ECONNREFUSED", "EVALSHA", "203.0.113.9"]

const failing = (operation: string) => () =>
  Effect.fail(new RateLimitStore.StoreError({ engine: "redis", operation, message: SECRET }))

/** A store whose every round trip fails with {@link SECRET}. */
const failingStore: Layer.Layer<RateLimitStore.RateLimitStore> = Layer.succeed(
  RateLimitStore.RateLimitStore,
  RateLimitStore.make({
    engine: "failing",
    tokenBucket: failing("tokenBucket"), slidingWindow: failing("slidingWindow"), fixedWindow: failing("fixedWindow"),
    acquireSlot: failing("acquireSlot"), renewSlot: failing("renewSlot"), releaseSlot: failing("releaseSlot"),
    peek: failing("peek"), reset: failing("reset"), initialize: failing("initialize")()
  })
)

const replyOf = async (response: Response): Promise<Reply> => {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  return { status: response.status, headers, body: await response.text() }
}

const get = async (base: string, path: string, headers?: Record<string, string>): Promise<Reply> =>
  replyOf(await fetch(`${base}${path}`, headers === undefined ? {} : { headers }))

const RATE_HEADERS = ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"]

/** The rate-limit headers of a reply (everything a limiter may set). */
export const rateHeadersOf = (reply: Reply): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name of RATE_HEADERS) {
    const value = reply.headers[name]
    if (value !== undefined) out[name] = value
  }
  return out
}

/** What a limiter decides in a reply: status, rate-limit headers, and for a refusal its type and body. */
const answerOf = (reply: Reply) =>
  reply.status === 200
    ? { status: reply.status, headers: rateHeadersOf(reply) }
    : { status: reply.status, headers: rateHeadersOf(reply), type: reply.headers["content-type"], body: reply.body }

/**
 * The replies `HttpRateLimit.middleware({ limiter, ...options })` gives to GETs of `paths`, the
 * limiter defined as `definition` on a memory store of its own (a web handler has no socket: the
 * key is `"unknown"`).
 */
const effectReplies = async (
  limiter: string,
  definition: LimiterDefinition.LimiterDefinition,
  options: Pick<HttpRateLimit.MiddlewareOptions, "headers" | "policyName">,
  paths: ReadonlyArray<string>
): Promise<Array<Reply>> => {
  const scope = await Effect.runPromise(Scope.make())
  try {
    const context = await Effect.runPromise(Layer.buildWithScope(limiters({ [limiter]: definition }), scope))
    const app = HttpRateLimit.middleware({ limiter, ...options })(Effect.succeed(HttpServerResponse.text("ok")))
    const handler = toWebHandler(Effect.provide(app, context))
    const replies: Array<Reply> = []
    for (const path of paths) replies.push(await replyOf(await handler(new Request(`http://localhost${path}`))))
    return replies
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export type Send = (path: string, headers?: Record<string, string>) => Promise<Reply>

/**
 * Configures the facade with `definitions` (on `store`, default a memory store), serves
 * `middlewares` with `serve`, runs `body` with a function sending GETs to the server, closes it.
 */
export const serveWith = async <O>(
  serve: (middlewares: ReadonlyArray<O>) => Promise<Served>,
  definitions: Readonly<Record<string, LimiterDefinition.LimiterDefinition>>,
  middlewares: ReadonlyArray<O>,
  body: (send: Send, served: Served) => Promise<void>,
  store?: Layer.Layer<RateLimitStore.RateLimitStore>
): Promise<void> => {
  await RS.useLayer(limiters(definitions, store))
  const served = await serve(middlewares)
  assert.match(served.base, /^http:\/\/127\.0\.0\.1:[0-9]+$/)
  try {
    await body((path, headers) => get(served.base, path, headers), served)
  } finally {
    await served.close()
  }
}

export const adapterSuite = <Req, Refusal>(framework: Framework<Req, Refusal>): void => {
  const { header } = framework

  const withServer = (
    definitions: Readonly<Record<string, LimiterDefinition.LimiterDefinition>>,
    middlewares: ReadonlyArray<AdapterOptions<Req, Refusal>>,
    body: (send: Send, served: Served) => Promise<void>,
    store?: Layer.Layer<RateLimitStore.RateLimitStore>
  ): Promise<void> => serveWith(framework.serve, definitions, middlewares, body, store)

  describe(`${framework.name} middleware over the promise facade`, () => {
    afterEach(() => RS.dispose())

    const definitions: ReadonlyArray<readonly [string, LimiterDefinition.LimiterDefinition]> = [
      ["sliding window 3/hour", hour(3)],
      ["token bucket, burst 3", { algorithm: "token_bucket", ratePerSecond: 0.01, burst: 3 }]
    ]
    const modes: ReadonlyArray<Pick<HttpRateLimit.MiddlewareOptions, "headers" | "policyName">> = [
      {},
      { headers: "draft", policyName: "plan \"gold\"" },
      { headers: "legacy" },
      { headers: "none" }
    ]
    for (const [name, definition] of definitions) {
      for (const mode of modes) {
        it(`${name}, ${JSON.stringify(mode)}: the Effect middleware's headers on each 200, then its 429`, async () => {
          const limiter = freshId("same")
          const paths = ["/hello", "/hello?x=1", "/other", "/hello"]
          await withServer({ [limiter]: definition }, [{ limiter, ...mode }], async (send, served) => {
            const replies: Array<Reply> = []
            for (const path of paths) replies.push(await send(path))
            const expected = await effectReplies(limiter, definition, mode, paths)
            assert.deepStrictEqual(replies.map(answerOf), expected.map(answerOf))
            assert.deepStrictEqual(replies.map((r) => r.status), [200, 200, 200, 429])
            assert.deepStrictEqual(replies.slice(0, 3).map((r) => r.body), ["ok", "ok", "ok"])
            assert.strictEqual(served.hits(), 3)
          })
        })
      }
    }

    it("the 429 as documented: RateLimit, RateLimit-Policy, X-RateLimit-*, Retry-After, problem+json body", async () => {
      const limiter = freshId("api")
      await withServer({ [limiter]: hour(2) }, [{ limiter }], async (send) => {
        const first = await send("/hello")
        assert.deepStrictEqual(rateHeadersOf(first), {
          "ratelimit-policy": `"${limiter}";q=2;w=3600`,
          "ratelimit": `"${limiter}";r=1;t=3600`,
          "x-ratelimit-limit": "2",
          "x-ratelimit-remaining": "1",
          "x-ratelimit-reset": "3600"
        })
        await send("/hello")
        const refused = await send("/hello")
        assert.strictEqual(refused.status, 429)
        assert.strictEqual(refused.headers["content-type"], "application/problem+json")
        assert.deepStrictEqual(rateHeadersOf(refused), {
          "ratelimit-policy": `"${limiter}";q=2;w=3600`,
          "ratelimit": `"${limiter}";r=0;t=3600`,
          "x-ratelimit-limit": "2",
          "x-ratelimit-remaining": "0",
          "x-ratelimit-reset": "3600",
          "retry-after": "3600"
        })
        assert.strictEqual(
          refused.body,
          JSON.stringify({
            type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
            title: "Too Many Requests",
            status: 429,
            detail: `Rate limit "${limiter}" exceeded; retry after 3600 seconds.`,
            "violated-policies": [limiter],
            limiter,
            retryAfter: 3600
          })
        )
        assert.notInclude(JSON.stringify(refused), "127.0.0.1")
      })
    })

    it("exclude: an excluded path is never limited and gets no headers; other spellings are limited", async () => {
      const limiter = freshId("exclude")
      await withServer({ [limiter]: hour(1) }, [{ limiter, exclude: ["/health", "/static/**"] }], async (send) => {
        for (const path of ["/health", "/health", "/health?probe=1", "/static/app.js", "/static"]) {
          const r = await send(path)
          assert.strictEqual(r.status, 200, path)
          assert.deepStrictEqual(rateHeadersOf(r), {}, path)
        }
        assert.strictEqual((await send("/hello")).status, 200)
        assert.strictEqual((await send("/hello")).status, 429)
        assert.strictEqual((await send("/health")).status, 200)
        assert.strictEqual((await send("/static/app.js")).status, 200)
        // not excluded beyond its literal spelling: limited (and over budget)
        for (const path of ["/HEALTH", "/health/", "/health.json"]) assert.strictEqual((await send(path)).status, 429, path)
      })
    })

    it("include: only the included paths are limited", async () => {
      const limiter = freshId("include")
      await withServer({ [limiter]: hour(1) }, [{ limiter, include: ["/login"] }], async (send) => {
        for (let i = 0; i < 3; i++) assert.deepStrictEqual(rateHeadersOf(await send("/hello")), {})
        assert.strictEqual((await send("/login")).status, 200)
        for (const path of ["/login", "/LOGIN", "/login/"]) assert.strictEqual((await send(path)).status, 429, path)
      })
    })

    it("X-Forwarded-For is ignored from an untrusted peer: the key is the socket's address", async () => {
      const limiter = freshId("untrusted")
      const seen: Array<string | undefined> = []
      const key = (_request: Req, client: string | undefined) => {
        seen.push(client)
        return client ?? "none"
      }
      await withServer({ [limiter]: hour(1) }, [{ limiter, key }], async (send) => {
        assert.strictEqual((await send("/a", { "x-forwarded-for": "203.0.113.7" })).status, 200)
        // another forwarded address does not buy a new budget
        assert.strictEqual((await send("/a", { "x-forwarded-for": "203.0.113.8" })).status, 429)
        assert.strictEqual((await send("/a", { forwarded: "for=203.0.113.9" })).status, 429)
        assert.deepStrictEqual(seen, ["127.0.0.1", "127.0.0.1", "127.0.0.1"])
      })
    })

    it("X-Forwarded-For from a trusted peer: walked from the right, past trusted hops; garbage stops the walk", async () => {
      const limiter = freshId("trusted")
      const seen: Array<string | undefined> = []
      const key = (_request: Req, client: string | undefined) => {
        seen.push(client)
        return client ?? "none"
      }
      await withServer({ [limiter]: hour(1) }, [{ limiter, key, trustedProxies: ["loopback"] }], async (send) => {
        const chains = [
          "203.0.113.7", // the client, as the proxy wrote it
          "198.51.100.1, 203.0.113.8", // the left entry is the client's own writing: never read
          "203.0.113.8, 127.0.0.2", // a trusted hop skipped
          "garbage", // not an address: the last trusted hop (the peer)
          "2001:db8:1:2::5" // IPv6 grouped by /64
        ]
        const statuses: Array<number> = []
        for (const chain of chains) statuses.push((await send("/a", { "x-forwarded-for": chain })).status)
        assert.deepStrictEqual(seen, ["203.0.113.7", "203.0.113.8", "203.0.113.8", "127.0.0.1", "2001:db8:1:2::/64"])
        assert.deepStrictEqual(statuses, [200, 200, 429, 200, 200])
        // the default key is the same address: a second request from 203.0.113.7 is over budget
        assert.strictEqual((await send("/a", { "x-forwarded-for": "203.0.113.7" })).status, 429)
      })
    })

    it("proxyHeader forwarded: Forwarded is read, X-Forwarded-For is not", async () => {
      const limiter = freshId("forwarded")
      const seen: Array<string | undefined> = []
      const key = (_request: Req, client: string | undefined) => {
        seen.push(client)
        return client ?? "none"
      }
      const options = { limiter, key, trustedProxies: ["127.0.0.1"], proxyHeader: "forwarded" as const }
      await withServer({ [limiter]: hour(5) }, [options], async (send) => {
        await send("/a", { forwarded: `for="[2001:db8::1]:443";proto=https` })
        await send("/a", { "x-forwarded-for": "203.0.113.7" })
        assert.deepStrictEqual(seen, ["2001:db8::/64", "127.0.0.1"])
      })
    })

    it("a key function answering Exempt: no store call, no headers, never limited", async () => {
      const limiter = freshId("exempt")
      const key = (request: Req, client: string | undefined) =>
        header(request, "x-api-key") === "internal" ? HttpRateLimit.Exempt : Promise.resolve(`ip:${client ?? "?"}`)
      await withServer({ [limiter]: hour(1) }, [{ limiter, key }], async (send) => {
        for (let i = 0; i < 3; i++) {
          const r = await send("/a", { "x-api-key": "internal" })
          assert.strictEqual(r.status, 200)
          assert.deepStrictEqual(rateHeadersOf(r), {})
        }
        assert.strictEqual((await send("/a")).status, 200)
        assert.strictEqual((await send("/a")).status, 429)
        assert.strictEqual((await send("/a", { "x-api-key": "internal" })).status, 200)
      })
      // the reply was the facade's own limiter: the exempt requests took nothing
      const metrics = (await RS.getLimiter(limiter)).getMetrics()
      assert.strictEqual(metrics.totalAcquisitions, 1)
    })

    it("cost: a number, or a function of the request", async () => {
      const fixed = freshId("cost-fixed")
      const perRequest = freshId("cost-fn")
      const cost = (request: Req) => Number(header(request, "x-cost") ?? "1")
      await withServer({ [fixed]: hour(3), [perRequest]: hour(3) }, [
        { limiter: fixed, cost: 2, include: ["/fixed"] },
        { limiter: perRequest, cost, include: ["/fn"] }
      ], async (send) => {
        assert.strictEqual(rateHeadersOf(await send("/fixed"))["x-ratelimit-remaining"], "1")
        assert.strictEqual((await send("/fixed")).status, 429)
        assert.strictEqual(rateHeadersOf(await send("/fn", { "x-cost": "3" }))["x-ratelimit-remaining"], "0")
        assert.strictEqual((await send("/fn", { "x-cost": "1" })).status, 429)
      })
    })

    it("onRefused: the handler's response, with Retry-After and the rate headers it did not set", async () => {
      const limiter = freshId("custom")
      await withServer({ [limiter]: hour(1) }, [{ limiter, onRefused: framework.customRefusal }], async (send, served) => {
        assert.strictEqual((await send("/a")).status, 200)
        const refused = await send("/a")
        assert.strictEqual(refused.status, 429)
        assert.deepStrictEqual(JSON.parse(refused.body), { error: "quota exceeded", limit: 1 })
        assert.strictEqual(refused.headers["x-custom"], "yes")
        assert.strictEqual(refused.headers["retry-after"], "99") // set by the handler: kept
        assert.strictEqual(refused.headers["ratelimit"], `"${limiter}";r=0;t=3600`)
        assert.strictEqual(refused.headers["x-ratelimit-remaining"], "0")
        assert.strictEqual(served.hits(), 1)
      })
    })

    const silentRefusal = framework.silentRefusal
    if (silentRefusal !== undefined) {
      it("onRefused answering nothing: the default 429, with the header it set", async () => {
        const limiter = freshId("silent")
        await withServer({ [limiter]: hour(1) }, [{ limiter, onRefused: silentRefusal }], async (send) => {
          await send("/a")
          const refused = await send("/a")
          assert.strictEqual(refused.status, 429)
          assert.strictEqual(refused.headers["x-custom"], "yes")
          assert.strictEqual(refused.headers["content-type"], "application/problem+json")
          assert.strictEqual(refused.headers["retry-after"], "3600")
          assert.strictEqual(JSON.parse(refused.body).limiter, limiter)
        })
      })
    }

    it("two limiters on one request: both in the IETF lists, the most restrictive legacy trio", async () => {
      const outer = freshId("outer")
      const inner = freshId("inner")
      await withServer({ [outer]: hour(10), [inner]: hour(2) }, [{ limiter: outer }, { limiter: inner }], async (send) => {
        const r = await send("/a")
        const items = (r.headers["ratelimit"] ?? "").split(", ").sort()
        assert.deepStrictEqual(items, [`"${inner}";r=1;t=3600`, `"${outer}";r=9;t=3600`].sort())
        assert.strictEqual(r.headers["x-ratelimit-limit"], "2")
        assert.strictEqual(r.headers["x-ratelimit-remaining"], "1")
        await send("/a")
        const refused = await send("/a")
        assert.strictEqual(refused.status, 429)
        assert.include(refused.headers["ratelimit"] ?? "", `"${inner}";r=0;t=3600`)
      })
    })

    it("several limits in one middleware: all or nothing, a member per limit, the violated policy named, counted", async () => {
      const perIp = freshId("ip")
      const global = freshId("global")
      await withServer({ [perIp]: hour(2), [global]: hour(3) }, [
        { limiter: [perIp, { limiter: global, key: "all" }], headers: "draft" }
      ], async (send) => {
        const a = await send("/a")
        assert.deepStrictEqual(membersOf(a.headers["ratelimit-policy"]), [`${perIp};q=2;w=3600`, `${global};q=3;w=3600`])
        assert.deepStrictEqual(membersOf(a.headers["ratelimit"]), [`${perIp};r=1;t=3600`, `${global};r=2;t=3600`])
        await send("/a")
        const refused = await send("/a")
        assert.strictEqual(refused.status, 429)
        const body = JSON.parse(refused.body)
        assert.strictEqual(body.type, "https://iana.org/assignments/http-problem-types#quota-exceeded")
        assert.deepStrictEqual(body["violated-policies"], [perIp])
        assert.deepStrictEqual(membersOf(refused.headers["ratelimit"]), [`${perIp};r=0;t=3600`, `${global};r=1;t=3600`])
        // nothing was charged on the global limit by the refused call
        assert.strictEqual((await RS.status(global, { key: "all" })).remaining, 1)
        assert.strictEqual(await requestCount(perIp, "allowed"), 2)
        assert.strictEqual(await requestCount(global, "allowed"), 2)
        assert.strictEqual(await requestCount(perIp, "refused"), 1)
        assert.strictEqual(await requestCount(global, "refused"), 1)
      })
    })

    it("limits per request (tiered plans), policy names per limiter, pk, Exempt; counted as the Effect middleware counts", async () => {
      const free = freshId("free")
      const pro = freshId("pro")
      await withServer({ [free]: hour(1), [pro]: hour(100) }, [{
        limiter: free,
        key: (request) => header(request, "x-user") ?? "anon",
        limits: async (request) => {
          const plan = header(request, "x-plan")
          return plan === "internal" ? HttpRateLimit.Exempt : plan === "pro" ? [{ limiter: pro, cost: 5 }] : free
        },
        policyName: { [pro]: "pro" },
        partitionKey: true,
        headers: "draft"
      }], async (send) => {
        const f = await send("/a", { "x-user": "u1" })
        assert.deepStrictEqual(membersOf(f.headers["ratelimit"]), [`${free};r=0;t=3600;pk=u1`])
        assert.strictEqual((await send("/a", { "x-user": "u1" })).status, 429)
        const p = await send("/a", { "x-user": "u1", "x-plan": "pro" })
        assert.strictEqual(p.status, 200)
        assert.deepStrictEqual(membersOf(p.headers["ratelimit-policy"]), [`pro;q=100;w=3600;pk=u1`])
        assert.deepStrictEqual(membersOf(p.headers["ratelimit"]), [`pro;r=95;t=3600;pk=u1`])
        const internal = await send("/a", { "x-plan": "internal" })
        assert.strictEqual(internal.status, 200)
        assert.isUndefined(internal.headers["ratelimit"])
        assert.strictEqual(await requestCount(free, "allowed"), 1)
        assert.strictEqual(await requestCount(free, "refused"), 1)
        assert.strictEqual(await requestCount(free, "exempt"), 1)
        assert.strictEqual(await requestCount(pro, "allowed"), 1)
      })
    })

    it("the HTTP counter lands where the limiters' own metrics do, whatever metric context the facade's layer carries", async () => {
      /** Two requests (one admitted, one refused) through a facade whose layer is `layer`; the four counts in the default context and in `other`'s. */
      const twoRequests = async (limiter: string, layer: Layer.Layer<RateLimiter.RateLimiter>, other: ReturnType<typeof metricContext>) => {
        await RS.useLayer(layer)
        const served = await framework.serve([{ limiter }])
        try {
          assert.strictEqual((await fetch(`${served.base}/a`)).status, 200)
          assert.strictEqual((await fetch(`${served.base}/a`)).status, 429)
        } finally {
          await served.close()
        }
        const counts = Effect.all([
          T.counterCount(HttpRateLimit.requests, { limiter, outcome: "allowed" }),
          T.counterCount(HttpRateLimit.requests, { limiter, outcome: "refused" }),
          T.counterCount(RateLimitMetrics.acquisitions, { limiter }),
          T.counterCount(RateLimitMetrics.refusals, { limiter })
        ])
        return [await Effect.runPromise(counts), await Effect.runPromise(other.within(counts))]
      }
      const major: number = T.major
      // the metric context beside the limiters' layer (Effect 4: a Metric.MetricRegistry of its own;
      // Effect 3: a label on every contextual update): the limiters were made without it, their
      // metrics are in the default context, and so is the counter; nothing of either in the other
      const beside = freshId("metric-context")
      const besideOther = metricContext(beside)
      assert.deepStrictEqual(
        await twoRequests(beside, Layer.merge(limiters({ [beside]: hour(1) }), besideOther.layer), besideOther),
        [[1, 1, 1, 1], [0, 0, 0, 0]]
      )
      // the metric context under the limiters' layer: on Effect 4 the limiters' metrics go to its
      // registry, and the counter with them; on Effect 3 they are global and take no contextual
      // label, so both stay in the default context (docs/observability.md)
      const under = freshId("metric-context-under")
      const underOther = metricContext(under)
      assert.deepStrictEqual(
        await twoRequests(under, limiters({ [under]: hour(1) }).pipe(Layer.provide(underOther.layer)), underOther),
        major === 4 ? [[0, 0, 0, 0], [1, 1, 1, 1]] : [[1, 1, 1, 1], [0, 0, 0, 0]]
      )
    })

    it("timeout: a refused request waits for the limiter while the retry fits, then is answered", async () => {
      const waits = freshId("waits")
      const refuses = freshId("refuses")
      const bucket: LimiterDefinition.LimiterDefinition = { algorithm: "token_bucket", ratePerSecond: 5, burst: 1 }
      await withServer({ [waits]: bucket, [refuses]: bucket }, [
        { limiter: waits, timeout: "5 seconds", include: ["/waits"] },
        { limiter: refuses, timeout: 0.01, include: ["/refuses"] } // a number is seconds: 10 ms, less than the 200 ms retry
      ], async (send) => {
        assert.strictEqual((await send("/waits")).status, 200)
        assert.strictEqual((await send("/waits")).status, 200)
        assert.strictEqual((await send("/refuses")).status, 200)
        assert.strictEqual((await send("/refuses")).status, 429)
      })
    })

    it("a failing store: fail-open passes without headers; fail-closed answers the fixed 503, no secret", async () => {
      const open = freshId("open")
      const closedByOption = freshId("closed-option")
      const closedLimiter = freshId("closed-limiter")
      const reopened = freshId("reopened")
      await withServer(
        {
          [open]: hour(1),
          [closedByOption]: hour(1),
          [closedLimiter]: { ...hour(1), failClosed: true },
          [reopened]: { ...hour(1), failClosed: true }
        },
        [
          { limiter: open, include: ["/open"] },
          { limiter: closedByOption, failOpen: false, include: ["/closed-option"] },
          { limiter: closedLimiter, include: ["/closed-limiter"] },
          { limiter: reopened, failOpen: true, include: ["/reopened"] }
        ],
        async (send, served) => {
          for (const path of ["/open", "/open", "/reopened"]) {
            const r = await send(path)
            assert.strictEqual(r.status, 200, path)
            assert.strictEqual(r.body, "ok")
            assert.deepStrictEqual(rateHeadersOf(r), {}, path)
          }
          for (const path of ["/closed-option", "/closed-limiter"]) {
            const r = await send(path)
            assert.strictEqual(r.status, 503, path)
            assert.strictEqual(r.headers["content-type"], "application/problem+json")
            assert.deepStrictEqual(rateHeadersOf(r), {})
            assert.strictEqual(
              r.body,
              `{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"Rate limiting is temporarily unavailable; please retry later."}`
            )
            const everything = JSON.stringify(r).toLowerCase()
            for (const secret of SECRET_PARTS) assert.notInclude(everything, secret.toLowerCase())
          }
          assert.strictEqual(served.hits(), 3)
        },
        failingStore
      )
    })

    it("invalid options throw the Effect middleware's ConfigError at construction", () => {
      const problem = (options: AdapterOptions<Req, Refusal>): unknown => {
        try {
          framework.rateLimit(options)
        } catch (error) {
          return error
        }
        return assert.fail("expected a ConfigError")
      }
      const cases: ReadonlyArray<readonly [AdapterOptions<Req, Refusal>, string]> = [
        [{ limiter: "api", trustedProxies: ["10.0.0.0/8", "10.0.0.300"] }, "http.trustedProxies[1]"],
        [{ limiter: "" }, "http.limiter"],
        [{ limiter: "api", ipv6Prefix: 0 }, "http.ipv6Prefix"],
        [{ limiter: "api", cost: 1.5 }, "http.cost"],
        [{ limiter: "api", timeout: -1 }, "http.timeout"],
        // as plain JavaScript may pass them (JSON.parse answers an untyped value)
        [{ limiter: "api", timeout: JSON.parse(`"soon"`) }, "http.timeout"],
        [{ limiter: "api", headers: JSON.parse(`"bogus"`) }, "http.headers"],
        [{ limiter: "api", onRefused: JSON.parse(`"not a function"`) }, "http.onRefused"]
      ]
      for (const [options, path] of cases) {
        const error = problem(options)
        assert.instanceOf(error, RateLimitError.ConfigError)
        assert.strictEqual(error.path, path)
      }
      // the same path and expectation as the Effect middleware's check
      const effect = Effect.runSync(Effect.flip(HttpRateLimit.makeMiddleware({ limiter: "api", trustedProxies: ["10.0.0.300"] })))
      const ours = problem({ limiter: "api", trustedProxies: ["10.0.0.300"] })
      assert.instanceOf(ours, RateLimitError.ConfigError)
      assert.deepStrictEqual([ours.path, ours.expected, ours.received], [effect.path, effect.expected, effect.received])
    })

    it("a limiter the facade does not know is the framework's error, not a 429 or a 503", async () => {
      await withServer({}, [{ limiter: "nowhere" }], async (send, served) => {
        const r = await send("/a")
        assert.strictEqual(r.status, 500)
        assert.strictEqual(served.hits(), 0)
      })
    })
  })
}
