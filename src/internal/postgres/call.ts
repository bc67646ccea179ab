/**
 * The PostgreSQL store's bounded call: every statement runs in a fiber of its own behind the
 * store's gate and is answered by its deadline at the latest; serialization failures and
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

/** Starts the store's gate and its deadlines' sweeper (in the store's scope). @internal */
export const make = (settings: Settings, failures: Failures): Effect.Effect<Call, never, Scope.Scope> =>
  Effect.zipWith(
    Gate.make(settings.permits, settings.maxQueued),
    Deadlines.make(settings.timeoutMs),
    (gate, deadlines): Call => ({ gate, deadlines, failures, permits: settings.permits })
  )

/**
 * One bounded statement: `inFlight` once its caller waits for it, `exit` when it ended before that.
 */
interface Pending<A> {
  inFlight: Deadlines.InFlight<A, StoreError> | undefined
  exit: Exit.Exit<A, StoreError> | undefined
  readonly ticket: Gate.Ticket
}

/**
 * One statement, settled within `ms` whatever the link does and whether or not the caller is
 * interruptible (the limiter acquires and releases slots uninterruptibly). The statement runs
 * in a fiber of its own: it waits for one of the store's `permits` slots (so none of its
 * statements waits in the pg pool's own queue), or fails at once when overloaded (see
 * `gate.ts`), then runs to its end. The caller waits for its answer, registered with
 * the store's deadlines: at `ms` the sweeper fails the call with `no answer within ms`; a
 * statement still waiting for a slot then leaves the queue, one already sent runs to its end
 * in the background (a writing one bounded on the server by `lock_timeout` and
 * `statement_timeout`) and frees its slot then, its late answer given to `undoLate` (an
 * acquired slot nobody will release). No timer, no interruption per call. `measure`: the
 * statement's time feeds the pace estimate (decisions, not DDL or cleanup).
 *
 * @internal
 */
export const bounded = <A>(
  call: Call,
  operation: string,
  ms: number,
  effect: Effect.Effect<A, unknown>,
  measure = false,
  undoLate?: (a: A) => Effect.Effect<void>
): Effect.Effect<A, StoreError> =>
  Effect.suspend(() => {
    const refused = overloaded(call, operation, ms)
    // refused at once: no fiber needed
    const refusal = call.gate.refusal(ms)
    if (refusal !== undefined) return Effect.fail(refused(refusal))
    const pending: Pending<A> = { inFlight: undefined, exit: undefined, ticket: { expired: false, leave: undefined } }
    const timedOut = () => call.failures.fail(operation, `no answer within ${ms} ms`)
    const statement = call.gate.run(
      ms,
      refused,
      measure,
      Effect.mapError(effect, (e) => call.failures.failed(operation, e)),
      pending.ticket,
      timedOut
    )
    const answer = (exit: Exit.Exit<A, StoreError>) => answerWith(call, operation, pending, exit, undoLate)
    return Effect.flatMap(
      Fx.forkDetach(Effect.uninterruptible(Effect.flatMap(Effect.exit(statement), answer))),
      () => awaitAnswer(call, pending, ms, timedOut)
    )
  })

/** The statement's end: to its caller when it waits and was not answered yet, else to `undoLate`. */
const answerWith = <A>(
  call: Call,
  operation: string,
  pending: Pending<A>,
  exit: Exit.Exit<A, StoreError>,
  undoLate: ((a: A) => Effect.Effect<void>) | undefined
): Effect.Effect<void> => {
  const inFlight = pending.inFlight
  if (inFlight === undefined) {
    // answered before the caller registered (a refusal in the fiber): the caller takes it
    pending.exit = exit
    return Effect.void
  }
  if (!pending.ticket.expired) {
    if (Exit.isSuccess(exit)) inFlight.succeed(exit.value)
    else inFlight.fail(died(call, operation, exit.cause))
    return Effect.void
  }
  return undoLate !== undefined && Exit.isSuccess(exit) ? undoLate(exit.value) : Effect.void
}

/** The caller's wait, registered with the deadlines: at `ms` the statement's ticket expires. */
const awaitAnswer = <A>(
  call: Call,
  pending: Pending<A>,
  ms: number,
  timedOut: () => StoreError
): Effect.Effect<A, StoreError> =>
  Fx.callback<A, StoreError>((resume) => {
    if (pending.exit !== undefined) {
      resume(pending.exit)
      return
    }
    pending.inFlight = call.deadlines.track(resume, () => {
      const ticket = pending.ticket
      ticket.expired = true
      if (ticket.leave !== undefined) ticket.leave()
      return timedOut()
    }, ms)
  })

/** A statement's fiber that ended otherwise than with its answer or a `StoreError` (a defect). */
const died = (call: Call, operation: string, cause: Cause.Cause<StoreError>): StoreError =>
  Option.getOrElse(
    Fx.causeFailure(cause),
    () => call.failures.fail(operation, `the statement failed: ${Cause.pretty(cause)}`)
  )

const overloaded = (call: Call, operation: string, ms: number) => (refusal: Gate.Refusal): StoreError =>
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
