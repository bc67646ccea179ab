/**
 * The PostgreSQL store's statement gate: a fixed set of statement workers, each running one
 * statement at a time on a connection it holds, fed from a FIFO queue with direct hand-off,
 * refusing at once (`overloaded`) what could not be answered in time.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Fx from "#fx/core"
import * as Sql from "#fx/sql"
import { errorKind, sqlStateOf } from "../../core/postgres/errors.js"
import type { Row } from "../../core/postgres/rows.js"
import type { FunctionCall } from "../../core/postgres/sql.js"

/** The clock, in milliseconds. @internal */
export const nowMs = Effect.map(Clock.currentTimeNanos, (ns) => Number(ns) / 1e6)

/** Why a call is refused at once: how many wait, and the expected wait (`undefined`: the queue is full). @internal */
export interface Refusal {
  readonly waiting: number
  readonly expectedMs: number | undefined
}

/**
 * What the gate needs of a call (`call.ts` `Job`): the statement to run on a connection, and how
 * its outcome reaches its caller.
 *
 * @internal
 */
export interface GateJob {
  /** Its caller was answered by the deadline: a queued job then never runs. */
  expired: boolean
  /** Its time feeds the pace estimate (decisions, not DDL or cleanup). */
  readonly measure: boolean
  /** The caller's deadline (clock ms): the statement's retries stop there. */
  readonly deadline: number
  /** The statement(s), on the worker's connection. */
  run(conn: Sql.Connection, deadlineMs: number): Effect.Effect<unknown, unknown>
  /** Its outcome: to the caller, or, once the caller was answered, to what undoes a late one. */
  settle(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void>
  /** No connection could be had for it (`e`: the driver's failure), or the store closed (`e`: the gate's reason, a string). */
  refuse(e: unknown): void
  /** Set for a take that may share one statement with the takes of its group queued with it. */
  readonly merge: Mergeable | undefined
}

/**
 * Takes that may be decided by one statement: single takes of one function on different keys (a
 * token bucket's `tb_take`), merged into one call of `run` (`tb_take_keys`) when a worker takes the
 * first of them and others of the group wait behind it. @internal
 */
export interface MergeGroup {
  /** The statement deciding `calls` (each a single take's call), its rows for each, in order. */
  readonly run: (
    calls: ReadonlyArray<FunctionCall>
  ) => (conn: Sql.Connection, deadlineMs: number) => Effect.Effect<ReadonlyArray<ReadonlyArray<Row> | undefined>, unknown>
}

/** A job's part in a merged statement: its group, its own call, and how its share of the answer reaches it. @internal */
export interface Mergeable {
  readonly group: MergeGroup
  readonly call: FunctionCall
  /** Its rows out of the merged statement (or the statement's failure), as its own statement's outcome would be. */
  settle(exit: Exit.Exit<ReadonlyArray<Row>, unknown>): Effect.Effect<void>
  /** Set when it must run on its own: a merged statement it was in was rejected by the server. */
  alone: boolean
}

type AnyJob = GateJob

/** How many queued jobs a worker looks through for takes to merge with the one it took. */
const MERGE_SCAN = 256

/** The most takes one merged statement decides. @internal */
export const MAX_MERGED = 64

/**
 * Jobs of one {@link MergeGroup} run as one statement: answered each with its own rows. When the
 * server rejects the statement (the request itself: one take's input), no take was applied (the
 * statement rolled back): each is queued again to run on its own, so that only the caller whose
 * input it was fails. Any other failure is every member's.
 */
class MergedJob implements GateJob {
  readonly measure = true
  readonly merge = undefined
  constructor(
    private readonly members: ReadonlyArray<readonly [GateJob, Mergeable]>,
    private readonly group: MergeGroup,
    private readonly again: (job: GateJob) => void
  ) {}
  get expired(): boolean {
    return this.members.every(([job]) => job.expired)
  }
  /** Whether `job` is one of its members. */
  has(job: AnyJob): boolean {
    return this.members.some(([member]) => member === job)
  }
  set expired(value: boolean) {
    if (value) for (const [job] of this.members) job.expired = true
  }
  get deadline(): number {
    let deadline = 0
    for (const [job] of this.members) deadline = Math.max(deadline, job.deadline)
    return deadline
  }
  run(conn: Sql.Connection, deadlineMs: number): Effect.Effect<unknown, unknown> {
    return this.group.run(this.members.map(([, m]) => m.call))(conn, deadlineMs)
  }
  settle(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    if (Exit.isSuccess(exit)) {
      const answers = exit.value
      return Effect.forEach(this.members, ([, m], i) => {
        const rows = Array.isArray(answers) ? answers[i] : undefined
        return m.settle(
          Array.isArray(rows) ? Exit.succeed(rows) : Exit.fail(new Error("the merged statement answered no rows for the take"))
        )
      }, { discard: true })
    }
    const failure = Option.getOrUndefined(Fx.causeFailure(exit.cause))
    if (failure !== undefined && errorKind(sqlStateOf(failure)) === "rejected") {
      return Effect.sync(() => {
        for (const [job, m] of this.members) {
          if (job.expired) continue
          m.alone = true
          this.again(job)
        }
      })
    }
    const failed = Exit.failCause(exit.cause)
    return Effect.forEach(this.members, ([, m]) => m.settle(failed), { discard: true })
  }
  refuse(e: unknown): void {
    for (const [job] of this.members) job.refuse(e)
  }
}

/** A statement worker: a fiber, the connection it holds, the job it runs. */
interface Worker {
  fiber: Fx.RuntimeFiber<void, never> | undefined
  /** Set while it waits for a job: hands it one. */
  wake: ((job: AnyJob) => void) | undefined
  /** A job handed to it that it has not started yet (given back to the queue if it ends first). */
  handed: AnyJob | undefined
  /** The job whose statement it runs now (what a deadline cancels, see `Sql.cancelsLate`). */
  running: AnyJob | undefined
  /** The job it works for, from taking it to settling it (connection checkout included). */
  current: AnyJob | undefined
  conn: Sql.Connection | undefined
  scope: Fx.Closeable | undefined
  heldSince: number
  /**
   * Set when a deadline interrupted it to cancel the job it ran (`Sql.cancelsLate`): the
   * interruption may land after that job's statement ended, so the worker starts no other
   * statement (which the interruption would hit instead); it ends and a new one replaces it.
   */
  cancelled: boolean
}

/** Runs the store's statements (see {@link make}). @internal */
export interface Gate {
  /** Whether a call bounded by `timeoutMs` would be refused now (`undefined`: it would run or queue). */
  readonly refusal: (timeoutMs: number) => Refusal | undefined
  /** Runs `job` on a worker: at once when one is idle, else in turn (the caller checked {@link refusal}). */
  readonly submit: (job: AnyJob) => void
  /**
   * `job`'s caller was answered by its deadline: it leaves the queue, or its statement is cancelled
   * (`Sql.cancelsLate`; a merged statement once every member's caller was answered).
   */
  readonly expire: (job: AnyJob) => void
}

/**
 * How long a worker keeps its connection while jobs keep coming: past it, it gives the connection
 * back to the pool between two jobs (and takes one again), so the application's own statements on
 * a shared pool get their turn in the pool's queue.
 */
const HOLD_MS = 20

/** Why a call reaching a closed store (replaced under its id, or its layer released) is refused. */
const CLOSED = "the store is closed (replaced by configureStore, or its layer was released)"

/**
 * The store's statement gate: `permits` workers (fibers of their own, started here, interrupted
 * when the scope closes without being waited for), each running one statement at a time, so at
 * most `permits` statements are in flight. A worker holds a connection of the pool (`sql.reserve`)
 * while jobs keep coming: a statement costs no pool checkout, no span and no scope of
 * `@effect/sql`, and nothing of the store ever waits in the pool's own queue interruptibly (a caller
 * interrupted there leaves its waiter behind: on Effect 3, pg-pool hands it a connection later,
 * which `@effect/sql-pg` releases straight back, recursively; thousands of them overflow the
 * stack). A worker gives its connection back as soon as no job waits, after a failed statement,
 * and every {@link HOLD_MS} under load.
 *
 * A call is answered by its deadline, never by interrupting it: a call still queued at its
 * deadline leaves the queue; a statement already sent runs to its end (a writing one bounded on
 * the server, see `Sql.callFunction`), or, where the driver cancels safely (`Sql.cancelsLate`,
 * Effect 4), is cancelled by interrupting its worker, which a new one replaces.
 *
 * A FIFO queue with direct hand-off: a worker that finishes takes the oldest job, O(1) (Effect's
 * `Semaphore` wakes every waiter on each release, quadratic for thousands of waiters). When every
 * worker is busy, a call is refused at once (`overloaded`) instead of queueing when `maxQueued`
 * calls already wait, or when the statements ahead of it (one per queued call, but one per
 * {@link MAX_MERGED} calls that may be merged), at the pace of the recent statements (an
 * exponential moving average of their time on a worker, from the connection in hand to the
 * answer; forgotten whenever every worker is idle again), would take it past its timeout.
 *
 * @internal
 */
export const make = (
  sql: Sql.SqlClient.SqlClient,
  permits: number,
  maxQueued: number
): Effect.Effect<Gate, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clockWith(Effect.succeed)
    const now = () => Fx.nowMillisUnsafe(clock)
    let paceMs = 0
    let closed = false
    /** Insertion-ordered: the first is the oldest; deleting a job that left is O(1). */
    const queue = new Set<AnyJob>()
    const idle: Array<Worker> = []
    const workers = new Set<Worker>()

    /** How many queued jobs may be merged (a statement then answers up to {@link MAX_MERGED} of them). */
    let mergeable = 0
    const isMergeable = (job: AnyJob) => job.merge !== undefined && !job.merge.alone
    /** Takes `job` out of the queue; whether it was there. */
    const leave = (job: AnyJob): boolean => {
      if (!queue.delete(job)) return false
      if (isMergeable(job)) mergeable--
      return true
    }

    const queueRefusal = (timeoutMs: number): Refusal | undefined => {
      if (queue.size >= maxQueued) return { waiting: queue.size, expectedMs: undefined }
      // the statements ahead: one per plain job, one per MAX_MERGED mergeable ones
      const statements = queue.size - mergeable + Math.ceil(mergeable / MAX_MERGED)
      const expectedMs = (Math.floor(statements / permits) + 2) * paceMs
      return expectedMs > timeoutMs ? { waiting: queue.size, expectedMs } : undefined
    }
    const refusal = (timeoutMs: number): Refusal | undefined => (idle.length > 0 ? undefined : queueRefusal(timeoutMs))

    const submit = (job: AnyJob): void => {
      if (closed) {
        job.refuse(CLOSED)
        return
      }
      const worker = idle.pop()
      if (worker?.wake === undefined) {
        queue.add(job)
        if (isMergeable(job)) mergeable++
        return
      }
      const wake = worker.wake
      worker.wake = undefined
      worker.handed = job
      wake(job)
    }

    const expire = (job: AnyJob): void => {
      job.expired = true
      if (leave(job)) return
      if (!Sql.cancelsLate) return
      for (const worker of workers) {
        const running = worker.running
        // a merged statement is cancelled once its last member's caller was answered
        const cancel = running === job || (running instanceof MergedJob && running.has(job) && running.expired)
        if (cancel && worker.fiber !== undefined) {
          worker.cancelled = true
          Sql.interruptUnsafe(worker.fiber)
          return
        }
      }
    }

    /** The oldest queued job, or `undefined`. */
    const dequeue = (): AnyJob | undefined => {
      for (const job of queue) {
        leave(job)
        return job
      }
      return undefined
    }

    const release = (worker: Worker): Effect.Effect<void> => {
      const scope = worker.scope
      worker.conn = undefined
      worker.scope = undefined
      return scope === undefined ? Effect.void : Scope.close(scope, Exit.void)
    }

    /** The next job: the oldest queued one, else the first handed to it while it waits (interruptible). */
    const next = (worker: Worker): Effect.Effect<AnyJob> =>
      Effect.suspend(() => {
        const job = dequeue()
        if (job !== undefined) return Effect.succeed(job)
        // idle: the pace measured under the last load says nothing about the next one
        if (idle.length + 1 === workers.size) paceMs = 0
        const wait = Fx.callback<AnyJob>((resume) => {
          worker.wake = (handed) => resume(Effect.succeed(handed))
          idle.push(worker)
          return Effect.sync(() => {
            worker.wake = undefined
            const i = idle.indexOf(worker)
            if (i >= 0) idle.splice(i, 1)
          })
        })
        return Effect.andThen(release(worker), Effect.interruptible(wait))
      })

    /** The worker's connection: the one it holds, or a new one (`undefined`: the job was failed). */
    const connection = (worker: Worker, job: AnyJob): Effect.Effect<Sql.Connection | undefined> => {
      if (worker.conn !== undefined) return Effect.succeed(worker.conn)
      return Effect.flatMap(Scope.make(), (scope) =>
        Effect.flatMap(Effect.exit(Fx.scopeExtend(Sql.reserve(sql), scope)), (exit) => {
          if (Exit.isSuccess(exit)) {
            worker.conn = exit.value
            worker.scope = scope
            worker.heldSince = now()
            return Effect.succeed(exit.value)
          }
          job.refuse(Option.getOrElse(Fx.causeFailure(exit.cause), () => Cause.pretty(exit.cause)))
          return Effect.as(Scope.close(scope, Exit.void), undefined)
        }))
    }

    /**
     * `job`, or, when it is a take that may be merged and others of its group are queued, one
     * statement for it and them (taken out of the queue, oldest first, up to the group's `max`).
     */
    const withMerged = (job: AnyJob): AnyJob => {
      const merge = job.merge
      if (merge === undefined || merge.alone || queue.size === 0) return job
      const members: Array<readonly [GateJob, Mergeable]> = [[job, merge]]
      let scanned = 0
      for (const other of queue) {
        if (members.length >= MAX_MERGED || ++scanned > MERGE_SCAN) break
        const m = other.merge
        if (m === undefined || m.group !== merge.group || m.alone || other.expired) continue
        leave(other)
        members.push([other, m])
      }
      return members.length === 1 ? job : new MergedJob(members, merge.group, submit)
    }

    const runJob = (worker: Worker, taken: AnyJob): Effect.Effect<void> =>
      Effect.suspend(() => {
        worker.handed = undefined
        if (taken.expired) return Effect.void
        if (worker.cancelled) {
          // the cancel of an earlier job may still land here: this job goes back to the queue
          // (see `end`) and the worker ends, replaced by a new one
          worker.handed = taken
          return Effect.interrupt
        }
        const job = withMerged(taken)
        worker.current = job
        return Effect.flatMap(connection(worker, job), (conn) => {
          if (conn === undefined || job.expired) {
            worker.current = undefined
            return Effect.void
          }
          // the statement's own time: opening a connection (once per worker, lazily on Effect 4)
          // says nothing about the pace of the statements queued behind it
          const start = now()
          worker.running = job
          const statement = job.run(conn, job.deadline)
          return Effect.flatMap(Effect.exit(Sql.cancelsLate ? Effect.interruptible(statement) : statement), (exit) => {
            worker.running = undefined
            worker.current = undefined
            if (job.measure) {
              const d = Math.max(0, now() - start)
              paceMs = paceMs === 0 ? d : paceMs * 0.8 + d * 0.2
            }
            const answered = job.settle(exit)
            // a failed statement may have broken its connection; one held long enough goes back for a turn
            return Exit.isFailure(exit) || now() - worker.heldSince > HOLD_MS
              ? Effect.andThen(answered, release(worker))
              : answered
          })
        })
      })

    const start = (): Effect.Effect<void> =>
      Effect.asVoid(Effect.suspend(() => {
        const worker: Worker = {
          fiber: undefined,
          wake: undefined,
          handed: undefined,
          running: undefined,
          current: undefined,
          conn: undefined,
          scope: undefined,
          heldSince: 0,
          cancelled: false
        }
        workers.add(worker)
        const loop = Effect.forever(Effect.flatMap(next(worker), (job) => runJob(worker, job)))
        // ended (interrupted by a cancel or the scope): its connection goes back, a job handed to
        // it returns to the queue, and a new worker takes its place unless the store is closing
        const end = Effect.suspend(() => {
          workers.delete(worker)
          const i = idle.indexOf(worker)
          if (i >= 0) idle.splice(i, 1)
          const handed = worker.handed
          worker.handed = undefined
          return Effect.andThen(
            release(worker),
            Effect.suspend(() => {
              if (closed) return Effect.void
              if (handed !== undefined && !handed.expired) submit(handed)
              return start()
            })
          )
        })
        return Effect.map(
          Fx.forkDetach(Effect.uninterruptible(Effect.ensuring(loop, end))),
          (fiber) => {
            worker.fiber = fiber
          }
        )
      }))

    for (let i = 0; i < permits; i++) yield* start()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        // nothing runs them any more, and the deadlines' sweeper stops with the same scope: each
        // caller waiting for a turn is answered now (a release of a slot of a replaced store, a
        // retry that still held the old store), not never
        for (const job of queue) job.refuse(CLOSED)
        queue.clear()
        mergeable = 0
        for (const worker of workers) {
          for (const job of [worker.handed, worker.current]) {
            if (job === undefined) continue
            // answered now; what its statement still does is late (undone, see `call.ts`)
            job.refuse(CLOSED)
            job.expired = true
          }
          worker.handed = undefined
          if (worker.fiber !== undefined) Sql.interruptUnsafe(worker.fiber)
        }
      })
    )
    return { refusal, submit, expire }
  })
