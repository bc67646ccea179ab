/**
 * The README's 30-second example, kept here so the type check proves it compiles:
 * `npx tsx examples/readme.ts`.
 */
import { Effect, Layer } from "effect"
import { MemoryStore, RateLimiter } from "effect-rate-sync"

const callApi = Effect.log("calling the paid API")

const program = Effect.gen(function*() {
  // waits for a token (and a concurrency slot), up to the limiter's timeout
  yield* Effect.scoped(RateLimiter.acquire("api"))

  // or wrap an effect: acquire before, release after
  yield* callApi.pipe(RateLimiter.withRateLimit("api"))

  // never waits: a boolean
  const ok = yield* Effect.scoped(RateLimiter.tryAcquire("login", { key: "203.0.113.7" }))

  // one decision with the numbers an HTTP response needs
  const d = yield* RateLimiter.check("login", { key: "203.0.113.7" })
  yield* Effect.log(ok, d.allowed, d.remaining, d.retryAfterMs)
})

const Live = RateLimiter.layer({
  api: { ratePerSecond: 100, maxConcurrent: 50, timeout: "30 seconds" },
  login: { algorithm: "sliding_window", limit: 5, window: "5 minutes", failClosed: true }
}).pipe(Layer.provide(MemoryStore.layer()))

Effect.runPromise(program.pipe(Effect.provide(Live)))
