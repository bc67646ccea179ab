/**
 * Script replies read into the SPI's answers (the reply shapes are documented in
 * `core/redis/scripts.ts`). A reply of another shape throws, and the call fails with `StoreError`.
 *
 * @internal
 */
import { NEVER } from "../../core/redis/scripts.js"
import type { AdjustResult, CompositeDecision, SlotDecision, StoreDecision } from "../../core/spi.js"
import { withMargin } from "../store/margin.js"

const at = (xs: ReadonlyArray<unknown>, i: number): number => {
  const x = xs[i]
  if (typeof x !== "number") throw new Error(`unexpected script reply`)
  return x
}

const replyArray = (reply: unknown): ReadonlyArray<unknown> => {
  if (!Array.isArray(reply)) throw new Error(`unexpected script reply`)
  return reply
}

/**
 * A decision `{remaining, resetAfterUs, t}` (and, with `withRef`, an admission's `ref` as its fourth
 * element: the fixed window's start, an integer; the sliding entry's id, a string), its waits
 * padded by `marginMs` (see `internal/store/margin.ts`). Built in one object, no copy.
 */
const readDecision = (reply: unknown, limit: number, marginMs: number, withRef: boolean): StoreDecision => {
  const r = replyArray(reply)
  const t = at(r, 2)
  const resetAfterMs = Math.max(0, at(r, 1) / 1000)
  if (t >= 0) {
    const ref = withRef ? r[3] : undefined
    const delayMs = withMargin(t / 1000, marginMs)
    return typeof ref === "number" || typeof ref === "string"
      ? { allowed: true, limit, remaining: at(r, 0), resetAfterMs, retryAfterMs: 0, delayMs, ref: String(ref) }
      : { allowed: true, limit, remaining: at(r, 0), resetAfterMs, retryAfterMs: 0, delayMs }
  }
  return {
    allowed: false,
    limit,
    remaining: at(r, 0),
    resetAfterMs,
    retryAfterMs: t === NEVER ? Infinity : withMargin(-t / 1000, marginMs),
    delayMs: 0
  }
}

/**
 * A rate decision `{remaining, resetAfterUs, t}`, its waits padded by `marginMs`. Built once per
 * store.
 *
 * @internal
 */
export const decisionOf = (marginMs: number) => (reply: unknown, limit: number): StoreDecision =>
  readDecision(reply, limit, marginMs, false)

/**
 * A window take's decision: a rate decision, with the `ref` an admission carries as its fourth
 * element. Built once per store.
 *
 * @internal
 */
export const windowDecisionOf = (marginMs: number) => (reply: unknown, limit: number): StoreDecision =>
  readDecision(reply, limit, marginMs, true)

/** What a composite reply needs of each take: whether it is a window's, and its capacity. @internal */
export interface TakeShape {
  readonly window: boolean
  readonly limit: number
}

/**
 * A `takeAll` reply `{admitted, delayUs, d1, …, dn}`: each `di` read as its single take's
 * decision; the call's `delayMs` is the largest of its decisions' (each already padded). Built
 * once per store.
 *
 * @internal
 */
export const compositeOf = (marginMs: number) => {
  const rate = decisionOf(marginMs)
  const window = windowDecisionOf(marginMs)
  return (reply: unknown, shapes: ReadonlyArray<TakeShape>): CompositeDecision => {
    const r = replyArray(reply)
    if (r.length !== shapes.length + 2) throw new Error(`unexpected script reply`)
    const allowed = at(r, 0) === 1
    let delayMs = 0
    const decisions = shapes.map((shape, i) => {
      const d = (shape.window ? window : rate)(r[i + 2], shape.limit)
      if (allowed && d.delayMs > delayMs) delayMs = d.delayMs
      return d
    })
    return { allowed, decisions, delayMs }
  }
}

/**
 * An `adjust` reply `{applied, remaining, resetAfterUs}` (`applied` a decimal string).
 *
 * @internal
 */
export const adjustResultOf = (reply: unknown): AdjustResult => {
  const r = replyArray(reply)
  const applied = typeof r[0] === "string" ? Number(r[0]) : NaN
  if (Number.isNaN(applied)) throw new Error(`unexpected script reply`)
  return { applied, remaining: at(r, 1), resetAfterMs: Math.max(0, at(r, 2) / 1000) }
}

/**
 * A slot decision `{acquired, active, retryAfterUs}` (`retryAfterUs < 0`: no lease to wait for),
 * its retry padded by `marginMs` like every other wait. Built once per store.
 *
 * @internal
 */
export const slotDecisionOf = (marginMs: number) => (reply: unknown, limit: number): SlotDecision => {
  const r = replyArray(reply)
  const retry = at(r, 2)
  return {
    acquired: at(r, 0) === 1,
    limit,
    active: at(r, 1),
    retryAfterMs: retry < 0 ? Infinity : withMargin(retry / 1000, marginMs)
  }
}

/** A renew or release: whether the holder had a live lease. @internal */
export const isOne = (reply: unknown): boolean => reply === 1
