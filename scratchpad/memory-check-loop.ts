import { Effect, Layer } from "effect"
import { MemoryStore, RateLimiter } from "../src/index.js"

const N = 1_000_000
const program = Effect.gen(function*() {
  for (let round = 0; round < 2; round++) {
    const t0 = performance.now()
    let allowed = 0
    for (let i = 0; i < N; i++) {
      const d = yield* RateLimiter.check("api", { key: `k${i & 1023}` })
      if (d.allowed) allowed++
    }
    const dt = performance.now() - t0
    console.log(`check: ${Math.round(N / dt * 1000).toLocaleString()} decisions/s (allowed ${allowed})`)
  }
}).pipe(Effect.provide(RateLimiter.layer({ api: { ratePerSecond: 1e6, burst: 1e6 } }).pipe(Layer.provide(MemoryStore.layer()))))
Effect.runPromise(program).catch((e) => console.error(e))
