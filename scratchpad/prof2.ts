import { Clock, Duration, Effect } from "effect"
import { Redis } from "ioredis"
import { createHash } from "node:crypto"
import * as scripts from "../src/internal/redisScripts.js"
const N = 30000
const measure = async (name: string, op: (i: number) => Promise<unknown>, c = 64) => {
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: c }, async () => { while (true) { const i = next++; if (i >= N) return; await op(i) } }))
  console.log(name.padEnd(30), c, Math.round(N / ((performance.now() - t0) / 1000)))
}
const main = async () => {
  const r = new Redis("redis://127.0.0.1:6379", { enableAutoPipelining: true })
  const sha = createHash("sha1").update(scripts.tokenBucketTake).digest("hex")
  await r.script("LOAD", scripts.tokenBucketTake)
  const raw = (i: number) => r.evalsha(sha, 1, `p:{${i % 1000}}:tb`, "1", "1000000", "1", "0")
  const sched = Effect.runSync(Effect.clockWith((c) => c.scheduler()))
  const viaAsync = (i: number) => Effect.async<unknown, Error>((resume) => {
    let done = false
    const cancel = sched.unsafeSchedule(() => { if (!done) { done = true; resume(Effect.fail(new Error("t"))) } }, Duration.millis(1000))
    raw(i).then((a) => { if (!done) { done = true; cancel(); resume(Effect.succeed(a)) } }, (e) => { if (!done) { done = true; cancel(); resume(Effect.fail(e)) } })
  })
  const variants: Record<string, (i: number) => Effect.Effect<unknown, unknown>> = {
    promise: (i) => Effect.tryPromise(() => raw(i)),
    timeoutFail: (i) => Effect.tryPromise(() => raw(i)).pipe(Effect.timeoutFail({ duration: "1 second", onTimeout: () => new Error("t") })),
    span: (i) => Effect.tryPromise(() => raw(i)).pipe(Effect.withSpan("x", { kind: "client", captureStackTrace: false, attributes: { a: "b" } })),
    async: viaAsync,
    asyncSpan: (i) => viaAsync(i).pipe(Effect.withSpan("x", { kind: "client", captureStackTrace: false, attributes: { a: "b" } })),
  }
  for (const c of [1, 64]) {
    await measure("raw", raw, c)
    for (const [name, v] of Object.entries(variants)) await measure(name, (i) => Effect.runPromise(v(i)), c)
    await measure("async in one fiber", async () => {}, c)
  }
  // all fibers within one Effect program
  for (const [name, v] of Object.entries(variants)) {
    let next = 0
    const t0 = performance.now()
    await Effect.runPromise(Effect.all(Array.from({ length: 64 }, () => Effect.gen(function*() { while (true) { const i = next++; if (i >= N) return; yield* v(i) } })), { concurrency: "unbounded" }))
    console.log(("in-effect " + name).padEnd(30), 64, Math.round(N / ((performance.now() - t0) / 1000)))
  }
  await r.quit()
}
main()
