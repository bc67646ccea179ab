/**
 * What a permit charged, and how it changes afterwards: `permit.adjust` and `permit.refund` over
 * `store.adjust`, one round trip per limit.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { describeInput } from "../config/input.js"
import { ConfigError, type StoreUnavailable } from "../../RateLimitError.js"
import type { AdjustDelta, Adjustable, Adjustment } from "../../RateLimiter.js"
import type { RateTake, StoreDecision } from "../../RateLimitStore.js"
import { clearBlocks } from "./blockCache.js"
import { clampRemaining, nonNegative } from "./decision.js"
import type { LimiterEntry } from "./entry.js"
import { recordAnswer, recordStoreError, unavailable } from "./entry.js"

/**
 * One rate or window limit a permit charged: the take as the store saw it (its parameters at the
 * time of the call, the store key), the `ref` of the store's decision, and what the permit holds
 * on it now (`held`: the cost plus every applied adjustment). `failedOpen`: the store failed and
 * the call went through without charging, so there is nothing to adjust.
 *
 * @internal
 */
export interface Charge {
  readonly entry: LimiterEntry
  readonly key: string
  readonly take: RateTake
  readonly ref: string | undefined
  readonly failedOpen: boolean
  held: number
}

/** A limit a permit holds, by limiter id: its charge, or none for a concurrency-only one. @internal */
export interface Held {
  readonly limiterId: string
  readonly charge: Charge | undefined
}

/** The charge of a take the store answered (`d`), or of a fail-open pass (`d` undefined). @internal */
export const chargeOf = (
  entry: LimiterEntry,
  key: string,
  storeKey: string,
  cost: number,
  d: StoreDecision | undefined
): Charge | undefined => {
  const take = entry.rateTake?.(storeKey, cost, 0)
  if (take === undefined) return undefined
  return { entry, key, take, ref: d?.ref, failedOpen: d === undefined, held: d === undefined ? 0 : cost }
}

const badDelta = (path: string, u: unknown): ConfigError =>
  ConfigError.at(path, "a whole number (units to charge; negative to give back)", describeInput(u))

const notAdjustable = (path: string, limiterId: string): ConfigError =>
  ConfigError.at(
    path,
    "a rate or window limit (concurrency slots are not adjustable)",
    `the concurrency-only limiter "${limiterId}"`
  )

/** The targets of `delta`: each charge with the delta asked of it, or what is wrong with `delta`. */
const targetsOf = (
  held: ReadonlyArray<Held>,
  delta: AdjustDelta
): ReadonlyArray<readonly [Charge, number]> | ConfigError => {
  if (typeof delta === "number") {
    if (!Number.isSafeInteger(delta)) return badDelta("delta", delta)
    const targets: Array<readonly [Charge, number]> = []
    for (const h of held) if (h.charge !== undefined) targets.push([h.charge, delta])
    if (targets.length === 0) {
      const first = held[0]
      return notAdjustable("delta", first === undefined ? "" : first.limiterId)
    }
    return targets
  }
  // From JavaScript anything can arrive.
  if (typeof delta !== "object" || delta === null || Array.isArray(delta)) {
    return ConfigError.at("delta", "a whole number, or a record of them by limiter id", describeInput(delta))
  }
  const targets: Array<readonly [Charge, number]> = []
  for (const [limiterId, d] of Object.entries(delta)) {
    const path = `delta.${limiterId}`
    const h = held.find((x) => x.limiterId === limiterId)
    if (h === undefined) {
      return ConfigError.at(
        path,
        `a limiter the permit holds (${held.map((x) => `"${x.limiterId}"`).join(", ")})`,
        `"${limiterId}"`
      )
    }
    if (h.charge === undefined) return notAdjustable(path, limiterId)
    if (typeof d !== "number" || !Number.isSafeInteger(d)) return badDelta(path, d)
    targets.push([h.charge, d])
  }
  return targets
}

/**
 * Applies `delta` to one charge: a give-back is clipped to what the permit holds, and booked on
 * `held` before the round trip, so concurrent adjustments of one permit never give back more
 * than it holds; corrected by what the store actually applied (or undone when it failed).
 */
const adjustOne = (charge: Charge, delta: number): Effect.Effect<Adjustment, ConfigError | StoreUnavailable> =>
  Effect.suspend((): Effect.Effect<Adjustment, ConfigError | StoreUnavailable> => {
    const { entry } = charge
    const storeEntry = entry.storeEntry
    const requested = Math.max(delta, 0 - charge.held)
    if (charge.failedOpen) {
      return Effect.succeed({
        limiterId: entry.id,
        key: charge.key,
        requested: 0,
        applied: 0,
        charged: 0,
        remaining: entry.limit,
        resetAfterMs: 0
      })
    }
    const adjust = storeEntry.store.adjust
    if (adjust === undefined) {
      return Effect.fail(
        ConfigError.at(
          `stores.${storeEntry.id}`,
          "a store with adjust (a permit's charge changed after the fact)",
          `the "${storeEntry.store.engine}" store, which has none`
        )
      )
    }
    charge.held += requested
    return Effect.matchEffect(adjust({ take: charge.take, delta: requested, ref: charge.ref }), {
      onFailure: (e) => {
        charge.held -= requested
        recordStoreError(entry)
        return Effect.fail(unavailable(storeEntry, e))
      },
      onSuccess: (r) => {
        recordAnswer(entry, undefined)
        // capacity given back: the key's block no longer says what the store answers
        if (r.applied < 0) clearBlocks(entry, charge.take.key)
        charge.held += r.applied - requested
        return Effect.succeed({
          limiterId: entry.id,
          key: charge.key,
          requested,
          applied: r.applied,
          charged: charge.held,
          remaining: clampRemaining(r.remaining, entry.limit),
          resetAfterMs: nonNegative(r.resetAfterMs)
        })
      }
    })
  })

/**
 * `adjust` and `refund` of a permit holding `held` (one per limit of the call, in its order).
 *
 * @internal
 */
export const adjustable = (held: ReadonlyArray<Held>): Adjustable => {
  const run = (targets: ReadonlyArray<readonly [Charge, number]>) =>
    Effect.forEach(targets, ([charge, delta]) => adjustOne(charge, delta))
  return {
    adjust: (delta) =>
      Effect.suspend(() => {
        const targets = targetsOf(held, delta)
        return targets instanceof ConfigError ? Effect.fail(targets) : run(targets)
      }),
    refund: Effect.suspend(() => {
      const targets: Array<readonly [Charge, number]> = []
      for (const h of held) if (h.charge !== undefined) targets.push([h.charge, 0 - h.charge.held])
      return run(targets)
    })
  }
}
