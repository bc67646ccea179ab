/**
 * The NATS store's compare-and-set loop: read (the value and its revision) → decide (pure,
 * `core/nats/decide.ts`) → write on the revision read → classify the answer. A lost write pauses
 * (jittered, growing: `internal/store/backoff.ts`) and starts again from the read; every other
 * way out that is not an answer goes through one give-up.
 *
 * Known values: an operation that opts in (`known: true`, the coalesced takes) first decides on the
 * value and revision this instance last wrote to the key, and writes on that revision without a
 * read: one round trip instead of two while no other writer touched the key. A stale value cannot
 * be admitted on: the write is a compare-and-set on the revision decided from, and a lost one (not
 * counted as a lost race, no pause) falls back to the read. A decision that writes nothing (a
 * refusal) is never taken on a known value: it is read again. A key where a known value was stale
 * is read first for its next few writes (another process writes it too).
 *
 * @internal
 */
import type { KvEntry } from "@nats-io/kv"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import type * as Scope from "effect/Scope"
import { natsErrorKind } from "../../core/errorKind.js"
import type { Step } from "../../core/nats/decide.js"
import type { Stored } from "../../core/nats/stored.js"
import { messageOf } from "../../core/secrets.js"
import type { StoreError } from "../../RateLimitStore.js"
import * as Backoff from "../store/backoff.js"
import type { Bucket } from "./connection.js"
import { storedOf } from "./connection.js"
import { parseStored } from "../../core/nats/stored.js"

/** JetStream API codes of a publish whose expected last sequence did not match (a lost CAS). */
const WRONG_LAST_SEQUENCE = new Set([10071, 10164])

const isConflict = (e: unknown): boolean =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "number" && WRONG_LAST_SEQUENCE.has(e.code)

/** The driver's own request timer ran out (`TimeoutError`, possibly as the cause of another error). */
const isDriverTimeout = (e: unknown): boolean =>
  e instanceof Error && (e.name === "TimeoutError" || (e.cause instanceof Error && e.cause.name === "TimeoutError"))

/** Keys whose last written value is kept. */
const KNOWN_KEYS = 10_000
/** Writes read first on a key where a known value was stale. */
const SHARED_WRITES = 16

/** How a request of the loop failed: the write lost the race, the time ran out, or the store failed. */
type Fault = "conflict" | "timedOut" | StoreError

/** One operation of the loop. @internal */
export interface Operation<S extends Step<unknown>> {
  readonly operation: string
  readonly key: string
  readonly decide: (stored: Stored | undefined, now: number) => S
  /** The answer when the race is given up; none (renew, release): the operation fails with `StoreError`. */
  readonly refuse?: ((stored: Stored | undefined, now: number, retryAfterMs: number) => S["result"]) | undefined
  /**
   * Run (forked in the store's scope, best effort) when the operation gives up after this step's
   * write timed out: the write may still land, and this undoes what it would leave behind.
   */
  readonly undoLate?: ((step: S) => Effect.Effect<void> | undefined) | undefined
  /**
   * For an operation run in an uninterruptible region (a composite take): makes the waits that
   * write nothing interruptible again (each read and each pause after a lost write), so that a
   * write, once sent, is always followed by its answer, and the caller learns what it charged.
   * None: the operation runs as its region does.
   */
  readonly restore?: (<A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>) | undefined
  /** Run just before each write is sent (a test's pause there, or the store failing there). */
  readonly beforeWrite?: Effect.Effect<void, StoreError> | undefined
  /** Run once a write landed, before its answer is handled (a test's pause there). */
  readonly afterWrite?: Effect.Effect<void> | undefined
  /**
   * The instant (store clock) the loop must settle by; none: `timeout` from its start. A coalesced
   * batch (`coalesce.ts`) passes its members' earliest.
   */
  readonly deadline?: number | undefined
  /** Decide first on the value this instance last wrote (see the module doc). */
  readonly known?: boolean | undefined
  /**
   * The operation already waited on a contended key (a coalesced batch queued behind a loop that
   * lost a write): running out of time answers `refuse` even before a write of its own is lost.
   */
  readonly contended?: boolean | undefined
}

/** Where the loop stands after `lost` lost writes: the last state read, and the backoff. */
interface Round {
  readonly lost: number
  readonly stored: Stored | undefined
  readonly now: number
  /** The pause taken after the last loss. */
  readonly pauseMs: number
}

/** @internal */
export interface Cas {
  /**
   * One SPI operation: answers the result with the number of lost writes.
   *
   * The whole loop, not only each request, is bounded by `timeout` (on the store's clock). Losing
   * the race is not an outage: when more than `maxRetries` writes were lost, or the deadline comes
   * first, the operation answers `refuse(stored, now, retryAfterMs)` (the last state read, a short
   * `retryAfterMs`: the backoff's pause, at least 1 ms), so contention can never become a
   * fail-open admission. Only the first round's requests (no write lost yet) time out as
   * `StoreError`.
   */
  readonly run: <S extends Step<unknown>>(op: Operation<S>) => Effect.Effect<readonly [S["result"], number], StoreError>
  /** A read with no write. */
  readonly read: <A>(operation: string, key: string, decide: (stored: Stored | undefined, now: number) => A) => Effect.Effect<A, StoreError>
}

/**
 * The loop over `bucket`, on the store's clock (deadlines and pauses; the caller's decides).
 *
 * @internal
 */
export const make = (bucket: Bucket): Effect.Effect<Cas, never, Scope.Scope> =>
  Effect.gen(function*() {
    const storeClock = yield* Effect.clockWith((clock) => Effect.succeed(clock))
    const storeScope = yield* Effect.scope
    const { deadlines, fail, kv } = bucket
    const { maxRetries, retryIntervalMs, timeoutMs } = bucket.settings
    const first: Round = { lost: 0, stored: undefined, now: 0, pauseMs: 0 }

    /** The value and revision this instance last wrote, per key (the most recent `KNOWN_KEYS`). */
    const known = new Map<string, { readonly revision: number; readonly value: string }>()
    /** Keys where a known value was stale: read first for this many more writes. */
    const shared = new Map<string, number>()
    const bounded = <V>(map: Map<string, V>, key: string, value: V) => {
      map.delete(key)
      map.set(key, value)
      if (map.size > KNOWN_KEYS) {
        const oldest = map.keys().next()
        if (oldest.done !== true) map.delete(oldest.value)
      }
    }
    /** A write of `value` landed at `revision` (`undefined`: a delete, or unknown). */
    const wrote = (key: string, value: string | null, revision: unknown) => {
      if (value === null || typeof revision !== "number") {
        known.delete(key)
        return
      }
      bounded(known, key, { revision, value })
      const left = shared.get(key)
      if (left !== undefined) {
        if (left <= 1) shared.delete(key)
        else shared.set(key, left - 1)
      }
    }

    /** One request of the loop, settled within `ms`, its failure classified. */
    const request = <A>(operation: string, f: () => Promise<A>, ms: number) =>
      deadlines.settle<A, Fault>(
        f,
        (e) => isConflict(e) ? "conflict" : isDriverTimeout(e) ? "timedOut" : fail(operation, messageOf(e), natsErrorKind(e)),
        () => "timedOut",
        ms
      )

    /** Writes `value` on `revision` (`null`: absent, create), delete for `null`; answers the new revision of a put. */
    const write = (operation: string, k: string, revision: number | null, value: string | null, ms: number) =>
      request(operation, (): Promise<unknown> => {
        if (value === null) return revision === null ? Promise.resolve(undefined) : kv.delete(k, { previousSeq: revision })
        return revision === null ? kv.create(k, value) : kv.update(k, value, revision, ms)
      }, ms)

    const run = <S extends Step<unknown>>(op: Operation<S>): Effect.Effect<readonly [S["result"], number], StoreError> =>
      Effect.suspend(() => {
        const deadline = op.deadline ?? Fx.nowMillisUnsafe(storeClock) + timeoutMs
        const left = () => Math.max(1, deadline - Fx.nowMillisUnsafe(storeClock))

        /** The one way out that is not an answer: a refusal, or a `StoreError` when there is none to give. */
        const giveUp = (why: string, lost: number, stored: Stored | undefined, now: number, pauseMs: number) =>
          op.refuse === undefined
            ? Effect.fail(fail(op.operation, why))
            : Effect.succeed([op.refuse(stored, now, Math.max(1, pauseMs)), lost] as const)

        /** The time ran out: an outage before any write was lost, a lost race after. */
        const outOfTime = (r: Round, stored: Stored | undefined, now: number) =>
          r.lost === 0 && op.contended !== true
            ? Effect.fail(fail(op.operation, `no answer within ${timeoutMs} ms`))
            : giveUp(`compare-and-set lost ${r.lost} times before the deadline`, r.lost, stored, now, r.pauseMs)

        /**
         * The write lost the race: pause and read again, unless the retries or the time run out.
         * The pause is drawn first (it is the refusal's `retryAfterMs` too); one that would reach
         * the deadline is not taken.
         */
        const lostRace = (r: Round, stored: Stored | undefined, now: number) => {
          const lost = r.lost + 1
          return Effect.flatMap(Backoff.jittered(retryIntervalMs, lost), (pauseMs) => {
            if (lost > maxRetries) {
              return giveUp(`compare-and-set lost ${lost} times in a row (maxRetries ${maxRetries})`, lost, stored, now, pauseMs)
            }
            if (Fx.nowMillisUnsafe(storeClock) + pauseMs >= deadline) {
              return giveUp(`compare-and-set lost ${lost} times before the deadline`, lost, stored, now, pauseMs)
            }
            const pause = storeClock.sleep(Duration.millis(pauseMs))
            return Effect.andThen(
              op.restore === undefined ? pause : op.restore(pause),
              attempt({ lost, stored, now, pauseMs })
            )
          })
        }

        /** A write that timed out may still land: refusing counts it at most once, never twice. */
        const timedOutWrite = (r: Round, step: S, stored: Stored | undefined, now: number) => {
          const undo = op.undoLate?.(step)
          const giveUpNow = outOfTime(r, stored, now)
          return undo === undefined ? giveUpNow : Effect.andThen(Effect.forkIn(undo, storeScope), giveUpNow)
        }

        /** Sends `step`'s write on `revision`; a landed write is remembered (`known` operations). */
        const send = (step: S, value: string | null, revision: number | null, r: Round) => {
          const sent = op.beforeWrite === undefined
            ? write(op.operation, op.key, revision, value, left())
            : Effect.andThen(op.beforeWrite, Effect.suspend(() => write(op.operation, op.key, revision, value, left())))
          const answer = Effect.succeed([step.result, r.lost] as const)
          return Effect.flatMap(sent, (landed) => {
            if (op.known === true) wrote(op.key, value, landed)
            return op.afterWrite === undefined ? answer : Effect.andThen(op.afterWrite, answer)
          })
        }

        const decideAndWrite = (r: Round, entry: KvEntry | null, now: number) => {
          const stored = storedOf(entry)
          const step = op.decide(stored, now)
          if (step.write === undefined) return Effect.succeed([step.result, r.lost] as const)
          return Fx.catchAll(send(step, step.write, entry === null ? null : entry.revision, r), (f) => {
            if (op.known === true) known.delete(op.key)
            return f === "conflict"
              ? lostRace(r, stored, now)
              : f === "timedOut"
              ? timedOutWrite(r, step, stored, now)
              : Effect.fail(f)
          })
        }

        /** The first round on the value last written, when there is one and the decision writes (see the module doc). */
        const onKnown = (): Effect.Effect<readonly [S["result"], number], StoreError> | undefined => {
          if (op.known !== true || shared.has(op.key)) return undefined
          const last = known.get(op.key)
          if (last === undefined) return undefined
          return Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const stored = parseStored(last.value)
            const step = op.decide(stored, now)
            if (step.write === undefined) return attempt(first)
            return Fx.catchAll(send(step, step.write, last.revision, first), (f) => {
              known.delete(op.key)
              if (f === "conflict") {
                bounded(shared, op.key, SHARED_WRITES)
                return attempt(first)
              }
              return f === "timedOut" ? timedOutWrite(first, step, stored, now) : Effect.fail(f)
            })
          })
        }

        const attempt = (r: Round): Effect.Effect<readonly [S["result"], number], StoreError> => {
          const get = request(op.operation, () => kv.get(op.key), r.lost === 0 && op.deadline === undefined ? timeoutMs : left())
          return Effect.matchEffect(op.restore === undefined ? get : op.restore(get), {
            onSuccess: (entry) => Effect.flatMap(Clock.currentTimeMillis, (now) => decideAndWrite(r, entry, now)),
            onFailure: (f) =>
              f === "timedOut"
                ? outOfTime(r, r.stored, r.now)
                : Effect.fail(f === "conflict" ? fail(op.operation, "unexpected conflict on a read") : f)
          })
        }

        return onKnown() ?? attempt(first)
      })

    const read = <A>(operation: string, key: string, decide: (stored: Stored | undefined, now: number) => A) =>
      Effect.flatMap(
        bucket.call(operation, () => kv.get(key)),
        (entry) => Effect.map(Clock.currentTimeMillis, (now) => decide(storedOf(entry), now))
      )

    return { run, read }
  })
