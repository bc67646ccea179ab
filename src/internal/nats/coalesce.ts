/**
 * Hot keys coalesced: the concurrent takes of this process on one key reach the server as one
 * read and one compare-and-set. The first caller of an idle key runs its own loop (`cas.ts`) on
 * its own fiber; callers that come while a loop for the key is in flight queue locally, and when
 * it ends one fiber (in the store's scope) runs the queue as one operation, then the next queue,
 * until none is left. A batch reads the key once and decides its takes in arrival order, each on
 * the state the ones before it leave (the same pure steps of `core/nats/decide.ts`, each caller
 * with its own request, on its own `Clock`): exactly the decisions the takes would get written one
 * after another, with one write of the last state. A lost write re-reads and re-decides the whole
 * batch; a refusal after the race is given up goes to every member.
 *
 * Deadlines: a batch is bounded by the earliest deadline of its members (each caller's `timeout`
 * from its own start), so every call still settles within its `timeout`. A member whose deadline
 * passed in the queue is answered before the batch is sent: a refusal when the key was contended
 * (the loop before it lost a write), else `StoreError`, as its own loop would have. An interrupted
 * queued caller leaves the queue (its take is not applied); one interrupted while its batch is in
 * flight is dropped from the answers (its take may be applied, as an interrupted write may land).
 * When the store's scope closes, every waiting member fails with `StoreError`.
 *
 * Both the first caller's loop and the batches start from the value this instance last wrote to
 * the key when it has one (`known` in `cas.ts`): one round trip while no other process writes it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Fx from "#fx/core"
import type { Step } from "../../core/nats/decide.js"
import { parseStored } from "../../core/nats/stored.js"
import type { Stored } from "../../core/nats/stored.js"
import type { StoreError } from "../../RateLimitStore.js"
import type { Cas } from "./cas.js"
import type { Bucket } from "./connection.js"

/** The most takes one batch decides; the rest wait for the next write. @internal */
export const MAX_BATCH = 256

/** One take of a coalesced key. @internal */
export interface Take<R> {
  readonly operation: string
  readonly key: string
  readonly decide: (stored: Stored | undefined, now: number) => Step<R>
  readonly refuse: (stored: Stored | undefined, now: number, retryAfterMs: number) => R
}

/**
 * A queued caller: its take, decided on a state it is given (remembering its own answer, so a
 * batch's answers keep their types), and how to answer it once.
 */
interface Member {
  readonly operation: string
  readonly key: string
  readonly deadline: number
  cancelled: boolean
  /** Decides the take on `state`, on the caller's clock; answers the write. */
  readonly step: (state: Stored | undefined) => string | null | undefined
  /** Remembers the refusal on `stored` (the race given up). */
  readonly refuse: (stored: Stored | undefined, retryAfterMs: number) => void
  /** Answers the remembered decision. */
  readonly succeed: (lost: number) => void
  readonly fail: (e: StoreError) => void
}

/** A key with a loop in flight: the callers waiting for the next write, and whether the last loop lost one. */
interface Lane {
  readonly queue: Array<Member>
  contended: boolean
  /** The members of the batch in flight (answered with `StoreError` if the store closes meanwhile). */
  inFlight: ReadonlyArray<Member>
}

/** @internal */
export interface Coalescer {
  /** One take: its decision and the number of writes lost by the loop that decided it. */
  readonly run: <R>(take: Take<R>) => Effect.Effect<readonly [R, number], StoreError>
}

/**
 * The coalescer over `cas`, with its fibers in the current scope, on the store's clock
 * (deadlines; each take decides on its caller's clock).
 *
 * @internal
 */
export const make = (bucket: Bucket, cas: Cas): Effect.Effect<Coalescer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const storeClock = yield* Effect.clockWith(Effect.succeed)
    const storeScope = yield* Effect.scope
    const { timeoutMs, retryIntervalMs } = bucket.settings
    const lanes = new Map<string, Lane>()

    /** What a member whose time ran out before its batch was sent is answered. */
    const expire = (lane: Lane, m: Member): void => {
      m.cancelled = true
      if (lane.contended) {
        m.refuse(undefined, Math.max(1, retryIntervalMs))
        m.succeed(1)
      } else {
        m.fail(bucket.fail(m.operation, `no answer within ${timeoutMs} ms`))
      }
    }

    /** The takes of `members` decided in order on one read, each on the state the ones before it leave. */
    const decideAll = (members: ReadonlyArray<Member>) => (stored: Stored | undefined): Step<undefined> => {
      let state = stored
      let write: string | null | undefined = undefined
      for (const m of members) {
        const w = m.step(state)
        if (w !== undefined) {
          write = w
          state = w === null ? undefined : parseStored(w)
        }
      }
      return write === undefined ? { result: undefined } : { result: undefined, write }
    }

    const refuseAll = (members: ReadonlyArray<Member>) => (stored: Stored | undefined, _now: number, retryAfterMs: number) => {
      for (const m of members) m.refuse(stored, retryAfterMs)
      return undefined
    }

    /** Answers `m` once (a cancelled member is not waiting any more). */
    const settle = (m: Member, f: (m: Member) => void) => {
      if (m.cancelled) return
      m.cancelled = true
      f(m)
    }

    /** The next batch of `lane`'s queue, or `undefined` (and the lane is idle) when none is waiting. */
    const nextBatch = (key: string, lane: Lane): ReadonlyArray<Member> | undefined => {
      const now = Fx.nowMillisUnsafe(storeClock)
      const batch: Array<Member> = []
      while (lane.queue.length > 0 && batch.length < MAX_BATCH) {
        const m = lane.queue.shift()
        if (m === undefined || m.cancelled) continue
        if (m.deadline <= now) expire(lane, m)
        else batch.push(m)
      }
      if (batch.length === 0) {
        lanes.delete(key)
        return undefined
      }
      return batch
    }

    /** One batch: one loop of `cas`, its answers handed to the members. */
    const runBatch = (lane: Lane, batch: ReadonlyArray<Member>): Effect.Effect<void> => {
      const first = batch[0]
      if (first === undefined) return Effect.void
      let deadline = Infinity
      for (const m of batch) deadline = Math.min(deadline, m.deadline)
      lane.inFlight = batch
      return cas.run<Step<undefined>>({
        operation: first.operation,
        key: first.key,
        decide: decideAll(batch),
        refuse: refuseAll(batch),
        deadline,
        contended: lane.contended,
        known: true
      }).pipe(
        Effect.matchEffect({
          onSuccess: ([, lost]) =>
            Effect.sync(() => {
              lane.contended = lost > 0
              lane.inFlight = []
              for (const m of batch) settle(m, (s) => s.succeed(lost))
            }),
          onFailure: (e) =>
            Effect.sync(() => {
              lane.contended = false
              lane.inFlight = []
              for (const m of batch) settle(m, (s) => s.fail(e))
            })
        })
      )
    }

    /** Runs `lane`'s queue, batch after batch, until it is empty; on interruption (the store closing) fails who waits. */
    const drive = (key: string, lane: Lane): Effect.Effect<void> => {
      const loop: Effect.Effect<void> = Effect.suspend(() => {
        const batch = nextBatch(key, lane)
        return batch === undefined ? Effect.void : Effect.andThen(runBatch(lane, batch), loop)
      })
      // interruptible even when forked from a finalizer (a leader's `ensuring`), so that the store's
      // scope closing stops it
      return Effect.onInterrupt(Effect.interruptible(loop), () =>
        Effect.sync(() => {
          lanes.delete(key)
          for (const m of [...lane.inFlight, ...lane.queue]) settle(m, (s) => s.fail(bucket.fail(s.operation, "the store is closed")))
          lane.queue.length = 0
        }))
    }

    /** After a leader's own loop: the lane goes idle, or a fiber takes over its queue. */
    const handOver = (key: string, lane: Lane): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (lane.queue.length === 0) {
          lanes.delete(key)
          return Effect.void
        }
        return Effect.asVoid(Effect.forkIn(drive(key, lane), storeScope))
      })

    const run = <R>(take: Take<R>): Effect.Effect<readonly [R, number], StoreError> =>
      Effect.clockWith((clock) => {
        const lane = lanes.get(take.key)
        if (lane === undefined) {
          // the key is idle: this caller's own loop, on its fiber
          const fresh: Lane = { queue: [], contended: false, inFlight: [] }
          lanes.set(take.key, fresh)
          return cas.run({ operation: take.operation, key: take.key, decide: take.decide, refuse: take.refuse, known: true }).pipe(
            Effect.tap(([, lost]) =>
              Effect.sync(() => {
                fresh.contended = lost > 0
              })
            ),
            Effect.ensuring(handOver(take.key, fresh))
          )
        }
        return Fx.callback<readonly [R, number], StoreError>((resume) => {
          let decided: { readonly value: R } | undefined
          const remember = (value: R) => {
            decided = { value }
          }
          const member: Member = {
            operation: take.operation,
            key: take.key,
            deadline: Fx.nowMillisUnsafe(storeClock) + timeoutMs,
            cancelled: false,
            step: (state) => {
              const step = take.decide(state, Fx.nowMillisUnsafe(clock))
              remember(step.result)
              return step.write
            },
            refuse: (stored, retryAfterMs) => remember(take.refuse(stored, Fx.nowMillisUnsafe(clock), retryAfterMs)),
            succeed: (lost) =>
              resume(
                decided === undefined
                  ? Effect.fail(bucket.fail(take.operation, "no decision was taken"))
                  : Effect.succeed([decided.value, lost] as const)
              ),
            fail: (e) => resume(Effect.fail(e))
          }
          lane.queue.push(member)
          return Effect.sync(() => {
            member.cancelled = true
          })
        })
      })

    return { run }
  })
