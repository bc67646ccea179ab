/**
 * The 30-second tour, on the in-process memory store: `npm run demo`.
 *
 * 1. a 5/s limiter pacing 15 calls,
 * 2. a `max_concurrent = 2` limiter never running more than 2 of 6 tasks,
 * 3. a sliding-window login limiter refusing the 6th attempt with its retry time,
 * 4. the metrics of each limiter.
 */
import { fileURLToPath } from "node:url"
import { Clock, Console, Effect } from "effect"
import { RateLimiter, RateSync } from "effect-rate-sync"

const configPath = fileURLToPath(new URL("./rate-sync.toml", import.meta.url))

const program = Effect.gen(function*() {
  const t0 = yield* Clock.currentTimeMillis
  const stamp = Effect.map(Clock.currentTimeMillis, (now) => `[+${String(now - t0).padStart(5)} ms]`)
  const say = (line: string) => Effect.flatMap(stamp, (s) => Console.log(`${s} ${line}`))

  yield* Console.log("1. limiter \"api\": 5 calls/s, 15 calls")
  yield* Effect.forEach(
    Array.from({ length: 15 }, (_, i) => i + 1),
    (i) => RateLimiter.withRateLimit(say(`api call ${String(i).padStart(2)}`), "api"),
    { concurrency: "unbounded", discard: true }
  )

  yield* Console.log("\n2. limiter \"db\": max_concurrent = 2, 6 tasks of 400 ms")
  let running = 0
  let peak = 0
  yield* Effect.forEach(
    Array.from({ length: 6 }, (_, i) => i + 1),
    (i) =>
      Effect.gen(function*() {
        running++
        peak = Math.max(peak, running)
        yield* say(`task ${i} starts (${running} running)`)
        yield* Effect.sleep("400 millis")
        running--
        yield* say(`task ${i} done`)
      }).pipe(RateLimiter.withRateLimit("db")),
    { concurrency: "unbounded", discard: true }
  )
  yield* Console.log(`   peak concurrency: ${peak}`)

  yield* Console.log("\n3. limiter \"login\": 5 attempts per 5 minutes per IP (sliding window)")
  for (let attempt = 1; attempt <= 6; attempt++) {
    const d = yield* RateLimiter.check("login", { key: "203.0.113.7" })
    yield* say(
      d.allowed
        ? `attempt ${attempt}: allowed (${d.remaining} left)`
        : `attempt ${attempt}: REFUSED, retry in ${Math.ceil(d.retryAfterMs / 1000)} s`
    )
  }

  yield* Console.log("\n4. metrics")
  for (const id of ["api", "db", "login"]) {
    const m = yield* RateLimiter.metrics(id)
    yield* Console.log(
      `   ${id.padEnd(6)} acquisitions=${m.totalAcquisitions} refusals=${m.refusals} ` +
        `avg_wait=${m.avgWaitTimeMs.toFixed(0)} ms max_wait=${m.maxWaitTimeMs} ms ` +
        `max_concurrent_reached=${m.maxConcurrentReached} releases=${m.totalReleases}`
    )
  }
})

Effect.runPromise(program.pipe(Effect.provide(RateSync.layerFrom(configPath)))).catch((error) => {
  console.error(String(error))
  process.exit(1)
})
