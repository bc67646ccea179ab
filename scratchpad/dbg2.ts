import { Duration, Effect, Layer, Redacted } from "effect"
import { MemoryStore, RateLimiter } from "effect-rate-sync"
import { RedisStore } from "effect-rate-sync/redis"
const store = RedisStore.layer({ url: Redacted.make("redis://127.0.0.1:6379") })
const id = `r-${Math.random()}`
const cc = `c-${Math.random()}`
const program = Effect.gen(function*() {
  const t0 = Date.now()
  const r = yield* Effect.either(Effect.scoped(RateLimiter.acquire(id, { timeout: Duration.millis(1000) })))
  console.error("rate", r._tag, Date.now() - t0)
  const c = yield* Effect.either(Effect.scoped(RateLimiter.acquire(cc, { timeout: Duration.millis(1000) })))
  console.error("cc", c._tag, Date.now() - t0)
})
const Live = RateLimiter.layer({ [id]: { ratePerSecond: 100 }, [cc]: { maxConcurrent: 5 } }).pipe(Layer.provide(process.env.MEM ? MemoryStore.layer() : store))
Effect.runPromise(program.pipe(Effect.provide(Live))).then(() => console.error("done"), (e) => console.error("fail", e))
