/**
 * What a limiter answers from a store's answer: the caller's `Decision`, the `RateLimitExceeded`
 * of a refusal, and the one validation of a call's options that `check` and `acquire` share.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Duration from "effect/Duration"
import { describeInput, durationInputMs } from "../config/input.js"
import { ConfigError, InvalidCost, RateLimitExceeded, type Violation } from "../../RateLimitError.js"
import type { AcquireOptions, Decision } from "../../RateLimiter.js"
import type { StoreDecision } from "../../RateLimitStore.js"
import { storeKey } from "../../core/storeKey.js"
import type { LimiterEntry } from "./entry.js"
import { recordAcquisition, recordAnswer, recordRefusal } from "./entry.js"

/**
 * The wait bound handed to a store when the caller will wait as long as needed: about 31 years,
 * finite so every store can encode it (also in integer microseconds).
 *
 * @internal
 */
export const FOREVER_MS = 1e12

/** @internal */
export const nonNegative = (ms: number): number => (ms > 0 ? ms : 0)

/** Whole units left, in `[0, limit]`. @internal */
export const clampRemaining = (remaining: number, limit: number): number =>
  Number.isFinite(remaining) ? Math.min(limit, Math.max(0, Math.floor(remaining))) : remaining > 0 ? limit : 0

// ---------------------------------------------------------------------------------------------
// the options of one call

/**
 * One call's options, validated: the caller's key, the key handed to the store, the cost, and
 * the timeout (`undefined`: wait as long as needed).
 *
 * @internal
 */
export interface Call {
  readonly _tag: "Call"
  readonly key: string
  readonly storeKey: string
  readonly cost: number
  readonly timeoutMs: number | undefined
}

/**
 * What is wrong with a call's options, checked in one order for every operation (key, cost,
 * timeout), so `check` and `acquire` fail the same way on the same bad input; `undefined` when
 * nothing is. From JavaScript anything can arrive. Allocates nothing for valid options (`check`
 * is on every HTTP request's path).
 *
 * @internal
 */
export const callProblem = (
  entry: LimiterEntry,
  opts: AcquireOptions | undefined
): ConfigError | InvalidCost | undefined => {
  if (opts === undefined) return undefined
  const key = opts.key ?? ""
  if (typeof key !== "string") return ConfigError.at("options.key", "a string", describeInput(key))
  const cost = opts.cost ?? 1
  if (!(Number.isSafeInteger(cost) && cost >= 1 && cost <= entry.capacity)) {
    return new InvalidCost({
      limiterId: entry.id,
      cost: typeof cost === "number" ? cost : Number.NaN,
      max: entry.capacity,
      received: describeInput(cost)
    })
  }
  if (opts.timeout !== undefined && durationInputMs(opts.timeout) === undefined) return badTimeout(opts.timeout)
  return undefined
}

const badTimeout = (timeout: unknown): ConfigError =>
  ConfigError.at("options.timeout", `a duration of 0 or more (a ${Fx.durationInputName})`, describeInput(timeout))

/**
 * A call's options, validated by {@link callProblem}, as the values `acquire` works with.
 *
 * @internal
 */
export const validateCall = (
  entry: LimiterEntry,
  opts: AcquireOptions | undefined
): Call | ConfigError | InvalidCost => {
  // key and cost as `check` validates them; the timeout is decoded once, here
  const problem = callProblem(entry, opts === undefined ? undefined : { key: opts.key, cost: opts.cost })
  if (problem !== undefined) return problem
  let timeoutMs = entry.spec.timeoutMs
  if (opts?.timeout !== undefined) {
    const ms = durationInputMs(opts.timeout)
    if (ms === undefined) return badTimeout(opts.timeout)
    timeoutMs = ms
  }
  const key = opts?.key ?? ""
  return { _tag: "Call", key, storeKey: storeKey(key), cost: opts?.cost ?? 1, timeoutMs }
}

// ---------------------------------------------------------------------------------------------
// decisions

/** The decision of a fail-open admission: everything left, nothing to wait. @internal */
export const failOpenDecision = (entry: LimiterEntry, key: string): Decision => ({
  limiterId: entry.id,
  key,
  allowed: true,
  limit: entry.limit,
  remaining: entry.limit,
  resetAfterMs: 0,
  retryAfterMs: 0,
  failedOpen: true,
  spec: entry.spec
})

/** The store's answer as a `Decision`, after the bookkeeping every answer gets. */
const toDecision = (entry: LimiterEntry, key: string, d: StoreDecision): Decision => {
  recordAnswer(entry, d.casRetries)
  return decisionOf(entry, key, d)
}

/** The store's answer as a `Decision`, its numbers clamped; no bookkeeping. @internal */
export const decisionOf = (entry: LimiterEntry, key: string, d: StoreDecision): Decision => ({
  limiterId: entry.id,
  key,
  allowed: d.allowed,
  limit: entry.limit,
  remaining: clampRemaining(d.remaining, entry.limit),
  resetAfterMs: nonNegative(d.resetAfterMs),
  retryAfterMs: d.allowed ? 0 : nonNegative(d.retryAfterMs),
  failedOpen: false,
  spec: entry.spec
})

/** The caller's decision from a take's answer, with its bookkeeping (synchronous). @internal */
export const decided = (entry: LimiterEntry, key: string, d: StoreDecision, now: number): Decision => {
  if (d.allowed) recordAcquisition(entry, now, 0)
  else recordRefusal(entry)
  return toDecision(entry, key, d)
}

/**
 * A concurrency-only limiter's check: a peek, which takes nothing, so an allowed answer is no
 * acquisition (a refused one is a refusal, as for any check).
 *
 * @internal
 */
export const peeked = (entry: LimiterEntry, key: string, d: StoreDecision): Decision => {
  if (!d.allowed) recordRefusal(entry)
  return toDecision(entry, key, d)
}

/**
 * One limit's refusal, its numbers clamped as a `Decision`'s are (an infinite wait is reported
 * as {@link FOREVER_MS}).
 *
 * @internal
 */
export const violation = (
  entry: LimiterEntry,
  key: string,
  reason: "rate" | "concurrency",
  limit: number,
  remaining: number,
  retryAfterMs: number
): Violation => ({
  limiterId: entry.id,
  key,
  reason,
  limit,
  remaining: clampRemaining(remaining, limit),
  retryAfter: Duration.millis(Number.isFinite(retryAfterMs) ? nonNegative(retryAfterMs) : FOREVER_MS)
})

/**
 * The refusal of one limit: a `RateLimitExceeded` with its one violation (the error
 * `RateLimitExceeded.fromViolations` makes of it). Built without the schema's validation of its
 * fields: they are this module's own clamped numbers, and validating them cost about 0.5 ms a
 * refusal (measured: 456 µs against 20 µs), which capped refused `acquire`/`tryAcquire` calls,
 * block-cache answers included, near 1 200/s.
 *
 * Built without capturing a stack trace either (`Error.stackTraceLimit` 0 while it is made, as
 * Effect does for its own pretty errors): a refusal is an answer, and its stack would only show
 * the fiber runtime's frames; capturing it was the largest single cost of a refused `acquire` on
 * the memory store (about a fifth of it, with the garbage it left). Its `stack` is the header line
 * (`RateLimitExceeded: <message>`).
 *
 * @internal
 */
export const exceeded = (
  entry: LimiterEntry,
  key: string,
  reason: "rate" | "concurrency",
  limit: number,
  remaining: number,
  retryAfterMs: number
): RateLimitExceeded => {
  const v = violation(entry, key, reason, limit, remaining, retryAfterMs)
  const stackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return new RateLimitExceeded({ ...v, violations: [v] }, unchecked)
  } finally {
    Error.stackTraceLimit = stackTraceLimit
  }
}

/**
 * A refusal of one limit before it is an error: the numbers {@link exceeded} makes a
 * `RateLimitExceeded` of, built only by `error()`. `tryAcquire` answers `false` from it without
 * building the error; `acquire` builds it when it fails with it.
 *
 * @internal
 */
export class Refusal {
  constructor(
    readonly entry: LimiterEntry,
    readonly key: string,
    readonly reason: "rate" | "concurrency",
    readonly limit: number,
    readonly remaining: number,
    readonly retryAfterMs: number
  ) {}

  error(): RateLimitExceeded {
    return exceeded(this.entry, this.key, this.reason, this.limit, this.remaining, this.retryAfterMs)
  }
}

/**
 * The constructor option that skips a schema class's validation, spelled for both majors: Effect 3
 * reads `disableValidation`, Effect 4 `disableChecks`. A variable, not a literal, so each major's
 * `MakeOptions` accepts the field it does not know.
 */
const unchecked: { readonly disableValidation: true; readonly disableChecks: true } = {
  disableValidation: true,
  disableChecks: true
}
