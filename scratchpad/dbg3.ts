import { Duration, Effect, Layer } from "effect"
import { MemoryStore, RateLimiter } from "effect-rate-sync"
const cc = `c-${Math.random()}`
const program = Effect.gen(function*() {
  const t0 = Date.now()
  const c = yield* Effect.either(Effect.scoped(Effect.tap(RateLimiter.acquire(cc, { timeout: Duration.millis(1000) }), () => Effect.sync(() => console.error("acquired", Date.now() - t0)))))
  console.error("cc", c._tag, Date.now() - t0)
  const d = yield* Effect.either(Effect.scoped(Effect.tap(RateLimiter.acquire(cc), () => Effect.sync(() => console.error("acquired2", Date.now() - t0)))))
  console.error("cc2", d._tag, Date.now() - t0)
})
const Live = RateLimiter.layer({ [cc]: { maxConcurrent: 5 } }).pipe(Layer.provide(MemoryStore.layer()))
Effect.runPromise(program.pipe(Effect.provide(Live))).then(() => console.error("done"), (e) => console.error("fail", e))
