import { Effect, Layer } from "effect"
import * as MemoryStore from "../src/MemoryStore.js"
import * as RateLimiter from "../src/RateLimiter.js"
import * as RateLimitStore from "../src/RateLimitStore.js"
const N = 500_000
const keys = Array.from({ length: 10000 }, (_, i) => ({ key: `user-${i}` }))
const bench = async (name: string, eff: Effect.Effect<unknown, unknown, never>) => {
  const t = performance.now(); await Effect.runPromise(eff); const dt = performance.now() - t
  console.log(name, (N / dt / 1000).toFixed(3), "M/s")
}
const layer = RateLimiter.layer({ api: { ratePerSecond: 1000, burst: 1000 } }).pipe(Layer.provideMerge(MemoryStore.layer({ maxKeys: 1e6 })))
const main = Effect.gen(function*() {
  const limiter = yield* RateLimiter.RateLimiter
  const store = yield* RateLimitStore.RateLimitStore
  for (let r = 0; r < 2; r++) {
  yield* Effect.promise(() => bench("baseline succeed", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.succeed(i) })))
  yield* Effect.promise(() => bench("clockWith+sync", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.clockWith((c) => Effect.sync(() => c.unsafeCurrentTimeMillis())) })))
  yield* Effect.promise(() => bench("store.tokenBucket", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* store.tokenBucket({ limiter: "api", key: keys[i % 10000]!.key, ratePerSecond: 1000, burst: 1000, cost: 1, maxWaitMs: 0 }) })))
  yield* Effect.promise(() => bench("limiter.check", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* limiter.check("api", keys[i % 10000]) })))
  }
})
Effect.runPromise(main.pipe(Effect.provide(layer)))
