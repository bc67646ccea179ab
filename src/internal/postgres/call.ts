/**
 * The PostgreSQL store's bounded call: every statement runs on one of the store's statement
 * workers (`gate.ts`) and is answered by its deadline at the latest; serialization failures and
 * deadlocks run again (jittered, `core/backoff.ts`) while the deadline allows.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import * as Fx from "#fx/core"
import * as Sql from "#fx/sql"
import { rollbackRetryMs } from "../../core/backoff.js"
import { isRetryable } from "../../core/postgres/errors.js"
import type { Row } from "../../core/postgres/rows.js"
import type { FunctionCall } from "../../core/postgres/sql.js"
import type { StoreError } from "../../RateLimitStore.js"
import * as Deadlines from "../store/deadlines.js"
import type { Failures, Settings } from "./driver.js"
import * as Gate from "./gate.js"

/** The store's gate and deadlines, and how it words a failure. @internal */
export interface Call {
  readonly gate: Gate.Gate
  readonly deadlines: Deadlines.Deadlines
  readonly failures: Failures
  readonly permits: number
}

/** Starts the store's statement workers and its deadlines' sweeper (in the store's scope). @internal */
export const make = (
  sql: Sql.SqlClient.SqlClient,
  settings: Settings,
  failures: Failures
): Effect.Effect<Call, never, Scope.Scope> =>
  Effect.zipWith(
    Gate.make(sql, settings.permits, settings.maxQueued),
    Deadlines.make(settings.timeoutMs),
    (gate, deadlines): Call => ({ gate, deadlines, failures, permits: settings.permits })
  )

/** What a statement runs on the connection of the worker that runs it; `deadlineMs` bounds its retries. @internal */
export type Statement<A> = (conn: Sql.Connection, deadlineMs: number) => Effect.Effect<A, unknown>

/** One bounded call (see {@link bounded}). */
class Job<A> implements Gate.GateJob {
  expired = false
  inFlight: Deadlines.InFlight<A, StoreError> | undefined = undefined
  merge: Gate.Mergeable | undefined = undefined
  constructor(
    private readonly call: Call,
    private readonly operation: string,
    private readonly statement: Statement<A>,
    readonly measure: boolean,
    private readonly undoLate: ((a: A | undefined) => Effect.Effect<void>) | undefined
  ) {}
  get deadline(): number {
    return this.inFlight?.deadline ?? 0
  }
  run(conn: Sql.Connection, deadlineMs: number): Effect.Effect<A, unknown> {
    return this.statement(conn, deadlineMs)
  }
  settle(exit: Exit.Exit<A, unknown>): Effect.Effect<void> {
    const inFlight = this.inFlight
    if (!this.expired && inFlight !== undefined) {
      if (Exit.isSuccess(exit)) inFlight.succeed(exit.value)
      else inFlight.fail(this.failure(exit.cause))
      return Effect.void
    }
    // answered already: a late answer goes to `undoLate` (also a cancelled one: its outcome is unknown)
    if (this.undoLate === undefined) return Effect.void
    if (Exit.isSuccess(exit)) return Effect.asVoid(Fx.forkDetach(this.undoLate(exit.value)))
    return Fx.isInterruptedOnly(exit.cause) ? Effect.asVoid(Fx.forkDetach(this.undoLate(undefined))) : Effect.void
  }
  refuse(e: unknown): void {
    if (this.expired) return
    const failures = this.call.failures
    // a string is the gate's own reason; anything else is the driver's failure
    this.inFlight?.fail(typeof e === "string" ? failures.fail(this.operation, e) : failures.failed(this.operation, e))
  }
  /** A failed statement's error: the driver's failure worded as a `StoreError`, or a defect. */
  private failure(cause: Cause.Cause<unknown>): StoreError {
    const failures = this.call.failures
    return Option.match(Fx.causeFailure(cause), {
      onNone: () => failures.fail(this.operation, `the statement failed: ${Cause.pretty(cause)}`),
      onSome: (e) => (isStoreError(e) ? e : failures.failed(this.operation, e))
    })
  }
}

/** A `StoreError` already (the store's own wording), as opposed to a driver's failure. */
const isStoreError = (e: unknown): e is StoreError =>
  typeof e === "object" && e !== null && Reflect.get(e, "_tag") === "StoreError" && Reflect.get(e, "engine") === "postgres"

/**
 * One statement, settled within `ms` whatever the link does and whether or not the caller is
 * interruptible (the limiter acquires and releases slots uninterruptibly). It runs on one of the
 * store's statement workers, at once or in turn, or fails at once when overloaded (see `gate.ts`);
 * the caller waits for its answer, registered with the store's deadlines: at `ms` the sweeper
 * fails the call with `no answer within ms`; a statement still queued then never runs, one already
 * sent runs to its end on its worker (a writing one bounded on the server: `#fx/sql`
 * `callFunction`) or is cancelled there (`Sql.cancelsLate`), its late answer given to `undoLate`
 * (`undefined` when cancelled: an acquired slot nobody will release). No fiber, timer or
 * interruption per call. `measure`: the statement's time feeds the pace estimate (decisions, not
 * DDL or cleanup).
 *
 * @internal
 */
export const bounded = <A>(
  call: Call,
  operation: string,
  ms: number,
  statement: Statement<A>,
  measure = false,
  undoLate?: (a: A | undefined) => Effect.Effect<void>
): Effect.Effect<A, StoreError> =>
  Fx.callback<A, StoreError>((resume) => {
    start(call, operation, ms, new Job(call, operation, statement, measure, undoLate), resume)
  })

/**
 * A take's call as {@link bounded} (measured), that the gate may decide in one statement with the
 * takes of `group` queued with it (`gate.ts` `MergeGroup`): `fnCall` is its part of that
 * statement; alone it runs `statement`, as every call does. A late answer, its own or its share of
 * a merged statement's, goes to `undoLate` as {@link bounded}'s does.
 *
 * @internal
 */
export const boundedTake = (
  call: Call,
  operation: string,
  ms: number,
  statement: Statement<ReadonlyArray<Row>>,
  group: Gate.MergeGroup,
  fnCall: FunctionCall,
  undoLate?: (rows: ReadonlyArray<Row> | undefined) => Effect.Effect<void>
): Effect.Effect<ReadonlyArray<Row>, StoreError> =>
  Fx.callback<ReadonlyArray<Row>, StoreError>((resume) => {
    const job = new Job(call, operation, statement, true, undoLate)
    job.merge = { group, call: fnCall, alone: false, settle: (exit) => job.settle(exit) }
    start(call, operation, ms, job, resume)
  })

/** `job` refused at once when the gate is overloaded, else tracked until `ms` and submitted. */
const start = <A>(
  call: Call,
  operation: string,
  ms: number,
  job: Job<A>,
  resume: (effect: Effect.Effect<A, StoreError>) => void
): void => {
  const refusal = call.gate.refusal(ms)
  if (refusal !== undefined) {
    resume(Effect.fail(overloaded(call, operation, ms, refusal)))
    return
  }
  job.inFlight = call.deadlines.track(resume, () => {
    call.gate.expire(job)
    return call.failures.fail(operation, `no answer within ${ms} ms`)
  }, ms)
  call.gate.submit(job)
}

const overloaded = (call: Call, operation: string, ms: number, refusal: Gate.Refusal): StoreError =>
  call.failures.fail(
    operation,
    refusal.expectedMs === undefined
      ? `overloaded: ${refusal.waiting} calls already wait for one of ${call.permits} statement slots (maxQueuedStatements)`
      : `overloaded: ${refusal.waiting} calls already wait for one of ${call.permits} statement slots; an answer would take about ${
        Math.round(refusal.expectedMs)
      } ms, past the ${ms} ms statementTimeout`
  )

/**
 * Runs `once` again after a retryable SQLSTATE (see `core/postgres/errors.ts`); the last error
 * once it gives up. The wait before the k-th retry (k from 0) is `core/backoff.ts`
 * `rollbackRetryMs`: min(2^k, 50) ms, jittered ×0.8–1.2 (one `Random.next` per retry), kept to
 * the nanosecond as `Duration` keeps it. A retry is taken only when it would start before
 * `deadlineMs` (the call's start plus its `statementTimeout`: the statement's fiber outlives a
 * caller that timed out, its retries must not): `now + wait < deadlineMs` on the fiber's clock,
 * read after the draw; else the last error, with no pause. The answered call allocates nothing
 * for the retries.
 *
 * Not the kit's `internal/store/backoff.ts` `jittered`: that one is full jitter, made for
 * compare-and-set losers that must spread out; these retries follow a rollback by the server.
 *
 * @internal
 */
export const retryUntil = <A>(once: Effect.Effect<A, unknown>, deadlineMs: number): Effect.Effect<A, unknown> => {
  const again = (e: unknown, retries: number): Effect.Effect<A, unknown> =>
    Effect.flatMap(Random.next, (random) => {
      const wait = Duration.millis(rollbackRetryMs(retries, random))
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        now + Duration.toMillis(wait) < deadlineMs
          ? Effect.andThen(Effect.sleep(wait), Effect.catchIf(once, isRetryable, (next) => again(next, retries + 1)))
          : Effect.fail(e))
    })
  return Effect.catchIf(once, isRetryable, (first) => again(first, 0))
}

/**
 * Runs a statement of `sql` on a connection of its own even when the caller is inside
 * `sql.withTransaction`: a decision must commit (and release its row lock) at once, not when the
 * caller's transaction ends, and its transaction-local settings must not leak into the caller's
 * (`#fx/sql` `outsideTransactions`: the transaction's service taken out of the context).
 *
 * @internal
 */
export const outsideTransactions = <A, E>(sql: Sql.SqlClient.SqlClient, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Sql.outsideTransactions(sql, effect)
