/**
 * Hot keys coalesced on PostgreSQL: the concurrent takes of this process on one key reach the
 * server as one statement. The first take of an idle key is sent on its own, as it would be
 * without coalescing; takes of the same key (same limiter, algorithm and parameters) that come
 * while a statement for it is in flight wait here, and when it answers one fiber (in the store's
 * scope) sends them as one call of the batch function (`tb_take_many`, `fw_take_many` in
 * `core/postgres/sql.ts`), then the takes that came meanwhile, until none is left. The server
 * decides a batch in arrival order on one lock of the row, each take on the state the ones
 * before it leave: the decisions they would get sent one after another, at one round trip and
 * one row write for all of them. A key's takes are then one statement at a time, so a hot key
 * holds one of the store's statement slots instead of all of them, and waits for no row lock.
 *
 * Deadlines: each take is answered within the store's `statementTimeout` from its start. A batch
 * is bounded by the earliest deadline of its members; one whose deadline passed while it waited
 * fails with `StoreError` before the batch is sent (its take is not applied). An interrupted
 * waiting take leaves the queue (not applied); one interrupted while its batch is in flight is
 * dropped from the answers (its take may be applied, as an interrupted single statement may). A
 * failed batch fails every member with its error, but for a batch the server rejected (the request
 * itself, `kind: "rejected"`): its takes are then sent again one at a time, so that one caller's
 * input (a cost that overflows) fails that caller only. When the store's scope closes, every waiting
 * member fails with `StoreError` ("the store is closed").
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Fx from "#fx/core"
import type { StoreError } from "../../RateLimitStore.js"
import type { Failures } from "./driver.js"

/** The most takes one batch sends; the rest go in the next one. @internal */
export const MAX_BATCH = 256

/** A waiting take. */
interface Member<I, R> {
  readonly input: I
  readonly deadline: number
  cancelled: boolean
  readonly resume: (effect: Effect.Effect<R, StoreError>) => void
}

/** A key with a statement in flight, and the takes waiting for it. */
interface Lane<I, R> {
  readonly queue: Array<Member<I, R>>
  /** The members of the batch in flight (failed if the store closes meanwhile). */
  inFlight: ReadonlyArray<Member<I, R>>
}

/** How one key's takes are sent: one on its own, or several as one batch within `ms`. @internal */
export interface Sender<I, R> {
  readonly operation: string
  readonly one: (input: I) => Effect.Effect<R, StoreError>
  /** One answer per input, in order; `first` is `inputs[0]` (a batch is never empty). */
  readonly many: (first: I, inputs: ReadonlyArray<I>, ms: number) => Effect.Effect<ReadonlyArray<R>, StoreError>
}

/** @internal */
export interface Coalescer {
  /** The take `input` on the key `laneKey` (the same key means the same sender). */
  readonly run: <I, R>(laneKey: string, input: I, sender: Sender<I, R>) => Effect.Effect<R, StoreError>
}

/**
 * A coalescer with its fibers in the current scope, deadlines `timeoutMs` from each take's start
 * on the store's clock.
 *
 * @internal
 */
export const make = (timeoutMs: number, failures: Failures): Effect.Effect<Coalescer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clockWith(Effect.succeed)
    const storeScope = yield* Effect.scope
    // one map for every kind of take: a lane's members all have the types of its first sender
    const lanes = new Map<string, Lane<unknown, unknown>>()

    /** A take's answer out of its batch's answers (`undefined`: the batch answered fewer). */
    const answerOf = <I, R>(sender: Sender<I, R>, answer: R | undefined): Effect.Effect<R, StoreError> =>
      answer === undefined ? Effect.fail(failures.fail(sender.operation, "the batch answered no decision for the take")) : Effect.succeed(answer)

    const settle = <I, R>(m: Member<I, R>, effect: Effect.Effect<R, StoreError>) => {
      if (m.cancelled) return
      m.cancelled = true
      m.resume(effect)
    }

    /** The next batch of `lane`'s queue, or `undefined` (and the lane is idle) when none waits. */
    const nextBatch = <I, R>(laneKey: string, lane: Lane<I, R>, sender: Sender<I, R>): ReadonlyArray<Member<I, R>> | undefined => {
      const now = Fx.nowMillisUnsafe(clock)
      const batch: Array<Member<I, R>> = []
      while (lane.queue.length > 0 && batch.length < MAX_BATCH) {
        const m = lane.queue.shift()
        if (m === undefined || m.cancelled) continue
        if (m.deadline <= now) settle(m, Effect.fail(failures.fail(sender.operation, `no answer within ${timeoutMs} ms`)))
        else batch.push(m)
      }
      if (batch.length === 0) {
        lanes.delete(laneKey)
        return undefined
      }
      return batch
    }

    const runBatch = <I, R>(
      lane: Lane<I, R>,
      first: Member<I, R>,
      batch: ReadonlyArray<Member<I, R>>,
      sender: Sender<I, R>
    ): Effect.Effect<void> => {
      let deadline = Infinity
      for (const m of batch) deadline = Math.min(deadline, m.deadline)
      lane.inFlight = batch
      const ms = Math.max(1, deadline - Fx.nowMillisUnsafe(clock))
      // the sender answers one decision per take, in order (it checks the rows it reads)
      return Effect.matchEffect(sender.many(first.input, batch.map((m) => m.input), ms), {
        onSuccess: (answers) =>
          Effect.sync(() => {
            lane.inFlight = []
            batch.forEach((m, i) => settle(m, answerOf(sender, answers[i])))
          }),
        onFailure: (e) => {
          if (e.kind === "rejected" && batch.length > 1) return oneByOne(lane, batch, sender)
          return Effect.sync(() => {
            lane.inFlight = []
            for (const m of batch) settle(m, Effect.fail(e))
          })
        }
      })
    }

    /**
     * A batch the server rejected (the request itself: one member's cost overflowing, say) is sent
     * again one take at a time, in arrival order, each within its own deadline: only the take that
     * is refused fails, not the callers that shared its batch.
     */
    const oneByOne = <I, R>(lane: Lane<I, R>, batch: ReadonlyArray<Member<I, R>>, sender: Sender<I, R>): Effect.Effect<void> =>
      Effect.ensuring(
        Effect.forEach(batch, (m) =>
          Effect.suspend(() => {
            if (m.cancelled) return Effect.void
            const ms = m.deadline - Fx.nowMillisUnsafe(clock)
            if (ms <= 0) {
              settle(m, Effect.fail(failures.fail(sender.operation, `no answer within ${timeoutMs} ms`)))
              return Effect.void
            }
            return Effect.matchEffect(sender.many(m.input, [m.input], ms), {
              onSuccess: (answers) => Effect.sync(() => settle(m, answerOf(sender, answers[0]))),
              onFailure: (e) => Effect.sync(() => settle(m, Effect.fail(e)))
            })
          }), { discard: true }),
        Effect.sync(() => {
          lane.inFlight = []
        })
      )

    /** Sends `lane`'s queue, batch after batch, until it is empty; on interruption (the store closing) fails who waits. */
    const drive = <I, R>(laneKey: string, lane: Lane<I, R>, sender: Sender<I, R>): Effect.Effect<void> => {
      const loop: Effect.Effect<void> = Effect.suspend(() => {
        const batch = nextBatch(laneKey, lane, sender)
        const first = batch?.[0]
        return batch === undefined || first === undefined ? Effect.void : Effect.andThen(runBatch(lane, first, batch, sender), loop)
      })
      // interruptible even when forked from a finalizer (a first take's `ensuring`), so that the
      // store's scope closing stops it
      return Effect.onInterrupt(Effect.interruptible(loop), () =>
        Effect.sync(() => {
          lanes.delete(laneKey)
          const closed = Effect.fail(failures.fail(sender.operation, "the store is closed"))
          for (const m of [...lane.inFlight, ...lane.queue]) settle(m, closed)
          lane.queue.length = 0
        }))
    }

    /** After a first take's own statement: the lane goes idle, or a fiber takes over its queue. */
    const handOver = <I, R>(laneKey: string, lane: Lane<I, R>, sender: Sender<I, R>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (lane.queue.length === 0) {
          lanes.delete(laneKey)
          return Effect.void
        }
        return Effect.asVoid(Effect.forkIn(drive(laneKey, lane, sender), storeScope))
      })

    const run = <I, R>(laneKey: string, input: I, sender: Sender<I, R>): Effect.Effect<R, StoreError> =>
      Effect.suspend(() => {
        // a typed boundary: the lane of `laneKey` was made by a sender of these types (the key names them)
        const lane = lanes.get(laneKey) as Lane<I, R> | undefined
        if (lane === undefined) {
          const fresh: Lane<I, R> = { queue: [], inFlight: [] }
          // the same boundary, stored: the map holds lanes of every sender's types
          lanes.set(laneKey, fresh as Lane<unknown, unknown>)
          return Effect.ensuring(sender.one(input), handOver(laneKey, fresh, sender))
        }
        return Fx.callback<R, StoreError>((resume) => {
          const member: Member<I, R> = {
            input,
            deadline: Fx.nowMillisUnsafe(clock) + timeoutMs,
            cancelled: false,
            resume
          }
          lane.queue.push(member)
          return Effect.sync(() => {
            member.cancelled = true
          })
        })
      })

    return { run }
  })
