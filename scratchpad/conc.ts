import { Effect, Layer, Ref } from "effect"
import * as MemoryStore from "../src/MemoryStore.js"
import * as RateLimiter from "../src/RateLimiter.js"
const id = "c"
const prog = Effect.gen(function*() {
  const running = yield* Ref.make(0)
  const task = (i: number) => Effect.gen(function*() {
    const n = yield* Ref.updateAndGet(running, (x) => x + 1)
    console.log("start", i, n)
    yield* Effect.sleep("100 millis")
    yield* Ref.update(running, (x) => x - 1)
    console.log("end", i)
  }).pipe(RateLimiter.withRateLimit(id))
  yield* Effect.all(Array.from({ length: 6 }, (_, i) => task(i)), { concurrency: "unbounded" })
  console.log(yield* RateLimiter.metrics(id))
}).pipe(Effect.provide(RateLimiter.layer({ [id]: { maxConcurrent: 2 } }).pipe(Layer.provideMerge(MemoryStore.layer()))))
Effect.runPromise(prog.pipe(Effect.timeout("5 seconds"))).then(() => console.log("ok"), (e) => console.log("err", e))
