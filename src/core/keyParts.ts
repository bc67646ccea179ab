/**
 * How a networked store spells a limiter id or a key inside its own key space: a part made only of
 * `[A-Za-z0-9_-]` is written `=<part>`, any other as the base64url of its UTF-8 after `encodedMark`
 * (`""` on Redis, `"/"` on NATS KV). Both forms use only the KV key charset, never contain the
 * separators the stores put between parts (`.`, `:`, `{`, `}`), and cannot meet (base64url never
 * starts with `=`), so distinct parts stay distinct.
 *
 * @internal
 */

const SAFE = /^[A-Za-z0-9_-]+$/

/** @internal */
export const encodePart = (s: string, encodedMark: string): string =>
  SAFE.test(s) ? `=${s}` : `${encodedMark}${Buffer.from(s, "utf8").toString("base64url")}`

/**
 * A memoized encoding of limiter ids, which are few (the registered limiters); bounded so a store
 * called directly with many ids does not grow without end.
 *
 * @internal
 */
export const limiterParts = (encodedMark: string): (limiter: string) => string => {
  const parts = new Map<string, string>()
  return (limiter) => {
    let part = parts.get(limiter)
    if (part === undefined) {
      part = encodePart(limiter, encodedMark)
      if (parts.size < 10_000) parts.set(limiter, part)
    }
    return part
  }
}
