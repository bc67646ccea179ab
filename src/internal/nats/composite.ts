/**
 * The NATS store's composite take (`takeAll`): NATS KV has no multi-key transaction, so the takes
 * are charged one at a time, each by its own read → decide → compare-and-set write, in a fixed
 * order (by limiter, key and state: two callers never take in opposite orders), and undone (the
 * inverse adjust, by the same compare-and-set path, with the charge's `ref`) when a later one
 * refuses, when the store fails mid-way, or when the fiber is interrupted.
 *
 * Interruption: the call runs in an uninterruptible region; only the waits that write nothing (a
 * read, a pause after a lost write, the looks after a refusal) are interruptible. A write, once
 * sent, is always followed by its answer (bounded by the store's `timeout`), and what it charged
 * is recorded before the interruption can land; the undo itself is uninterruptible. So however
 * the call ends, every charge whose write landed is undone, except one whose write timed out (its
 * outcome is unknown): that one gets a late undo, in the background, that applies only if the
 * value still carries the call's nonce (see `ops.ts`).
 *
 * Between the first write and the undo, another caller can see the partial charge (see
 * docs/engines/nats.md, *Composite takes*).
 *
 * Waiting (buckets only): each bucket is first charged at its own instant; the call's wait `D` is
 * the largest of their waits, known once all are charged. The caller proceeds at `now + D` on
 * every bucket, so each bucket that was booked earlier is then moved there (a *booking*: one
 * forward adjust per bucket, `max(tat, now + D) + cost·T`, see {@link bookingOf}), before the
 * call's last interruptible point; an undo gives back the booking with the charge. A booking
 * applies only while the bucket holds the value the call's take wrote (see
 * `decide.tokenBucketAdjust`): when another caller wrote in between, the call is undone and
 * refused as contended (moving the bucket then could let that caller's take share the slot).
 *
 * The take objects the call passes to `Steps.take` and `Steps.undo` reach `core/nats/decide.ts`
 * unchanged (`decide.CompositeBucketTake`, `bookOn`), and a bucket take's decision comes back with
 * the value it wrote (`decide.writtenOf`), removed before the call answers.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as decide from "../../core/nats/decide.js"
import type { AdjustResult, CompositeDecision, RateTake, StoreDecision } from "../../RateLimitStore.js"
import { StoreError } from "../../RateLimitStore.js"

/** Where a composite call stands, for a test's pause (see {@link Steps.hook}). @internal */
export interface Event {
  /**
   * `write`: a take's write is about to be sent; `written`: it landed, its answer not handled yet;
   * `taken`: its answer is recorded (between two takes); `book`: a booking's write (a reserving
   * call moving a bucket to the instant the caller proceeds) is about to be sent; `undo`: an
   * undo's write is about to be sent.
   */
  readonly step: "write" | "written" | "taken" | "book" | "undo"
  /** The take's index in the call (the order given). */
  readonly take: number
}

/** Makes an effect interruptible again inside the call's uninterruptible region. @internal */
export type Restore = <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>

/** The single-key steps a composite call is made of (`ops.ts`). @internal */
export interface Steps {
  /**
   * Charge one take (its own read → decide → write loop), run uninterruptibly but for its reads
   * and pauses (`restore`); `beforeWrite` runs just before each write is sent, `afterWrite` once
   * one landed.
   */
  readonly take: (
    take: RateTake,
    restore: Restore,
    beforeWrite: Effect.Effect<void, StoreError> | undefined,
    afterWrite: Effect.Effect<void> | undefined
  ) => Effect.Effect<StoreDecision, StoreError>
  /**
   * Give back what `decision` (an admission of `take`) charged: the inverse adjust,
   * `adjust(take, −take.cost, decision.ref)`; `beforeWrite` as for `take`. Never fails: `undefined`
   * when it could not be done now (it is then retried in the background, or left when a write of
   * it may have landed; the charge stays until it expires: a refusal too many, never an admission
   * too many). A bucket's take with a negative cost is thus a forward adjust (a booking).
   */
  readonly undo: (
    take: RateTake,
    decision: StoreDecision,
    beforeWrite: Effect.Effect<void, StoreError> | undefined
  ) => Effect.Effect<AdjustResult | undefined>
  /** What `take` alone would answer now, charging nothing (its `remaining` the state's). */
  readonly look: (take: RateTake) => Effect.Effect<StoreDecision, StoreError>
  /**
   * A test's pause (or failure: the store failing there) at a step, asked when the call reaches
   * it: `undefined` goes on as the store does (no interruptible point is added for it). None in
   * the store.
   */
  readonly hook?: ((event: Event) => Effect.Effect<void, StoreError> | undefined) | undefined
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** The state a take addresses, for the order. */
const stateOf = (t: RateTake): string => t.algorithm

/**
 * The order the takes are charged in: by limiter, then key, then state (code-unit order, the
 * same in every process), the order given among equals.
 *
 * @internal
 */
export const chargeOrder = (takes: ReadonlyArray<RateTake>): ReadonlyArray<number> =>
  takes.map((_, i) => i).sort((i, j) => {
    const a = takes[i]
    const b = takes[j]
    if (a === undefined || b === undefined) return i - j
    return compare(a.limiter, b.limiter) || compare(a.key, b.key) || compare(stateOf(a), stateOf(b)) || i - j
  })

/**
 * What a take that would pass answers in a refused call: `allowed`, with the state's `remaining`
 * and `resetAfterMs` as they are (nothing charged), no ref and no delay.
 *
 * @internal
 */
export const uncharged = (d: StoreDecision, remaining: number, resetAfterMs: number): StoreDecision => ({
  allowed: true,
  limit: d.limit,
  remaining,
  resetAfterMs,
  retryAfterMs: 0,
  delayMs: 0,
  casRetries: d.casRetries
})

/** The state a take addresses (two takes of one call on the same state are charged one after the other). */
const stateId = (t: RateTake): string => JSON.stringify([t.limiter, t.key, stateOf(t)])

/** Whole tokens left when a bucket is full again in `resetAfterMs` (as `core/algorithm.ts` counts them). */
const remainingOf = (t: RateTake & { readonly algorithm: "token_bucket" }, resetAfterMs: number): number => {
  const interval = 1000 / t.ratePerSecond
  const r = Math.floor(t.burst - resetAfterMs / interval + 1e-9)
  return r < 0 ? 0 : r > Math.floor(t.burst) ? Math.floor(t.burst) : r
}

/** What moves a bucket of a reserving call to the instant its caller proceeds (see {@link bookingOf}). */
interface Booking {
  /** The last take of the bucket in the charge order: the booking's adjust is on it, on the value it wrote. */
  readonly take: number
  /** The booking, in that take's tokens (`> 0`). */
  readonly tokens: number
}

/**
 * The bookings of an admitted reserving call (buckets only, wait `delayMs` = `D`), and each
 * take's decision booked at `now + D` (its own `now`): `delayMs = D`, `remaining` and
 * `resetAfterMs` from its `next = max(tat, now + D) + cost·T`.
 *
 * Each take was charged at its own instant: its decision's `resetAfterMs = R` is its `next − now`,
 * so the bucket stood at `now + R − cost·T` before it (`max(tat, now)`, relative to its `now`),
 * and moving it to `now + D` adds `max(0, D − (R − cost·T))`. A bucket named again: the later take
 * stood on the earlier's `next`, already moved by the bookings of the earlier ones (`moved`). A
 * take of cost 0 books nothing. One adjust per bucket, of the sum.
 *
 * @internal
 */
export const bookingOf = (
  takes: ReadonlyArray<RateTake>,
  order: ReadonlyArray<number>,
  decisions: ReadonlyArray<StoreDecision | undefined>,
  delayMs: number
): { readonly bookings: ReadonlyArray<Booking>; readonly decisions: ReadonlyArray<StoreDecision | undefined> } => {
  const booked: Array<StoreDecision | undefined> = [...decisions]
  const moved = new Map<string, { last: number; ms: number }>()
  for (const i of order) {
    const t = takes[i]
    const d = decisions[i]
    if (t === undefined || d === undefined || t.algorithm !== "token_bucket") continue
    const id = stateId(t)
    const bucket = moved.get(id) ?? { last: i, ms: 0 }
    moved.set(id, bucket)
    if (t.cost > 0) bucket.last = i
    let resetAfterMs = d.resetAfterMs + bucket.ms
    if (t.cost > 0) {
      const slot = t.cost * (1000 / t.ratePerSecond)
      const extra = Math.max(0, delayMs - (resetAfterMs - slot))
      bucket.ms += extra
      resetAfterMs += extra
    }
    booked[i] = { ...d, delayMs, remaining: remainingOf(t, resetAfterMs), resetAfterMs }
  }
  const bookings: Array<Booking> = []
  for (const { last, ms } of moved.values()) {
    const t = takes[last]
    if (t === undefined || t.algorithm !== "token_bucket" || !(ms > BOOK_EPSILON_MS)) continue
    bookings.push({ take: last, tokens: ms / (1000 / t.ratePerSecond) })
  }
  return { bookings, decisions: booked }
}

// A booking this small (ms) is float noise: not written.
const BOOK_EPSILON_MS = 1e-6

/**
 * Whether the call names a bucket with costs above its burst (in the order given, each take that
 * fits alone counted): they are charged at one instant, so the call can never be admitted.
 */
const overBurst = (takes: ReadonlyArray<RateTake>): boolean => {
  const spent = new Map<string, number>()
  return takes.some((t) => {
    if (t.algorithm !== "token_bucket" || !(t.cost <= t.burst)) return false
    const id = stateId(t)
    const sum = (spent.get(id) ?? 0) + t.cost
    spent.set(id, sum)
    return sum > t.burst
  })
}

/**
 * A refused call's answers (what each take alone answers, `looked`) with the sum rule of
 * `core/algorithm.ts`: in the order given, the take that brings the admitted cost of its bucket
 * above the burst is a violation that never fits (`retryAfterMs` Infinity).
 */
const withSums = (takes: ReadonlyArray<RateTake>, looked: ReadonlyArray<StoreDecision>): ReadonlyArray<StoreDecision> => {
  const spent = new Map<string, number>()
  return looked.map((d, i) => {
    const t = takes[i]
    if (t === undefined || t.algorithm !== "token_bucket") return d
    const id = stateId(t)
    const sum = (spent.get(id) ?? 0) + t.cost
    if (sum > t.burst && t.cost <= t.burst) {
      return { ...d, allowed: false, remaining: d.remaining, retryAfterMs: Infinity, delayMs: 0 }
    }
    if (d.allowed) spent.set(id, sum)
    return d
  })
}

/** The answer given for a take whose look failed after a refusal: no violation, nothing known to remain. */
const unknown = (t: RateTake | undefined): StoreDecision => ({
  allowed: true,
  limit: t === undefined ? 0 : t.algorithm === "token_bucket" ? t.burst : t.limit,
  remaining: 0,
  resetAfterMs: 0,
  retryAfterMs: 0,
  delayMs: 0
})

/**
 * The composite take over `steps` (see the module doc). With only token buckets, every bucket
 * reserves with the smallest `maxWaitMs` of the call and is booked at the instant the caller
 * proceeds; with any window take, buckets take no wait.
 *
 * @internal
 */
export const takeAll = (steps: Steps) => (takes: ReadonlyArray<RateTake>): Effect.Effect<CompositeDecision, StoreError> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      const bucketsOnly = takes.every((t) => t.algorithm === "token_bucket")
      let maxWaitMs = Infinity
      for (const t of takes) if (t.algorithm === "token_bucket") maxWaitMs = Math.min(maxWaitMs, t.maxWaitMs)
      const asked: ReadonlyArray<RateTake> = takes.map((t) => {
        if (t.algorithm !== "token_bucket") return t
        // answers the value it wrote, for the booking (see the module doc)
        const take: decide.CompositeBucketTake & RateTake = { ...t, maxWaitMs: bucketsOnly ? maxWaitMs : 0, composite: true }
        return take
      })
      const order = chargeOrder(asked)
      const decisions: Array<StoreDecision | undefined> = takes.map(() => undefined)
      // the takes charged so far (indices), recorded in the same uninterruptible step as the answer
      const charged: Array<number> = []
      // per take: the booking written on it (bucket tokens, on top of its cost), given back with it
      const bookedTokens = new Map<number, number>()
      let casRetries = 0
      // the largest wait: each is counted from its own take's instant, before the answer, so the
      // caller that sleeps it after the answer never proceeds early
      let delayMs = 0

      const { hook: onStep } = steps
      /** The hook of a step inside a take or an undo (uninterruptible there: it adds no interruptible point). */
      const hook = (step: Event["step"], take: number): Effect.Effect<void, StoreError> | undefined =>
        onStep === undefined ? undefined : Effect.suspend(() => onStep({ step, take }) ?? Effect.void)

      /** Charges the takes from position `pos` of the order on: the index of the one that refused, or -1. */
      const charge = (pos: number): Effect.Effect<number, StoreError> => {
        const i = order[pos]
        const t = i === undefined ? undefined : asked[i]
        if (i === undefined || t === undefined) return Effect.succeed(-1)
        const written = hook("written", i)
        return Effect.flatMap(steps.take(t, restore, hook("write", i), written === undefined ? undefined : Effect.orDie(written)), (decision) => {
          decisions[i] = decision
          casRetries += decision.casRetries ?? 0
          if (!decision.allowed) return Effect.succeed(i)
          charged.push(i)
          delayMs = Math.max(delayMs, decision.delayMs)
          const taken = onStep?.({ step: "taken", take: i })
          return taken === undefined ? charge(pos + 1) : Effect.andThen(restore(taken), charge(pos + 1))
        })
      }

      /** `t` as its undo gives it back: its cost and the booking written on it. */
      const chargedOf = (i: number, t: RateTake): RateTake => {
        const tokens = bookedTokens.get(i)
        return decide.undoOf(t, decisions[i], tokens)
      }

      /** Undoes every charge (uninterruptible, concurrently); each answer replaces its decision. */
      const undoAll = Effect.suspend(() =>
        Effect.forEach(charged, (i) => {
          const t = asked[i]
          const d = decisions[i]
          if (t === undefined || d === undefined) return Effect.void
          return Effect.map(steps.undo(chargedOf(i, t), d, hook("undo", i)), (undone) => {
            // not undone now (see `Steps.undo`): what the take answered, as a take that would pass
            decisions[i] = undone === undefined ? uncharged(d, d.remaining, d.resetAfterMs) : uncharged(d, undone.remaining, undone.resetAfterMs)
          })
        }, { concurrency: "unbounded", discard: true })
      )

      /**
       * A reserving call, every bucket charged: books each at the instant the caller proceeds
       * (uninterruptible, concurrently: one forward adjust per bucket, on the value its take
       * wrote, see {@link bookingOf}). Answers the index of a bucket another caller wrote since
       * (its booking applied nothing: the call is then undone and refused as contended), or -1.
       * A booking not done now fails the call (which is then undone): its bucket would stay booked
       * at an earlier instant than its caller uses. One that may land later only charges more.
       */
      const bookAll = Effect.suspend((): Effect.Effect<number, StoreError> => {
        if (!bucketsOnly || !(delayMs > 0)) return Effect.succeed(-1)
        const { bookings, decisions: booked } = bookingOf(asked, order, decisions, delayMs)
        return Effect.flatMap(
          Effect.forEach(bookings, ({ take, tokens }) => {
            const t = asked[take]
            const d = decisions[take]
            const bookOn = d === undefined ? undefined : decide.writtenOf(d)
            if (t === undefined || d === undefined || t.algorithm !== "token_bucket" || bookOn === undefined) {
              return Effect.succeed(take)
            }
            // the inverse adjust of a negative cost: `tokens` more on the bucket (see `Steps.undo`)
            const booking: decide.CompositeBucketTake & { readonly bookOn: decide.Written } & RateTake = { ...t, cost: -tokens, bookOn }
            return Effect.map(steps.undo(booking, d, hook("book", take)), (done) => {
              if (done === undefined) return undefined
              if (done.applied === 0) return take
              bookedTokens.set(take, done.applied)
              return -1
            })
          }, { concurrency: "unbounded" }),
          (done) => {
            if (done.some((x) => x === undefined)) {
              return Effect.fail(
                new StoreError({ engine: "nats", operation: "takeAll", message: "a bucket could not be booked at the instant the call proceeds" })
              )
            }
            const lost = done.find((x) => x !== undefined && x >= 0)
            if (lost !== undefined) return Effect.succeed(lost)
            booked.forEach((d, i) => {
              decisions[i] = d
            })
            return Effect.succeed(-1)
          }
        )
      })

      /** A bucket another caller wrote between the call's take and its booking: the refusal it answers. */
      const lostBooking = (i: number) => {
        const d = decisions[i]
        if (d === undefined) return
        decisions[i] = { ...d, allowed: false, remaining: 0, retryAfterMs: Math.max(delayMs, 1), delayMs: 0, contended: true }
      }

      /** After a refusal: what each take not reached would answer alone (the looks are interruptible: nothing is charged any more). */
      const refusal = (refused: number): Effect.Effect<CompositeDecision> =>
        Effect.map(
          restore(Effect.forEach(takes, (_, i) => {
            const known = decisions[i]
            const t = asked[i]
            if (known !== undefined || t === undefined) return Effect.succeed(known)
            return steps.look(t).pipe(Effect.orElseSucceed(() => unknown(t)))
          }, { concurrency: "unbounded" })),
          (looked) => ({
            allowed: false,
            decisions: withSums(asked, looked.map((d, i) => decide.withoutWritten(d ?? unknown(asked[i])))),
            delayMs: 0,
            casRetries,
            contended: refused >= 0 && decisions[refused]?.contended === true ? true : undefined
          })
        )

      const admitted = (): CompositeDecision => ({
        allowed: true,
        decisions: decisions.map((d, i) => decide.withoutWritten(d ?? unknown(asked[i]))),
        delayMs: bucketsOnly ? delayMs : 0,
        casRetries
      })

      // every take charged and booked: one last interruptible point, so that an interruption that
      // came while the last write was in flight undoes the call instead of ending it with its
      // answer unread
      const settled = (refused: number): Effect.Effect<number, StoreError> =>
        refused >= 0 ? Effect.succeed(refused) : Effect.flatMap(bookAll, (lost) => lost >= 0 ? Effect.succeed(lost) : Effect.as(restore(Effect.void), -1))

      /** The call refused at take `i`: undone, then answered (a lost booking: that take, contended). */
      const refuse = (i: number) =>
        Effect.andThen(undoAll, Effect.suspend(() => {
          const d = decisions[i]
          if (d !== undefined && d.allowed) lostBooking(i)
          return refusal(i)
        }))

      // a bucket named with costs above its burst never fits: refused before anything is charged
      if (overBurst(asked)) return refusal(-1)

      return Effect.matchCauseEffect(Effect.flatMap(charge(0), settled), {
        onSuccess: (refused) => refused < 0 ? Effect.succeed(admitted()) : refuse(refused),
        onFailure: (cause) => Effect.andThen(undoAll, Effect.failCause(cause))
      })
    })
  )
