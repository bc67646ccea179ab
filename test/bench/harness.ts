/**
 * What the PostgreSQL and NATS benches share: a workload (callers and which key each call takes),
 * a contender's measurement as async loops (promise peers) or as fibers of one program (Effect
 * callers), and the summary of one measurement (throughput, p50, p99 from every latency).
 */
import { Effect } from "effect"
import type * as ManagedRuntime from "effect/ManagedRuntime"

/** One measurement: decisions per second and the latency percentiles, in ms. */
export interface Result {
  readonly opsPerSec: number
  readonly p50: number
  readonly p99: number
}

/** One operation; `i` picks the key. Resolves when the decision is known. */
export type PromiseOp = (i: number) => Promise<unknown>
/** One Effect operation, run by fibers of one program (how an Effect service calls a limiter). */
export type EffectOp = (i: number) => Effect.Effect<unknown, unknown>

export interface Workload {
  readonly name: string
  readonly callers: number
  /** The key index of call `i`. */
  readonly key: (i: number) => number
}

/** A row of the table: how it measures one workload for `ms`. */
export interface Contender {
  readonly name: string
  readonly measure: (workload: Workload, ms: number) => Promise<Result>
}

export const summarize = (latencies: Array<number>, elapsedMs: number): Result => {
  const sorted = latencies.sort((a, b) => a - b)
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
  return { opsPerSec: sorted.length / (elapsedMs / 1000), p50: pct(0.5), p99: pct(0.99) }
}

/** `callers` async loops calling `op` until `ms` have passed; every latency recorded. */
export const measurePromise = async (op: PromiseOp, workload: Workload, ms: number): Promise<Result> => {
  const latencies: Array<number> = []
  let next = 0
  const t0 = performance.now()
  const until = t0 + ms
  const worker = async () => {
    while (performance.now() < until) {
      const i = next++
      const s = performance.now()
      await op(workload.key(i))
      latencies.push(performance.now() - s)
    }
  }
  await Promise.all(Array.from({ length: workload.callers }, worker))
  return summarize(latencies, performance.now() - t0)
}

/** `callers` fibers of one program on `runtime` calling `op` until `ms` have passed. */
export const measureEffect = (
  runtime: ManagedRuntime.ManagedRuntime<never, unknown>,
  op: EffectOp,
  workload: Workload,
  ms: number
): Promise<Result> => {
  const latencies: Array<number> = []
  let next = 0
  let t0 = 0
  let until = 0
  const worker = Effect.gen(function*() {
    while (performance.now() < until) {
      const i = next++
      const s = performance.now()
      yield* op(workload.key(i))
      latencies.push(performance.now() - s)
    }
  })
  const all = Effect.suspend(() => {
    t0 = performance.now()
    until = t0 + ms
    return Effect.all(Array.from({ length: workload.callers }, () => worker), { concurrency: "unbounded", discard: true })
  })
  return runtime.runPromise(all).then(() => summarize(latencies, performance.now() - t0))
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? 0
}
