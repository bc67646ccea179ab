/**
 * The exported header helpers (`headersOf`, `setHeaders`): the same headers the middleware
 * sends, for a `Decision` from `RateLimiter.check`. TestClock: frozen, so every number is exact.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect } from "effect"
import { type LimiterDefinition, RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import { freshId, limitersOn, rateHeadersOf, webHandler } from "./helpers.js"
import { HttpServerResponse } from "#fx/http"

const hour = (limit: number): LimiterDefinition.LimiterDefinition => ({ algorithm: "sliding_window", limit, window: "1 hour" })

describe("HttpRateLimit.headersOf / setHeaders", () => {
  it.effect("headersOf gives the headers of an allowed and of a refused decision, in every mode", () => {
    const id = freshId("api")
    return Effect.gen(function*() {
      const allowed = yield* RateLimiter.check(id, { key: "k" })
      assert.deepStrictEqual(HttpRateLimit.headersOf(allowed), {
        "ratelimit-policy": `"${id}";q=1;w=3600`,
        "ratelimit": `"${id}";r=0;t=3600`,
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "3600"
      })
      assert.deepStrictEqual(HttpRateLimit.headersOf(allowed, { headers: "draft", policyName: "plan" }), {
        "ratelimit-policy": `"plan";q=1;w=3600`,
        "ratelimit": `"plan";r=0;t=3600`
      })
      assert.deepStrictEqual(HttpRateLimit.headersOf(allowed, { headers: "legacy" }), {
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "3600"
      })
      assert.deepStrictEqual(HttpRateLimit.headersOf(allowed, { headers: "none" }), {})
      const refused = yield* RateLimiter.check(id, { key: "k" })
      assert.isFalse(refused.allowed)
      assert.deepStrictEqual(HttpRateLimit.headersOf(refused, { headers: "none" }), { "retry-after": "3600" })
      assert.strictEqual(HttpRateLimit.headersOf(refused)["retry-after"], "3600")
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) })))
  })

  it.effect("headersOf equals what the middleware sends, allowed and refused", () => {
    const id = freshId("api")
    const other = freshId("api")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id })(Effect.succeed(HttpServerResponse.text("ok"))))
      for (let i = 0; i < 3; i++) {
        const reply = yield* send("/")
        const decision = yield* RateLimiter.check(other, { key: "k" })
        const expected = HttpRateLimit.headersOf(decision, { policyName: id })
        assert.deepStrictEqual(rateHeadersOf(reply.headers), expected)
      }
    }).pipe(Effect.provide(limitersOn({ [id]: hour(2), [other]: hour(2) })))
  })

  it.effect("setHeaders sets them on a response, data-last and data-first, appending to the IETF lists", () => {
    const a = freshId("a")
    const b = freshId("b")
    return Effect.gen(function*() {
      const da = yield* RateLimiter.check(a, { key: "k" })
      const db = yield* RateLimiter.check(b, { key: "k" })
      const once = HttpServerResponse.text("ok").pipe(HttpRateLimit.setHeaders(da, { headers: "draft" }))
      assert.deepStrictEqual(rateHeadersOf(once.headers), HttpRateLimit.headersOf(da, { headers: "draft" }))
      const twice = HttpRateLimit.setHeaders(once, db, { headers: "draft" })
      assert.strictEqual(twice.headers["ratelimit"], `"${a}";r=4;t=3600, "${b}";r=0;t=3600`)
      assert.strictEqual(twice.headers["ratelimit-policy"], `"${a}";q=5;w=3600, "${b}";q=1;w=3600`)
      // legacy: the most restrictive limiter's trio
      const legacy = HttpServerResponse.text("ok").pipe(
        HttpRateLimit.setHeaders(db, { headers: "legacy" }),
        HttpRateLimit.setHeaders(da, { headers: "legacy" })
      )
      assert.strictEqual(legacy.headers["x-ratelimit-remaining"], "0")
      assert.strictEqual(legacy.headers["x-ratelimit-limit"], "1")
    }).pipe(Effect.provide(limitersOn({ [a]: hour(5), [b]: hour(1) })))
  })
})
