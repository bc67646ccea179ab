/**
 * Script replies read into the SPI's answers (the reply shapes are documented in
 * `core/redis/scripts.ts`). A reply of another shape throws, and the call fails with `StoreError`.
 *
 * @internal
 */
import { NEVER } from "../../core/redis/scripts.js"
import type { SlotDecision, StoreDecision } from "../../core/spi.js"
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
 * A rate decision `{remaining, resetAfterUs, t}`, its waits padded by `marginMs` (see
 * `internal/store/margin.ts`). Built once per store.
 *
 * @internal
 */
export const decisionOf = (marginMs: number) => (reply: unknown, limit: number): StoreDecision => {
  const r = replyArray(reply)
  const t = at(r, 2)
  const resetAfterMs = Math.max(0, at(r, 1) / 1000)
  if (t >= 0) {
    return { allowed: true, limit, remaining: at(r, 0), resetAfterMs, retryAfterMs: 0, delayMs: withMargin(t / 1000, marginMs) }
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
