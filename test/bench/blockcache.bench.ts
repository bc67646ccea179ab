/**
 * The local block cache on Redis: 64 callers flooding one blocked key, decisions per second, with
 * the cache on, with it off, and rate-limiter-flexible's RateLimiterRedis with its
 * `inMemoryBlockOnConsumed` on (and off, for reference), in the same run on the same server.
 *
 *   npm run bench:block      (builds dist/, then prints its table; BENCH_SECONDS=1 for a short run;
 *                            BENCH_WRITE=1 writes the section `block` of docs/benchmarks.md)
 *
 * Server: RATE_SYNC_BENCH_REDIS_URL, default redis://127.0.0.1:6379. Each row runs 64 callers for
 * BENCH_SECONDS (default 2) per round, BENCH_ROUNDS rounds (default 3) interleaved, best round
 * kept. Every decision is a refusal of a key refused once before the run (a fixed window of 1 per
 * hour, a token bucket of 1 per hour). Prints only: docs/benchmarks.md is not written.
 */
import { Effect, ManagedRuntime, Redacted } from "effect"
import { Redis } from "ioredis"
import * as os from "node:os"
import { writeSection } from "./report.js"
import { RateLimiterRedis } from "rate-limiter-flexible"

// The library from dist/ (what users run), as test/bench/redis.bench.ts loads it.
const root: typeof import("effect-rate-sync") = await import(new globalThis.URL("../../packages/effect3/dist/index.js", import.meta.url).href)
const { RateLimiter } = root

const URL = process.env["RATE_SYNC_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 2)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3)
const CALLERS = 64
const KEY = "hot"
const run = crypto.randomUUID().slice(0, 8)

/** 64 promise loops for `SECONDS`: decisions per second. */
const floodPromise = async (op: () => Promise<unknown>): Promise<number> => {
  let n = 0
  const deadline = performance.now() + SECONDS * 1000
  const worker = async () => {
    while (performance.now() < deadline) {
      await op()
      n++
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CALLERS }, worker))
  return n / ((performance.now() - t0) / 1000)
}

/** 64 fibers of one program for `SECONDS`: decisions per second. */
const floodEffect = async (op: Effect.Effect<unknown, unknown>): Promise<number> => {
  let n = 0
  const deadline = performance.now() + SECONDS * 1000
  const worker = Effect.gen(function*() {
    while (performance.now() < deadline) {
      yield* op
      n++
    }
  })
  const t0 = performance.now()
  await Effect.runPromise(Effect.all(Array.from({ length: CALLERS }, () => worker), { concurrency: "unbounded", discard: true }))
  return n / ((performance.now() - t0) / 1000)
}

interface Contender {
  readonly name: string
  readonly flood: () => Promise<number>
}

const contenders: Array<Contender> = []
const closers: Array<() => Promise<unknown>> = []

const main = async () => {
  // --- effect-rate-sync: RateLimiter.check on a blocked key, cache on and off ---------------------
  for (const blockCache of [true, false]) {
    const runtime = ManagedRuntime.make(
      RateLimiter.layerMake({
        stores: { main: { engine: "redis", url: Redacted.make(URL), keyPrefix: `bc-bench-${run}-${blockCache}` } },
        defaultStore: "main",
        blockCache,
        limiters: {
          fw: { algorithm: "fixed_window", limit: 1, window: "1 hour" },
          tb: { ratePerSecond: 1 / 3600, burst: 1 }
        }
      })
    )
    const registry = await runtime.runPromise(RateLimiter.RateLimiter)
    closers.push(() => runtime.dispose())
    for (const id of ["fw", "tb"]) {
      await Effect.runPromise(registry.check(id, { key: KEY }))
      const refused = await Effect.runPromise(registry.check(id, { key: KEY }))
      if (refused.allowed) throw new Error(`${id}: the key is not blocked`)
    }
    const label = blockCache ? "on (default)" : "off"
    contenders.push({
      name: `effect-rate-sync RateLimiter.check (fixed window), block cache ${label}`,
      flood: () => floodEffect(registry.check("fw", { key: KEY }))
    })
    contenders.push({
      name: `effect-rate-sync RateLimiter.check (token bucket), block cache ${label}`,
      flood: () => floodEffect(registry.check("tb", { key: KEY }))
    })
    contenders.push({
      name: `effect-rate-sync RateLimiter.tryAcquire (fixed window), block cache ${label}`,
      flood: () => floodEffect(Effect.scoped(registry.tryAcquire("fw", { key: KEY })))
    })
  }

  // --- rate-limiter-flexible: RateLimiterRedis (fixed window), its in-memory block on and off -------
  for (const block of [true, false]) {
    const redis = new Redis(URL, { enableAutoPipelining: true })
    const limiter = new RateLimiterRedis({
      storeClient: redis,
      useRedisPackage: false,
      keyPrefix: `rlf-bc-${run}-${block}`,
      points: 1,
      duration: 3600,
      ...(block ? { inMemoryBlockOnConsumed: 2 } : {})
    })
    await limiter.consume(KEY)
    await limiter.consume(KEY).then(
      () => {
        throw new Error("rate-limiter-flexible: the key is not blocked")
      },
      () => undefined
    )
    contenders.push({
      name: `rate-limiter-flexible RateLimiterRedis.consume, inMemoryBlockOnConsumed ${block ? "on" : "off"}`,
      flood: () => floodPromise(() => limiter.consume(KEY).catch(() => undefined))
    })
    closers.push(() => redis.quit())
  }

  // --- rounds, interleaved; the best of each kept -----------------------------------------------
  const best = contenders.map(() => 0)
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, c] of contenders.entries()) best[i] = Math.max(best[i] ?? 0, await c.flood())
  }
  for (const close of closers) await close()

  // --- clean up the keys of this run --------------------------------------------------------------
  {
    const redis = new Redis(URL)
    for (const pattern of [`bc-bench-${run}-*`, `rlf-bc-${run}-*`]) {
      let cursor = "0"
      do {
        const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000)
        cursor = next
        if (found.length > 0) await redis.unlink(...found)
      } while (cursor !== "0")
    }
    await redis.quit()
  }

  const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
  const of = (prefix: string) => best[contenders.findIndex((c) => c.name.startsWith(prefix))] ?? 0
  const on = of("effect-rate-sync RateLimiter.check (fixed window), block cache on")
  const off = of("effect-rate-sync RateLimiter.check (fixed window), block cache off")
  const peer = of("rate-limiter-flexible RateLimiterRedis.consume, inMemoryBlockOnConsumed on")
  const body = [
    `Command: \`npm run bench:block\`. Redis on loopback, Node ${process.version}, ${os.cpus().length} × ${
      os.cpus()[0]?.model ?? "cpu"
    }, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")} at the end; ${CALLERS} callers flooding one key the store already refused, ${SECONDS} s per round, best of ${ROUNDS} interleaved rounds.`,
    "",
    "| 64 callers on one blocked key | decisions/s |",
    "|---|---:|",
    ...contenders.map((c, i) => `| ${c.name} | ${fmt(best[i] ?? 0)} |`),
    "",
    `- cache on / cache off: **${(on / off).toFixed(1)}×** (target ≥ 10×); cache on / rate-limiter-flexible with its in-memory block: **${
      (on / peer).toFixed(2)
    }×** (target ≥ 1.0×).`
  ].join("\n")
  console.log(body)
  if (process.env["BENCH_WRITE"] === "1") await writeSection("block", body)
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
