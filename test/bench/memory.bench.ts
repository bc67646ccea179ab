/**
 * Memory-store decisions per second: `RateLimiter.check` beside Effect's own RateLimiter on the
 * same major (`@effect/experimental` on Effect 3, `effect/persistence/RateLimiter` on Effect 4),
 * memory store, and rate-limiter-flexible's RateLimiterMemory, same workload, same run.
 *
 *   npm run bench            (Effect 3: builds, then writes its section of docs/benchmarks.md)
 *   npm run bench:effect4    (the same on Effect 4, Node 24, its own section)
 *
 * The library is loaded from dist/ (what users run): under tsx every closure in the hot path would
 * be wrapped by esbuild's name-keeping helper, which costs ~40% and would distort the figures.
 *
 * Workload: token bucket, 10 000 keys visited round-robin, 1 000 tokens/s and burst 1 000 per key,
 * so nearly every decision is an admit that updates state (the common case on a hot path).
 */
import { Effect, Layer } from "effect"
import { PeerRateLimiter, peerMemoryLayer, peerName } from "#test/peer"
import { RateLimiterMemory } from "rate-limiter-flexible"
import { writeSection } from "./report.js"
import * as T from "#test/effect"

const DECISIONS = Number(process.env["BENCH_DECISIONS"] ?? 1_000_000)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 5)
const KEYS = 10_000
const keys = Array.from({ length: KEYS }, (_, i) => `user-${i}`)

const timeIt = async (run: () => Promise<void>): Promise<number> => {
  const t0 = performance.now()
  await run()
  return DECISIONS / ((performance.now() - t0) / 1000)
}

// --- effect-rate-sync ----------------------------------------------------------------------
// Typed by the sources, loaded from the build (a dynamic import of a computed path is untyped).
// The build of this run's major: packages/effect3/dist or packages/effect4/dist.
const lib: typeof import("effect-rate-sync") = await import(
  new URL(`../../packages/effect${T.major}/dist/index.js`, import.meta.url).href
)
const { MemoryStore, RateLimiter } = lib

const ours = async (): Promise<() => Promise<void>> => {
  const layer = RateLimiter.layer({ api: { ratePerSecond: 1000, burst: 1000 } }).pipe(
    Layer.provide(MemoryStore.layer({ maxKeys: 1_000_000 }))
  )
  const options = keys.map((key) => ({ key }))
  const program = Effect.gen(function*() {
    const limiter = yield* RateLimiter.RateLimiter
    let allowed = 0
    for (let i = 0; i < DECISIONS; i++) {
      const d = yield* limiter.check("api", options[i % KEYS])
      if (d.allowed) allowed++
    }
    return allowed
  })
  return async () => {
    const allowed = await Effect.runPromise(program.pipe(Effect.provide(layer)))
    if (allowed === 0) throw new Error("nothing admitted")
  }
}

// --- Effect's own rate limiter (@effect/experimental on Effect 3, effect/persistence on 4) -------
const experimental = async (): Promise<() => Promise<void>> => {
  const program = Effect.gen(function*() {
    const limiter = yield* PeerRateLimiter
    let allowed = 0
    for (let i = 0; i < DECISIONS; i++) {
      const r = yield* T.result(
        limiter.consume({ algorithm: "token-bucket", onExceeded: "fail", window: "1 second", limit: 1000, key: keys[i % KEYS] ?? "" })
      )
      if (T.isOk(r)) allowed++
    }
    return allowed
  })
  return async () => {
    const allowed = await Effect.runPromise(program.pipe(Effect.provide(peerMemoryLayer)))
    if (allowed === 0) throw new Error("nothing admitted")
  }
}

// --- rate-limiter-flexible ----------------------------------------------------------------------
const flexible = async (): Promise<() => Promise<void>> => {
  const limiter = new RateLimiterMemory({ points: 1000, duration: 1 })
  return async () => {
    let allowed = 0
    for (let i = 0; i < DECISIONS; i++) {
      try {
        await limiter.consume(keys[i % KEYS] ?? "", 1)
        allowed++
      } catch {
        // refused
      }
    }
    if (allowed === 0) throw new Error("nothing admitted")
  }
}

const median = (xs: Array<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}

const main = async () => {
  const contenders: Array<[string, () => Promise<() => Promise<void>>]> = [
    ["effect-rate-sync `RateLimiter.check` (memory)", ours],
    [peerName, experimental],
    ["rate-limiter-flexible RateLimiterMemory (async loop)", flexible]
  ]
  const results = new Map<string, Array<number>>()
  for (const [name] of contenders) results.set(name, [])
  // Interleave rounds so drift in the machine's state hits everyone alike.
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, setup] of contenders) {
      const run = await setup()
      const rate = await timeIt(run)
      results.get(name)?.push(rate)
      console.log(`round ${round + 1} ${name}: ${(rate / 1e6).toFixed(3)} M decisions/s`)
    }
  }
  const ourMedian = median(results.get(contenders[0]?.[0] ?? "") ?? [])
  const expMedian = median(results.get(contenders[1]?.[0] ?? "") ?? [])
  const rows = contenders.map(([name]) => {
    const rs = results.get(name) ?? []
    return `| ${name} | ${(median(rs) / 1e6).toFixed(2)} M/s | ${(Math.max(...rs) / 1e6).toFixed(2)} M/s | ${(median(rs) / ourMedian).toFixed(2)}× |`
  })
  const body = [
    `Command: \`npm run bench${(T.major as number) === 4 ? ":effect4" : ""}\` (Effect ${T.major}, ${DECISIONS.toLocaleString("en")} decisions per round, ${ROUNDS} interleaved rounds, Node ${process.version}, 2 cores).`,
    "Workload: token bucket, 10 000 keys round-robin, 1 000/s and burst 1 000 per key (nearly every decision admits and writes state).",
    "",
    "| contender | median | best | vs effect-rate-sync |",
    "|---|---|---|---|",
    ...rows,
    "",
    `effect-rate-sync / Effect's own limiter: **${(ourMedian / expMedian).toFixed(2)}×** (target ≥ 1.4×); effect-rate-sync median **${(ourMedian / 1e6).toFixed(2)} M decisions/s** (target ≥ 1.0 M).`
  ].join("\n")
  await writeSection((T.major as number) === 4 ? "memory-effect4" : "memory", body)
  console.log(`\n${body}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
