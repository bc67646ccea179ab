/** `${VAR}` / `${VAR:-default}` expansion (src/core/config/interpolate.ts): plain functions, no Effect. */
import { assert, describe, it } from "#test/vitest"
import { expand, hasReference, variablesOf } from "../../src/core/config/interpolate.js"

const vars = (record: Record<string, string>) => (name: string): string | undefined => record[name]

describe("expand", () => {
  it("replaces ${NAME} and ${NAME:-default}, anywhere in the text", () => {
    assert.deepStrictEqual(expand("${REDIS_URL}", vars({ REDIS_URL: "redis://r:6379/1" })), {
      ok: true,
      text: "redis://r:6379/1",
      variables: ["REDIS_URL"]
    })
    assert.deepStrictEqual(expand("${REDIS_URL:-redis://localhost:6379/0}", vars({})), {
      ok: true,
      text: "redis://localhost:6379/0",
      variables: ["REDIS_URL"]
    })
    assert.deepStrictEqual(expand("redis://${HOST:-localhost}:${PORT}/0", vars({ PORT: "7000" })), {
      ok: true,
      text: "redis://localhost:7000/0",
      variables: ["HOST", "PORT"]
    })
    // a set variable wins over the default; an empty one counts as unset
    assert.deepStrictEqual(expand("${A:-x}${B:-y}", vars({ A: "1", B: "" })), { ok: true, text: "1y", variables: ["A", "B"] })
    // the default is literal, may be empty, and may hold ":-" and "$"
    assert.deepStrictEqual(expand("[${A:-}]", vars({})), { ok: true, text: "[]", variables: ["A"] })
    assert.deepStrictEqual(expand("${A:-a:-b$c}", vars({})), { ok: true, text: "a:-b$c", variables: ["A"] })
  })

  it("leaves text without ${ alone; $${ is a literal ${ and no other $ is special", () => {
    assert.deepStrictEqual(expand("p@$$w0rd$", vars({})), { ok: true, text: "p@$$w0rd$", variables: [] })
    assert.deepStrictEqual(expand("$${HOME} is ${HOME}", vars({ HOME: "/h" })), {
      ok: true,
      text: "${HOME} is /h",
      variables: ["HOME"]
    })
    assert.deepStrictEqual(expand("$HOME", vars({ HOME: "/h" })), { ok: true, text: "$HOME", variables: [] })
  })

  it("an unset variable without a default is a problem naming the variable", () => {
    assert.deepStrictEqual(expand("redis://${HOST}:6379", vars({})), { ok: false, problem: { kind: "unset", variable: "HOST" } })
    assert.deepStrictEqual(expand("${EMPTY}", vars({ EMPTY: "" })), { ok: false, problem: { kind: "unset", variable: "EMPTY" } })
  })

  it("a malformed reference is a syntax problem that never quotes the text", () => {
    for (const text of ["secret-${", "secret-${NAME", "${}", "${1A}", "${A-b}", "${A B}", "${ A}"]) {
      const result = expand(text, vars({ A: "1" }))
      assert.isFalse(result.ok, text)
      if (!result.ok) {
        assert.strictEqual(result.problem.kind, "syntax", text)
        if (result.problem.kind === "syntax") assert.notInclude(result.problem.reason, "secret", text)
      }
    }
  })
})

describe("variablesOf / hasReference", () => {
  it("lists the variables referred to, once each, set or not", () => {
    assert.deepStrictEqual(variablesOf("${A}/${B:-b}/${A}"), ["A", "B"])
    assert.deepStrictEqual(variablesOf("$${A}"), [])
    assert.deepStrictEqual(variablesOf("${"), [])
    // the ones before a malformed reference, so that expand reports the malformation, not "unset"
    assert.deepStrictEqual(variablesOf("${A}${B:-b}${"), ["A", "B"])
    assert.isTrue(hasReference("x${A}"))
    assert.isFalse(hasReference("x$A{}"))
  })
})
