/**
 * `acquire`: a concurrency slot first (a {@link Lease}: taken with backoff or a store notification,
 * renewed while held, released with its scope), then the rate (a reservation, slept through).
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { AcquireError, LimiterNotFound, RateLimitExceeded, StoreUnavailable } from "../../RateLimitError.js"
import type { AcquireOptions, Permit } from "../../RateLimiter.js"
import type { RateLimitStoreService, SlotDecision, SlotRequest, StoreDecision } from "../../RateLimitStore.js"
import type { Result } from "../result.js"
import { err, errOf, isErr, isOk, ok, valueOf } from "../result.js"
import { cacheOf, noteAnswer, recordCachedRefusal } from "./blockCache.js"
import type { Charge } from "./charge.js"
import { adjustable, chargeOf } from "./charge.js"
import type { Call } from "./decision.js"
import { FOREVER_MS, nonNegative, Refusal, validateCall } from "./decision.js"
import type { LimiterEntry } from "./entry.js"
import {
  recordAcquisition,
  recordAnswer,
  recordRefusal,
  recordStoreError,
  recordTimeout,
  storeFailed
} from "./entry.js"

/** @internal */
export type Refused = RateLimitExceeded | StoreUnavailable

/**
 * How long one call may wait: until `deadline` (ms of the Clock; `Infinity` for no timeout).
 * `timed`: the deadline comes from a timeout that lets the call wait at all (set, finite, above
 * 0), so running into it counts as a timeout; a refusal with no timeout, an infinite one or
 * `timeout: 0` (`tryAcquire`) is a refusal only.
 *
 * @internal
 */
export interface Wait {
  readonly deadline: number
  readonly timed: boolean
}

/** Jittered exponential backoff between slot attempts: 5-10 ms, doubling up to 250-500 ms. */
const backoffMs = (attempt: number): Effect.Effect<number> =>
  Effect.map(Random.next, (r) => {
    const cap = Math.min(500, 10 * 2 ** Math.min(attempt, 6))
    return Math.max(1, Math.round(cap / 2 + (r * cap) / 2))
  })

/**
 * One concurrency slot of one call, from its first attempt to its release: the holder id, the
 * store it was taken on, and whether it is released. Each attempt, and the registration of its
 * release in the permit's scope, runs uninterruptibly, so an interruption can never leak a slot.
 *
 * @internal
 */
export class Lease {
  /** The store the slot is taken on: read again at each attempt, so a waiter moves to a store that
   * `configureStore` put in place meanwhile; renewals and the release go where it was taken. */
  private store: RateLimitStoreService
  private released = false
  /** The lease renewal once taken; stopped by `release`, early or at scope close. */
  private renewFiber: Fx.RuntimeFiber<void> | undefined
  /** `maxConcurrentReached` counts a call that found the slots full once, not once per attempt. */
  private counted = false
  private readonly request: SlotRequest

  constructor(
    private readonly entry: LimiterEntry,
    private readonly call: Pick<Call, "key" | "storeKey">,
    private readonly wait: Wait,
    holder: string,
    maxConcurrent: number
  ) {
    this.store = entry.storeEntry.store
    this.request = { limiter: entry.id, key: call.storeKey, holder, limit: maxConcurrent, leaseMs: entry.spec.leaseMs }
  }

  /** Gives the slot back (once); never fails, bounded by the store's own call timeout. */
  readonly release: Effect.Effect<void> = Effect.uninterruptible(
    Effect.suspend(() => {
      if (this.released) return Effect.void
      this.released = true
      const { entry } = this
      entry.stats.currentConcurrent--
      entry.stats.totalReleases++
      entry.series.releases(1)
      entry.series.inFlight(entry.stats.currentConcurrent)
      // Stop renewing before giving the slot back: a renewal after the release would find the
      // lease gone and report it lost. The loop is interruptible, so this returns promptly.
      const stopRenewing = this.renewFiber === undefined ? Effect.void : Fiber.interrupt(this.renewFiber)
      return Effect.andThen(stopRenewing, this.store.releaseSlot(this.request)).pipe(
        Effect.timeoutOption(Duration.seconds(10)),
        Fx.catchAll((e) => {
          recordStoreError(entry)
          return Effect.logWarning(`effect-rate-sync: releasing a slot of limiter "${entry.id}" failed: ${e.message}`)
        }),
        Effect.asVoid
      )
    })
  )

  /** Renews every third of the lease while held; never renews, nor counts a lease lost, once released. */
  private renewLoop(): Effect.Effect<void> {
    return Effect.sleep(Duration.millis(Math.max(50, Math.floor(this.entry.spec.leaseMs / 3)))).pipe(
    Effect.andThen(Effect.suspend(() => (this.released ? Effect.succeed(false) : this.store.renewSlot(this.request)))),
    Effect.flatMap((held) => {
      if (held || this.released) return Effect.succeed(held && !this.released)
      this.entry.stats.leasesLost++
      this.entry.series.leasesLost(1)
      return Effect.as(
        Effect.logWarning(`effect-rate-sync: a concurrency lease of limiter "${this.entry.id}" expired while held`),
        false
      )
    }),
    Fx.catchAll((e) => {
      recordStoreError(this.entry)
      return Effect.as(Effect.logWarning(`effect-rate-sync: renewing a lease failed: ${e.message}`), true)
    }),
    Effect.repeat({ while: (continueRenewing) => continueRenewing && !this.released }),
    Effect.asVoid
  )
  }

  /**
   * Takes the slot, waiting (interruptibly) between attempts until the call's deadline. Answers
   * `false` when the store failed and the limiter is fail-open (no slot is held).
   */
  take(scope: Scope.Scope): Effect.Effect<boolean, Refused> {
    return Effect.flatMap(this.attempt(scope), (r) => (r instanceof Refusal ? Effect.fail(r.error()) : Effect.succeed(r)))
  }

  /** {@link take}, a refusal answered as a {@link Refusal} (the error is not built). */
  attempt(scope: Scope.Scope): Effect.Effect<boolean | Refusal, StoreUnavailable> {
    return Effect.uninterruptibleMask((restore) => {
      const attempt = (n: number): Effect.Effect<boolean | Refusal, StoreUnavailable> =>
        Effect.suspend(() => {
          this.store = this.entry.storeEntry.store
          return this.store.acquireSlot(this.request)
        }).pipe(Effect.matchEffect({
          // a store replaced while the call was on it (`configureStore`: the old one closed under
          // the call) is not an outage: ask the one in place now, never fail open for it
          onFailure: (e) => this.store !== this.entry.storeEntry.store ? attempt(n) : storeFailed(this.entry, e, false),
          onSuccess: (d) => {
            recordAnswer(this.entry, d.casRetries)
            return d.acquired ? this.held(scope) : this.retry(d, n, restore, attempt)
          }
        }))
      return attempt(0)
    })
  }

  /** The slot is taken: count it, release it with the scope, renew it meanwhile. */
  private held(scope: Scope.Scope): Effect.Effect<boolean> {
    const { stats, series } = this.entry
    stats.currentConcurrent++
    series.inFlight(stats.currentConcurrent)
    return Scope.addFinalizer(scope, this.release).pipe(
      // Forked from an uninterruptible region: make the loop itself interruptible again.
      Effect.andThen(Effect.forkIn(Effect.interruptible(this.renewLoop()), scope)),
      Effect.map((fiber) => {
        this.renewFiber = fiber
        return true
      })
    )
  }

  /** The slots are full: refuse at the deadline, else wait (a notification or backoff) and retry. */
  private retry(
    d: SlotDecision,
    n: number,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    attempt: (n: number) => Effect.Effect<boolean | Refusal, StoreUnavailable>
  ): Effect.Effect<boolean | Refusal, StoreUnavailable> {
    if (!this.counted) {
      this.counted = true
      this.entry.stats.maxConcurrentReached++
    }
    return Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const left = this.wait.deadline - now
      if (left <= 0) {
        if (this.wait.timed) recordTimeout(this.entry)
        return Effect.succeed(
          new Refusal(this.entry, this.call.key, "concurrency", d.limit, d.limit - d.active, d.retryAfterMs)
        )
      }
      return Effect.flatMap(backoffMs(n), (backoff) => {
        const ms = Math.max(1, Math.min(backoff, left, d.retryAfterMs > 0 ? d.retryAfterMs : backoff))
        const waiting = this.store.awaitSlot !== undefined
          ? this.store.awaitSlot(this.entry.id, this.call.storeKey, ms)
          : Effect.sleep(Duration.millis(ms))
        return Effect.andThen(restore(waiting), attempt(n + 1))
      })
    })
  }
}

/**
 * What one rate answer `d` to a take asked at `now` means for the call, after the bookkeeping
 * every answer gets: the decision when it is admitted (after its `delayMs`, a reservation), a
 * number of ms to sleep before taking again, or the {@link Refusal}.
 */
const rateAnswer = (
  entry: LimiterEntry,
  call: Pick<Call, "key" | "storeKey" | "cost">,
  wait: Wait,
  now: number,
  d: StoreDecision
): StoreDecision | number | Refusal => {
  recordAnswer(entry, d.casRetries)
  if (d.allowed) return d
  const cache = cacheOf(entry)
  if (cache !== undefined) noteAnswer(cache, call.storeKey, call.cost, now, d)
  const left = nonNegative(wait.deadline - now)
  const reserves = entry.spec.algorithm === "token_bucket"
  // A window frees capacity over time: sleep exactly until it may fit, then take again. So
  // does a refusal the store calls contended (it only lost races with other writers): a
  // token bucket's real refusal always needs more than `left` (it could not reserve within it).
  const contended = d.contended === true
  if ((!reserves || contended) && Number.isFinite(d.retryAfterMs) && d.retryAfterMs <= left) {
    return Math.max(1, d.retryAfterMs)
  }
  // The timeout cut the wait when the call could have gone through by waiting longer than
  // it allows, and it (not the store's FOREVER_MS bound) was the wait handed over.
  if (wait.timed && Number.isFinite(d.retryAfterMs) && d.retryAfterMs > left && (!reserves || left < FOREVER_MS)) {
    recordTimeout(entry)
  }
  return new Refusal(entry, call.key, "rate", d.limit, d.remaining, d.retryAfterMs)
}

/** A rate answer's next step as an effect: `loop` takes again. */
const rateStep = (
  step: StoreDecision | number | Refusal,
  loop: Effect.Effect<StoreDecision | undefined | Refusal, StoreUnavailable>
): Effect.Effect<StoreDecision | undefined | Refusal, StoreUnavailable> => {
  if (typeof step === "number") return Effect.andThen(Effect.sleep(Duration.millis(step)), loop)
  if (step instanceof Refusal || step.delayMs <= 0) return Effect.succeed(step)
  return Effect.as(Effect.sleep(Duration.millis(step.delayMs)), step)
}

/**
 * {@link acquireRate}, a refusal answered as a {@link Refusal} (the error is not built). `first`:
 * the step of a first take already decided (synchronously, see {@link takeNow}).
 */
const rateLoop = (
  entry: LimiterEntry,
  take: NonNullable<LimiterEntry["take"]>,
  call: Pick<Call, "key" | "storeKey" | "cost">,
  wait: Wait,
  first?: StoreDecision | number | Refusal
): Effect.Effect<StoreDecision | undefined | Refusal, StoreUnavailable> => {
  const loop: Effect.Effect<StoreDecision | undefined | Refusal, StoreUnavailable> = Effect.flatMap(
    Clock.currentTimeMillis,
    (now) => {
      const store = entry.storeEntry.store
      return Effect.matchEffect(take(call.storeKey, call.cost, Math.min(nonNegative(wait.deadline - now), FOREVER_MS)), {
        // the store was replaced under the call (see `Lease.attempt`): the new one decides
        onFailure: (e) => store !== entry.storeEntry.store ? loop : storeFailed(entry, e, undefined),
        onSuccess: (d) => rateStep(rateAnswer(entry, call, wait, now, d), loop)
      })
    }
  )
  return first === undefined ? loop : rateStep(first, loop)
}

/**
 * Takes rate, sleeping through a reservation. Answers the store's decision of the admitted take
 * (its `ref` is the charge's, for `adjust`), or `undefined` when the store failed and the
 * limiter let the call through (fail-open: nothing was charged).
 *
 * @internal
 */
export const acquireRate = (
  entry: LimiterEntry,
  take: NonNullable<LimiterEntry["take"]>,
  call: Pick<Call, "key" | "storeKey" | "cost">,
  wait: Wait
): Effect.Effect<StoreDecision | undefined, Refused> =>
  Effect.flatMap(
    rateLoop(entry, take, call, wait),
    (r): Effect.Effect<StoreDecision | undefined, Refused> => (r instanceof Refusal ? Effect.fail(r.error()) : Effect.succeed(r))
  )

/**
 * The first take of `call` decided in one synchronous step at `now`, as `check` decides: when the
 * limiter has a rate and no slots and its current store decides in-process (`unsafeTake`, which
 * answers as its effectful take would at that time). `undefined` otherwise: the take goes through
 * the store's effect. (Such a store has no block cache: `cacheOf` answers none for it.)
 */
const takeNow = (entry: LimiterEntry, call: Call, wait: Wait, now: number): StoreDecision | undefined => {
  const sync = entry.storeEntry.store.unsafeTake
  if (sync === undefined || entry.rateTake === undefined || entry.spec.maxConcurrent !== undefined) return undefined
  const t = entry.rateTake(call.storeKey, call.cost, Math.min(nonNegative(wait.deadline - now), FOREVER_MS))
  switch (t.algorithm) {
    case "token_bucket":
      return sync.tokenBucket(t, now)
    case "sliding_window":
      return sync.slidingWindow(t, now)
    case "fixed_window":
      return sync.fixedWindow(t, now)
  }
}

/**
 * The refusal the block cache answers for `call` at `now`, before any slot or store round trip:
 * only when the store would refuse it too, that is when the key's block outlasts the call's wait
 * (a token bucket reserves within the wait; a window is waited for and asked again). A timeout
 * that cuts the wait counts as one, as `acquireRate` counts it.
 */
const cachedRefusal = (entry: LimiterEntry, call: Call, wait: Wait, now: number): Refusal | undefined => {
  if (entry.take === undefined) return undefined
  const cache = cacheOf(entry)
  if (cache === undefined) return undefined
  const b = cache.lookup(call.storeKey, call.cost, now)
  if (b === undefined) return undefined
  const reserves = entry.spec.algorithm === "token_bucket"
  const left = nonNegative(wait.deadline - now)
  const retryAfterMs = b.until - now
  if (retryAfterMs <= (reserves ? Math.min(left, FOREVER_MS) : left)) return undefined
  if (wait.timed && (!reserves || left < FOREVER_MS)) recordTimeout(entry)
  recordCachedRefusal(entry)
  return new Refusal(entry, call.key, "rate", entry.limit, b.remaining, retryAfterMs)
}

type AcquireResult = Effect.Effect<
  Permit,
  AcquireError,
  Scope.Scope
>

/** What `acquire` failed with, but a refusal: these (and only these) end its span as an error. */
type AcquireFailure = Exclude<AcquireError, RateLimitExceeded>

/** How one call ended: the permit, or the refusal (an answer, not a failure). */
type Answer = Result<Permit, Refusal>

/** How one `acquire` ended, as the span attribute `rate_sync.outcome` names it. */
type Outcome = "admitted" | "refused" | "failed_open" | "error"

/** The span attributes of one ended call: never the key (it may be personal data), only whether one was given. */
const annotate = (span: Tracer.Span, call: Call, outcome: Outcome, waitedMs: number): void => {
  span.attribute("rate_sync.outcome", outcome)
  span.attribute("rate_sync.wait_ms", waitedMs)
  span.attribute("rate_sync.cost", call.cost)
  span.attribute("rate_sync.key_present", call.key !== "")
}

/** The call started at `start` was refused: its span attributes and bookkeeping (synchronous). */
const refused = (
  entry: LimiterEntry,
  call: Call,
  span: Tracer.Span,
  clock: Clock.Clock,
  start: number,
  refusal: Refusal
): Answer => {
  annotate(span, call, "refused", Fx.nowMillisUnsafe(clock) - start)
  // A timeout was counted where the wait was cut (Lease.retry / rateAnswer / cachedRefusal).
  recordRefusal(entry)
  return err(refusal)
}

/** The call started at `start` was admitted: its bookkeeping and span attributes, and its permit (synchronous). */
const admitted = (
  entry: LimiterEntry,
  call: Call,
  span: Tracer.Span,
  clock: Clock.Clock,
  start: number,
  lease: Lease | undefined,
  failedOpen: boolean,
  charge: Charge | undefined
): Answer => {
  const end = Fx.nowMillisUnsafe(clock)
  const waitedMs = end - start
  recordAcquisition(entry, end, waitedMs)
  entry.series.waitTime(waitedMs)
  annotate(span, call, failedOpen ? "failed_open" : "admitted", waitedMs)
  const permit: Permit = {
    limiterId: entry.id,
    key: call.key,
    cost: call.cost,
    waitedMs,
    failedOpen,
    release: lease?.release ?? Effect.void,
    ...adjustable([{ limiterId: entry.id, charge }])
  }
  return ok(permit)
}

/**
 * The slot (when the limiter has `maxConcurrent`), then the rate, as one permit, for the call
 * started at `start`; `first`: the step of a first rate take already decided (then the limiter
 * has no slots and no block cache). Runs inside the call's span: a refusal is an answer (`err`),
 * not a failure of the span's effect, so the span ends OK for it; only a store failure (or a
 * defect) ends it as an error.
 */
const acquireInSpan = (
  entry: LimiterEntry,
  call: Call,
  holder: () => string,
  span: Tracer.Span,
  clock: Clock.Clock,
  start: number,
  wait: Wait,
  first: StoreDecision | number | Refusal | undefined
): Effect.Effect<Answer, AcquireFailure, Scope.Scope> =>
  Effect.gen(function*() {
    const blocked = cachedRefusal(entry, call, wait, start)
    if (blocked !== undefined) {
      span.attribute("rate_sync.block_cache", "hit")
      return refused(entry, call, span, clock, start, blocked)
    }
    let lease: Lease | undefined
    let failedOpen = false
    const maxConcurrent = entry.spec.maxConcurrent
    if (maxConcurrent !== undefined) {
      const taken = new Lease(entry, call, wait, holder(), maxConcurrent)
      const r = yield* taken.attempt(yield* Effect.scope)
      if (r instanceof Refusal) return refused(entry, call, span, clock, start, r)
      if (r) lease = taken
      else failedOpen = true
    }
    let charge: Charge | undefined
    if (entry.take !== undefined) {
      const d = yield* rateLoop(entry, entry.take, call, wait, first).pipe(
        Effect.onExit((exit) => (Exit.isFailure(exit) && lease !== undefined ? lease.release : Effect.void))
      )
      if (d instanceof Refusal) {
        if (lease !== undefined) yield* lease.release
        return refused(entry, call, span, clock, start, d)
      }
      failedOpen = failedOpen || d === undefined
      charge = chargeOf(entry, call.key, call.storeKey, call.cost, d)
    }
    return admitted(entry, call, span, clock, start, lease, failedOpen, charge)
  }).pipe(
    Fx.catchAll((e) => {
      annotate(span, call, "error", Fx.nowMillisUnsafe(clock) - start)
      return Effect.fail(e)
    })
  )

/**
 * One call in its span `RateLimiter.acquire`. On an in-process store a limiter with a rate and no
 * slots decides its first take synchronously ({@link takeNow}); when that admits without a delay
 * or refuses, the call ends in that step, with nothing run inside the span (`check`'s cost plus
 * the span's). Otherwise (a wait, a slot, a networked store) it runs {@link acquireInSpan} with
 * the span as parent.
 */
const answer = (entry: LimiterEntry, call: Call, holder: () => string): Effect.Effect<Answer, AcquireFailure, Scope.Scope> =>
  Effect.useSpan(
    "RateLimiter.acquire",
    entry.spanOptions,
    (span) =>
      Effect.clockWith((clock) => {
        const start = Fx.nowMillisUnsafe(clock)
        const { timeoutMs } = call
        const wait: Wait = {
          deadline: timeoutMs === undefined ? Infinity : start + nonNegative(timeoutMs),
          timed: timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)
        }
        const d = takeNow(entry, call, wait, start)
        const first = d === undefined ? undefined : rateAnswer(entry, call, wait, start, d)
        if (first instanceof Refusal) return Effect.succeed(refused(entry, call, span, clock, start, first))
        if (first !== undefined && typeof first !== "number" && first.delayMs <= 0) {
          const charge = chargeOf(entry, call.key, call.storeKey, call.cost, first)
          return Effect.succeed(admitted(entry, call, span, clock, start, undefined, false, charge))
        }
        return Effect.withParentSpan(acquireInSpan(entry, call, holder, span, clock, start, wait, first), span)
      })
  )

/**
 * `acquire` and `tryAcquire` over the registry's limiters. `holder` gives each lease a holder id
 * unique across processes. `acquire` fails with the refusal's `RateLimitExceeded`, built outside
 * the span; `tryAcquire` answers `false` for it and never builds it.
 *
 * @internal
 */
export const makeAcquire = (
  limiters: ReadonlyMap<string, LimiterEntry>,
  notFound: (id: string) => LimiterNotFound,
  holder: () => string
) => {
  const decide = (id: string, opts: AcquireOptions | undefined): Effect.Effect<Answer, AcquireFailure, Scope.Scope> =>
    Effect.suspend((): Effect.Effect<Answer, AcquireFailure, Scope.Scope> => {
      const entry = limiters.get(id)
      if (entry === undefined) return Effect.fail(notFound(id))
      const call = validateCall(entry, opts)
      return call._tag === "Call" ? answer(entry, call, holder) : Effect.fail(call)
    })
  const acquire = (id: string, opts?: AcquireOptions): AcquireResult =>
    Effect.flatMap(decide(id, opts), (r) => (isErr(r) ? Effect.fail(errOf(r).error()) : Effect.succeed(valueOf(r))))
  // Waits up to the call's own `timeout` (rate-sync's `try_acquire(timeout)`); none: answers at
  // once. The limiter's default timeout is for `acquire` only.
  const tryAcquire = (id: string, opts?: AcquireOptions): Effect.Effect<boolean, AcquireFailure, Scope.Scope> =>
    Effect.map(decide(id, { key: opts?.key, cost: opts?.cost, timeout: opts?.timeout ?? 0 }), isOk)
  return { acquire, tryAcquire }
}
