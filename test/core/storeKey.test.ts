/** The store-key mapping and limiter-id rule of src/core: plain functions, no Effect. */
import { describe, expect, it } from "vitest"
import { limiterIdProblem, MAX_LIMITER_ID_LENGTH, MAX_PLAIN_KEY_LENGTH, storeKey } from "../../src/core/storeKey.js"

const utf8Bytes = (s: string) => Buffer.byteLength(s, "utf8")

describe("storeKey", () => {
  it("passes a key of up to MAX_PLAIN_KEY_LENGTH ordinary characters unchanged", () => {
    const key = "k".repeat(MAX_PLAIN_KEY_LENGTH)
    expect(storeKey(key)).toBe(key)
    expect(storeKey("user-42")).toBe("user-42")
  })

  it("maps a longer key to a fixed-size digest, different for keys that differ anywhere", () => {
    const long = "k".repeat(MAX_PLAIN_KEY_LENGTH + 1)
    const digest = storeKey(long)
    expect(digest).toMatch(/^\u0002[A-Za-z0-9_-]{43}$/)
    expect(storeKey("x".repeat(100_000))).toHaveLength(44)
    const base = "p".repeat(10_000)
    const keys = [base + "a", base + "b", "b" + base, base + "\uD800", base + "\uDC00", base + "\0"]
    expect(new Set(keys.map(storeKey)).size).toBe(keys.length)
    // the same key always maps to the same store key
    expect(storeKey(base + "a")).toBe(storeKey(base + "a"))
  })

  it("keeps the three forms apart: a plain key can never look like an escaped or digested one", () => {
    const digested = storeKey("z".repeat(500))
    // a caller sending the digest itself as its key gets another store key
    expect(storeKey(digested)).not.toBe(digested)
    expect(storeKey(digested).startsWith("\u0001")).toBe(true)
    expect(storeKey("\u0002")).toBe("\u00010002")
  })

  it("bounds every result: well-formed, NUL-free, at most 513 characters (1,539 UTF-8 bytes)", () => {
    const inputs = ["\uD800".repeat(128), "\0".repeat(128), "\uD800".repeat(129), "😀".repeat(64), "😀".repeat(65), "ü".repeat(5000)]
    for (const input of inputs) {
      const k = storeKey(input)
      expect(k.length).toBeLessThanOrEqual(513)
      expect(utf8Bytes(k)).toBeLessThanOrEqual(1539)
      expect(k.includes("\0")).toBe(false)
      expect(Buffer.from(k, "utf8").toString("utf8")).toBe(k)
    }
  })
})

describe("limiterIdProblem", () => {
  it("accepts ordinary ids up to the maximum length", () => {
    for (const id of ["api", "openai-tpm", "login:ip", "ключ", "😀", "a".repeat(MAX_LIMITER_ID_LENGTH)]) {
      expect(limiterIdProblem(id)).toBeUndefined()
    }
  })

  it("names what is wrong with any other id", () => {
    expect(limiterIdProblem("")).toBe("empty")
    expect(limiterIdProblem(42)).toBe("not a string")
    expect(limiterIdProblem("a".repeat(MAX_LIMITER_ID_LENGTH + 1))).toBe(`${MAX_LIMITER_ID_LENGTH + 1} characters long`)
    expect(limiterIdProblem("a\0b")).toBe("a control character")
    expect(limiterIdProblem("line\nbreak")).toBe("a control character")
    expect(limiterIdProblem("\u007f")).toBe("a control character")
    expect(limiterIdProblem("a\uD800")).toBe("an unpaired surrogate")
    expect(limiterIdProblem("\uDC00a")).toBe("an unpaired surrogate")
  })
})
