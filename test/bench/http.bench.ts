/**
 * HTTP: requests per second through a rate-limited route, this library's Express, Fastify and Hono
 * adapters beside each framework's usual limiter (express-rate-limit, @fastify/rate-limit,
 * hono-rate-limiter), and the route with no limiter, measured in the same run.
 *
 * Each server runs in a child process of its own (`http/server.ts`), on the running major's build
 * of the library (`npm run build` first; the npm scripts do); the load is autocannon in this
 * process: 64 keep-alive connections, 1 000 keys (`x-key`) in turn, a warm-up second, then
 * BENCH_SECONDS (default 4). Every limiter is a fixed window of one hour; `admit` never reaches its
 * limit, `refuse` is 1 per hour (after a key's first request, every answer is a 429 with its
 * headers). Redis rows: ours on `RedisStore`, express-rate-limit on rate-limit-redis,
 * @fastify/rate-limit on its `redis` option (ioredis), against RATE_SYNC_BENCH_REDIS_URL (default
 * redis://127.0.0.1:6379).
 *
 * BENCH_ROUNDS rounds (default 3), the contenders' order turned each round; the table shows the
 * median round and, per row, the range of ours/peer over the rounds. BENCH_ONLY (a regex over
 * "<framework> <store> <mode>") picks rows. BENCH_WRITE=1 writes docs/benchmarks.md.
 */
import autocannon from "autocannon"
import { spawn, type ChildProcess } from "node:child_process"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import * as T from "#test/effect"
import { writeSection } from "./report.js"

const major: number = T.major
const SECONDS = Number(process.env["BENCH_SECONDS"] ?? 4)
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3)
const CONNECTIONS = 64
const KEYS = 1000
const ONLY = process.env["BENCH_ONLY"] === undefined ? undefined : new RegExp(process.env["BENCH_ONLY"])
const serverPath = fileURLToPath(new URL("./http/server.ts", import.meta.url))

type Framework = "express" | "fastify" | "hono"
type Limiter = "none" | "ours" | "peer"
interface Row {
  readonly framework: Framework
  readonly store: "memory" | "redis"
  readonly mode: "admit" | "refuse"
}

const ROWS: ReadonlyArray<Row> = [
  { framework: "express", store: "memory", mode: "admit" },
  { framework: "express", store: "memory", mode: "refuse" },
  { framework: "fastify", store: "memory", mode: "admit" },
  { framework: "fastify", store: "memory", mode: "refuse" },
  { framework: "hono", store: "memory", mode: "admit" },
  { framework: "hono", store: "memory", mode: "refuse" },
  { framework: "express", store: "redis", mode: "admit" },
  { framework: "fastify", store: "redis", mode: "admit" }
]

const PEER: Record<Framework, string> = {
  express: "express-rate-limit",
  fastify: "@fastify/rate-limit",
  hono: "hono-rate-limiter"
}

interface Run {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  /** The server's CPU time per request, µs. */
  readonly cpuPerRequest: number
  readonly ok: number
  readonly refused: number
  readonly other: number
}

interface Server {
  readonly child: ChildProcess
  readonly port: number
  /** The server process's CPU time so far (µs, user + system), asked over its stdin. */
  readonly cpu: () => Promise<number>
}

/** Starts a server and answers it once it printed its port. */
const start = (row: Row, limiter: Limiter): Promise<Server> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, serverPath, row.framework, limiter, row.store, row.mode], {
      stdio: ["pipe", "pipe", "inherit"]
    })
    let out = ""
    const waiting: Array<(us: number) => void> = []
    let listening = false
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      let nl = out.indexOf("\n")
      while (nl >= 0) {
        const line = out.slice(0, nl)
        out = out.slice(nl + 1)
        nl = out.indexOf("\n")
        const port = /^PORT (\d+)$/.exec(line)
        const cpu = /^CPU (\d+)$/.exec(line)
        if (port !== null && !listening) {
          listening = true
          resolve({
            child,
            port: Number(port[1]),
            cpu: () =>
              new Promise((done) => {
                waiting.push(done)
                child.stdin?.write("cpu\n")
              })
          })
        } else if (cpu !== null) waiting.shift()?.(Number(cpu[1]))
      }
    })
    child.on("exit", (code) => {
      if (!listening) reject(new Error(`server ${row.framework} ${limiter} exited (${code}) before listening`))
    })
  })

const stop = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

const load = (port: number, seconds: number): Promise<autocannon.Result> => {
  let i = 0
  return autocannon({
    url: `http://127.0.0.1:${port}/`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [{
      setupRequest: (req) => ({ ...req, headers: { ...req.headers, "x-key": `k${i++ % KEYS}` } })
    }]
  })
}

const measure = async (row: Row, limiter: Limiter): Promise<Run> => {
  const { child, cpu, port } = await start(row, limiter)
  try {
    await load(port, 1)
    const before = await cpu()
    const r = await load(port, SECONDS)
    const cpuUs = (await cpu()) - before
    const refused = r.statusCodeStats?.["429"]?.count ?? 0
    return {
      rps: r.requests.average,
      p50: r.latency.p50,
      p99: r.latency.p99,
      cpuPerRequest: cpuUs / Math.max(1, r.requests.total),
      ok: r["2xx"],
      refused,
      other: r.non2xx - refused + r.errors + r.timeouts
    }
  } finally {
    await stop(child)
  }
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
const ratio = (n: number) => `${n.toFixed(2)}×`

const rows = ROWS.filter((r) => ONLY === undefined || ONLY.test(`${r.framework} ${r.store} ${r.mode}`))
const lines: Array<string> = []
// a row per contender (what test/bench/charts.ts reads: ours against the peer, column by column)
const table = [
  "| limiter, store, mode | req/s | p50 ms | p99 ms | server CPU µs/request | ours / peer, per round |",
  "| --- | ---: | ---: | ---: | ---: | --- |"
]
const NAME: Record<Limiter, (f: Framework) => string> = {
  ours: (f) => `effect-rate-sync/${f}`,
  peer: (f) => PEER[f],
  none: (f) => `${f} alone (no limiter)`
}
for (const row of rows) {
  const runs: Record<Limiter, Array<Run>> = { none: [], ours: [], peer: [] }
  const contenders: Array<Limiter> = row.mode === "admit" ? ["none", "ours", "peer"] : ["ours", "peer"]
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse()
    for (const limiter of order) {
      const run = await measure(row, limiter)
      // what each answered: a run that answers what its mode does not is not measured
      const expected = row.mode === "admit" || limiter === "none" ? run.refused === 0 : run.refused > run.ok
      if (run.other > 0 || !expected) {
        throw new Error(`${row.framework} ${row.store} ${row.mode} ${limiter}: ${JSON.stringify(run)}`)
      }
      runs[limiter].push(run)
      console.log(
        `${row.framework} ${row.store} ${row.mode} ${limiter} round ${round + 1}: ${fmt(run.rps)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, server CPU ${
          run.cpuPerRequest.toFixed(1)
        } µs/request (2xx ${run.ok}, 429 ${run.refused})`
      )
    }
  }
  const ratios = runs.ours.map((o, i) => o.rps / (runs.peer[i]?.rps ?? NaN))
  const med = (l: Limiter, f: (r: Run) => number) => median(runs[l].map(f))
  for (const limiter of [...contenders.filter((l) => l !== "none"), ...contenders.filter((l) => l === "none")]) {
    table.push(
      `| ${NAME[limiter](row.framework)}, ${row.store}, ${row.mode} | ${fmt(med(limiter, (r) => r.rps))} | ${med(limiter, (r) => r.p50)} | ${
        med(limiter, (r) => r.p99)
      } | ${med(limiter, (r) => r.cpuPerRequest).toFixed(0)} | ${limiter === "ours" ? ratios.map(ratio).join(", ") : ""} |`
    )
  }
  lines.push(`${row.framework} ${row.store} ${row.mode}: ours/peer ${ratios.map(ratio).join(", ")}`)
}

const body = [
  `Effect ${major}, Node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${CONNECTIONS} connections, ${KEYS} keys, ${SECONDS} s per run after 1 s of warm-up, ${ROUNDS} rounds (medians; the ratio per round).`,
  "",
  ...table
].join("\n")
console.log(`\n${body}\n`)
for (const line of lines) console.log(line)
if (process.env["BENCH_WRITE"] === "1") await writeSection(major === 4 ? "http-effect4" : "http", body)
