/** The store-key mapping and limiter-id rule of src/core: plain functions, no Effect. */
import { assert, describe, it } from "#test/vitest"
import { limiterIdProblem, MAX_LIMITER_ID_LENGTH, MAX_PLAIN_KEY_LENGTH, storeKey } from "../../src/core/storeKey.js"

const utf8Bytes = (s: string) => Buffer.byteLength(s, "utf8")

describe("storeKey", () => {
  it("passes a key of up to MAX_PLAIN_KEY_LENGTH ordinary characters unchanged", () => {
    const key = "k".repeat(MAX_PLAIN_KEY_LENGTH)
    assert.strictEqual(storeKey(key), key)
    assert.strictEqual(storeKey("user-42"), "user-42")
  })

  it("maps a longer key to a fixed-size digest, different for keys that differ anywhere", () => {
    const long = "k".repeat(MAX_PLAIN_KEY_LENGTH + 1)
    const digest = storeKey(long)
    assert.match(digest, /^\u0002[A-Za-z0-9_-]{43}$/)
    assert.lengthOf(storeKey("x".repeat(100_000)), 44)
    const base = "p".repeat(10_000)
    const keys = [base + "a", base + "b", "b" + base, base + "\uD800", base + "\uDC00", base + "\0"]
    assert.strictEqual(new Set(keys.map(storeKey)).size, keys.length)
    // the same key always maps to the same store key
    assert.strictEqual(storeKey(base + "a"), storeKey(base + "a"))
  })

  it("keeps the three forms apart: a plain key can never look like an escaped or digested one", () => {
    const digested = storeKey("z".repeat(500))
    // a caller sending the digest itself as its key gets another store key
    assert.notStrictEqual(storeKey(digested), digested)
    assert.isTrue(storeKey(digested).startsWith("\u0001"))
    assert.strictEqual(storeKey("\u0002"), "\u00010002")
  })

  it("bounds every result: well-formed, NUL-free, at most 513 characters (1,539 UTF-8 bytes)", () => {
    const inputs = ["\uD800".repeat(128), "\0".repeat(128), "\uD800".repeat(129), "😀".repeat(64), "😀".repeat(65), "ü".repeat(5000)]
    for (const input of inputs) {
      const k = storeKey(input)
      assert.isAtMost(k.length, 513)
      assert.isAtMost(utf8Bytes(k), 1539)
      assert.isFalse(k.includes("\0"))
      assert.strictEqual(Buffer.from(k, "utf8").toString("utf8"), k)
    }
  })
})

describe("limiterIdProblem", () => {
  it("accepts ordinary ids up to the maximum length", () => {
    for (const id of ["api", "openai-tpm", "login:ip", "ключ", "😀", "a".repeat(MAX_LIMITER_ID_LENGTH)]) {
      assert.isUndefined(limiterIdProblem(id))
    }
  })

  it("names what is wrong with any other id", () => {
    assert.strictEqual(limiterIdProblem(""), "empty")
    assert.strictEqual(limiterIdProblem(42), "not a string")
    assert.strictEqual(limiterIdProblem("a".repeat(MAX_LIMITER_ID_LENGTH + 1)), `${MAX_LIMITER_ID_LENGTH + 1} characters long`)
    assert.strictEqual(limiterIdProblem("a\0b"), "a control character")
    assert.strictEqual(limiterIdProblem("line\nbreak"), "a control character")
    assert.strictEqual(limiterIdProblem("\u007f"), "a control character")
    assert.strictEqual(limiterIdProblem("a\uD800"), "an unpaired surrogate")
    assert.strictEqual(limiterIdProblem("\uDC00a"), "an unpaired surrogate")
  })
})
