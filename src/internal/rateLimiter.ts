/** @internal */
import { randomUUID } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as MetricLabel from "effect/MetricLabel"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import type { LimiterDefinition, LimiterOverrides, LimiterSpec } from "../LimiterDefinition.js"
import { describeInput, durationInputMs, resolve, toDefinition, unknownField } from "../LimiterDefinition.js"
import {
  ConfigError,
  InvalidCost,
  LimiterNotFound,
  RateLimitExceeded,
  StoreNotFound,
  StoreUnavailable
} from "../RateLimitError.js"
import type {
  AcquireOptions,
  Decision,
  LimiterInfo,
  MakeOptions,
  Permit,
  RateLimiterMetrics,
  RateLimiterService,
  StoreInfo,
  StoreInput
} from "../RateLimiter.js"
import * as Metrics from "../RateLimitMetrics.js"
import type { RateLimitStoreService, SlotRequest, StoreDecision, StoreError } from "../RateLimitStore.js"
import { storeKey } from "../core/storeKey.js"
import { buildStore } from "./storeFactory.js"

const TypeId = "~effect-rate-sync/RateLimiter" as const

/**
 * The wait bound handed to a store when the caller will wait as long as needed: about 31 years,
 * finite so every store can encode it (also in integer microseconds).
 *
 * @internal
 */
export const FOREVER_MS = 1e12

interface Stats {
  totalAcquisitions: number
  totalWaitTimeMs: number
  maxWaitTimeMs: number
  casFailures: number
  timeouts: number
  lastAcquisitionAt: number | undefined
  currentConcurrent: number
  maxConcurrentReached: number
  totalReleases: number
  refusals: number
  storeErrors: number
  failOpenAdmits: number
  leasesLost: number
}

const newStats = (): Stats => ({
  totalAcquisitions: 0,
  totalWaitTimeMs: 0,
  maxWaitTimeMs: 0,
  casFailures: 0,
  timeouts: 0,
  lastAcquisitionAt: undefined,
  currentConcurrent: 0,
  maxConcurrentReached: 0,
  totalReleases: 0,
  refusals: 0,
  storeErrors: 0,
  failOpenAdmits: 0,
  leasesLost: 0
})

interface StoreEntry {
  readonly id: string
  store: RateLimitStoreService
  /** The child scope of the registry's scope the store was built in: closed when it is replaced. */
  scope: Scope.CloseableScope
  initialized: boolean
}

interface LimiterEntry {
  readonly id: string
  readonly spec: LimiterSpec
  readonly storeEntry: StoreEntry
  readonly stats: Stats
  readonly tags: ReadonlyArray<MetricLabel.MetricLabel>
  /** Largest cost a single call may ask for. */
  readonly capacity: number
  /** One rate decision, or undefined for a concurrency-only limiter. */
  readonly take: ((key: string, cost: number, maxWaitMs: number) => Effect.Effect<StoreDecision, StoreError>) | undefined
  /**
   * The same decision (`maxWaitMs` 0) taken synchronously at `now`, when the limiter's current
   * store decides in-process (`unsafeTake`); `undefined` when it does not, or for a
   * concurrency-only limiter.
   */
  readonly takeNow: ((key: string, cost: number, now: number) => StoreDecision | undefined) | undefined
  readonly spanAttributes: Record<string, string>
}

/** The rate operations of a limiter, bound to its parameters once. */
const makeTakes = (
  id: string,
  spec: LimiterSpec,
  storeEntry: StoreEntry
): Pick<LimiterEntry, "take" | "takeNow"> => {
  switch (spec.algorithm) {
    case "token_bucket": {
      const rate = spec.ratePerSecond
      if (rate === undefined) return { take: undefined, takeNow: undefined }
      const burst = spec.burst
      const request = (key: string, cost: number, maxWaitMs: number) => ({
        limiter: id,
        key,
        ratePerSecond: rate,
        burst,
        cost,
        maxWaitMs
      })
      return {
        take: (key, cost, maxWaitMs) => storeEntry.store.tokenBucket(request(key, cost, maxWaitMs)),
        takeNow: (key, cost, now) => storeEntry.store.unsafeTake?.tokenBucket(request(key, cost, 0), now)
      }
    }
    case "sliding_window":
    case "fixed_window": {
      const limit = spec.limit ?? 0
      const windowMs = spec.windowMs ?? 0
      const sliding = spec.algorithm === "sliding_window"
      const request = (key: string, cost: number) => ({ limiter: id, key, limit, windowMs, cost })
      return {
        take: (key, cost) =>
          sliding
            ? storeEntry.store.slidingWindow(request(key, cost))
            : storeEntry.store.fixedWindow(request(key, cost)),
        takeNow: (key, cost, now) => {
          const sync = storeEntry.store.unsafeTake
          if (sync === undefined) return undefined
          return sliding ? sync.slidingWindow(request(key, cost), now) : sync.fixedWindow(request(key, cost), now)
        }
      }
    }
  }
}

const capacityOf = (spec: LimiterSpec): number =>
  spec.algorithm === "token_bucket" && spec.ratePerSecond === undefined ? Number.MAX_SAFE_INTEGER : spec.burst

const limitOf = (spec: LimiterSpec): number =>
  spec.algorithm === "token_bucket" && spec.ratePerSecond === undefined ? spec.maxConcurrent ?? 0 : spec.burst

const clampRemaining = (remaining: number, limit: number): number =>
  Number.isFinite(remaining) ? Math.min(limit, Math.max(0, Math.floor(remaining))) : remaining > 0 ? limit : 0

const nonNegative = (ms: number): number => (ms > 0 ? ms : 0)

/** @internal */
export const make = (
  options: MakeOptions
): Effect.Effect<RateLimiterService, ConfigError | StoreNotFound | StoreUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const registryScope = yield* Effect.scope
    const stores = new Map<string, StoreEntry>()
    const limiters = new Map<string, LimiterEntry>()
    const defaultStore = options.defaultStore ?? "default"
    const processId = randomUUID()
    let holderSeq = 0

    const notFound = (id: string) =>
      new LimiterNotFound({ limiterId: typeof id === "string" ? id : describeInput(id) })

    const unavailable = (storeEntry: StoreEntry, e: StoreError) =>
      new StoreUnavailable({
        storeId: storeEntry.id,
        engine: storeEntry.store.engine,
        cause: e.kind === "rejected" ? `the store rejected the request (${e.operation}): ${e.message}` : e.message
      })

    const register = (id: string, definition: LimiterDefinition): Effect.Effect<void, ConfigError | StoreNotFound> =>
      Effect.suspend((): Effect.Effect<void, ConfigError | StoreNotFound> => {
        const resolved = resolve(id, definition)
        if (Either.isLeft(resolved)) return Effect.fail(resolved.left)
        const spec = resolved.right
        const storeId = spec.store ?? defaultStore
        const storeEntry = stores.get(storeId)
        if (storeEntry === undefined) return Effect.fail(new StoreNotFound({ storeId }))
        const previous = limiters.get(id)
        limiters.set(id, {
          id,
          spec,
          storeEntry,
          stats: previous?.stats ?? newStats(),
          tags: previous?.tags ?? [MetricLabel.make("limiter", id)],
          capacity: capacityOf(spec),
          ...makeTakes(id, spec, storeEntry),
          spanAttributes: { "rate_sync.limiter": id, "rate_sync.store": storeId }
        })
        return Effect.void
      })

    /**
     * Each store is built in its own child scope of the registry's scope: closed at once when the
     * build fails (a pool opened before a later step failed is not kept until the registry
     * closes), and when the store is replaced by a new one under the same id.
     */
    const configureStore = (id: string, input: StoreInput): Effect.Effect<void, ConfigError | StoreUnavailable> =>
      Effect.suspend(() => {
        if (typeof id !== "string" || id.length === 0) {
          return Effect.fail(ConfigError.at("stores", "a store id (a non-empty string)", describeInput(id)))
        }
        return Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(Scope.fork(registryScope, ExecutionStrategy.sequential), (child) =>
            restore(Scope.extend(buildStore(id, input), child)).pipe(
              Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(child, exit) : Effect.void)),
              Effect.flatMap((store) => {
                const existing = stores.get(id)
                if (existing === undefined) {
                  stores.set(id, { id, store, scope: child, initialized: false })
                  return Effect.void
                }
                // Limiters hold the entry, so swapping its store rebinds them all; then the old
                // store's resources (connections, fibers) are released.
                const previous = existing.scope
                existing.store = store
                existing.scope = child
                existing.initialized = false
                return Scope.close(previous, Exit.void)
              })
            ))
        )
      })

    const lookup = (id: string): Effect.Effect<LimiterEntry, LimiterNotFound> => {
      const entry = limiters.get(id)
      return entry === undefined ? Effect.fail(notFound(id)) : Effect.succeed(entry)
    }

    const validCost = (entry: LimiterEntry, cost: number): InvalidCost | undefined =>
      Number.isSafeInteger(cost) && cost >= 1 && cost <= entry.capacity
        ? undefined
        : new InvalidCost({
          limiterId: entry.id,
          cost: typeof cost === "number" ? cost : Number.NaN,
          max: entry.capacity,
          received: describeInput(cost)
        })

    /** A key that is not a string (from JavaScript): what the error says. */
    const badKey = (key: unknown): ConfigError => ConfigError.at("options.key", "a string", describeInput(key))

    const recordStoreError = (entry: LimiterEntry) => {
      entry.stats.storeErrors++
      Metrics.storeErrors.unsafeUpdate(1, entry.tags)
    }

    const recordFailOpen = (entry: LimiterEntry) => {
      entry.stats.failOpenAdmits++
      Metrics.failOpen.unsafeUpdate(1, entry.tags)
    }

    /**
     * The fail-open / fail-closed policy, applied to a failed store round trip. Fail-open is for a
     * store that is unavailable; a store that answered and rejected the request itself
     * (`kind: "rejected"`, caused by the request) never admits it, whatever the policy.
     */
    const storeFailed = <A>(entry: LimiterEntry, e: StoreError, admitted: A): Effect.Effect<A, StoreUnavailable> => {
      recordStoreError(entry)
      if (entry.spec.failClosed || e.kind === "rejected") return Effect.fail(unavailable(entry.storeEntry, e))
      recordFailOpen(entry)
      return Effect.succeed(admitted)
    }

    const recordRefusal = (entry: LimiterEntry) => {
      entry.stats.refusals++
      Metrics.refusals.unsafeUpdate(1, entry.tags)
    }

    /** A wait that a caller's own timeout (set, finite, greater than 0) cut short. */
    const recordTimeout = (entry: LimiterEntry) => {
      entry.stats.timeouts++
      Metrics.timeouts.unsafeUpdate(1, entry.tags)
    }

    const recordAcquisition = (entry: LimiterEntry, now: number, waitedMs: number) => {
      const s = entry.stats
      s.totalAcquisitions++
      s.totalWaitTimeMs += waitedMs
      if (waitedMs > s.maxWaitTimeMs) s.maxWaitTimeMs = waitedMs
      s.lastAcquisitionAt = now
      Metrics.acquisitions.unsafeUpdate(1, entry.tags)
    }

    // ---------------------------------------------------------------------------------------
    // check: one decision, no waiting

    const failOpenDecision = (entry: LimiterEntry, key: string): Decision => {
      const limit = limitOf(entry.spec)
      return {
        limiterId: entry.id,
        key,
        allowed: true,
        limit,
        remaining: limit,
        resetAfterMs: 0,
        retryAfterMs: 0,
        failedOpen: true,
        spec: entry.spec
      }
    }

    type CheckResult = Effect.Effect<Decision, LimiterNotFound | StoreUnavailable | InvalidCost | ConfigError>
    /** The store's answer as a `Decision`, after the bookkeeping every answer gets. */
    const toDecision = (entry: LimiterEntry, key: string, limit: number, d: StoreDecision): Decision => {
      entry.storeEntry.initialized = true
      if (d.casRetries !== undefined) entry.stats.casFailures += d.casRetries
      return {
        limiterId: entry.id,
        key,
        allowed: d.allowed,
        limit,
        remaining: clampRemaining(d.remaining, limit),
        resetAfterMs: nonNegative(d.resetAfterMs),
        retryAfterMs: d.allowed ? 0 : nonNegative(d.retryAfterMs),
        failedOpen: false,
        spec: entry.spec
      }
    }

    /** The caller's decision from the store's answer, with its bookkeeping (synchronous). */
    const decided = (entry: LimiterEntry, key: string, limit: number, d: StoreDecision, now: number): Decision => {
      if (d.allowed) recordAcquisition(entry, now, 0)
      else recordRefusal(entry)
      return toDecision(entry, key, limit, d)
    }

    /**
     * A concurrency-only limiter's check: a peek, which takes nothing, so an allowed answer is no
     * acquisition (a refused one is a refusal, as for any check).
     */
    const peeked = (entry: LimiterEntry, key: string, limit: number, d: StoreDecision): Decision => {
      if (!d.allowed) recordRefusal(entry)
      return toDecision(entry, key, limit, d)
    }

    const check = (id: string, opts?: AcquireOptions): CheckResult =>
      // `clockWith` runs its callback when the effect runs: one step for validation and, on an
      // in-process store, the whole decision.
      Effect.clockWith((c): CheckResult => {
        const entry = limiters.get(id)
        if (entry === undefined) return Effect.fail(notFound(id))
        const key = opts?.key ?? ""
        const cost = opts?.cost ?? 1
        const invalid = validCost(entry, cost)
        if (invalid !== undefined) return Effect.fail(invalid)
        // a key that is not a string (from JavaScript): a ConfigError naming it
        if (typeof key !== "string") return Effect.fail(badKey(key))
        const sk = storeKey(key)
        const limit = limitOf(entry.spec)
        if (entry.takeNow !== undefined) {
          const now = c.unsafeCurrentTimeMillis()
          const d = entry.takeNow(sk, cost, now)
          if (d !== undefined) return Effect.succeed(decided(entry, key, limit, d, now))
        }
        const onFailure = (e: StoreError) => storeFailed(entry, e, failOpenDecision(entry, key))
        if (entry.take === undefined) {
          return Effect.matchEffect(
            entry.storeEntry.store.peek({ algorithm: "concurrency", limiter: id, key: sk, limit }),
            { onFailure, onSuccess: (d) => Effect.succeed(peeked(entry, key, limit, d)) }
          )
        }
        return Effect.matchEffect(entry.take(sk, cost, 0), {
          onFailure,
          // Runs when the store answered: the bookkeeping is synchronous, no extra effect.
          onSuccess: (d) => Effect.succeed(decided(entry, key, limit, d, c.unsafeCurrentTimeMillis()))
        })
      })

    // ---------------------------------------------------------------------------------------
    // acquire: concurrency slot (waiting with backoff or notification), then rate (reservation)

    const exceeded = (entry: LimiterEntry, key: string, reason: "rate" | "concurrency", limit: number, remaining: number, retryAfterMs: number) =>
      new RateLimitExceeded({
        limiterId: entry.id,
        key,
        reason,
        limit,
        remaining: clampRemaining(remaining, limit),
        retryAfter: Duration.millis(Number.isFinite(retryAfterMs) ? nonNegative(retryAfterMs) : FOREVER_MS)
      })

    const backoffMs = (attempt: number): Effect.Effect<number> =>
      Effect.map(Random.next, (r) => {
        const cap = Math.min(500, 10 * 2 ** Math.min(attempt, 6))
        return Math.max(1, Math.round(cap / 2 + (r * cap) / 2))
      })

    interface Slot {
      readonly release: Effect.Effect<void>
    }

    /**
     * Takes a slot, waiting (interruptibly) between attempts; each attempt and the registration
     * of its release in `scope` run uninterruptibly, so an interruption can never leak a slot.
     * Answers `undefined` when the store failed and the limiter is fail-open. `timed`: the
     * deadline comes from a timeout the caller set (so running into it is a timeout).
     */
    const acquireSlot = (
      entry: LimiterEntry,
      key: string,
      sk: string,
      maxConcurrent: number,
      deadline: number,
      timed: boolean,
      scope: Scope.Scope
    ): Effect.Effect<Slot | undefined, RateLimitExceeded | StoreUnavailable> => {
      // The store the slot is taken on: read again at each attempt, so a waiter moves to a store
      // that `configureStore` put in place meanwhile; renewals and the release go where it was taken.
      let store = entry.storeEntry.store
      const request: SlotRequest = {
        limiter: entry.id,
        key: sk,
        holder: `${processId}:${++holderSeq}`,
        limit: maxConcurrent,
        leaseMs: entry.spec.leaseMs
      }
      let released = false
      // The lease renewal of the slot once taken; stopped by `release`, early or at scope close.
      let renewFiber: Fiber.RuntimeFiber<void> | undefined
      const release: Effect.Effect<void> = Effect.uninterruptible(
        Effect.suspend(() => {
          if (released) return Effect.void
          released = true
          entry.stats.currentConcurrent--
          entry.stats.totalReleases++
          Metrics.releases.unsafeUpdate(1, entry.tags)
          Metrics.inFlight.unsafeUpdate(entry.stats.currentConcurrent, entry.tags)
          // Stop renewing before giving the slot back: a renewal after the release would find the
          // lease gone and report it lost. The loop is interruptible, so this returns promptly.
          const stopRenewing = renewFiber === undefined ? Effect.void : Fiber.interrupt(renewFiber)
          return Effect.zipRight(stopRenewing, store.releaseSlot(request)).pipe(
            Effect.timeoutOption(Duration.seconds(10)),
            Effect.catchAll((e) => {
              recordStoreError(entry)
              return Effect.logWarning(`effect-rate-sync: releasing a slot of limiter "${entry.id}" failed: ${e.message}`)
            }),
            Effect.asVoid
          )
        })
      )
      const renewEvery = Math.max(50, Math.floor(entry.spec.leaseMs / 3))
      // Answers whether to keep renewing; never renews, nor counts a lease lost, once released.
      const renewLoop: Effect.Effect<void> = Effect.sleep(Duration.millis(renewEvery)).pipe(
        Effect.zipRight(Effect.suspend(() => (released ? Effect.succeed(false) : store.renewSlot(request)))),
        Effect.flatMap((held) => {
          if (held || released) return Effect.succeed(held && !released)
          entry.stats.leasesLost++
          Metrics.leasesLost.unsafeUpdate(1, entry.tags)
          return Effect.as(
            Effect.logWarning(`effect-rate-sync: a concurrency lease of limiter "${entry.id}" expired while held`),
            false
          )
        }),
        Effect.catchAll((e) => {
          recordStoreError(entry)
          return Effect.as(Effect.logWarning(`effect-rate-sync: renewing a lease failed: ${e.message}`), true)
        }),
        Effect.repeat({ while: (continueRenewing) => continueRenewing && !released }),
        Effect.asVoid
      )
      let counted = false
      return Effect.uninterruptibleMask((restore) => {
        const attempt = (n: number): Effect.Effect<Slot | undefined, RateLimitExceeded | StoreUnavailable> =>
          Effect.suspend(() => {
            store = entry.storeEntry.store
            return store.acquireSlot(request)
          }).pipe(Effect.matchEffect({
            onFailure: (e) => storeFailed<Slot | undefined>(entry, e, undefined),
            onSuccess: (d) => {
              entry.storeEntry.initialized = true
              if (d.casRetries !== undefined) entry.stats.casFailures += d.casRetries
              if (d.acquired) {
                entry.stats.currentConcurrent++
                Metrics.inFlight.unsafeUpdate(entry.stats.currentConcurrent, entry.tags)
                return Scope.addFinalizer(scope, release).pipe(
                  // Forked from an uninterruptible region: make the loop itself interruptible again.
                  Effect.zipRight(Effect.forkIn(Effect.interruptible(renewLoop), scope)),
                  Effect.map((fiber): Slot => {
                    renewFiber = fiber
                    return { release }
                  })
                )
              }
              if (!counted) {
                counted = true
                entry.stats.maxConcurrentReached++
              }
              return Effect.flatMap(Clock.currentTimeMillis, (now) => {
                const left = deadline - now
                if (left <= 0) {
                  if (timed) recordTimeout(entry)
                  return Effect.fail(exceeded(entry, key, "concurrency", d.limit, d.limit - d.active, d.retryAfterMs))
                }
                return Effect.flatMap(backoffMs(n), (backoff) => {
                  const wait = Math.max(1, Math.min(backoff, left, d.retryAfterMs > 0 ? d.retryAfterMs : backoff))
                  const waiting = store.awaitSlot !== undefined
                    ? store.awaitSlot(entry.id, sk, wait)
                    : Effect.sleep(Duration.millis(wait))
                  return Effect.zipRight(restore(waiting), attempt(n + 1))
                })
              })
            }
          }))
        return attempt(0)
      })
    }

    /**
     * Takes rate, sleeping through a reservation. Answers whether it failed open. `timed`: the
     * deadline comes from a timeout the caller set (see `acquireSlot`).
     */
    const acquireRate = (
      entry: LimiterEntry,
      take: NonNullable<LimiterEntry["take"]>,
      key: string,
      sk: string,
      cost: number,
      deadline: number,
      timed: boolean
    ): Effect.Effect<boolean, RateLimitExceeded | StoreUnavailable> => {
      const reserves = entry.spec.algorithm === "token_bucket"
      const loop: Effect.Effect<boolean, RateLimitExceeded | StoreUnavailable> = Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => {
          const left = nonNegative(deadline - now)
          return Effect.matchEffect(take(sk, cost, Math.min(left, FOREVER_MS)), {
            onFailure: (e) => storeFailed(entry, e, true),
            onSuccess: (d) => {
              entry.storeEntry.initialized = true
              if (d.casRetries !== undefined) entry.stats.casFailures += d.casRetries
              if (d.allowed) {
                return d.delayMs > 0 ? Effect.as(Effect.sleep(Duration.millis(d.delayMs)), false) : Effect.succeed(false)
              }
              // A window frees capacity over time: sleep exactly until it may fit, then take again.
              // So does a refusal that only lost compare-and-set races (NATS): a token bucket's
              // real refusal always needs more than `left` (it could not reserve within it).
              const contended = d.casRetries !== undefined && d.casRetries > 0
              if ((!reserves || contended) && Number.isFinite(d.retryAfterMs) && d.retryAfterMs <= left) {
                return Effect.zipRight(Effect.sleep(Duration.millis(Math.max(1, d.retryAfterMs))), loop)
              }
              // The timeout cut the wait when the call could have gone through by waiting longer
              // than it allows, and it (not the store's FOREVER_MS bound) was the wait handed over.
              if (
                timed && Number.isFinite(d.retryAfterMs) && d.retryAfterMs > left && (!reserves || left < FOREVER_MS)
              ) {
                recordTimeout(entry)
              }
              return Effect.fail(exceeded(entry, key, "rate", d.limit, d.remaining, d.retryAfterMs))
            }
          })
        }
      )
      return loop
    }

    type AcquireResult = Effect.Effect<
      Permit,
      RateLimitExceeded | LimiterNotFound | StoreUnavailable | InvalidCost | ConfigError,
      Scope.Scope
    >
    const acquire = (
      id: string,
      opts?: AcquireOptions
    ): AcquireResult =>
      Effect.suspend((): AcquireResult => {
        const entry = limiters.get(id)
        if (entry === undefined) return Effect.fail(notFound(id))
        const key = opts?.key ?? ""
        if (typeof key !== "string") return Effect.fail(badKey(key))
        const cost = opts?.cost ?? 1
        const invalid = validCost(entry, cost)
        if (invalid !== undefined) return Effect.fail(invalid)
        let timeoutMs = entry.spec.timeoutMs
        if (opts?.timeout !== undefined) {
          const ms = durationInputMs(opts.timeout)
          if (ms === undefined) {
            return Effect.fail(
              ConfigError.at("options.timeout", "a duration of 0 or more (a Duration.DurationInput)", describeInput(opts.timeout))
            )
          }
          timeoutMs = ms
        }
        const sk = storeKey(key)
        // Only a timeout the caller set, that lets it wait at all, can time a wait out: a refusal
        // with no timeout, an infinite one or `timeout: 0` (`tryAcquire`) is a refusal only.
        const timed = timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)
        return Effect.gen(function*() {
          const scope = yield* Effect.scope
          const start = yield* Clock.currentTimeMillis
          const deadline = timeoutMs === undefined ? Infinity : start + nonNegative(timeoutMs)
          let slot: Slot | undefined
          let failedOpen = false
          const maxConcurrent = entry.spec.maxConcurrent
          if (maxConcurrent !== undefined) {
            slot = yield* acquireSlot(entry, key, sk, maxConcurrent, deadline, timed, scope)
            if (slot === undefined) failedOpen = true
          }
          if (entry.take !== undefined) {
            const rateFailedOpen = yield* acquireRate(entry, entry.take, key, sk, cost, deadline, timed).pipe(
              Effect.onExit((exit) => (Exit.isFailure(exit) && slot !== undefined ? slot.release : Effect.void))
            )
            failedOpen = failedOpen || rateFailedOpen
          }
          const end = yield* Clock.currentTimeMillis
          const waitedMs = end - start
          recordAcquisition(entry, end, waitedMs)
          Metrics.waitTime.unsafeUpdate(waitedMs, entry.tags)
          const permit: Permit = {
            limiterId: id,
            key,
            cost,
            waitedMs,
            failedOpen,
            release: slot?.release ?? Effect.void
          }
          return permit
        }).pipe(
          Effect.tapError((e) =>
            Effect.sync(() => {
              // A timeout was counted where the wait was cut (acquireSlot / acquireRate).
              if (e._tag === "RateLimitExceeded") recordRefusal(entry)
            })
          ),
          Effect.withSpan("RateLimiter.acquire", {
            attributes: entry.spanAttributes,
            kind: "internal",
            captureStackTrace: false
          })
        )
      })

    // Waits up to the call's own `timeout` (rate-sync's `try_acquire(timeout)`); none: answers at once.
    // The limiter's default timeout is for `acquire` only.
    const tryAcquire = (id: string, opts?: AcquireOptions) =>
      acquire(id, { key: opts?.key, cost: opts?.cost, timeout: opts?.timeout ?? 0 }).pipe(
        Effect.as(true),
        Effect.catchTag("RateLimitExceeded", () => Effect.succeed(false))
      )

    // ---------------------------------------------------------------------------------------
    // registration and inspection

    const info = (entry: LimiterEntry): LimiterInfo => ({
      id: entry.id,
      store: entry.storeEntry.id,
      engine: entry.storeEntry.store.engine,
      spec: entry.spec,
      initialized: entry.storeEntry.initialized
    })

    const metricsOf = (entry: LimiterEntry): RateLimiterMetrics => {
      const s = entry.stats
      return {
        totalAcquisitions: s.totalAcquisitions,
        totalWaitTimeMs: s.totalWaitTimeMs,
        avgWaitTimeMs: s.totalAcquisitions === 0 ? 0 : s.totalWaitTimeMs / s.totalAcquisitions,
        maxWaitTimeMs: s.maxWaitTimeMs,
        casFailures: s.casFailures,
        timeouts: s.timeouts,
        lastAcquisitionAt: s.lastAcquisitionAt,
        currentConcurrent: s.currentConcurrent,
        maxConcurrentReached: s.maxConcurrentReached,
        totalReleases: s.totalReleases,
        refusals: s.refusals,
        storeErrors: s.storeErrors,
        failOpenAdmits: s.failOpenAdmits,
        leasesLost: s.leasesLost
      }
    }

    const initializeStore = (storeEntry: StoreEntry): Effect.Effect<void, StoreUnavailable> =>
      storeEntry.initialized
        ? Effect.void
        : storeEntry.store.initialize.pipe(
          Effect.mapError((e) => unavailable(storeEntry, e)),
          Effect.tap(() =>
            Effect.sync(() => {
              storeEntry.initialized = true
            })
          )
        )

    // Stores first (limiters name them), then limiters.
    for (const [id, input] of Object.entries(options.stores ?? {})) {
      yield* configureStore(id, input)
    }
    for (const [id, definition] of Object.entries(options.limiters ?? {})) {
      yield* register(id, definition)
    }

    const service: RateLimiterService = {
      [TypeId]: TypeId,
      acquire,
      tryAcquire,
      check,
      configureLimiter: register,
      cloneLimiter: (sourceId, newId, overrides) =>
        Effect.flatMap(lookup(sourceId), (source): Effect.Effect<void, ConfigError | StoreNotFound> => {
          if (limiters.has(newId)) {
            return Effect.fail(ConfigError.at(`limiters.${newId}`, "an id that is not in use", `an existing limiter "${newId}"`))
          }
          if (overrides !== undefined) {
            // From JavaScript anything can arrive here; a misspelt override is refused, not dropped.
            if (typeof overrides !== "object" || overrides === null || Array.isArray(overrides)) {
              return Effect.fail(ConfigError.at(`limiters.${newId}`, "overrides (an object of limiter fields)", describeInput(overrides)))
            }
            const unknown = unknownField(overrides, `limiters.${newId}`)
            if (unknown !== undefined) return Effect.fail(unknown)
          }
          return register(newId, mergeDefinition(toDefinition(source.spec), overrides ?? {}))
        }),
      configureStore,
      get: (id) => Effect.map(lookup(id), info),
      list: Effect.sync(() => Array.from(limiters.values(), info)),
      listStores: Effect.sync(() =>
        Array.from(stores.values(), (s): StoreInfo => ({
          id: s.id,
          engine: s.store.engine,
          initialized: s.initialized,
          limiters: Array.from(limiters.values()).filter((l) => l.storeEntry === s).map((l) => l.id)
        }))
      ),
      metrics: (id) => Effect.map(lookup(id), metricsOf),
      initialize: (id) => Effect.flatMap(lookup(id), (entry) => initializeStore(entry.storeEntry)),
      initializeAll: Effect.suspend(() =>
        Effect.forEach(new Set(Array.from(limiters.values(), (l) => l.storeEntry)), initializeStore, { discard: true })
      ),
      reset: (id, key) =>
        Effect.flatMap(lookup(id), (entry): Effect.Effect<void, StoreUnavailable | ConfigError> => {
          // a key that is not a string (from JavaScript): a ConfigError, as for acquire and check
          if (key !== undefined && typeof key !== "string") return Effect.fail(badKey(key))
          return entry.storeEntry.store.reset(id, key === undefined ? undefined : storeKey(key)).pipe(
            Effect.mapError((e) => unavailable(entry.storeEntry, e))
          )
        })
    }
    return service
  })

const isWindow = (algorithm: LimiterDefinition["algorithm"]): boolean =>
  algorithm === "sliding_window" || algorithm === "fixed_window"

/**
 * `cloneLimiter`: an override replaces the source's field; an absent one keeps it. An override
 * that moves to the other algorithm family (token bucket / windows) drops the source's fields of
 * the family it leaves (rate, burst / limit, window): only the override can set those.
 */
const mergeDefinition = (base: LimiterDefinition, o: LimiterOverrides): LimiterDefinition => {
  const algorithm = o.algorithm ?? base.algorithm
  const switched = isWindow(algorithm) !== isWindow(base.algorithm)
  const newRate = o.rate !== undefined || o.ratePerSecond !== undefined
  const keepRate = !newRate && !switched
  return {
    store: o.store ?? base.store,
    algorithm,
    ratePerSecond: keepRate ? base.ratePerSecond : o.ratePerSecond,
    rate: keepRate ? base.rate : o.rate,
    burst: o.burst ?? (keepRate ? base.burst : undefined),
    maxConcurrent: o.maxConcurrent ?? base.maxConcurrent,
    limit: o.limit ?? (switched ? undefined : base.limit),
    window: o.window ?? (switched ? undefined : base.window),
    timeout: o.timeout ?? base.timeout,
    failClosed: o.failClosed ?? base.failClosed,
    lease: o.lease ?? base.lease
  }
}
