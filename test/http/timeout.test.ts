/**
 * The `timeout` option: a refused request waits for the limiter, bounded, before it is refused.
 * Real clock (a 10/s token bucket, so a retry is ~100 ms): bounds are generous.
 */
import { assert, describe, it } from "#test/vitest"
import { Duration, Effect, Exit } from "effect"
import { type LimiterDefinition } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import { freshId, limitersOn, requestCount, webHandler } from "./helpers.js"
import { HttpServerResponse } from "#fx/http"

/** The app under the middleware (an effect: a response is no HttpApp on Effect 4). */
const ok = Effect.succeed(HttpServerResponse.text("ok"))
const tenPerSecond: LimiterDefinition.LimiterDefinition = { algorithm: "token_bucket", ratePerSecond: 10, burst: 1 }
const elapsed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.timed(effect), ([duration, value]) => [Duration.toMillis(duration), value] as const)

describe("HttpRateLimit timeout", () => {
  it.live("a refused request waits for the next token within the timeout and is allowed", () => {
    const id = freshId("wait")
    return Effect.gen(function*() {
      const send = yield* webHandler(HttpRateLimit.middleware({ limiter: id, timeout: "2 seconds" })(ok))
      assert.strictEqual((yield* send("/")).status, 200)
      const [ms, second] = yield* elapsed(send("/"))
      assert.strictEqual(second.status, 200)
      assert.isAtLeast(ms, 50)
      assert.isAtMost(ms, 1500)
      assert.strictEqual(yield* requestCount(id, "allowed"), 2)
      assert.strictEqual(yield* requestCount(id, "refused"), 0)
    }).pipe(Effect.provide(limitersOn({ [id]: tenPerSecond })))
  })

  it.live("a retry longer than the timeout is refused at once; no timeout refuses at once", () => {
    const short = freshId("short")
    const none = freshId("none")
    return Effect.gen(function*() {
      const sendShort = yield* webHandler(ok.pipe(HttpRateLimit.limit(short, { timeout: "20 millis" })))
      const sendNone = yield* webHandler(ok.pipe(HttpRateLimit.limit(none)))
      for (const send of [sendShort, sendNone]) {
        assert.strictEqual((yield* send("/")).status, 200)
        const [ms, refused] = yield* elapsed(send("/"))
        assert.strictEqual(refused.status, 429)
        assert.isAtMost(ms, 1000)
      }
    }).pipe(Effect.provide(limitersOn({ [short]: tenPerSecond, [none]: tenPerSecond })))
  })

  it.effect("an invalid timeout is a ConfigError at http.timeout", () =>
    Effect.gen(function*() {
      for (const timeout of [-1, Number.NaN, Duration.infinity]) {
        const built = yield* Effect.exit(HttpRateLimit.makeMiddleware({ limiter: "x", timeout }))
        assert.isTrue(Exit.isFailure(built))
        assert.include(String(Exit.isFailure(built) ? built.cause : ""), "http.timeout")
      }
    }))
})
