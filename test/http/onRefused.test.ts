/**
 * The `onRefused` option: a custom refusal in place of the default 429, with the refusal headers
 * added unless the handler set them. Web handler, TestClock (frozen): every number is exact.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect, Exit } from "effect"
import { type LimiterDefinition, RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import { freshId, limitersOn, rateHeadersOf, requestCount, webHandler } from "./helpers.js"
import { HttpServerResponse } from "#fx/http"
import { json } from "#test/http"

/** The app under the middleware (an effect: a response is no HttpApp on Effect 4). */
const ok = Effect.succeed(HttpServerResponse.text("ok"))
const hour = (limit: number): LimiterDefinition.LimiterDefinition => ({ algorithm: "sliding_window", limit, window: "1 hour" })

describe("HttpRateLimit onRefused", () => {
  it.effect("replaces the 429 and adds the refusal headers; the decision and the request are given", () => {
    const id = freshId("api")
    const seen: Array<string> = []
    const onRefused: HttpRateLimit.RefusalHandler = (decision, request) =>
      Effect.sync(() => {
        seen.push(`${decision.limiterId} ${decision.allowed} ${decision.remaining} ${request.url}`)
        return json({ error: "slow down", plan: "free" }, { status: 402 })
      })
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, onRefused })(ok))
      assert.strictEqual((yield* send("/a")).status, 200)
      const refused = yield* send("/a?x=1")
      assert.strictEqual(refused.status, 402)
      assert.deepStrictEqual(JSON.parse(refused.body), { error: "slow down", plan: "free" })
      assert.deepStrictEqual(rateHeadersOf(refused.headers), {
        "ratelimit-policy": `"${id}";q=1;w=3600`,
        "ratelimit": `"${id}";r=0;t=3600`,
        "x-ratelimit-limit": "1",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "3600",
        "retry-after": "3600"
      })
      assert.deepStrictEqual(seen, [`${id} false 0 /a?x=1`])
      assert.strictEqual(yield* requestCount(id, "refused"), 1)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) })))
  })

  it.effect("headers the handler sets are kept; headers: none leaves only Retry-After", () => {
    const id = freshId("login")
    const onRefused: HttpRateLimit.RefusalHandler = () =>
      Effect.succeed(HttpServerResponse.text("later", { status: 429, headers: { "retry-after": "60", "x-custom": "1" } }))
    return Effect.gen(function*() {
      const send = yield* webHandler(ok.pipe(HttpRateLimit.limit(id, { onRefused, headers: "none" })))
      yield* send("/")
      const refused = yield* send("/")
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.body, "later")
      assert.strictEqual(refused.headers["x-custom"], "1")
      assert.deepStrictEqual(rateHeadersOf(refused.headers), { "retry-after": "60" })
    }).pipe(Effect.provide(limitersOn({ [id]: hour(1) })))
  })

  it.effect("allowed requests never call it; a non-function is a ConfigError", () => {
    const id = freshId("api")
    let calls = 0
    const onRefused: HttpRateLimit.RefusalHandler = () => Effect.sync(() => (calls++, HttpServerResponse.text("ok")))
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, onRefused })(ok))
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* send("/")).status, 200)
      assert.strictEqual(calls, 0)
      const bad: unknown = "not a function"
      const built = yield* Effect.exit(
        // a plain JavaScript caller: the option is typed unknown on purpose
        HttpRateLimit.makeMiddleware({ limiter: id, onRefused: bad as HttpRateLimit.RefusalHandler })
      )
      assert.isTrue(Exit.isFailure(built))
      assert.include(String(Exit.isFailure(built) ? built.cause : ""), "http.onRefused")
      // the limiter itself is untouched by the option
      const decision = yield* RateLimiter.check(id, { key: "x" })
      assert.isTrue(decision.allowed)
    }).pipe(Effect.provide(limitersOn({ [id]: hour(5) })))
  })
})
