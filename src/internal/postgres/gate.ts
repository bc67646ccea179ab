/**
 * The PostgreSQL store's statement gate: a FIFO admission to the pg pool with direct hand-off,
 * refusing at once (`overloaded`) what could not be answered in time.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import type { StoreError } from "../../RateLimitStore.js"

/** The clock, in milliseconds. @internal */
export const nowMs = Effect.map(Clock.currentTimeNanos, (ns) => Number(ns) / 1e6)

/** Why a call is refused at once: how many wait, and the expected wait (`undefined`: the queue is full). @internal */
export interface Refusal {
  readonly waiting: number
  readonly expectedMs: number | undefined
}

/**
 * How the store's deadline reaches a call that has no slot yet: `expired` once its caller was
 * answered (it then never takes one); `leave`, set while it is queued, takes it out of the queue.
 * Either way it fails with its `abandoned` error.
 *
 * @internal
 */
export interface Ticket {
  expired: boolean
  leave: (() => void) | undefined
}

/** Runs statements once one of the store's slots is free (see {@link make}). @internal */
export interface Gate {
  /** Whether a call bounded by `timeoutMs` would be refused now (`undefined`: it would run or queue). */
  readonly refusal: (timeoutMs: number) => Refusal | undefined
  /**
   * Runs `effect` in a slot, in the calling fiber: at once, after waiting in the queue, or not at
   * all: fails with `refused(…)` when overloaded for a call bounded by `timeoutMs`, with
   * `abandoned()` when `ticket.leave` took it out of the queue.
   */
  readonly run: <A>(
    timeoutMs: number,
    refused: (refusal: Refusal) => StoreError,
    measure: boolean,
    effect: Effect.Effect<A, StoreError>,
    ticket: Ticket,
    abandoned: () => StoreError
  ) => Effect.Effect<A, StoreError>
}

/** A call waiting for a slot; `granted` once a finishing call handed it its slot. */
interface Waiter {
  granted: boolean
  wake: (granted: boolean) => void
}

/**
 * The store's admission to the pool: at most `permits` statements in flight. Waiting for a slot
 * never touches the pg pool, whose own queue must never hold an abandoned waiter: a caller
 * interrupted while waiting there leaves its waiter behind, and when a connection frees, pg-pool
 * hands it to that waiter, which `@effect/sql-pg` releases straight back, recursively (thousands
 * of them overflow the stack and crash the process).
 *
 * The statements run in fibers of their own (see `call.ts`), uninterruptibly, from
 * the wait for a slot to their end: the caller is answered by the store's deadline, not by
 * interrupting anything. A call still waiting at its deadline leaves the queue (`Ticket`). Once it
 * holds a slot it runs to its end: a writing statement is bounded on the server (`lock_timeout`
 * and `statement_timeout`, the store's `statementTimeout`; a peek reads without locks), while
 * interrupting it would send `pg_cancel_backend` through `pool.query`, queueing in pg-pool for a
 * connection while holding one (a timed-out cancel then leaves a dead waiter there, and the
 * store's slot count would no longer match the connections in use). (That is pg-pool, under
 * `@effect/sql-pg` 0.53 on Effect 3. On Effect 4, `@effect/sql-pg` 4 pools with Effect's `Pool` and
 * cancels through a side connection; the gate is kept the same on both: it also bounds the queue
 * and answers the caller by the deadline over a stalled link.)
 *
 * A FIFO queue with direct hand-off: a finishing call gives its slot to the oldest waiter, O(1)
 * (Effect's `Semaphore` wakes every waiter on each release, quadratic for thousands of waiters).
 *
 * When every slot is busy, a call is refused at once (`overloaded`) instead of
 * queueing when `maxQueued` calls already wait, or when the calls ahead of it, at the pace of the
 * recent statements (an exponential moving average of their time in a slot, forgotten whenever
 * every slot is free again), would take it past its timeout.
 *
 * @internal
 */
export const make = (permits: number, maxQueued: number): Effect.Effect<Gate> =>
  Effect.sync((): Gate => {
    let free = permits
    let paceMs = 0
    /** Insertion-ordered: the first is the oldest; deleting a waiter that left is O(1). */
    const queue = new Set<Waiter>()
    const release = (): void => {
      for (const next of queue) {
        queue.delete(next)
        next.granted = true
        next.wake(true)
        return
      }
      free++
      // Idle: the pace measured under the last load says nothing about the next one.
      if (free === permits) paceMs = 0
    }
    const releaseEffect = Effect.sync(release)
    const record = (start: number) =>
      Effect.map(nowMs, (end) => {
        const d = Math.max(0, end - start)
        paceMs = paceMs === 0 ? d : paceMs * 0.8 + d * 0.2
      })
    const queueRefusal = (timeoutMs: number): Refusal | undefined => {
      if (queue.size >= maxQueued) return { waiting: queue.size, expectedMs: undefined }
      const expectedMs = (Math.floor(queue.size / permits) + 2) * paceMs
      return expectedMs > timeoutMs ? { waiting: queue.size, expectedMs } : undefined
    }
    const refusal = (timeoutMs: number): Refusal | undefined => (free > 0 ? undefined : queueRefusal(timeoutMs))
    const run = <A>(
      timeoutMs: number,
      refused: (refusal: Refusal) => StoreError,
      measure: boolean,
      effect: Effect.Effect<A, StoreError>,
      ticket: Ticket,
      abandoned: () => StoreError
    ): Effect.Effect<A, StoreError> => {
      const use = Effect.ensuring(
        measure ? Effect.flatMap(nowMs, (start) => Effect.tap(effect, () => record(start))) : effect,
        releaseEffect
      )
      // uninterruptible: a slot taken is always given back
      return Effect.uninterruptible(Effect.suspend((): Effect.Effect<A, StoreError> => {
        if (ticket.expired) return Effect.fail(abandoned())
        if (free > 0) {
          free--
          return use
        }
        const refuse = queueRefusal(timeoutMs)
        if (refuse !== undefined) return Effect.fail(refused(refuse))
        const waiter: Waiter = { granted: false, wake: () => {} }
        queue.add(waiter)
        const wait = Fx.callback<boolean>((resume) => {
          if (waiter.granted) {
            resume(Effect.succeed(true))
            return
          }
          waiter.wake = (granted) => resume(Effect.succeed(granted))
          ticket.leave = () => {
            if (!waiter.granted && queue.delete(waiter)) waiter.wake(false)
          }
        })
        return Effect.flatMap(wait, (granted): Effect.Effect<A, StoreError> => {
          ticket.leave = undefined
          return granted ? use : Effect.fail(abandoned())
        })
      }))
    }
    return { refusal, run }
  })
