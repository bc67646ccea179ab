/**
 * NATS-store decisions per second and latency (p50/p99), beside a plain get + compare-and-set
 * loop written on the same nats.js client (`@nats-io/kv`: `get`, then `update` on the revision
 * read, or `create` when absent; a lost write retried at once), the floor and the peer a NATS
 * user would write by hand, on the same server in the same run, on the Effect major this process
 * runs:
 *
 *   npm run bench:nats                          (Effect 3: builds, then runs on the root toolchain)
 *   TSX_TSCONFIG_PATH=packages/effect4/tsconfig.run.json packages/effect4/node_modules/.bin/node \
 *     --import tsx --import ./packages/effect4/register.mjs test/bench/nats.bench.ts   (Effect 4)
 *
 * Workloads, each measured for BENCH_SECONDS (default 2) per round, BENCH_ROUNDS rounds (default 3)
 * interleaved across the contenders (round 1 of every contender, then round 2, ...), so that a burst
 * of background load does not land on one row only: 1 caller (sequential p50), 16 callers over
 * 1 000 keys visited round-robin, 16 callers on one hot key. Every decision is an admitted take
 * that writes state (limits far above the load).
 *
 * The library is loaded from the build of the running major (packages/effect3/dist,
 * packages/effect4/dist: `npm run build` first), or with BENCH_SRC=1 from src through the package
 * alias. BENCH_WRITE=1 writes the section `nats-effect<major>` of docs/benchmarks.md; otherwise
 * the table is printed only. Server: RATE_SYNC_BENCH_NATS_URL, default nats://127.0.0.1:4222.
 */
import { Kvm } from "@nats-io/kv"
import type { KV } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { Layer, Redacted } from "effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as os from "node:os"
import * as T from "#test/effect"
import { type Contender, type EffectOp, measureEffect, measurePromise, median, type PromiseOp, type Result, type Workload } from "./harness.js"
import { writeSection } from "./report.js"

const major: number = T.major
const FROM_SRC = process.env["BENCH_SRC"] === "1"
const distUrl = (file: string) => new globalThis.URL(`../../packages/effect${major}/dist/${file}`, import.meta.url).href
// Typed by the sources (a dynamic import of a computed path is untyped).
const root: typeof import("effect-rate-sync") = FROM_SRC
  ? await import("effect-rate-sync")
  : await import(distUrl("index.js"))
const natsModule: typeof import("effect-rate-sync/nats") = FROM_SRC
  ? await import("effect-rate-sync/nats")
  : await import(distUrl("nats.js"))
const { RateLimiter, RateLimitStore } = root
const { NatsStore } = natsModule

const URL = process.env["RATE_SYNC_BENCH_NATS_URL"] ?? "nats://127.0.0.1:4222"
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 2)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3)
const CALLERS = 16
const KEYS = 1000
const keys = Array.from({ length: KEYS }, (_, i) => `user-${i}`)
const run = crypto.randomUUID().replace(/-/g, "").slice(0, 8)
const BUCKET = `rs_bench_${run}`

const WORKLOADS: ReadonlyArray<Workload> = [
  { name: "1 caller", callers: 1, key: (i) => i % KEYS },
  { name: "1000 keys × 16 callers", callers: CALLERS, key: (i) => i % KEYS },
  { name: "hot key × 16 callers", callers: CALLERS, key: () => 0 }
]

const contenders: Array<Contender> = []
const closers: Array<() => Promise<unknown>> = []

const promiseRow = (name: string, op: PromiseOp) => {
  contenders.push({ name, measure: (workload, ms) => measurePromise(op, workload, ms) })
}

/** JetStream API codes of a publish whose expected last sequence did not match (a lost compare-and-set). */
const WRONG_LAST_SEQUENCE = new Set([10071, 10164])
const isConflict = (e: unknown): boolean =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "number" && WRONG_LAST_SEQUENCE.has(e.code)

/** The plain loop: read the counter and its revision, write it + 1 on that revision; a lost write starts again at once. */
const plainIncrement = async (kv: KV, key: string): Promise<number> => {
  for (;;) {
    const entry = await kv.get(key)
    const n = entry === null || entry.operation !== "PUT" ? 0 : Number(entry.string())
    try {
      if (entry === null) await kv.create(key, String(n + 1))
      else await kv.update(key, String(n + 1), entry.revision)
      return n + 1
    } catch (e) {
      if (!isConflict(e)) throw e
    }
  }
}

const main = async () => {
  // --- the plain get + compare-and-set loop on nats.js (floor and peer) ------------------------------
  const nc = await connect({ servers: URL })
  closers.push(() => nc.close())
  const kvm = new Kvm(nc)
  const plainKv = await kvm.create(`${BUCKET}_plain`, { history: 1 })
  promiseRow("nats.js: plain get + compare-and-set loop (floor)", (i) => plainIncrement(plainKv, keys[i] ?? ""))

  // --- effect-rate-sync ------------------------------------------------------------------------------
  const runtime = ManagedRuntime.make(
    RateLimiter.layer({
      tb: { ratePerSecond: 1_000_000, burst: 1_000_000 },
      fw: { algorithm: "fixed_window", limit: 1_000_000_000, window: "1 minute" }
    }).pipe(Layer.provideMerge(NatsStore.layer({ url: Redacted.make(URL), bucketName: `${BUCKET}_ours`, purgeInterval: "1 hour" })))
  )
  closers.push(() => runtime.dispose())
  const store = await runtime.runPromise(RateLimitStore.RateLimitStore)
  const limiter = await runtime.runPromise(RateLimiter.RateLimiter)
  const effectRow = (name: string, op: EffectOp) => {
    contenders.push({ name, measure: (workload, ms) => measureEffect(runtime, op, workload, ms) })
  }
  effectRow("effect-rate-sync store.tokenBucket", (i) =>
    store.tokenBucket({ limiter: "tb", key: keys[i] ?? "", ratePerSecond: 1_000_000, burst: 1_000_000, cost: 1, maxWaitMs: 0 }))
  effectRow("effect-rate-sync RateLimiter.check (token bucket)", (i) => limiter.check("tb", { key: keys[i] ?? "" }))
  effectRow("effect-rate-sync RateLimiter.check (fixed window)", (i) => limiter.check("fw", { key: keys[i] ?? "" }))

  // --- rounds -------------------------------------------------------------------------------------
  const ms = SECONDS * 1000
  // warm-up: every contender, every workload, a quarter of a round (at most 0.5 s)
  for (const c of contenders) for (const w of WORKLOADS) await c.measure(w, Math.min(500, ms / 4))
  const results = contenders.map(() => WORKLOADS.map((): Array<Result> => []))
  for (let r = 0; r < ROUNDS; r++) {
    for (const [ci, c] of contenders.entries()) {
      for (const [wi, w] of WORKLOADS.entries()) {
        const result = await c.measure(w, ms)
        results[ci]?.[wi]?.push(result)
        console.log(
          `round ${r + 1} ${c.name.padEnd(52)} ${w.name.padEnd(24)} ${result.opsPerSec.toFixed(0).padStart(7)}/s p50 ${
            result.p50.toFixed(3)
          } p99 ${result.p99.toFixed(3)}`
        )
      }
    }
  }

  // --- clean up --------------------------------------------------------------------------------------
  const serverVersion = nc.info?.version ?? "?"
  await plainKv.destroy()
  await (await kvm.open(`${BUCKET}_ours`)).destroy()
  for (const close of closers.reverse()) await close()

  // --- report ----------------------------------------------------------------------------------------
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
  const range = (xs: ReadonlyArray<number>, f: (n: number) => string) => {
    const lo = Math.min(...xs)
    const hi = Math.max(...xs)
    return lo === hi ? f(lo) : `${f(lo)}–${f(hi)}`
  }
  const msf = (n: number) => n.toFixed(1)
  const ms3 = (n: number) => n.toFixed(3)
  const throughput = (rs: ReadonlyArray<Result>) =>
    `${range(rs.map((r) => r.opsPerSec), fmt)} (${fmt(median(rs.map((r) => r.opsPerSec)))}), p99 ${msf(median(rs.map((r) => r.p99)))}`
  const sequential = (rs: ReadonlyArray<Result>) => `${range(rs.map((r) => r.p50), ms3)} (${ms3(median(rs.map((r) => r.p50)))})`
  const table = [
    "| contender | 1 caller: p50 ms | 1000 keys × 16 callers: decisions/s, p99 ms | hot key × 16 callers: decisions/s, p99 ms |",
    "|---|---:|---:|---:|",
    ...contenders.map((c, ci) => {
      const rs = results[ci] ?? []
      return `| ${c.name} | ${sequential(rs[0] ?? [])} | ${throughput(rs[1] ?? [])} | ${throughput(rs[2] ?? [])} |`
    })
  ]
  const find = (prefix: string) => {
    const i = contenders.findIndex((c) => c.name.startsWith(prefix))
    return i < 0 ? undefined : results[i]
  }
  const ratio = (a: ReadonlyArray<Result> | undefined, b: ReadonlyArray<Result> | undefined, f: (r: Result) => number) =>
    a === undefined || b === undefined ? "?" : (median(a.map(f)) / median(b.map(f))).toFixed(2)
  const p99 = (rs: ReadonlyArray<Result> | undefined) => rs === undefined ? "?" : msf(median(rs.map((r) => r.p99)))
  const plain = find("nats.js: plain")
  const checks = [
    ["store.tokenBucket", find("effect-rate-sync store.tokenBucket")],
    ["RateLimiter.check (token bucket)", find("effect-rate-sync RateLimiter.check (token bucket)")],
    ["RateLimiter.check (fixed window)", find("effect-rate-sync RateLimiter.check (fixed window)")]
  ] as const
  const lines = checks.map(([name, ours]) =>
    `- ${name}: hot key × 16 callers **${ratio(ours?.[2], plain?.[2], (r) => r.opsPerSec)}×** the plain loop (target ≥ 2×), p99 **${
      p99(ours?.[2])
    } ms** (target ≤ 50 ms); 1000 keys × 16 callers **${ratio(ours?.[1], plain?.[1], (r) => r.opsPerSec)}×** the plain loop (target ≥ 1.0×).`
  )
  const body = [
    `Effect ${major} (${FROM_SRC ? "src through tsx" : `packages/effect${major}/dist`}), Node ${process.version}, ${os.cpus().length} × ${
      os.cpus()[0]?.model ?? "cpu"
    }, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} at the end. nats-server ${serverVersion} (JetStream, file storage) on loopback. ${SECONDS} s per measurement, ${ROUNDS} interleaved rounds: range over the rounds (median); p99 the median over the rounds.`,
    "",
    ...table,
    "",
    ...lines
  ].join("\n")
  console.log(`\n${body}`)
  if (process.env["BENCH_WRITE"] === "1") await writeSection(`nats-effect${major}`, body)
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
