/**
 * Multi-process accuracy against the PostgreSQL server on 127.0.0.1:5432 (a fresh table, dropped
 * with its functions at the end): 4 Node
 * processes × 50 fibers share one limiter of 100/s, burst 10, for 5 s, measured after each process
 * warmed up, from an instant every process is told on a signal. The admissions that proceed within
 * the 5 s must be within [0.97, 1.00] × (burst + 100·5), never above.
 */
import { assert, layer } from "#test/vitest"
import { Clock, Effect, Layer, Redacted } from "effect"
import { PostgresStore } from "effect-rate-sync/postgres"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { freshTable, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")
const WORKER = path.join(ROOT, "test/postgres/fixtures/worker.ts")
const TABLE = freshTable()

/**
 * Drops the table and every function named `<table>_…` (as the bench's cleanup does): read from
 * `pg_proc` with their argument lists, so an overload or a function the store adds later goes too.
 */
const dropTableAndFunctions = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    // the row type is the driver's generic parameter: the query names the one text column `f`
    const functions = yield* sql.unsafe<{ readonly f: string }>(
      `SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS f
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND starts_with(p.proname, $1)`,
      [`${TABLE}_`]
    )
    yield* Sql.script(
      sql,
      [`DROP TABLE IF EXISTS "public"."${TABLE}"`, ...functions.map((row) => `DROP FUNCTION IF EXISTS ${row.f}`)].join(";\n")
    )
  })

/** The store's table, installed before the workers start (they find it), dropped with its functions at the end. */
const TableLive = T.layerScopedDiscard(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.addFinalizer(() => dropTableAndFunctions(sql).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore))
    yield* PostgresStore.make({ tableName: TABLE })
  })
).pipe(Layer.provide(Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 2 })))

const PROCESSES = 4
const FIBERS = 50
const RATE = 100
const BURST = 10
const DURATION_MS = 5000

interface Child {
  readonly process: ChildProcessWithoutNullStreams
  /** The next stdout line. */
  readonly line: () => Promise<string>
}

/** The node flags this run uses (the Effect 4 run loads its own register hook), for the workers too. */
const execArgv = process.execArgv.some((a) => a.includes("tsx")) ? process.execArgv : [...process.execArgv, "--import", "tsx"]

/** Spawns a worker; killed (SIGKILL) when the scope closes. */
const worker = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const child = spawn(process.execPath, [...execArgv, WORKER, ...args], { cwd: ROOT, env: process.env })
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

describeWhenUp(available)("PostgresStore multi-process accuracy (4 processes × 50 fibers)", () => {
  layer(TableLive, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("one limiter of 100/s, burst 10, admits [0.97, 1.0] × (burst + 100·5) in 5 s", () =>
      Effect.gen(function*() {
        const rateId = `acc-${crypto.randomUUID()}`
        const children = yield* Effect.all(
          Array.from({ length: PROCESSES }, () =>
            worker(["accuracy", URL, TABLE, rateId, String(FIBERS), String(DURATION_MS), String(RATE), String(BURST)])),
          { concurrency: "unbounded" }
        )
        const ready = yield* Effect.promise(() => Promise.all(children.map((c) => c.line())))
        assert.deepStrictEqual(ready, children.map(() => "ready"))
        const startAt = (yield* Clock.currentTimeMillis) + 300
        for (const c of children) c.process.stdin.write(`go ${startAt}\n`)
        const results = yield* Effect.promise(() =>
          Promise.all(children.map((c) => c.line().then((l): { admitted: number; refused: number; first: number; last: number } => JSON.parse(l))))
        )
        const admitted = results.reduce((n, r) => n + r.admitted, 0)
        const bound = BURST + RATE * (DURATION_MS / 1000)
        console.log(
          `PostgreSQL accuracy: admitted ${admitted} of bound ${bound} (${(admitted / bound).toFixed(4)}), per process ${
            results.map((r) => r.admitted).join("/")
          }, refusals ${results.map((r) => r.refused).join("/")}, first admission ${
            results.map((r) => r.first).join("/")
          } ms after the start, last ${results.map((r) => r.last).join("/")} ms before the end`
        )
        assert.isTrue(admitted <= bound, `admitted ${admitted} > ${bound}`)
        assert.isTrue(admitted >= 0.97 * bound, `admitted ${admitted} < 0.97 × ${bound}`)
        assert.isTrue(results.every((r) => r.admitted > 0), "every process was admitted some")
      }))
  })
})
