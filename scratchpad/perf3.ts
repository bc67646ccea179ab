import { Effect, Layer } from "effect"
import * as MemoryStore from "../src/MemoryStore.js"
import * as RateLimiter from "../src/RateLimiter.js"
const N = 1_000_000
const keys = Array.from({ length: 10000 }, (_, i) => ({ key: `user-${i}` }))
const layer = RateLimiter.layer({ api: { ratePerSecond: 1000, burst: 1000 } }).pipe(Layer.provideMerge(MemoryStore.layer({ maxKeys: 1e6 })))
const main = Effect.gen(function*() {
  const limiter = yield* RateLimiter.RateLimiter
  for (let r = 0; r < 3; r++) {
    const t = performance.now()
    for (let i = 0; i < N; i++) yield* limiter.check("api", keys[i % 10000])
    console.log((N / (performance.now() - t) / 1000).toFixed(3), "M/s")
  }
})
Effect.runPromise(main.pipe(Effect.provide(layer)))
