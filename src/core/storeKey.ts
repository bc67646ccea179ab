/**
 * The key a limiter hands to a store for a caller's key: every store can hold it, whatever the
 * caller sent (a login limiter keyed by a user name must not be switched off by a long or odd one).
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */
import { createHash } from "node:crypto"

/**
 * The longest key, in UTF-16 code units, handed to a store as it is (or hex-escaped): at most 384
 * bytes of UTF-8, which every store holds with room to spare (PostgreSQL's btree rows stop at
 * 2,704 bytes, a NATS control line at 4,096). A longer key is handed over as a digest.
 *
 * @internal
 */
export const MAX_PLAIN_KEY_LENGTH = 128

/** NUL, U+0001/U+0002 (the markers below), or any surrogate (a lone one makes a key ill-formed). */
const suspicious = /[\0\u0001\u0002\uD800-\uDFFF]/

/** Every surrogate paired (and, with `nul`, no NUL): the string survives UTF-8. */
const wellFormed = (key: string, nul: boolean): boolean => {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (nul && c === 0) return false
    if (c >= 0xdc00 && c <= 0xdfff) return false
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = key.charCodeAt(i + 1)
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false
      i++
    }
  }
  return true
}

/** Not starting with a marker, no NUL, well-formed: the key survives every store's key encoding. */
const encodable = (key: string): boolean => {
  const first = key.charCodeAt(0)
  return first !== 1 && first !== 2 && wellFormed(key, true)
}

const hexKey = (key: string): string => {
  let out = "\u0001"
  for (let i = 0; i < key.length; i++) out += key.charCodeAt(i).toString(16).padStart(4, "0")
  return out
}

/** U+0002 and the SHA-256 of the key's UTF-16 code units (so lone surrogates count), base64url. */
const digestKey = (key: string): string =>
  "\u0002" + createHash("sha256").update(Buffer.from(key, "utf16le")).digest("base64url")

/**
 * The store key for a caller's key, in one of three forms that cannot meet:
 * - a key of at most {@link MAX_PLAIN_KEY_LENGTH} code units that is well-formed UTF-16, holds no
 *   NUL and does not start with U+0001 or U+0002 passes unchanged (the common case: one test);
 * - any other key of at most that length becomes U+0001 followed by its code units as 4 lowercase
 *   hex digits each (exact, injective; at most 513 ASCII characters);
 * - a longer key becomes U+0002 followed by the SHA-256 of its UTF-16 code units in base64url
 *   (44 characters; injective in practice: two keys meet only on a SHA-256 collision).
 *
 * Every result is well-formed, NUL-free and at most 513 characters long.
 *
 * @internal
 */
export const storeKey = (key: string): string => {
  if (key.length > MAX_PLAIN_KEY_LENGTH) return digestKey(key)
  return !suspicious.test(key) || encodable(key) ? key : hexKey(key)
}

/**
 * The longest limiter id, in UTF-16 code units. Limiter ids reach every store as part of its keys.
 *
 * @internal
 */
export const MAX_LIMITER_ID_LENGTH = 128

/** C0 and C1 control characters, DEL. */
const control = /[\u0000-\u001f\u007f-\u009f]/

/**
 * Why a limiter id cannot be used, or `undefined` when it can: a non-empty string of at most
 * {@link MAX_LIMITER_ID_LENGTH} code units, well-formed UTF-16, with no control character.
 *
 * @internal
 */
export const limiterIdProblem = (id: unknown): string | undefined => {
  if (typeof id !== "string") return "not a string"
  if (id.length === 0) return "empty"
  if (id.length > MAX_LIMITER_ID_LENGTH) return `${id.length} characters long`
  if (control.test(id)) return "a control character"
  if (!wellFormed(id, false)) return "an unpaired surrogate"
  return undefined
}
