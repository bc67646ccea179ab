/**
 * PostgreSQL-store decisions per second and latency, beside rate-limiter-flexible's
 * `RateLimiterPostgres` and the floors (a raw prepared `SELECT 1`, a raw prepared upsert), on the
 * same server in the same run, on the Effect major this process runs:
 *
 *   npm run bench:postgres                      (Effect 3: builds, then runs on the root toolchain)
 *   TSX_TSCONFIG_PATH=packages/effect4/tsconfig.run.json packages/effect4/node_modules/.bin/node \
 *     --import tsx --import ./packages/effect4/register.mjs test/bench/postgres.bench.ts   (Effect 4)
 *
 * Workloads, each measured for BENCH_SECONDS (default 2) per round, BENCH_ROUNDS rounds (default 3)
 * interleaved across the contenders (round 1 of every contender, then round 2, ...), so that a burst
 * of background load does not land on one row only: 1 caller (sequential p50), 32 callers over
 * 1 000 keys visited round-robin, 32 callers on one hot key. Every decision is an admitted take
 * that writes state (limits far above the load); the concurrency row's decision is a pair, a slot
 * acquired then released (two writes). Pools of 10 connections everywhere.
 *
 * The library is loaded from the build of the running major (packages/effect3/dist,
 * packages/effect4/dist: `npm run build` first; what users run: under tsx every closure would be
 * wrapped by esbuild's name-keeping helper), or with BENCH_SRC=1 from src through the package
 * alias. BENCH_ONLY (a regular expression on "<contender> <workload>") measures only what it
 * matches (for a quick look; do not write those tables); BENCH_PERMITS sets the store's
 * `maxConcurrentStatements`. BENCH_WRITE=1 writes the section `postgres-effect<major>` of docs/benchmarks.md; otherwise
 * the table is printed only. Server: RATE_SYNC_BENCH_POSTGRES_URL, default
 * postgres://postgres@127.0.0.1:5432/test.
 */
import { Effect, Layer, Redacted } from "effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { createRequire } from "node:module"
import * as os from "node:os"
import { RateLimiterPostgres } from "rate-limiter-flexible"
import * as Sql from "#fx/sql"
import * as T from "#test/effect"
import { type Contender, type EffectOp, measureEffect, measurePromise, median, type PromiseOp, type Result, type Workload } from "./harness.js"
import { writeSection } from "./report.js"

/** The few members of node-postgres (`pg`, untyped here: no @types/pg) the bench uses. */
interface PgQuery {
  readonly name?: string
  readonly text: string
  readonly values?: ReadonlyArray<unknown>
}
interface PgQueryable {
  readonly query: (query: string | PgQuery) => Promise<{ readonly rows: ReadonlyArray<Record<string, unknown>> }>
}
interface PgModule {
  readonly Pool: new(config: { connectionString: string; max?: number; options?: string }) => PgQueryable & {
    readonly end: () => Promise<void>
  }
  readonly Client: new(config: { connectionString: string }) => PgQueryable & {
    readonly connect: () => Promise<void>
    readonly end: () => Promise<void>
  }
}
// a typed boundary: `pg` is a CommonJS module without types here (the root toolchain's, on both majors)
const pg = createRequire(import.meta.url)("pg") as PgModule

const major: number = T.major
const FROM_SRC = process.env["BENCH_SRC"] === "1"
const distUrl = (file: string) => new globalThis.URL(`../../packages/effect${major}/dist/${file}`, import.meta.url).href
// Typed by the sources (a dynamic import of a computed path is untyped).
const root: typeof import("effect-rate-sync") = FROM_SRC
  ? await import("effect-rate-sync")
  : await import(distUrl("index.js"))
const postgresModule: typeof import("effect-rate-sync/postgres") = FROM_SRC
  ? await import("effect-rate-sync/postgres")
  : await import(distUrl("postgres.js"))
const { RateLimiter, RateLimitStore } = root
const { PostgresStore } = postgresModule

const URL = process.env["RATE_SYNC_BENCH_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 2)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3)
const POOL = 10
/** The store's `maxConcurrentStatements` (BENCH_PERMITS; default: the store's own). */
const PERMITS = process.env["BENCH_PERMITS"] === undefined ? undefined : Number(process.env["BENCH_PERMITS"])
const CALLERS = 32
const KEYS = 1000
const keys = Array.from({ length: KEYS }, (_, i) => `user-${i}`)
const run = crypto.randomUUID().replace(/-/g, "").slice(0, 8)
const TABLE = `rs_bench_${run}`

const WORKLOADS: ReadonlyArray<Workload> = [
  { name: "1 caller", callers: 1, key: (i) => i % KEYS },
  { name: "1000 keys × 32 callers", callers: CALLERS, key: (i) => i % KEYS },
  { name: "hot key × 32 callers", callers: CALLERS, key: () => 0 }
]

const contenders: Array<Contender> = []
const closers: Array<() => Promise<unknown>> = []

const promiseRow = (name: string, op: PromiseOp) => {
  contenders.push({ name, measure: (workload, ms) => measurePromise(op, workload, ms) })
}

const main = async () => {
  // --- floors: node-postgres (pg) named prepared statements, pool of 10 ---------------------------
  const pool = new pg.Pool({ connectionString: URL, max: POOL })
  closers.push(() => pool.end())
  promiseRow("pg: prepared SELECT 1 (floor)", () => pool.query({ name: "bench-select-1", text: "SELECT 1" }))
  await pool.query(`CREATE TABLE IF NOT EXISTS "${TABLE}_raw" (key text PRIMARY KEY, n bigint NOT NULL) WITH (fillfactor = 80)`)
  const asyncPool = new pg.Pool({ connectionString: URL, max: POOL, options: "-c synchronous_commit=off" })
  closers.push(() => asyncPool.end())
  promiseRow("pg: prepared upsert, synchronous_commit off (ceiling)", (i) =>
    asyncPool.query({
      name: "bench-upsert",
      text: `INSERT INTO "${TABLE}_raw" AS t VALUES ($1, 1) ON CONFLICT (key) DO UPDATE SET n = t.n + 1 RETURNING n`,
      values: [keys[i] ?? ""]
    }))

  // --- rate-limiter-flexible RateLimiterPostgres (fixed window, pg pool, its prepared upsert) -------
  const rlfPool = new pg.Pool({ connectionString: URL, max: POOL })
  closers.push(() => rlfPool.end())
  const rlf = await new Promise<RateLimiterPostgres>((resolve, reject) => {
    const limiter: RateLimiterPostgres = new RateLimiterPostgres(
      {
        storeClient: rlfPool,
        storeType: "pool",
        tableName: `${TABLE}_rlf`,
        points: 1_000_000_000,
        duration: 60,
        clearExpiredByTimeout: false
      },
      (e?: unknown) => (e === undefined || e === null ? resolve(limiter) : reject(e))
    )
  })
  promiseRow("rate-limiter-flexible RateLimiterPostgres.consume (fixed window)", (i) => rlf.consume(keys[i] ?? ""))

  // --- effect-rate-sync, on the SqlClient of this major ---------------------------------------------
  const runtime = ManagedRuntime.make(
    RateLimiter.layer({
      tb: { ratePerSecond: 1_000_000, burst: 1_000_000 },
      fw: { algorithm: "fixed_window", limit: 1_000_000_000, window: "1 minute" }
    }).pipe(
      Layer.provideMerge(PostgresStore.layer({ tableName: `${TABLE}_ours`, maxConcurrentStatements: PERMITS })),
      Layer.provideMerge(Sql.PgClient.layer({ url: Redacted.make(URL), maxConnections: POOL }))
    )
  )
  closers.push(() => runtime.dispose())
  const store = await runtime.runPromise(RateLimitStore.RateLimitStore)
  const limiter = await runtime.runPromise(RateLimiter.RateLimiter)
  const sql = await runtime.runPromise(Sql.SqlClient.SqlClient)
  const effectRow = (name: string, op: EffectOp) => {
    contenders.push({ name, measure: (workload, ms) => measureEffect(runtime, op, workload, ms) })
  }
  effectRow(`SqlClient SELECT 1 (Effect ${major}'s driver${major === 4 ? ", prepared" : ""})`, () => sql.unsafe("SELECT 1"))
  effectRow("effect-rate-sync store.tokenBucket", (i) =>
    store.tokenBucket({ limiter: "tb", key: keys[i] ?? "", ratePerSecond: 1_000_000, burst: 1_000_000, cost: 1, maxWaitMs: 0 }))
  effectRow("effect-rate-sync RateLimiter.check (token bucket)", (i) => limiter.check("tb", { key: keys[i] ?? "" }))
  effectRow("effect-rate-sync RateLimiter.check (fixed window)", (i) => limiter.check("fw", { key: keys[i] ?? "" }))
  // a concurrency limit's two writes per call (no peer: rate-limiter-flexible has no concurrency
  // limiter), each decision a pair; a holder of its own per pair, a limit no load reaches
  let holder = 0
  effectRow("effect-rate-sync store.acquireSlot + releaseSlot (one pair per decision)", (i) => {
    const slot = { limiter: "cc", key: keys[i] ?? "", holder: `h${holder++}`, limit: 1_000_000, leaseMs: 60_000 }
    return Effect.flatMap(store.acquireSlot(slot), () => store.releaseSlot(slot))
  })

  // --- rounds -------------------------------------------------------------------------------------
  const ms = SECONDS * 1000
  const only = process.env["BENCH_ONLY"]
  const picked = (c: Contender, w: Workload) =>
    only === undefined || new RegExp(only).test(`${c.name} ${w.name}`)
  // warm-up: every contender, every workload, a quarter of a round (at most 0.5 s)
  for (const c of contenders) for (const w of WORKLOADS) if (picked(c, w)) await c.measure(w, Math.min(500, ms / 4))
  const results = contenders.map(() => WORKLOADS.map((): Array<Result> => []))
  for (let r = 0; r < ROUNDS; r++) {
    for (const [ci, c] of contenders.entries()) {
      for (const [wi, w] of WORKLOADS.entries()) {
        if (!picked(c, w)) continue
        const result = await c.measure(w, ms)
        results[ci]?.[wi]?.push(result)
        console.log(
          `round ${r + 1} ${c.name.padEnd(64)} ${w.name.padEnd(24)} ${result.opsPerSec.toFixed(0).padStart(7)}/s p50 ${
            result.p50.toFixed(3)
          } p99 ${result.p99.toFixed(3)}`
        )
      }
    }
  }

  // --- clean up --------------------------------------------------------------------------------------
  await pool.query(`DROP TABLE IF EXISTS "${TABLE}_raw"`)
  await pool.query(`DROP TABLE IF EXISTS "${TABLE}_rlf"`)
  const functions = await pool.query(
    `SELECT p.oid::regprocedure::text AS f FROM pg_proc p WHERE p.proname LIKE '${TABLE}_ours%'`
  )
  for (const row of functions.rows) await pool.query(`DROP FUNCTION IF EXISTS ${String(row["f"])}`)
  await pool.query(`DROP TABLE IF EXISTS "${TABLE}_ours"`)
  for (const close of closers.reverse()) await close()

  // --- report ----------------------------------------------------------------------------------------
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
  const range = (xs: ReadonlyArray<number>, f: (n: number) => string) => {
    const lo = Math.min(...xs)
    const hi = Math.max(...xs)
    return lo === hi ? f(lo) : `${f(lo)}–${f(hi)}`
  }
  const msf = (n: number) => n.toFixed(3)
  // "—": not measured (a workload BENCH_ONLY left out)
  const cell = (rs: ReadonlyArray<Result>, throughput: boolean) =>
    rs.length === 0
      ? "—"
      : throughput
      ? `${range(rs.map((r) => r.opsPerSec), fmt)} (${fmt(median(rs.map((r) => r.opsPerSec)))})`
      : `${range(rs.map((r) => r.p50), msf)} (${msf(median(rs.map((r) => r.p50)))})`
  const table = [
    "| contender | 1 caller: p50 ms | 1000 keys × 32 callers: decisions/s | hot key × 32 callers: decisions/s |",
    "|---|---:|---:|---:|",
    ...contenders.map((c, ci) => {
      const rs = results[ci] ?? []
      return `| ${c.name} | ${cell(rs[0] ?? [], false)} | ${cell(rs[1] ?? [], true)} | ${cell(rs[2] ?? [], true)} |`
    })
  ]
  const find = (prefix: string) => {
    const i = contenders.findIndex((c) => c.name.startsWith(prefix))
    return i < 0 ? undefined : results[i]
  }
  const ratio = (a: ReadonlyArray<Result> | undefined, b: ReadonlyArray<Result> | undefined, f: (r: Result) => number) =>
    a === undefined || b === undefined || a.length === 0 || b.length === 0 ? "—" : (median(a.map(f)) / median(b.map(f))).toFixed(2)
  const peer = find("rate-limiter-flexible")
  const select1 = find("pg: prepared SELECT 1")
  const checks = [
    ["store.tokenBucket", find("effect-rate-sync store.tokenBucket")],
    ["RateLimiter.check (fixed window)", find("effect-rate-sync RateLimiter.check (fixed window)")]
  ] as const
  const lines = checks.map(([name, ours]) =>
    `- ${name}: 1000 keys × 32 callers **${ratio(ours?.[1], peer?.[1], (r) => r.opsPerSec)}×** rate-limiter-flexible (target ≥ 1.5×), hot key × 32 callers ${
      ratio(ours?.[2], peer?.[2], (r) => r.opsPerSec)
    }×; sequential p50 **${ratio(ours?.[0], select1?.[0], (r) => r.p50)}×** a prepared SELECT 1 (target ≤ 1.3×).`
  )
  const server = await serverVersion()
  const body = [
    `Effect ${major} (${FROM_SRC ? "src through tsx" : `packages/effect${major}/dist`}), Node ${process.version}, ${os.cpus().length} × ${
      os.cpus()[0]?.model ?? "cpu"
    }, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} at the end. PostgreSQL ${server} on loopback. ${SECONDS} s per measurement, ${ROUNDS} interleaved rounds: range over the rounds (median); pools of ${POOL}, the store's \`maxConcurrentStatements\` ${
      PERMITS ?? "at its default"
    }.`,
    "",
    ...table,
    "",
    ...lines
  ].join("\n")
  console.log(`\n${body}`)
  if (process.env["BENCH_WRITE"] === "1") await writeSection(`postgres-effect${major}`, body)
}

const serverVersion = async (): Promise<string> => {
  const client = new pg.Client({ connectionString: URL })
  await client.connect()
  const result = await client.query("SHOW server_version")
  await client.end()
  return String(result.rows[0]?.["server_version"] ?? "?")
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
