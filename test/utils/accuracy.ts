/**
 * What the multi-process accuracy tests share (test/{redis,nats,postgres}/accuracy.test.ts): worker
 * processes spawned with this run's node flags and read line by line, and the rate run of the
 * NATS and PostgreSQL tests: 4 processes × 50 fibers on one limiter of 100/s, burst 10, for 10 s,
 * measured after each process warmed up, from an instant every process is told on a signal; the
 * admissions that proceed within the 10 s must be within [0.97, 1.00] × (burst + 100·10), never above.
 */
import { assert } from "#test/vitest"
import { Clock, Effect } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"

/** The repository's root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

/** A worker process. */
export interface Child {
  readonly process: ChildProcessWithoutNullStreams
  /** The next stdout line. */
  readonly line: () => Promise<string>
}

/** The node flags this run uses (the Effect 4 run loads its own register hook), for the workers too. */
const execArgv = process.execArgv.some((a) => a.includes("tsx")) ? process.execArgv : [...process.execArgv, "--import", "tsx"]

/** Spawns the worker `file` (relative to the root) with `args`; killed (SIGKILL) when the scope closes. */
export const worker = (file: string, args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const child = spawn(process.execPath, [...execArgv, path.join(ROOT, file), ...args], { cwd: ROOT, env: process.env })
      const lines: Array<string> = []
      const waiting: Array<(line: string) => void> = []
      let stderr = ""
      child.stderr.on("data", (chunk) => {
        stderr += String(chunk)
      })
      readline.createInterface({ input: child.stdout }).on("line", (line) => {
        const next = waiting.shift()
        if (next) next(line)
        else lines.push(line)
      })
      const line = () =>
        new Promise<string>((resolve, reject) => {
          const first = lines.shift()
          if (first !== undefined) return resolve(first)
          waiting.push(resolve)
          child.once("exit", (code) => reject(new Error(`worker exited with ${code}: ${stderr}`)))
        })
      return { process: child, line }
    }),
    (child) => Effect.sync(() => child.process.kill("SIGKILL"))
  )

export const PROCESSES = 4
export const FIBERS = 50
export const RATE = 100
export const BURST = 10
// 10 s, not 5: the edges of a run cost ~13 admissions whatever its length (0.975-0.98 of the bound
// in 5 s, 0.986-0.987 in 10 s, measured 2026-12-07), which left a loaded host 1 % of headroom
export const DURATION_MS = 10_000

/** What a rate worker prints at the end (see `accuracyWorker.ts`). */
interface Tally {
  readonly admitted: number
  readonly refused: number
  readonly first: number
  readonly last: number
}

/**
 * The rate run: `PROCESSES` workers of `file`, each given `[...args(rateId), fibers, duration, rate,
 * burst]`, started together on a signal once all are warm; prints the tally under `label` and
 * asserts the bound.
 */
export const rateAccuracy = (label: string, file: string, args: (rateId: string) => ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const rateId = `acc-${crypto.randomUUID()}`
    const children = yield* Effect.all(
      Array.from({ length: PROCESSES }, () =>
        worker(file, [...args(rateId), String(FIBERS), String(DURATION_MS), String(RATE), String(BURST)])),
      { concurrency: "unbounded" }
    )
    const ready = yield* Effect.promise(() => Promise.all(children.map((c) => c.line())))
    assert.deepStrictEqual(ready, children.map(() => "ready"))
    const startAt = (yield* Clock.currentTimeMillis) + 300
    for (const c of children) c.process.stdin.write(`go ${startAt}\n`)
    const results = yield* Effect.promise(() =>
      Promise.all(children.map((c) => c.line().then((l): Tally => JSON.parse(l))))
    )
    const admitted = results.reduce((n, r) => n + r.admitted, 0)
    const bound = BURST + RATE * (DURATION_MS / 1000)
    console.log(
      `${label} accuracy: admitted ${admitted} of bound ${bound} (${(admitted / bound).toFixed(4)}), per process ${
        results.map((r) => r.admitted).join("/")
      }, refusals ${results.map((r) => r.refused).join("/")}, first admission ${
        results.map((r) => r.first).join("/")
      } ms after the start, last ${results.map((r) => r.last).join("/")} ms before the end`
    )
    assert.isTrue(admitted <= bound, `admitted ${admitted} > ${bound}`)
    assert.isTrue(admitted >= 0.97 * bound, `admitted ${admitted} < 0.97 × ${bound}`)
    assert.isTrue(results.every((r) => r.admitted > 0), "every process was admitted some")
  })
