/**
 * `check`: one decision, no waiting, the numbers an HTTP response needs.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type { CheckError, LimiterNotFound } from "../../RateLimitError.js"
import type { AcquireOptions, Decision, LimiterStatus, RateLimiterService, StatusOptions } from "../../RateLimiter.js"
import type { StoreError } from "../../RateLimitStore.js"
import { storeKey } from "../../core/storeKey.js"
import { cachedDecision, cacheOf, noteAnswer, recordCachedRefusal } from "./blockCache.js"
import { callProblem, decided, decisionOf, failOpenDecision, peeked } from "./decision.js"
import type { LimiterEntry } from "./entry.js"
import { recordRefusal, storeFailed, unavailable } from "./entry.js"

type CheckResult = Effect.Effect<Decision, CheckError>

/** The decision of a limiter on an in-process store, in one synchronous step; `undefined` otherwise. */
const decideNow = (entry: LimiterEntry, key: string, sk: string, cost: number, clock: Clock.Clock): Decision | undefined => {
  if (entry.takeNow === undefined) return undefined
  const now = Fx.nowMillisUnsafe(clock)
  const d = entry.takeNow(sk, cost, now)
  return d === undefined ? undefined : decided(entry, key, d, now)
}

/**
 * `check` over the registry's limiters. On an in-process store (`unsafeTake`) the whole decision
 * is one synchronous step; otherwise one store round trip (a peek for a concurrency-only limiter,
 * which consumes nothing).
 *
 * @internal
 */
export const makeCheck = (
  limiters: ReadonlyMap<string, LimiterEntry>,
  notFound: (id: string) => LimiterNotFound
) => {
  const check = (id: string, opts?: AcquireOptions): CheckResult =>
    // `clockWith` runs its callback when the effect runs: one step for validation and, on an
    // in-process store, the whole decision.
    Effect.clockWith((clock): CheckResult => {
      const entry = limiters.get(id)
      if (entry === undefined) return Effect.fail(notFound(id))
      const problem = callProblem(entry, opts)
      if (problem !== undefined) return Effect.fail(problem)
      const key = opts?.key ?? ""
      const cost = opts?.cost ?? 1
      const sk = storeKey(key)
      const now = decideNow(entry, key, sk, cost, clock)
      if (now !== undefined) return Effect.succeed(now)
      const store = entry.storeEntry.store
      // a store replaced under the call (`configureStore` closed the old one) is not an outage: the
      // one in place now decides, never the fail-open policy
      const onFailure = (e: StoreError) =>
        store !== entry.storeEntry.store ? check(id, opts) : storeFailed(entry, e, failOpenDecision(entry, key))
      const cache = cacheOf(entry)
      if (cache !== undefined) {
        // A key the store refused: answered here until the refusal's retry-after, no round trip.
        const at = Fx.nowMillisUnsafe(clock)
        const blocked = cache.lookup(sk, cost, at)
        if (blocked !== undefined) {
          recordRefusal(entry)
          recordCachedRefusal(entry)
          return Effect.succeed(cachedDecision(entry, key, blocked, at))
        }
        if (entry.take !== undefined) {
          return Effect.matchEffect(entry.take(sk, cost, 0), {
            onFailure,
            onSuccess: (d) => {
              noteAnswer(cache, sk, cost, at, d)
              return Effect.succeed(decided(entry, key, d, Fx.nowMillisUnsafe(clock)))
            }
          })
        }
      }
      if (entry.take === undefined) {
        return Effect.matchEffect(
          entry.storeEntry.store.peek({ algorithm: "concurrency", limiter: id, key: sk, limit: entry.limit }),
          { onFailure, onSuccess: (d) => Effect.succeed(peeked(entry, key, d)) }
        )
      }
      return Effect.matchEffect(entry.take(sk, cost, 0), {
        onFailure,
        // Runs when the store answered: the bookkeeping is synchronous, no extra effect.
        onSuccess: (d) => Effect.succeed(decided(entry, key, d, Fx.nowMillisUnsafe(clock)))
      })
    })
  return check
}

/**
 * `check`'s synchronous step for callers outside a fiber (the promise facade, the HTTP adapters):
 * the decision at the time `clock` reads (the registry runtime's `Clock`) of a limiter on an in-process store, the one
 * `check` answers, with the same bookkeeping; `undefined` when the call needs `check` itself (a
 * networked store, an unknown id, a bad key or cost: `check` fails with those).
 *
 * @internal
 */
export type CheckNow = (id: string, opts: AcquireOptions | undefined, clock: Clock.Clock) => Decision | undefined

/** @internal */
export const makeCheckNow = (limiters: ReadonlyMap<string, LimiterEntry>): CheckNow => (id, opts, clock) => {
  const entry = limiters.get(id)
  if (entry === undefined || entry.takeNow === undefined || callProblem(entry, opts) !== undefined) return undefined
  const key = opts?.key ?? ""
  return decideNow(entry, key, storeKey(key), opts?.cost ?? 1, clock)
}

const checkNows = new WeakMap<RateLimiterService, CheckNow>()

/** Records `service`'s {@link CheckNow} (once, when `RateLimiter.make` builds it). @internal */
export const recordCheckNow = (service: RateLimiterService, checkNow: CheckNow): void => {
  checkNows.set(service, checkNow)
}

/** `service`'s {@link CheckNow}; `undefined` for a service not made by `RateLimiter.make`. @internal */
export const checkNowOf = (service: RateLimiterService): CheckNow | undefined => checkNows.get(service)

/**
 * `status`: the state of `(limiter, key)` as a take of `cost` would see it, by one `peek`. It
 * spends nothing and changes no statistic or metric (a store failure included: it fails with
 * `StoreUnavailable`, as a look has no fail-open meaning).
 *
 * @internal
 */
export const makeStatus = (
  limiters: ReadonlyMap<string, LimiterEntry>,
  notFound: (id: string) => LimiterNotFound
) =>
(id: string, opts?: StatusOptions): Effect.Effect<LimiterStatus, CheckError> =>
  Effect.suspend((): Effect.Effect<LimiterStatus, CheckError> => {
    const entry = limiters.get(id)
    if (entry === undefined) return Effect.fail(notFound(id))
    const problem = callProblem(entry, opts === undefined ? undefined : { key: opts.key, cost: opts.cost })
    if (problem !== undefined) return Effect.fail(problem)
    const key = opts?.key ?? ""
    const cost = opts?.cost ?? 1
    const storeEntry = entry.storeEntry
    return Effect.matchEffect(storeEntry.store.peek(entry.peekRequest(storeKey(key), cost)), {
      onFailure: (e) => Effect.fail(unavailable(storeEntry, e)),
      onSuccess: (d) => {
        const decision = decisionOf(entry, key, d)
        return Effect.succeed({
          limiterId: entry.id,
          key,
          cost,
          allowed: decision.allowed,
          limit: decision.limit,
          remaining: decision.remaining,
          resetAfterMs: decision.resetAfterMs,
          retryAfterMs: decision.retryAfterMs,
          spec: entry.spec
        })
      }
    })
  })
