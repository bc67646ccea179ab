/**
 * What a refusal costs on the memory store: a refused `check`, `tryAcquire` and
 * `acquire(…, { timeout: 0 })` (a login flood: one key refused over and over), each in its own
 * `Effect.scoped` as a caller writes it. Prints µs per call (wall and CPU) and calls per second;
 * writes nothing.
 *
 *   npx tsx test/bench/refusal.bench.ts                      (Effect 3, from src)
 *   TSX_TSCONFIG_PATH=packages/effect4/tsconfig.run.json packages/effect4/node_modules/.bin/node \
 *     --import tsx --import ./packages/effect4/register.mjs test/bench/refusal.bench.ts   (Effect 4)
 *
 * `BENCH_CALLS` (default 20 000) calls per round, `BENCH_ROUNDS` (default 3) rounds after one
 * warm-up round. Under tsx the figures include esbuild's name-keeping wrappers (see
 * memory.bench.ts); compare runs of the same kind.
 */
import { Effect, Layer } from "effect"
import { MemoryStore, RateLimiter } from "effect-rate-sync"
import * as T from "#test/effect"

const CALLS = Number(process.env["BENCH_CALLS"] ?? 20_000)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3)

const program = Effect.gen(function*() {
  const limiter = yield* RateLimiter.RateLimiter
  // The key's one token is spent: every call below is refused.
  yield* limiter.check("login", { key: "k" })
  const ops: ReadonlyArray<readonly [string, Effect.Effect<unknown>]> = [
    ["check", Effect.exit(limiter.check("login", { key: "k" }))],
    ["tryAcquire", Effect.exit(Effect.scoped(limiter.tryAcquire("login", { key: "k" })))],
    ["acquire(timeout 0)", Effect.exit(Effect.scoped(limiter.acquire("login", { key: "k", timeout: 0 })))]
  ]
  for (const [name, op] of ops) {
    for (let round = 0; round <= ROUNDS; round++) {
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      for (let i = 0; i < CALLS; i++) yield* op
      const wallUs = ((performance.now() - t0) * 1000) / CALLS
      const cpu = process.cpuUsage(cpu0)
      const cpuUs = (cpu.user + cpu.system) / CALLS
      if (round === 0) continue // warm-up
      console.log(
        `Effect ${T.major}  ${name.padEnd(18)} round ${round}  ${wallUs.toFixed(1).padStart(6)} µs wall  ${
          cpuUs.toFixed(1).padStart(6)
        } µs cpu  ${Math.round(1e6 / wallUs).toLocaleString("en-US").padStart(9)}/s`
      )
    }
  }
  const m = yield* limiter.metrics("login")
  if (m.refusals < CALLS) throw new Error(`expected refusals, got ${m.refusals}`)
})

const Live = RateLimiter.layer({ login: { ratePerSecond: 0.001, burst: 1 } }).pipe(
  Layer.provide(MemoryStore.layer())
)
await Effect.runPromise(Effect.provide(program, Live))
