import { assert, describe, it } from "#test/vitest"
import { makeRedactor, messageOf, secretParamPattern, userinfoPattern, variantsOf } from "../../src/core/secrets.js"

/** Every form a message can hold `secret` in: what the redactor must leave no trace of. */
const forms = (secret: string): ReadonlyArray<string> => {
  const out = [secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)]
  out.push(JSON.stringify(encodeURIComponent(secret)).slice(1, -1))
  try {
    out.push(decodeURIComponent(secret))
  } catch {
    // not valid percent-encoding
  }
  const url = new URL("x://h")
  url.password = secret
  out.push(url.password, JSON.stringify(url.password).slice(1, -1))
  out.push(new URLSearchParams([["k", secret]]).toString().slice(2))
  return out
}

const secrets = [
  `a"b\\c`,
  "p@ss:w/rd?#%",
  "100%zz",
  "p%40ss%2Fword",
  "ünï cödé ✓",
  "plain-S3CRET",
  "a+b c"
]

describe("core/secrets: variantsOf", () => {
  it("holds the raw, decoded, encoded and JSON-escaped forms, longest first", () => {
    for (const secret of secrets) {
      const variants = variantsOf(secret)
      for (const form of forms(secret)) assert.include(variants, form, `${secret}: ${form}`)
      for (let i = 1; i < variants.length; i++) {
        assert.isAtLeast((variants[i - 1] ?? "").length, (variants[i] ?? "").length)
      }
    }
  })

  it("is empty for an empty secret, and never holds an empty string", () => {
    assert.deepStrictEqual(variantsOf(""), [])
    for (const secret of secrets) assert.notInclude(variantsOf(secret), "")
  })

  it("survives a lone surrogate (encodeURIComponent would throw)", () => {
    assert.include(variantsOf("x\uD800y"), "x\uD800y")
  })
})

describe("core/secrets: makeRedactor", () => {
  it("removes every form of every secret from a message", () => {
    const redact = makeRedactor(secrets)
    for (const secret of secrets) {
      for (const form of forms(secret)) {
        const out = redact(`before ${form} after '${form}' "${form}"`)
        assert.notInclude(out, form, form)
        assert.match(out, /^before \*\*\* after/)
      }
    }
  })

  it("removes a NATS token echoed JSON-escaped in a CONNECT line", () => {
    const token = `t"o\\k\\"en`
    const connect = `CONNECT ${JSON.stringify({ auth_token: token, verbose: false })}`
    const out = makeRedactor([token])(`-ERR '${connect}'`)
    assert.strictEqual(out, `-ERR 'CONNECT {"auth_token":"***","verbose":false}'`)
  })

  it("never leaves a piece of a secret where secrets overlap or nest", () => {
    const redact = makeRedactor(["ab", "bcdef", "abcdefgh"])
    assert.strictEqual(redact("xabcdefx"), "x***x")
    assert.strictEqual(redact("xabcdefghx"), "x***x")
    assert.strictEqual(redact("ab bcdef"), "*** ***")
    const nested = makeRedactor(["secret", "my-secret-value"])
    assert.strictEqual(nested("is my-secret-value!"), "is ***!")
  })

  it("scrubs URL userinfo and secret query parameters by their place", () => {
    const redact = makeRedactor([], [userinfoPattern, secretParamPattern])
    assert.strictEqual(redact("connect redis://user:unknown@host:6379 failed"), "connect redis://***@host:6379 failed")
    assert.strictEqual(redact("postgres://h/db?sslpassword=x&password=y&pass=z&token=t&auth_token=a&app=ok"), 
      "postgres://h/db?sslpassword=***&password=***&pass=***&token=***&auth_token=***&app=ok"
    )
  })

  it("leaves a message without secrets as it is", () => {
    const redact = makeRedactor(["S3CRET"])
    assert.strictEqual(redact("connection refused"), "connection refused")
    assert.strictEqual(redact(""), "")
  })
})

describe("core/secrets: messageOf", () => {
  it("reads an Error's message or a string", () => {
    assert.strictEqual(messageOf(new Error("boom")), "boom")
    assert.strictEqual(messageOf("text"), "text")
    assert.strictEqual(messageOf(42), "unknown error")
  })
})
