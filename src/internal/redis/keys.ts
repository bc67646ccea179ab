/**
 * The Redis store's key layout: `<keyPrefix>:{<limiter>.<key>}:<state>`, each part spelled by
 * `core/keyParts.ts` with no mark before base64url (`=` + the text when it is only `[A-Za-z0-9_-]`).
 * The braces are the Redis Cluster hash tag, so the state of one `(limiter, key)` lives in one slot.
 *
 * @internal
 */
import { encodePart, limiterParts } from "../../core/keyParts.js"

/** The state keys of a pair: token bucket, sliding window (and its marker), fixed window, slots. @internal */
export const STATES = ["tb", "sw", "swm", "fw", "cc"] as const

/** @internal */
export type State = typeof STATES[number]

/** @internal */
export interface Keys {
  /** The key of one state of `(limiter, key)`. */
  readonly keyOf: (limiter: string, key: string, state: State) => string
  /** A `SCAN MATCH` pattern for every key of `limiter`. */
  readonly limiterPattern: (limiter: string) => string
}

const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

/** The keys under `prefix`; limiter ids are few (the registered limiters): their encoding is memoized. @internal */
export const make = (prefix: string): Keys => {
  const limiterPart = limiterParts("")
  return {
    keyOf: (limiter, key, state) => `${prefix}:{${limiterPart(limiter)}.${encodePart(key, "")}}:${state}`,
    limiterPattern: (limiter) => `${escapeGlob(prefix)}:{${limiterPart(limiter)}.*`
  }
}
