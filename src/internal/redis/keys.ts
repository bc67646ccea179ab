/**
 * The Redis store's key layout. By default `<keyPrefix>:{<limiter>.<key>}:<state>`, each part
 * spelled by `core/keyParts.ts` with no mark before base64url (`=` + the text when it is only
 * `[A-Za-z0-9_-]`). The braces are the Redis Cluster hash tag, so the state of one
 * `(limiter, key)` lives in one slot.
 *
 * A limiter named in the `hashTags` option (see `settings.ts`) is laid out
 * `<keyPrefix>:{<tag>}:<limiter>.<key>:<state>` instead, its tag chosen so that the keys of a
 * composite call can share a slot: `~k<key>` (`"key"`: the limiters so tagged share the slot of
 * each key) or `~g<group>` (`"group:<name>"`: every key of the group's limiters in one slot). A
 * default tag never starts with `~` (neither part encoding produces it), and the part after the
 * tag still names the pair, so no two pairs share a key in either layout.
 *
 * @internal
 */
import { encodePart, limiterParts } from "../../core/keyParts.js"

/** The state keys of a pair: token bucket, sliding window (and its marker), fixed window, slots. @internal */
export const STATES = ["tb", "sw", "swm", "fw", "cc"] as const

/** @internal */
export type State = typeof STATES[number]

/**
 * How a limiter's keys are tagged when it is not laid out by pair: by its key alone, or in a
 * group's one slot (`tag` is the group's tag, `~g<name>`).
 *
 * @internal
 */
export type HashTag = { readonly kind: "key" } | { readonly kind: "group"; readonly tag: string }

/** @internal */
export interface Keys {
  /** The key of one state of `(limiter, key)`. */
  readonly keyOf: (limiter: string, key: string, state: State) => string
  /** A `SCAN MATCH` pattern for every key of `limiter` (in the layout `limiter` is configured with). */
  readonly limiterPattern: (limiter: string) => string
  /** The hash tag of `(limiter, key)`'s keys: keys of one tag share a cluster slot. */
  readonly tagOf: (limiter: string, key: string) => string
}

const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

/** The tag of a `"group:<name>"` limiter. @internal */
export const groupTag = (group: string): string => `~g${encodePart(group, "")}`

/**
 * The keys under `prefix`, with the limiters of `hashTags` in the tagged layout; limiter ids are
 * few (the registered limiters): their encoding is memoized. Without `hashTags` every key is
 * built as before, with no look-up on the way.
 *
 * @internal
 */
export const make = (prefix: string, hashTags: ReadonlyMap<string, HashTag> = new Map()): Keys => {
  const limiterPart = limiterParts("")
  const pairTag = (limiter: string, key: string) => `${limiterPart(limiter)}.${encodePart(key, "")}`
  const pairPattern = (limiter: string) => `${escapeGlob(prefix)}:{${limiterPart(limiter)}.*`
  if (hashTags.size === 0) {
    return {
      keyOf: (limiter, key, state) => `${prefix}:{${limiterPart(limiter)}.${encodePart(key, "")}}:${state}`,
      limiterPattern: pairPattern,
      tagOf: pairTag
    }
  }
  return {
    keyOf: (limiter, key, state) => {
      const tag = hashTags.get(limiter)
      const part = encodePart(key, "")
      if (tag === undefined) return `${prefix}:{${limiterPart(limiter)}.${part}}:${state}`
      return `${prefix}:{${tag.kind === "key" ? `~k${part}` : tag.tag}}:${limiterPart(limiter)}.${part}:${state}`
    },
    // the only `}` of a key closes its tag, so `}:<limiter>.` is found once, right after it
    limiterPattern: (limiter) =>
      hashTags.has(limiter) ? `${escapeGlob(prefix)}:{~*}:${limiterPart(limiter)}.*` : pairPattern(limiter),
    tagOf: (limiter, key) => {
      const tag = hashTags.get(limiter)
      if (tag === undefined) return pairTag(limiter, key)
      return tag.kind === "key" ? `~k${encodePart(key, "")}` : tag.tag
    }
  }
}
