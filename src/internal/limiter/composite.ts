/**
 * Calls over several limits: `acquire`, `tryAcquire` and `check` of `["rpm", { limiter: "tpm",
 * cost: 500 }]`. All-or-nothing: the rate and window limits are taken in one `store.takeAll`
 * (one of them alone: its own take); concurrency slots are taken first, in a fixed order, and
 * given back when the rate part refuses.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import { describeInput, durationInputMs } from "../config/input.js"
import { storeKey } from "../../core/storeKey.js"
import type { AcquireError, CheckError, InvalidCost, LimiterNotFound, StoreUnavailable } from "../../RateLimitError.js"
import { ConfigError, RateLimitExceeded, type Violation } from "../../RateLimitError.js"
import type { AcquireOptions, CombinedDecision, CompositePermit, Decision, Limits } from "../../RateLimiter.js"
import type { CompositeDecision, RateLimitStoreService, StoreDecision, StoreError } from "../../RateLimitStore.js"
import type { Result } from "../result.js"
import { err, ok, toEffect } from "../result.js"
import type { Refused, Wait } from "./acquire.js"
import { acquireRate, Lease } from "./acquire.js"
import type { Held } from "./charge.js"
import { adjustable, chargeOf } from "./charge.js"
import { callProblem, decisionOf, failOpenDecision, FOREVER_MS, nonNegative, violation } from "./decision.js"
import type { LimiterEntry, StoreEntry } from "./entry.js"
import {
  recordAcquisition,
  recordAnswer,
  recordFailOpen,
  recordRefusal,
  recordStoreError,
  recordTimeout,
  storeFailed,
  unavailable
} from "./entry.js"

type NonEmpty<A> = readonly [A, ...Array<A>]

const mapNonEmpty = <A, B>(as: NonEmpty<A>, f: (a: A, i: number) => B): NonEmpty<B> => {
  const [head, ...tail] = as
  return [f(head, 0), ...tail.map((a, i) => f(a, i + 1))]
}

/** One limit of a call, validated: its limiter, the caller's key, the store key and the cost. */
interface Part {
  readonly entry: LimiterEntry
  readonly key: string
  readonly storeKey: string
  readonly cost: number
}

/**
 * A call over several limits, validated: its parts in the order given (each limiter once), the
 * one store they share, and the timeout (`undefined`: as long as needed).
 *
 * @internal
 */
export interface CompositeCall {
  readonly _tag: "CompositeCall"
  readonly parts: NonEmpty<Part>
  readonly storeEntry: StoreEntry
  readonly timeoutMs: number | undefined
}

const limitFields: ReadonlyArray<string> = ["limiter", "key", "cost"]

const noTakeAll = (storeEntry: StoreEntry): ConfigError =>
  ConfigError.at(
    `stores.${storeEntry.id}`,
    "a store with takeAll (several rate limits taken as one unit)",
    `the "${storeEntry.store.engine}" store, which has none`
  )

/** The shortest default timeout of the call's limiters (`undefined`: none has one). */
const defaultTimeout = (parts: ReadonlyArray<Part>): number | undefined => {
  let ms: number | undefined
  for (const p of parts) {
    const t = p.entry.spec.timeoutMs
    if (t !== undefined && (ms === undefined || t < ms)) ms = t
  }
  return ms
}

/**
 * A call's limits and options, validated in one order (the array, then each limit: its limiter,
 * key and cost; then the store they share; then the timeout), or what is wrong with them. From
 * JavaScript anything can arrive.
 *
 * @internal
 */
export const resolveCall = (
  limiters: ReadonlyMap<string, LimiterEntry>,
  notFound: (id: string) => LimiterNotFound,
  limits: Limits,
  opts: AcquireOptions | undefined
): CompositeCall | ConfigError | InvalidCost | LimiterNotFound => {
  if (!Array.isArray(limits) || limits.length === 0) {
    return ConfigError.at("limits", "a non-empty array of limiter ids or { limiter, key?, cost? }", describeInput(limits))
  }
  const defaultKey = opts?.key ?? ""
  if (typeof defaultKey !== "string") return ConfigError.at("options.key", "a string", describeInput(defaultKey))
  const parts: Array<Part> = []
  const seen = new Set<string>()
  for (let i = 0; i < limits.length; i++) {
    const limit = limits[i]
    const at = `limits[${i}]`
    // Typed, but checked: from JavaScript anything can arrive.
    let limiterId: string
    let key = defaultKey
    let cost = opts?.cost
    if (typeof limit === "string") {
      limiterId = limit
    } else if (typeof limit === "object" && limit !== null && !Array.isArray(limit)) {
      for (const field of Object.keys(limit)) {
        if (!limitFields.includes(field)) {
          return ConfigError.at(`${at}.${field}`, "one of the limit fields: limiter, key, cost", "an unknown field")
        }
      }
      limiterId = limit.limiter
      if (limit.key !== undefined) {
        if (typeof limit.key !== "string") return ConfigError.at(`${at}.key`, "a string", describeInput(limit.key))
        key = limit.key
      }
      if (limit.cost !== undefined) cost = limit.cost
    } else {
      return ConfigError.at(at, "a limiter id or { limiter, key?, cost? }", describeInput(limit))
    }
    if (typeof limiterId !== "string") return ConfigError.at(`${at}.limiter`, "a limiter id (a string)", describeInput(limiterId))
    const entry = limiters.get(limiterId)
    if (entry === undefined) return notFound(limiterId)
    if (seen.has(limiterId)) {
      return ConfigError.at(`${at}.limiter`, "a limiter not already in the call", `"${limiterId}" a second time`)
    }
    seen.add(limiterId)
    const problem = callProblem(entry, { cost })
    if (problem !== undefined) return problem
    parts.push({ entry, key, storeKey: storeKey(key), cost: cost ?? 1 })
  }
  const [first, ...rest] = parts
  if (first === undefined) {
    return ConfigError.at("limits", "a non-empty array of limiter ids or { limiter, key?, cost? }", "an empty array")
  }
  const storeEntry = first.entry.storeEntry
  if (rest.some((p) => p.entry.storeEntry !== storeEntry)) {
    return ConfigError.at(
      "limits",
      "limiters on one store (a call over several limits is one store operation)",
      parts.map((p) => `"${p.entry.id}" on store "${p.entry.storeEntry.id}"`).join(", ")
    )
  }
  if (parts.filter((p) => p.entry.take !== undefined).length > 1 && storeEntry.store.takeAll === undefined) {
    return noTakeAll(storeEntry)
  }
  let timeoutMs = defaultTimeout(parts)
  if (opts?.timeout !== undefined) {
    const ms = durationInputMs(opts.timeout)
    if (ms === undefined) {
      return ConfigError.at(
        "options.timeout",
        `a duration of 0 or more (a ${Fx.durationInputName})`,
        describeInput(opts.timeout)
      )
    }
    timeoutMs = ms
  }
  return { _tag: "CompositeCall", parts: [first, ...rest], storeEntry, timeoutMs }
}

// ---------------------------------------------------------------------------------------------
// store answers

/**
 * The fail-open / fail-closed policy for one store failure shared by several limiters: the call
 * fails with `StoreUnavailable` when any of them is fail-closed (or the store rejected the
 * request), else it goes through, counted as a fail-open admission on each.
 */
const storeFailedAll = <A>(
  entries: ReadonlyArray<LimiterEntry>,
  storeEntry: StoreEntry,
  e: StoreError,
  admitted: A
): Effect.Effect<A, StoreUnavailable> => {
  for (const entry of entries) recordStoreError(entry)
  if (e.kind === "rejected" || entries.some((entry) => entry.spec.failClosed)) {
    return Effect.fail(unavailable(storeEntry, e))
  }
  for (const entry of entries) recordFailOpen(entry)
  return Effect.succeed(admitted)
}

/** A `takeAll` answer's bookkeeping: the store is up; compare-and-set retries per limiter. */
const answered = (parts: ReadonlyArray<Part>, cd: CompositeDecision): void => {
  parts.forEach((p, i) => {
    recordAnswer(p.entry, cd.decisions[i]?.casRetries ?? cd.casRetries)
  })
}

/** The takes of the rate parts, each with the wait the call allows. */
const takesOf = (parts: ReadonlyArray<Part>, maxWaitMs: number) =>
  parts.flatMap((p) => {
    const take = p.entry.rateTake?.(p.storeKey, p.cost, maxWaitMs)
    return take === undefined ? [] : [take]
  })

/** The violations of a refused `takeAll`: the takes that refused (all of them if the store named none). */
const violationsOf = (parts: ReadonlyArray<Part>, cd: CompositeDecision): NonEmpty<Violation> | undefined => {
  const refused: Array<Violation> = []
  const all: Array<Violation> = []
  parts.forEach((p, i) => {
    const d = cd.decisions[i]
    if (d === undefined) return
    const v = violation(p.entry, p.key, "rate", d.limit, d.remaining, d.retryAfterMs)
    all.push(v)
    if (!d.allowed) refused.push(v)
  })
  const [head, ...tail] = refused.length > 0 ? refused : all
  return head === undefined ? undefined : [head, ...tail]
}

// ---------------------------------------------------------------------------------------------
// acquire

type Takes = ReadonlyArray<StoreDecision> | undefined

/**
 * Takes every rate and window part in one `takeAll`, waiting within the call's deadline: only
 * token buckets reserve (the store books every bucket; the call sleeps the largest wait); a call
 * holding a window is admitted now or refused, and then sleeps the largest `retryAfterMs` and
 * asks again while the deadline allows. Answers the decisions (one per part), or `undefined` when
 * the store failed and the call goes through fail-open.
 */
const takeAllRates = (
  storeEntry: StoreEntry,
  parts: ReadonlyArray<Part>,
  wait: Wait,
  takeAll: NonNullable<RateLimitStoreService["takeAll"]>
): Effect.Effect<Takes, Refused> => {
  const onlyBuckets = parts.every((p) => p.entry.spec.algorithm === "token_bucket")
  const entries = parts.map((p) => p.entry)
  const loop: Effect.Effect<Takes, Refused> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const left = nonNegative(wait.deadline - now)
    // The store in place now (a `configureStore` may have replaced it while the call waited).
    const store = storeEntry.store
    const current = store.takeAll ?? takeAll
    return Effect.matchEffect(current(takesOf(parts, Math.min(left, FOREVER_MS))), {
      // replaced under the call (the old store closed): the store in place now decides, not the
      // fail-open policy
      onFailure: (e) => store !== storeEntry.store ? loop : storeFailedAll<Takes>(entries, storeEntry, e, undefined),
      onSuccess: (cd): Effect.Effect<Takes, Refused> => {
        answered(parts, cd)
        if (cd.allowed) {
          return cd.delayMs > 0
            ? Effect.as(Effect.sleep(Duration.millis(cd.delayMs)), cd.decisions)
            : Effect.succeed(cd.decisions)
        }
        const violations = violationsOf(parts, cd)
        if (violations === undefined) {
          // A store answering no decision at all: a bug of the store, not a refusal to wait on.
          return Effect.die(new Error(`takeAll of the "${storeEntry.store.engine}" store answered no decision`))
        }
        // The slowest limit: the call can go through no sooner (an endless wait is FOREVER_MS).
        let retryMs = 0
        for (const v of violations) retryMs = Math.max(retryMs, Duration.toMillis(v.retryAfter))
        const contended = cd.contended === true
        if ((!onlyBuckets || contended) && retryMs < FOREVER_MS && retryMs <= left) {
          return Effect.andThen(Effect.sleep(Duration.millis(Math.max(1, retryMs))), loop)
        }
        if (wait.timed && retryMs < FOREVER_MS && retryMs > left && (!onlyBuckets || left < FOREVER_MS)) {
          for (const v of violations) {
            const p = parts.find((x) => x.entry.id === v.limiterId)
            if (p !== undefined) recordTimeout(p.entry)
          }
        }
        return Effect.fail(RateLimitExceeded.fromViolations(violations))
      }
    })
  })
  return loop
}

/** The rate and window parts: none, one (its own take), or several (`takeAll`). */
const acquireRates = (
  storeEntry: StoreEntry,
  parts: ReadonlyArray<Part>,
  wait: Wait
): Effect.Effect<Takes, Refused> => {
  const [only, ...others] = parts
  if (only === undefined) return Effect.succeed([])
  if (others.length === 0) {
    const take = only.entry.take
    if (take === undefined) return Effect.succeed([])
    return Effect.map(acquireRate(only.entry, take, only, wait), (d) => (d === undefined ? undefined : [d]))
  }
  const takeAll = storeEntry.store.takeAll
  if (takeAll === undefined) return Effect.die(noTakeAll(storeEntry))
  return takeAllRates(storeEntry, parts, wait, takeAll)
}

/** The order slots are taken in, the same for every caller: by limiter id, then store key. */
const slotOrder = (parts: ReadonlyArray<Part>): ReadonlyArray<Part> =>
  parts
    .filter((p) => p.entry.spec.maxConcurrent !== undefined)
    .sort((a, b) =>
      a.entry.id < b.entry.id ? -1 : a.entry.id > b.entry.id ? 1 : a.storeKey < b.storeKey ? -1 : a.storeKey > b.storeKey ? 1 : 0
    )

type Outcome = "admitted" | "refused" | "failed_open" | "error"

/** The span attributes of one ended call: never a key (it may be personal data), only whether one was given. */
const annotate = (span: Tracer.Span, cc: CompositeCall, outcome: Outcome, waitedMs: number): void => {
  span.attribute("rate_sync.outcome", outcome)
  span.attribute("rate_sync.wait_ms", waitedMs)
  span.attribute("rate_sync.cost", cc.parts.reduce((n, p) => n + p.cost, 0))
  span.attribute("rate_sync.key_present", cc.parts.some((p) => p.key !== ""))
}

const acquireAllInSpan = (
  cc: CompositeCall,
  holder: () => string,
  span: Tracer.Span
): Effect.Effect<Result<CompositePermit, RateLimitExceeded>, Exclude<AcquireError, RateLimitExceeded>, Scope.Scope> => {
  let start = 0
  return Effect.gen(function*() {
    start = yield* Clock.currentTimeMillis
    const scope = yield* Effect.scope
    const { timeoutMs } = cc
    const wait: Wait = {
      deadline: timeoutMs === undefined ? Infinity : start + nonNegative(timeoutMs),
      timed: timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)
    }
    const leases: Array<Lease> = []
    const releaseAll = Effect.suspend(() => Effect.forEach(leases, (lease) => lease.release, { discard: true }))
    const releaseOnFailure = <A, E>(exit: Exit.Exit<A, E>) => (Exit.isFailure(exit) ? releaseAll : Effect.void)
    let failedOpen = false
    for (const part of slotOrder(cc.parts)) {
      const lease = new Lease(part.entry, part, wait, holder(), part.entry.spec.maxConcurrent ?? 0)
      if (yield* lease.take(scope).pipe(Effect.onExit(releaseOnFailure))) leases.push(lease)
      else failedOpen = true
    }
    const rateParts = cc.parts.filter((p) => p.entry.take !== undefined)
    const decisions = yield* acquireRates(cc.storeEntry, rateParts, wait).pipe(Effect.onExit(releaseOnFailure))
    if (decisions === undefined) failedOpen = true
    const end = yield* Clock.currentTimeMillis
    const waitedMs = end - start
    for (const p of cc.parts) {
      recordAcquisition(p.entry, end, waitedMs)
      p.entry.series.waitTime(waitedMs)
    }
    annotate(span, cc, failedOpen ? "failed_open" : "admitted", waitedMs)
    const held: Array<Held> = cc.parts.map((p) => {
      const i = rateParts.indexOf(p)
      return {
        limiterId: p.entry.id,
        charge: i < 0 ? undefined : chargeOf(p.entry, p.key, p.storeKey, p.cost, decisions?.[i])
      }
    })
    const permit: CompositePermit = {
      limits: cc.parts.map((p) => ({ limiterId: p.entry.id, key: p.key, cost: p.cost })),
      waitedMs,
      failedOpen,
      release: releaseAll,
      ...adjustable(held)
    }
    return ok(permit)
  }).pipe(
    Fx.catchAll((e) =>
      Effect.clockWith((clock) => {
        annotate(span, cc, e._tag === "RateLimitExceeded" ? "refused" : "error", Fx.nowMillisUnsafe(clock) - start)
        if (e._tag !== "RateLimitExceeded") return Effect.fail(e)
        // Each limit that refused counts the refusal; the timeouts were counted where the wait was cut.
        for (const v of e.violations) {
          const p = cc.parts.find((x) => x.entry.id === v.limiterId)
          if (p !== undefined) recordRefusal(p.entry)
        }
        return Effect.succeed(err(e))
      })
    )
  )
}

/**
 * `acquire` over several limits, in its span `RateLimiter.acquire` (attribute
 * `rate_sync.limiter`: the ids, comma-separated); a refusal is raised again outside it.
 *
 * @internal
 */
export const acquireAll = (
  cc: CompositeCall,
  holder: () => string
): Effect.Effect<CompositePermit, AcquireError, Scope.Scope> =>
  Effect.flatMap(
    Effect.useSpan(
      "RateLimiter.acquire",
      {
        attributes: {
          "rate_sync.limiter": cc.parts.map((p) => p.entry.id).join(","),
          "rate_sync.store": cc.storeEntry.id
        },
        kind: "internal",
        ...Fx.noSpanStack
      },
      (span) => Effect.withParentSpan(acquireAllInSpan(cc, holder, span), span)
    ),
    toEffect
  )

// ---------------------------------------------------------------------------------------------
// check

/** The decision of one part the store could not answer, by its limiter's policy. */
const peekFailed = (p: Part, e: StoreError): Effect.Effect<Decision, StoreUnavailable> =>
  storeFailed(p.entry, e, failOpenDecision(p.entry, p.key))

/**
 * The combined answer: allowed when the call was (every limit charged); the binding decision is
 * the refusal with the largest wait, or the limit nearest to refusing when allowed.
 */
const combine = (allowed: boolean, decisions: NonEmpty<Decision>): CombinedDecision => {
  const violations = allowed ? [] : decisions.filter((d) => !d.allowed)
  const [first] = decisions
  let binding = first
  let retryAfterMs = 0
  if (allowed) {
    const ratio = (d: Decision) => (d.limit > 0 ? d.remaining / d.limit : 0)
    for (const d of decisions) if (ratio(d) < ratio(binding)) binding = d
  } else {
    const candidates = violations.length > 0 ? violations : decisions
    binding = candidates[0] ?? first
    for (const d of candidates) if (d.retryAfterMs > binding.retryAfterMs) binding = d
    retryAfterMs = binding.retryAfterMs
  }
  return {
    allowed,
    decisions,
    violations,
    binding,
    retryAfterMs,
    failedOpen: decisions.some((d) => d.failedOpen)
  }
}

/**
 * `check` over several limits: no waiting, consumes only when every limit admits. A
 * concurrency-only limit is peeked (as a single `check` does); when a peek refuses, the rate
 * parts are peeked too (with their cost), so nothing is charged and each still answers.
 *
 * @internal
 */
export const checkAll = (cc: CompositeCall): Effect.Effect<CombinedDecision, CheckError> =>
  Effect.clockWith((clock) => {
    // An in-process store decides the whole call in one synchronous step, as a single `check` does.
    const sync = cc.storeEntry.store.unsafeTake?.takeAll
    if (sync !== undefined && cc.parts.length > 1 && cc.parts.every((p) => p.entry.take !== undefined)) {
      const now = Fx.nowMillisUnsafe(clock)
      const cd = sync(takesOf(cc.parts, 0), now)
      answered(cc.parts, cd)
      const decisions = mapNonEmpty(cc.parts, (p, i): Decision => {
        const d = cd.decisions[i]
        return d === undefined ? failOpenDecision(p.entry, p.key) : decisionOf(p.entry, p.key, d)
      })
      checked(cc, cd.allowed, decisions, now)
      return Effect.succeed(combine(cd.allowed, decisions))
    }
    return checkAllAsync(cc)
  })

/** An answered composite check's bookkeeping, per limiter (see {@link checkAll}). */
const checked = (cc: CompositeCall, allowed: boolean, decisions: NonEmpty<Decision>, now: number): void => {
  cc.parts.forEach((p, i) => {
    const d = decisions[i]
    if (d === undefined || d.failedOpen) return
    if (allowed) {
      // a concurrency-only limit was only peeked: no acquisition (as for a single check)
      if (p.entry.take !== undefined) recordAcquisition(p.entry, now, 0)
    } else if (!d.allowed) {
      recordRefusal(p.entry)
    }
  })
}

const checkAllAsync = (cc: CompositeCall): Effect.Effect<CombinedDecision, CheckError> =>
  Effect.gen(function*() {
    const store = cc.storeEntry.store
    const answers = new Map<Part, Decision>()
    let peekRefused = false
    for (const p of cc.parts) {
      if (p.entry.take !== undefined) continue
      const d = yield* Effect.matchEffect(store.peek(p.entry.peekRequest(p.storeKey, p.cost)), {
        onFailure: (e) => peekFailed(p, e),
        onSuccess: (d) => {
          recordAnswer(p.entry, d.casRetries)
          return Effect.succeed(decisionOf(p.entry, p.key, d))
        }
      })
      answers.set(p, d)
      if (!d.allowed) peekRefused = true
    }
    const rateParts = cc.parts.filter((p) => p.entry.take !== undefined)
    let rateAllowed = true
    if (peekRefused) {
      // Refused already: read what each rate limit alone would answer, spending nothing.
      for (const p of rateParts) {
        const d = yield* Effect.matchEffect(store.peek(p.entry.peekRequest(p.storeKey, p.cost)), {
          onFailure: (e) => {
            recordStoreError(p.entry)
            return p.entry.spec.failClosed || e.kind === "rejected"
              ? Effect.fail(unavailable(cc.storeEntry, e))
              : Effect.succeed(failOpenDecision(p.entry, p.key))
          },
          onSuccess: (d) => {
            recordAnswer(p.entry, d.casRetries)
            return Effect.succeed(decisionOf(p.entry, p.key, d))
          }
        })
        answers.set(p, d)
      }
    } else if (rateParts.length === 1) {
      const [p] = rateParts
      const take = p?.entry.take
      if (p !== undefined && take !== undefined) {
        const d = yield* Effect.matchEffect(take(p.storeKey, p.cost, 0), {
          onFailure: (e) => peekFailed(p, e),
          onSuccess: (d) => {
            recordAnswer(p.entry, d.casRetries)
            return Effect.succeed(decisionOf(p.entry, p.key, d))
          }
        })
        rateAllowed = d.allowed
        answers.set(p, d)
      }
    } else if (rateParts.length > 1) {
      const takeAll = store.takeAll
      if (takeAll === undefined) return yield* Effect.fail(noTakeAll(cc.storeEntry))
      const entries = rateParts.map((p) => p.entry)
      const cd = yield* Effect.matchEffect(takeAll(takesOf(rateParts, 0)), {
        onFailure: (e) => storeFailedAll<CompositeDecision | undefined>(entries, cc.storeEntry, e, undefined),
        onSuccess: (cd) => Effect.succeed<CompositeDecision | undefined>(cd)
      })
      if (cd === undefined) {
        for (const p of rateParts) answers.set(p, failOpenDecision(p.entry, p.key))
      } else {
        answered(rateParts, cd)
        rateAllowed = cd.allowed
        rateParts.forEach((p, i) => {
          const d = cd.decisions[i]
          answers.set(p, d === undefined ? failOpenDecision(p.entry, p.key) : decisionOf(p.entry, p.key, d))
        })
      }
    }
    const allowed = !peekRefused && rateAllowed
    const decisions = mapNonEmpty(cc.parts, (p): Decision => answers.get(p) ?? failOpenDecision(p.entry, p.key))
    checked(cc, allowed, decisions, yield* Clock.currentTimeMillis)
    return combine(allowed, decisions)
  })
