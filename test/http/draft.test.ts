/**
 * The rate-limit fields as draft-ietf-httpapi-ratelimit-headers-10 defines them, read back by
 * parsing the emitted Structured Fields (RFC 9651) and asserting each member and parameter: the
 * policy items (`q`, `qu`, `w`, `pk`), the service limit items (`r`, `t`, `pk`), `t` as the time
 * until more quota comes (not until full), the concurrency unit, the 429 problem type with its
 * `violated-policies`, several limits in one call (static and chosen per request, all or
 * nothing), and `catchExceeded` over a composite acquire. Web handler, TestClock (frozen): every
 * number is exact.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect } from "effect"
import { type LimiterDefinition, RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import { HttpServerResponse } from "#fx/http"
import { QUOTA_EXCEEDED } from "../../src/core/http/headers.js"
import { type BareItem, bytesText, isInnerList, parseList } from "../../src/core/http/structured.js"
import { freshId, limitersOn, requestCount, webHandler } from "./helpers.js"

const ok = Effect.succeed(HttpServerResponse.text("ok"))
const hour = (limit: number): LimiterDefinition.LimiterDefinition => ({ algorithm: "sliding_window", limit, window: "1 hour" })

interface Parsed {
  readonly name: string
  readonly params: Record<string, BareItem>
}

/** A field value as its members: each an Item whose value is a String, with its parameters. */
const members = (value: string | undefined): Array<Parsed> => {
  assert.isDefined(value)
  const parsed = parseList(value ?? "")
  if (!parsed.ok) throw new Error(`not a structured-field list: ${value} (${parsed.error})`)
  return parsed.value.map((m) => {
    if (isInnerList(m)) throw new Error(`an inner list in ${value}`)
    assert.strictEqual(typeof m.value, "string", `the policy name of ${value} is a String`)
    return { name: String(m.value), params: Object.fromEntries(m.params) }
  })
}

describe("structured-field parser (RFC 9651)", () => {
  it("reads the draft's examples member by member", () => {
    assert.deepStrictEqual(members(`"burst";q=100;w=60,"daily";q=1000;w=86400`), [
      { name: "burst", params: { q: 100, w: 60 } },
      { name: "daily", params: { q: 1000, w: 86400 } }
    ])
    const [pk] = members(`"peruser";q=65535;qu="content-bytes";w=10;pk=:c2RmakxKVU9VSA==:`)
    assert.strictEqual(pk?.params["qu"], "content-bytes")
    assert.strictEqual(bytesText(pk?.params["pk"]), "sdfjLJUOUH")
    assert.deepStrictEqual(members(`"default";r=50;t=30`), [{ name: "default", params: { r: 50, t: 30 } }])
    assert.deepStrictEqual(members(`"a\\"b";x=?1;y=-1.5;z=tok/en`), [
      { name: `a"b`, params: { x: true, y: -1.5, z: { token: "tok/en" } } }
    ])
  })

  it("fails on what the grammar refuses", () => {
    for (const bad of [`"a";q=1,`, `"a";Q=1`, `"a";q=1.2345`, `"a" "b"`, `"unterminated`, `"a";pk=:not base64:`, `"a";q=1234567890123456`]) {
      assert.isFalse(parseList(bad).ok, bad)
    }
  })
})

describe("RateLimit / RateLimit-Policy as draft-10 defines them", () => {
  it.effect("sliding window: q, w; r, t; no qu, no pk; a full quota has no t", () => {
    const id = freshId("sw")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "draft" })(ok))
      const r = yield* send("/")
      assert.deepStrictEqual(members(r.headers["ratelimit-policy"]), [{ name: id, params: { q: 3, w: 3600 } }])
      assert.deepStrictEqual(members(r.headers["ratelimit"]), [{ name: id, params: { r: 2, t: 3600 } }])
      // a status that spends nothing: the quota is full, no more will come, so no t
      const { spec } = yield* RateLimiter.get(id)
      const decision = { limiterId: id, key: "", allowed: true, limit: 3, remaining: 3, resetAfterMs: 0, retryAfterMs: 0, failedOpen: false, spec }
      const full = HttpRateLimit.headersOf(decision, { headers: "draft" })
      assert.deepStrictEqual(members(full["ratelimit"]), [{ name: id, params: { r: 3 } }])
    }).pipe(Effect.provide(limitersOn({ [id]: hour(3) })))
  })

  it.effect("token bucket: t is until the next token, not until the bucket is full", () => {
    const id = freshId("tb")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "draft" })(ok))
      // 0.5 token/s, burst 4: each token takes 2 s
      const first = yield* send("/")
      assert.deepStrictEqual(members(first.headers["ratelimit-policy"]), [{ name: id, params: { q: 4, w: 8 } }])
      assert.deepStrictEqual(members(first.headers["ratelimit"]), [{ name: id, params: { r: 3, t: 2 } }])
      yield* send("/")
      const third = yield* send("/")
      // 3 tokens missing: full in 6 s, the next one in 2 s
      assert.deepStrictEqual(members(third.headers["ratelimit"]), [{ name: id, params: { r: 1, t: 2 } }])
      yield* send("/")
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      assert.deepStrictEqual(members(refused.headers["ratelimit"]), [{ name: id, params: { r: 0, t: 2 } }])
      assert.strictEqual(refused.headers["retry-after"], "2")
    }).pipe(Effect.provide(limitersOn({ [id]: { algorithm: "token_bucket", ratePerSecond: 0.5, burst: 4 } })))
  })

  it.effect("fixed window: t is until the window ends", () => {
    const id = freshId("fw")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "draft" })(ok))
      const r = yield* send("/")
      assert.deepStrictEqual(members(r.headers["ratelimit-policy"]), [{ name: id, params: { q: 5, w: 60 } }])
      assert.deepStrictEqual(members(r.headers["ratelimit"]), [{ name: id, params: { r: 4, t: 60 } }])
    }).pipe(Effect.provide(limitersOn({ [id]: { algorithm: "fixed_window", limit: 5, window: "1 minute" } })))
  })

  it.effect("a concurrency limit: qu=\"concurrent-requests\", no w, no t", () => {
    const id = freshId("conc")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "draft" })(ok))
      const r = yield* send("/")
      assert.deepStrictEqual(members(r.headers["ratelimit-policy"]), [
        { name: id, params: { q: 2, qu: "concurrent-requests" } }
      ])
      assert.deepStrictEqual(members(r.headers["ratelimit"]), [{ name: id, params: { r: 2 } }])
    }).pipe(Effect.provide(limitersOn({ [id]: { maxConcurrent: 2 } })))
  })

  it.effect("partitionKey: pk is the key's UTF-8 bytes on both items; off by default", () => {
    const id = freshId("pk")
    return Effect.gen(function*() {
      const key = "user:é42"
      const send = yield* webHandler(
        HttpRateLimit.middleware({ limiter: id, headers: "draft", partitionKey: true, key: () => Effect.succeed(key) })(ok)
      )
      const r = yield* send("/")
      const [policy] = members(r.headers["ratelimit-policy"])
      const [service] = members(r.headers["ratelimit"])
      assert.strictEqual(bytesText(policy?.params["pk"]), key)
      assert.strictEqual(bytesText(service?.params["pk"]), key)
      const plain = yield* webHandler(HttpRateLimit.middleware({ limiter: id, headers: "draft" })(ok))
      const [noPk] = members((yield* plain("/")).headers["ratelimit"])
      assert.isUndefined(noPk?.params["pk"])
    }).pipe(Effect.provide(limitersOn({ [id]: hour(10) })))
  })
})

describe("the 429 problem body (draft-10 §5.1)", () => {
  it.effect("quota-exceeded problem type, title, status, detail, violated-policies; Retry-After kept", () => {
    const id = freshId("api")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, policyName: "free-plan" })(ok))
      yield* send("/")
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.headers["content-type"], "application/problem+json")
      assert.strictEqual(refused.headers["retry-after"], "3600")
      assert.strictEqual(QUOTA_EXCEEDED, "https://iana.org/assignments/http-problem-types#quota-exceeded")
      assert.deepStrictEqual(JSON.parse(refused.body), {
        type: QUOTA_EXCEEDED,
        title: "Too Many Requests",
        status: 429,
        detail: `Rate limit "free-plan" exceeded; retry after 3600 seconds.`,
        "violated-policies": ["free-plan"],
        limiter: id,
        retryAfter: 3600
      })
      assert.deepStrictEqual(members(refused.headers["ratelimit"]), [{ name: "free-plan", params: { r: 0, t: 3600 } }])
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) })))
  })
})

describe("several limits per request", () => {
  it.effect("limiter: [ip, global]: one member per limit; a refusal by one charges none and names it", () => {
    const perIp = freshId("login-ip")
    const global = freshId("login-global")
    return Effect.gen(function*() {
      const send = yield* webHandler(
        HttpRateLimit.middleware({ limiter: [perIp, { limiter: global, key: "all" }], headers: "draft" })(ok)
      )
      const a = yield* send("/")
      assert.deepStrictEqual(members(a.headers["ratelimit-policy"]), [
        { name: perIp, params: { q: 2, w: 3600 } },
        { name: global, params: { q: 3, w: 3600 } }
      ])
      assert.deepStrictEqual(members(a.headers["ratelimit"]), [
        { name: perIp, params: { r: 1, t: 3600 } },
        { name: global, params: { r: 2, t: 3600 } }
      ])
      yield* send("/")
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      const body = JSON.parse(refused.body)
      assert.deepStrictEqual(body["violated-policies"], [perIp])
      assert.deepStrictEqual(members(refused.headers["ratelimit"]), [
        { name: perIp, params: { r: 0, t: 3600 } },
        { name: global, params: { r: 1, t: 3600 } }
      ])
      // all or nothing: the refused call took nothing from the global limit
      const g = yield* RateLimiter.status(global, { key: "all" })
      assert.strictEqual(g.remaining, 1)
      // another client: its own per-IP limit, the global one shared, which now refuses
      yield* send("/", { headers: { "x-test-peer": "198.51.100.2" } })
      const both = yield* send("/", { headers: { "x-test-peer": "198.51.100.3" } })
      assert.strictEqual(both.status, 429)
      assert.deepStrictEqual(JSON.parse(both.body)["violated-policies"], [global])
      assert.strictEqual(yield* requestCount(perIp, "allowed"), 3)
      assert.strictEqual(yield* requestCount(global, "allowed"), 3)
      assert.strictEqual(yield* requestCount(perIp, "refused"), 2)
      assert.strictEqual(yield* requestCount(global, "refused"), 2)
    }).pipe(Effect.provide(limitersOn({ [perIp]: hour(2), [global]: hour(3) })))
  })

  it.effect("limits per request: a tiered plan picks its limiter and key; cost per limit; Exempt", () => {
    const free = freshId("free")
    const pro = freshId("pro")
    const tokens = freshId("tokens")
    return Effect.gen(function*() {
      const app = ok.pipe(HttpRateLimit.limit(free, {
        key: (request) => Effect.succeed(request.headers["x-user"] ?? "anon"),
        limits: (request) => {
          const plan = request.headers["x-plan"]
          if (plan === "internal") return Effect.succeed(HttpRateLimit.Exempt)
          return Effect.succeed(plan === "pro" ? [pro, { limiter: tokens, cost: 10 }] : free)
        },
        policyName: { [pro]: "pro", [tokens]: "pro-tokens" },
        headers: "draft"
      }))
      const send = yield* webHandler(app)
      const f = yield* send("/", { headers: { "x-user": "u1" } })
      assert.deepStrictEqual(members(f.headers["ratelimit"]), [{ name: free, params: { r: 0, t: 3600 } }])
      assert.strictEqual((yield* send("/", { headers: { "x-user": "u1" } })).status, 429)
      const p = yield* send("/", { headers: { "x-user": "u1", "x-plan": "pro" } })
      assert.strictEqual(p.status, 200)
      assert.deepStrictEqual(members(p.headers["ratelimit"]), [
        { name: "pro", params: { r: 99, t: 3600 } },
        { name: "pro-tokens", params: { r: 90, t: 3600 } }
      ])
      assert.strictEqual((yield* RateLimiter.status(tokens, { key: "u1" })).remaining, 90)
      const internal = yield* send("/", { headers: { "x-user": "u1", "x-plan": "internal" } })
      assert.strictEqual(internal.status, 200)
      assert.isUndefined(internal.headers["ratelimit"])
      assert.strictEqual(yield* requestCount(pro, "allowed"), 1)
      assert.strictEqual(yield* requestCount(free, "exempt"), 1)
    }).pipe(Effect.provide(limitersOn({ [free]: hour(1), [pro]: hour(100), [tokens]: hour(100) })))
  })

  it.effect("catchExceeded: a composite acquire refused in a handler is the same 429, every violation named", () => {
    const rpm = freshId("rpm")
    const tpm = freshId("tpm")
    return Effect.gen(function*() {
      const handler = Effect.scoped(
        Effect.as(
          RateLimiter.acquire([rpm, { limiter: tpm, cost: 6 }], { key: "u", timeout: 0 }),
          HttpServerResponse.text("ok")
        )
      )
      const send = yield* webHandler(handler.pipe(HttpRateLimit.catchExceeded({ headers: "draft" })))
      assert.strictEqual((yield* send("/")).status, 200)
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      const body = JSON.parse(refused.body)
      assert.strictEqual(body.type, QUOTA_EXCEEDED)
      assert.deepStrictEqual(body["violated-policies"], [rpm, tpm])
      assert.strictEqual(refused.headers["retry-after"], "3600")
      assert.deepStrictEqual(members(refused.headers["ratelimit-policy"]), [
        { name: rpm, params: { q: 1, w: 3600 } },
        { name: tpm, params: { q: 10, w: 3600 } }
      ])
      assert.deepStrictEqual(members(refused.headers["ratelimit"]), [
        { name: rpm, params: { r: 0, t: 3600 } },
        { name: tpm, params: { r: 4, t: 3600 } }
      ])
    }).pipe(Effect.provide(limitersOn({ [rpm]: hour(1), [tpm]: hour(10) })))
  })

  it.effect("onRefused gets the binding refusal and the combined decision over every limit", () => {
    const a = freshId("a")
    const b = freshId("b")
    const seen: Array<string> = []
    const onRefused: HttpRateLimit.RefusalHandler = (decision, _request, combined) =>
      Effect.sync(() => {
        seen.push(`${decision.limiterId} ${combined.decisions.length} ${combined.violations.map((v) => v.limiterId).join(",")}`)
        return HttpServerResponse.text("later", { status: 429 })
      })
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: [a, b], onRefused, headers: "draft" })(ok))
      yield* send("/")
      const refused = yield* send("/")
      assert.strictEqual(refused.body, "later")
      assert.deepStrictEqual(seen, [`${b} 2 ${b}`])
      assert.deepStrictEqual(members(refused.headers["ratelimit"]).map((m) => m.name), [a, b])
    }).pipe(Effect.provide(limitersOn({ [a]: hour(5), [b]: hour(1) })))
  })

  it.effect("catchExceeded: a slot refused is the concurrency unit, no window, no t", () => {
    const slots = freshId("slots")
    return Effect.gen(function*() {
      const handler = Effect.scoped(
        Effect.as(RateLimiter.acquire(slots, { key: "u", timeout: 0 }), HttpServerResponse.text("ok"))
      )
      const send = yield* webHandler(handler.pipe(HttpRateLimit.catchExceeded({ headers: "draft" })))
      // hold the only slot while a request comes in
      yield* Effect.scoped(Effect.gen(function*() {
        yield* RateLimiter.acquire(slots, { key: "u" })
        const refused = yield* send("/")
        assert.strictEqual(refused.status, 429)
        assert.deepStrictEqual(members(refused.headers["ratelimit-policy"]), [
          { name: slots, params: { q: 1, qu: "concurrent-requests" } }
        ])
        assert.deepStrictEqual(members(refused.headers["ratelimit"]), [{ name: slots, params: { r: 0 } }])
        assert.deepStrictEqual(JSON.parse(refused.body)["violated-policies"], [slots])
      }))
    }).pipe(Effect.provide(limitersOn({ [slots]: { maxConcurrent: 1 } })))
  })

  it.effect("headersOf a CombinedDecision: one member per limit; bad options are ConfigErrors", () => {
    const a = freshId("a")
    const b = freshId("b")
    return Effect.gen(function*() {
      const combined = yield* RateLimiter.check([a, b], { key: "k" })
      const headers = HttpRateLimit.headersOf(combined, { headers: "draft" })
      assert.deepStrictEqual(members(headers["ratelimit"]).map((m) => m.name), [a, b])
      for (const options of [
        { limiter: [] },
        { limiter: [a, 3] },
        { limiter: [a, b], policyName: "one" },
        { limiter: a, partitionKey: "yes" },
        { limits: "not a function" }
      ]) {
        // checked at run time: plain JavaScript callers reach here unchecked
        const built = yield* Effect.exit(HttpRateLimit.makeMiddleware(options as unknown as HttpRateLimit.MiddlewareOptions))
        assert.strictEqual(built._tag, "Failure", JSON.stringify(options))
      }
    }).pipe(Effect.provide(limitersOn({ [a]: hour(2), [b]: hour(2) })))
  })
})
