/**
 * How the Redis store's calls reach the server. Every SPI call is one script round trip: `EVALSHA`,
 * and on `NOSCRIPT` (after `SCRIPT FLUSH`, a restart or a failover) `EVAL`, which also caches the
 * script again. Calls issued in the same tick (the fibers one socket read wakes up, a burst of
 * requests) leave as one batch script (see `core/redis/scripts.ts` `batch`): one command, one
 * reply and one script run for up to `maxBatch` decisions. A call alone runs its own script. Not
 * on a cluster, where a batch's keys would span slots. Every call is bounded by the deadline
 * sweeper (`internal/store/deadlines.ts`) and traced when its caller is.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import { type ErrorKind, redisErrorKind } from "../../core/errorKind.js"
import { messageOf } from "../../core/secrets.js"
import type { StoreError } from "../../RateLimitStore.js"
import type * as Deadlines from "../store/deadlines.js"
import { tracer } from "../store/telemetry.js"
import type { Client, Pool } from "./client.js"
import { Scripts } from "./script.js"
import type { Script } from "./script.js"
import { ENGINE, type Settings } from "./settings.js"

/** What an operation's calls share, built once per store. */
interface Operation {
  /** A failure of the call, its kind told from what the driver threw (see `core/errorKind.ts`). */
  readonly fail: (message: string, kind?: ErrorKind) => StoreError
  readonly timeout: () => StoreError
}

/** What the batcher needs of a call. */
interface Queued {
  readonly script: Script
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<string | number>
  reply(reply: unknown): void
  error(e: unknown): void
}

/**
 * A script call on its way: settled by its reply (through `map`) or by its command's error. A
 * class, so a call allocates one object and no closures.
 */
class Pending<A> implements Queued {
  constructor(
    readonly script: Script,
    readonly keys: ReadonlyArray<string>,
    readonly args: ReadonlyArray<string | number>,
    private readonly limit: number,
    private readonly map: (reply: unknown, limit: number) => A,
    private readonly operation: Operation,
    private readonly call: Deadlines.InFlight<A, StoreError>
  ) {}
  reply(reply: unknown): void {
    let a: A
    try {
      a = this.map(reply, this.limit)
    } catch (e) {
      return this.call.fail(this.operation.fail(messageOf(e)))
    }
    this.call.succeed(a)
  }
  error(e: unknown): void {
    this.call.fail(this.operation.fail(messageOf(e), redisErrorKind(e)))
  }
}

/** Arguments the batch script can carry: no newline in a string (its field separator). */
const packable = (args: ReadonlyArray<string | number>): boolean => {
  for (const a of args) if (typeof a === "string" && a.includes("\n")) return false
  return true
}

/** Whether `b` runs the script of `a` on as many keys with the same arguments (the batch's `=` mark). */
const sameCall = (a: Queued, b: Queued): boolean => {
  if (a.script !== b.script || a.keys.length !== b.keys.length || a.args.length !== b.args.length) return false
  for (let i = 0; i < a.args.length; i++) if (a.args[i] !== b.args[i]) return false
  return true
}

const isNoScript = (e: unknown): boolean => e instanceof Error && e.message.startsWith("NOSCRIPT")

/** Sends script calls: alone while nothing is on the wire, else batched with the calls of the tick. */
class Batcher {
  /** Script commands sent and not answered yet. */
  private outstanding = 0
  private queue: Array<Queued> = []
  private flushScheduled = false
  constructor(private readonly pool: Pool, private readonly maxBatch: number) {}

  submit(p: Queued): void {
    // Nothing on the wire: no reply is coming to wake other callers within this tick, so the call
    // leaves at once (a lone caller pays nothing for batching).
    if (this.maxBatch === 1 || this.outstanding === 0 || p.script.opcode === 0 || !packable(p.args)) {
      return this.runOne(p)
    }
    this.queue.push(p)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flush)
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    const q = this.queue
    this.queue = []
    for (let i = 0; i < q.length; i += this.maxBatch) this.sendBatch(q, i, Math.min(q.length, i + this.maxBatch))
  }

  private runOne(p: Queued): void {
    this.runScript(
      this.pool.pick(),
      p.script.source,
      [p.script.sha, p.keys.length, ...p.keys, ...p.args],
      (reply) => p.reply(reply),
      (e) => p.error(e)
    )
  }

  /** `q[from..to)` as one batch script: its keys in order, its operations packed in one argument. */
  private sendBatch(q: ReadonlyArray<Queued>, from: number, to: number): void {
    const head = q[from]
    if (head === undefined) return
    if (to - from === 1) return this.runOne(head)
    const args: Array<string | number> = [Scripts.batch.sha, 0]
    let packed = `${to - from}\n`
    let previous: Queued | undefined
    for (let i = from; i < to; i++) {
      const p = q[i]
      if (p === undefined) continue
      for (const k of p.keys) args.push(k)
      if (previous !== undefined && sameCall(previous, p)) {
        packed += "=\n"
      } else {
        packed += `${p.script.opcode}\n${p.keys.length}\n${p.args.length}\n`
        for (const a of p.args) packed += `${a}\n`
      }
      previous = p
    }
    args[1] = args.length - 2
    args.push(packed)
    this.runScript(this.pool.pick(), Scripts.batch.source, args, (reply) => {
      if (!Array.isArray(reply) || reply.length !== to - from) {
        for (let i = from; i < to; i++) q[i]?.error(new Error("unexpected batch reply"))
        return
      }
      for (let i = from; i < to; i++) q[i]?.reply(reply[i - from])
    }, (e) => {
      for (let i = from; i < to; i++) q[i]?.error(e)
    })
  }

  /** `EVALSHA` of `args` (`[sha, numkeys, ...]`), and `EVAL` of `source` on `NOSCRIPT`. */
  private runScript(
    client: Client,
    source: string,
    args: Array<string | number>,
    onReply: (reply: unknown) => void,
    onError: (e: unknown) => void
  ): void {
    this.outstanding++
    const replied = (reply: unknown) => {
      this.outstanding--
      onReply(reply)
    }
    const failed = (e: unknown) => {
      this.outstanding--
      onError(e)
    }
    client.call("EVALSHA", args).then(replied, (e: unknown) => {
      if (!isNoScript(e)) return failed(e)
      args[0] = source
      client.call("EVAL", args).then(replied, failed)
    })
  }
}

/**
 * One script call of an SPI operation: its keys and arguments, the `limit` its answer reports, and
 * how its reply becomes that answer.
 *
 * @internal
 */
export type Eval = <A>(
  operation: string,
  limiter: string,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>,
  limit: number,
  map: (reply: unknown, limit: number) => A
) => Effect.Effect<A, StoreError>

/** A round trip that is not a script (a per-key reset), bounded and traced like one. @internal */
export type Call = <A>(operation: string, limiter: string, f: () => Promise<A>) => Effect.Effect<A, StoreError>

/** The store's way to the server. @internal */
export interface Runner {
  readonly evalScript: Eval
  readonly call: Call
}

/** A store operation's span (see `internal/store/telemetry.ts`). */
const traced = tracer(ENGINE)

/** The runner of a store: its batcher, and its operations' errors built once. @internal */
export const make = (settings: Settings, pool: Pool, deadlines: Deadlines.Deadlines): Runner => {
  const { fail, timeoutMs } = settings
  const timeoutError = (operation: string) => fail(operation, `no answer within ${timeoutMs} ms`)
  const operations = new Map<string, Operation>()
  const operationOf = (name: string): Operation => {
    let op = operations.get(name)
    if (op === undefined) {
      op = { fail: (message, kind) => fail(name, message, kind), timeout: () => timeoutError(name) }
      operations.set(name, op)
    }
    return op
  }
  const batcher = new Batcher(pool, settings.maxBatch)
  const evalScript = <A>(
    operation: string,
    limiter: string,
    s: Script,
    keys: ReadonlyArray<string>,
    args: ReadonlyArray<string | number>,
    limit: number,
    map: (reply: unknown, limit: number) => A
  ): Effect.Effect<A, StoreError> => {
    const op = operationOf(operation)
    return traced(
      operation,
      limiter,
      Fx.callback<A, StoreError>((resume) => {
        batcher.submit(new Pending(s, keys, args, limit, map, op, deadlines.track(resume, op.timeout, timeoutMs)))
      })
    )
  }
  const call: Call = (operation, limiter, f) =>
    traced(
      operation,
      limiter,
      deadlines.settle(f, (e) => fail(operation, messageOf(e)), () => timeoutError(operation), timeoutMs)
    )
  return { evalScript, call }
}
