import { Effect } from "effect"
import * as MemoryStore from "../src/MemoryStore.js"

const N = 2_000_000
const program = Effect.gen(function*() {
  const store = yield* MemoryStore.make()
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`)
  for (const algo of ["tokenBucket", "slidingWindow", "fixedWindow"] as const) {
    const t0 = performance.now()
    let allowed = 0
    for (let i = 0; i < N; i++) {
      const key = keys[i % 1000] ?? ""
      const d = algo === "tokenBucket"
        ? yield* store.tokenBucket({ limiter: "bench", key, ratePerSecond: 1e6, burst: 1e6, cost: 1, maxWaitMs: 0 })
        : algo === "slidingWindow"
        ? yield* store.slidingWindow({ limiter: "bench", key, limit: 1e9, windowMs: 1000, cost: 1 })
        : yield* store.fixedWindow({ limiter: "bench", key, limit: 1e9, windowMs: 1000, cost: 1 })
      if (d.allowed) allowed++
    }
    const dt = performance.now() - t0
    console.log(`${algo}: ${Math.round(N / dt * 1000).toLocaleString()} ops/s (allowed ${allowed})`)
  }
}).pipe(Effect.scoped)
Effect.runPromise(program)
