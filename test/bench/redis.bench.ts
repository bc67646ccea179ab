/**
 * Redis-store decisions per second and latency (p50/p99) with 1 and 64 concurrent callers, beside
 * rate-limiter-flexible's RateLimiterRedis and Effect's own Redis-backed RateLimiter of the running
 * major (`#test/peer`: `@effect/experimental/RateLimiter/Redis` on Effect 3, ioredis;
 * `effect/persistence/RateLimiter.layerStoreRedis` over `@effect/platform-node/NodeRedis` on
 * Effect 4, node-redis), on the same server in the same run, with a raw ioredis PING as the floor.
 * Our store runs with its batching and ioredis auto-pipelining each on and off.
 *
 *   npm run bench:redis           (Effect 3: builds, then writes the section `redis` of docs/benchmarks.md)
 *   npm run bench:redis:effect4   (the same on Effect 4, Node 24: the section `redis-effect4`)
 *
 * Server: RATE_SYNC_BENCH_REDIS_URL, default redis://127.0.0.1:6379. Workload: 1 000 keys visited
 * round-robin, limits high enough that every decision is an admit that writes state.
 * At 64 callers each row also gets the server's CPU per decision: the redis-server process's CPU
 * time (/proc, in 10 ms ticks) over the measurement, divided by its decisions ("?" when the server
 * is not a process of this machine).
 * BENCH_SEQUENTIAL / BENCH_CONCURRENT set the decisions per measurement, BENCH_ROUNDS the rounds
 * (the best round is kept); BENCH_WRITE=0 prints the figures without writing docs/benchmarks.md
 * (for a short smoke run).
 */
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { Redis } from "ioredis"
import { existsSync } from "node:fs"
import { readFile } from "node:fs/promises"
import * as os from "node:os"
import { RateLimiterRedis } from "rate-limiter-flexible"
import * as T from "#test/effect"
import { PeerRateLimiter, peerRedisLayer, peerRedisName } from "#test/peer"
import { writeSection } from "./report.js"

const major: number = T.major
// The library is loaded from the build of the running major (packages/effect3/dist or
// packages/effect4/dist; the npm scripts build it first), what users run: under tsx every closure on
// the hot path would be wrapped by esbuild's name-keeping helper, which distorts the figures. Typed
// by the sources (a dynamic import of a computed path is untyped).
const distUrl = (file: string) => new globalThis.URL(`../../packages/effect${major}/dist/${file}`, import.meta.url).href
const root: typeof import("effect-rate-sync") = await import(distUrl("index.js"))
const redisModule: typeof import("effect-rate-sync/redis") = await import(distUrl("redis.js"))
const { RateLimiter, RateLimitStore } = root
const { RedisStore } = redisModule

const URL = process.env["RATE_SYNC_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
const SEQUENTIAL = Number(process.env["BENCH_SEQUENTIAL"] ?? 10_000)
const CONCURRENT = Number(process.env["BENCH_CONCURRENT"] ?? 60_000)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3)
const KEYS = 1000
const keys = Array.from({ length: KEYS }, (_, i) => `user-${i}`)
const run = crypto.randomUUID().slice(0, 8)

interface Result {
  readonly opsPerSec: number
  readonly p50: number
  readonly p99: number
  /** The server's CPU per decision (µs), its process's CPU time around the measurement (64 callers). */
  readonly serverUs?: number
}

/** A connection for `INFO server` only. */
const stats = new Redis(URL)
/**
 * The server's process id, when it runs on this machine (its CPU time is read from /proc): the
 * process of that id here must be a redis-server (a remote server's id may name another process).
 */
const serverPid = async (): Promise<number | undefined> => {
  const info = await stats.info("server")
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1])
  if (!Number.isInteger(pid) || !existsSync(`/proc/${pid}/comm`)) return undefined
  return (await readFile(`/proc/${pid}/comm`, "utf8")).startsWith("redis-server") ? pid : undefined
}
const pid = await serverPid()
/** Linux's clock ticks per second for /proc times (`getconf CLK_TCK`: 100 on every Linux that matters). */
const TICKS = 100

/**
 * The server process's CPU time so far (µs, user + system from /proc/<pid>/stat): everything the
 * server spends, its networking and parsing included (`INFO commandstats` counts the commands run
 * inside a script twice, and not the reading and writing of the socket).
 */
const serverUsec = async (): Promise<number | undefined> => {
  if (pid === undefined) return undefined
  const stat = await readFile(`/proc/${pid}/stat`, "utf8")
  // the fields after the command name, which is in parentheses and may hold spaces
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) / TICKS) * 1_000_000
}

/** One operation; `i` picks the key. Resolves when the decision is known. */
type Op = (i: number) => Promise<unknown>

/** `concurrency` callers share `total` operations; every latency is recorded. */
const measure = async (op: Op, total: number, concurrency: number): Promise<Result> => {
  const latencies = new Float64Array(total)
  let next = 0
  const worker = async () => {
    while (true) {
      const i = next++
      if (i >= total) return
      const t0 = performance.now()
      await op(i)
      latencies[i] = performance.now() - t0
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = performance.now() - t0
  const sorted = Array.from(latencies).sort((a, b) => a - b)
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
  return { opsPerSec: total / (elapsed / 1000), p50: pct(0.5), p99: pct(0.99) }
}

/** One Effect operation; run by `concurrency` fibers of one program, the way an Effect service calls it. */
type EffectOp = (i: number) => Effect.Effect<unknown, unknown>

const measureEffect = (op: EffectOp, total: number, concurrency: number): Promise<Result> => {
  const latencies = new Float64Array(total)
  let next = 0
  const worker = Effect.gen(function*() {
    while (true) {
      const i = next++
      if (i >= total) return
      const t0 = performance.now()
      yield* op(i)
      latencies[i] = performance.now() - t0
    }
  })
  const t0 = performance.now()
  return Effect.runPromise(
    Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true })
  ).then(() => {
    const elapsed = performance.now() - t0
    const sorted = Array.from(latencies).sort((a, b) => a - b)
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
    return { opsPerSec: total / (elapsed / 1000), p50: pct(0.5), p99: pct(0.99) }
  })
}

type AnyOp = Op | { readonly effect: EffectOp }

const once = (op: AnyOp, total: number, concurrency: number): Promise<Result> =>
  typeof op === "function" ? measure(op, total, concurrency) : measureEffect(op.effect, total, concurrency)

/** `once`, with the server's CPU per decision over the measurement. */
const withServerCpu = async (op: AnyOp, total: number, concurrency: number): Promise<Result> => {
  const before = await serverUsec()
  const result = await once(op, total, concurrency)
  const after = await serverUsec()
  return before === undefined || after === undefined ? result : { ...result, serverUs: (after - before) / total }
}

const better = (a: Result | undefined, b: Result): Result => a === undefined || b.opsPerSec > a.opsPerSec ? b : a

/** An Effect runtime's `runPromise` over a layer, built once (here, not in the first round) and disposed at the end. */
const runtimeOf = async <R, E>(layer: Layer.Layer<R, E>) => {
  const runtime = ManagedRuntime.make(layer)
  await runtime.runPromise(Effect.void)
  return runtime
}

interface Row {
  readonly name: string
  readonly sequential: Result
  readonly concurrent: Result
}

const rows: Array<Row> = []
const contenders: Array<{ readonly name: string; readonly op: AnyOp }> = []
const closers: Array<() => Promise<unknown>> = []
const row = (name: string, op: AnyOp) => {
  contenders.push({ name, op })
}

/**
 * Rounds are interleaved (round 1 of every contender, then round 2, ...) and each contender keeps
 * its best round, so a burst of background load on the machine does not land on one row only.
 */
const runAll = async () => {
  for (const { op } of contenders) {
    await once(op, Math.min(2000, SEQUENTIAL), 1)
    await once(op, Math.min(5000, CONCURRENT), 64)
  }
  const best: Array<{ sequential: Result | undefined; concurrent: Result | undefined }> = contenders.map(() => ({
    sequential: undefined,
    concurrent: undefined
  }))
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, { op }] of contenders.entries()) {
      const slot = best[i]
      if (slot === undefined) continue
      slot.sequential = better(slot.sequential, await once(op, SEQUENTIAL, 1))
      slot.concurrent = better(slot.concurrent, await withServerCpu(op, CONCURRENT, 64))
    }
  }
  for (const [i, { name }] of contenders.entries()) {
    const slot = best[i]
    if (slot?.sequential === undefined || slot.concurrent === undefined) continue
    const { concurrent, sequential } = slot
    rows.push({ name, sequential, concurrent })
    console.log(
      `${name.padEnd(58)} seq ${sequential.opsPerSec.toFixed(0).padStart(7)}/s p50 ${sequential.p50.toFixed(3)} p99 ${
        sequential.p99.toFixed(3)
      } | c64 ${concurrent.opsPerSec.toFixed(0).padStart(7)}/s p50 ${concurrent.p50.toFixed(3)} p99 ${concurrent.p99.toFixed(3)} server ${
        concurrent.serverUs?.toFixed(2) ?? "?"
      } µs`
    )
  }
  for (const close of closers) await close()
  await stats.quit()
}

const main = async () => {
  // --- the floor: raw ioredis PING ------------------------------------------------------------
  for (const pipelining of [true, false]) {
    const redis = new Redis(URL, { enableAutoPipelining: pipelining })
    row(`ioredis PING (floor), auto-pipelining ${pipelining ? "on" : "off"}`, () => redis.ping())
    closers.push(() => redis.quit())
  }

  // --- effect-rate-sync: the store SPI and RateLimiter.check ------------------------------------
  // the default (batching on, auto-pipelining off) in full; the other settings with `check` only
  const settings = [
    { label: "default: batching on, auto-pipelining off", maxBatchSize: undefined, autoPipelining: false, full: true },
    { label: "batching on, auto-pipelining on", maxBatchSize: undefined, autoPipelining: true, full: false },
    { label: "batching off, auto-pipelining off", maxBatchSize: 1, autoPipelining: false, full: false },
    { label: "batching off, auto-pipelining on", maxBatchSize: 1, autoPipelining: true, full: false }
  ] as const
  for (const setting of settings) {
    const storeLayer = RedisStore.layer({
      url: Redacted.make(URL),
      keyPrefix: `bench-${run}`,
      autoPipelining: setting.autoPipelining,
      maxBatchSize: setting.maxBatchSize
    })
    const runtime = await runtimeOf(
      RateLimiter.layer({
        tb: { ratePerSecond: 1_000_000, burst: 1_000_000 },
        fw: { algorithm: "fixed_window", limit: 1_000_000_000, window: "1 minute" }
      }).pipe(Layer.provideMerge(storeLayer))
    )
    const store = await runtime.runPromise(RateLimitStore.RateLimitStore)
    const limiter = await runtime.runPromise(RateLimiter.RateLimiter)
    if (setting.full) {
      row(`effect-rate-sync store.tokenBucket, ${setting.label}`, {
        effect: (i) =>
          store.tokenBucket({ limiter: "tb", key: keys[i % KEYS] ?? "", ratePerSecond: 1_000_000, burst: 1_000_000, cost: 1, maxWaitMs: 0 })
      })
      row(`effect-rate-sync RateLimiter.check (token bucket), ${setting.label}`, {
        effect: (i) => limiter.check("tb", { key: keys[i % KEYS] ?? "" })
      })
    }
    row(`effect-rate-sync RateLimiter.check (fixed window), ${setting.label}`, {
      effect: (i) => limiter.check("fw", { key: keys[i % KEYS] ?? "" })
    })
    closers.push(() => runtime.dispose())
  }

  // --- rate-limiter-flexible (its own best: auto-pipelining on; off for reference) ----------------
  for (const pipelining of [true, false]) {
    const redis = new Redis(URL, { enableAutoPipelining: pipelining })
    const limiter = new RateLimiterRedis({
      storeClient: redis,
      useRedisPackage: false,
      keyPrefix: `rlf-${run}`,
      points: 1_000_000_000,
      duration: 60
    })
    row(
      `rate-limiter-flexible RateLimiterRedis.consume (fixed window), auto-pipelining ${pipelining ? "on" : "off"}`,
      (i) => limiter.consume(keys[i % KEYS] ?? "")
    )
    closers.push(() => redis.quit())
  }

  // --- Effect's own RateLimiter on its Redis store (this major's: see `#test/peer`) ---------------
  {
    const runtime = await runtimeOf(peerRedisLayer({ url: URL, prefix: `exp-${run}:` }))
    const limiter = await runtime.runPromise(PeerRateLimiter)
    row(`${peerRedisName}, token bucket`, {
      effect: (i) => limiter.consume({ algorithm: "token-bucket", window: "1 second", limit: 1_000_000, key: keys[i % KEYS] ?? "" })
    })
    closers.push(() => runtime.dispose())
  }

  await runAll()

  // --- clean up the keys of this run --------------------------------------------------------------
  {
    const redis = new Redis(URL)
    for (const pattern of [`bench-${run}:*`, `rlf-${run}*`, `exp-${run}:*`]) {
      let cursor = "0"
      do {
        const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000)
        cursor = next
        if (found.length > 0) await redis.unlink(...found)
      } while (cursor !== "0")
    }
    await redis.quit()
  }

  // --- report --------------------------------------------------------------------------------------
  const find = (prefix: string) => rows.find((r) => r.name.startsWith(prefix))
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
  const ms = (n: number) => n.toFixed(3)
  const table = [
    "| implementation | 1 caller: decisions/s | p50 ms | p99 ms | 64 callers: decisions/s | p50 ms | p99 ms | server CPU µs/decision |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.name} | ${fmt(r.sequential.opsPerSec)} | ${ms(r.sequential.p50)} | ${ms(r.sequential.p99)} | ${
        fmt(r.concurrent.opsPerSec)
      } | ${ms(r.concurrent.p50)} | ${ms(r.concurrent.p99)} | ${r.concurrent.serverUs === undefined ? "?" : r.concurrent.serverUs.toFixed(2)} |`
    )
  ]
  const fixed = (label: string) => find(`effect-rate-sync RateLimiter.check (fixed window), ${label}`)
  const ours = fixed("default: batching on, auto-pipelining off")
  const store = find("effect-rate-sync store.tokenBucket, default")
  // rate-limiter-flexible at its best of the two client settings
  const rlf = rows
    .filter((r) => r.name.startsWith("rate-limiter-flexible"))
    .sort((a, b) => b.concurrent.opsPerSec - a.concurrent.opsPerSec)[0]
  const ping = find("ioredis PING (floor), auto-pipelining off")
  const checks: Array<string> = []
  if (ours && rlf && ping && store) {
    checks.push(
      `- 64 callers, RateLimiter.check (fixed window, the algorithm RateLimiterRedis runs) vs rate-limiter-flexible (its faster setting): ${
        (ours.concurrent.opsPerSec / rlf.concurrent.opsPerSec).toFixed(2)
      }× its throughput (target ≥ 1.0×), p99 ${ms(ours.concurrent.p99)} ms (target ≤ 2.5 ms); the store alone (token bucket): ${
        (store.concurrent.opsPerSec / rlf.concurrent.opsPerSec).toFixed(2)
      }×, p99 ${ms(store.concurrent.p99)} ms.`,
      `- Redis server CPU per decision at 64 callers (the server process's CPU time over the measurement, /proc): RateLimiter.check (fixed window) ${
        ours.concurrent.serverUs?.toFixed(2) ?? "?"
      } µs, store.tokenBucket ${store.concurrent.serverUs?.toFixed(2) ?? "?"} µs, rate-limiter-flexible ${
        rlf.concurrent.serverUs?.toFixed(2) ?? "?"
      } µs (${
        ours.concurrent.serverUs !== undefined && rlf.concurrent.serverUs !== undefined
          ? (ours.concurrent.serverUs / rlf.concurrent.serverUs).toFixed(2)
          : "?"
      }× rate-limiter-flexible's for check, lower is better): what one Redis shared by every process of a deployment spends per decision.`,
      `- 1 caller, p50 vs PING p50 ${ms(ping.sequential.p50)} ms: RateLimiter.check ${ms(ours.sequential.p50)} ms (${
        (ours.sequential.p50 / ping.sequential.p50).toFixed(2)
      }×), store.tokenBucket ${ms(store.sequential.p50)} ms (${
        (store.sequential.p50 / ping.sequential.p50).toFixed(2)
      }×) (target ≤ 1.15×).`
    )
  }
  const others = settings.slice(1).map((setting) => ({ label: setting.label, row: fixed(setting.label) }))
  if (ours) {
    checks.push(
      `- Settings (RateLimiter.check, fixed window, 64 callers): default ${fmt(ours.concurrent.opsPerSec)} decisions/s; ${
        others.map(({ label, row }) => `${label} ${row ? fmt(row.concurrent.opsPerSec) : "?"}`).join("; ")
      }. 1 caller p50: default ${ms(ours.sequential.p50)} ms; ${
        others.map(({ label, row }) => `${label} ${row ? ms(row.sequential.p50) : "?"} ms`).join("; ")
      }.`
    )
  }
  const body = [
    `Command: \`npm run ${major === 4 ? "bench:redis:effect4" : "bench:redis"}\` (Effect ${major}, packages/effect${major}/dist). Server: redis-server ${await serverVersion()} on loopback, same run for every row. Node ${process.version}, ${
      os.cpus().length
    } × ${os.cpus()[0]?.model ?? "cpu"}. ${SEQUENTIAL} sequential and ${CONCURRENT} concurrent decisions per round, best of ${ROUNDS} interleaved rounds.`,
    "Every decision is one admitted request over 1 000 keys visited round-robin. Latency is measured around each",
    "call, as the caller sees it: promise rows run `concurrency` async loops, Effect rows run `concurrency` fibers of",
    "one program (how an Effect service calls a limiter).",
    "",
    ...table,
    "",
    ...checks
  ].join("\n")
  if (process.env["BENCH_WRITE"] !== "0") await writeSection(major === 4 ? "redis-effect4" : "redis", body)
  console.log(`\n${checks.join("\n")}`)
}

const serverVersion = async (): Promise<string> => {
  const redis = new Redis(URL)
  const info = await redis.info("server")
  await redis.quit()
  return /redis_version:(\S+)/.exec(info)?.[1] ?? "?"
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
