import { ConfigProvider, Effect, Layer } from "effect"
import { RateLimiter, RateSync } from "../src/index.js"
const prog = Effect.gen(function*() {
  console.log("built")
  const p = yield* RateLimiter.acquire("db")
  console.log("acq", p.limiterId)
  console.log(yield* RateLimiter.tryAcquire("db"))
}).pipe(Effect.scoped, Effect.provide(RateSync.fromConfig({ stores: {}, limiters: { db: { ratePerSecond: 1 } } })))
await Effect.runPromise(prog.pipe(Effect.timeout("3 seconds"))).then(console.log, console.error)
