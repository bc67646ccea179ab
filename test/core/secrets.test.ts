import { describe, expect, it } from "vitest"
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
      for (const form of forms(secret)) expect(variants, `${secret}: ${form}`).toContain(form)
      for (let i = 1; i < variants.length; i++) {
        expect((variants[i - 1] ?? "").length).toBeGreaterThanOrEqual((variants[i] ?? "").length)
      }
    }
  })

  it("is empty for an empty secret, and never holds an empty string", () => {
    expect(variantsOf("")).toEqual([])
    for (const secret of secrets) expect(variantsOf(secret)).not.toContain("")
  })

  it("survives a lone surrogate (encodeURIComponent would throw)", () => {
    expect(variantsOf("x\uD800y")).toContain("x\uD800y")
  })
})

describe("core/secrets: makeRedactor", () => {
  it("removes every form of every secret from a message", () => {
    const redact = makeRedactor(secrets)
    for (const secret of secrets) {
      for (const form of forms(secret)) {
        const out = redact(`before ${form} after '${form}' "${form}"`)
        expect(out, form).not.toContain(form)
        expect(out).toMatch(/^before \*\*\* after/)
      }
    }
  })

  it("removes a NATS token echoed JSON-escaped in a CONNECT line", () => {
    const token = `t"o\\k\\"en`
    const connect = `CONNECT ${JSON.stringify({ auth_token: token, verbose: false })}`
    const out = makeRedactor([token])(`-ERR '${connect}'`)
    expect(out).toBe(`-ERR 'CONNECT {"auth_token":"***","verbose":false}'`)
  })

  it("never leaves a piece of a secret where secrets overlap or nest", () => {
    const redact = makeRedactor(["ab", "bcdef", "abcdefgh"])
    expect(redact("xabcdefx")).toBe("x***x")
    expect(redact("xabcdefghx")).toBe("x***x")
    expect(redact("ab bcdef")).toBe("*** ***")
    const nested = makeRedactor(["secret", "my-secret-value"])
    expect(nested("is my-secret-value!")).toBe("is ***!")
  })

  it("scrubs URL userinfo and secret query parameters by their place", () => {
    const redact = makeRedactor([], [userinfoPattern, secretParamPattern])
    expect(redact("connect redis://user:unknown@host:6379 failed")).toBe("connect redis://***@host:6379 failed")
    expect(redact("postgres://h/db?sslpassword=x&password=y&pass=z&token=t&auth_token=a&app=ok")).toBe(
      "postgres://h/db?sslpassword=***&password=***&pass=***&token=***&auth_token=***&app=ok"
    )
  })

  it("leaves a message without secrets as it is", () => {
    const redact = makeRedactor(["S3CRET"])
    expect(redact("connection refused")).toBe("connection refused")
    expect(redact("")).toBe("")
  })
})

describe("core/secrets: messageOf", () => {
  it("reads an Error's message or a string", () => {
    expect(messageOf(new Error("boom"))).toBe("boom")
    expect(messageOf("text")).toBe("text")
    expect(messageOf(42)).toBe("unknown error")
  })
})
