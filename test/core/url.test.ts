import { assert, describe, it } from "#test/vitest"
import { displayUrl, parseUrl, secretsOfUrl } from "../../src/core/url.js"

describe("core/url: parseUrl", () => {
  it("decodes the userinfo and the query", () => {
    const parsed = parseUrl("redis://us%40er:p%40ss@h:6379/2?password=q%26w&x=1")
    assert.isTrue(parsed.ok)
    if (!parsed.ok) return
    assert.strictEqual(parsed.url.username, "us@er")
    assert.strictEqual(parsed.url.password, "p@ss")
    assert.strictEqual(parsed.url.rawPassword, "p%40ss")
    assert.strictEqual(parsed.url.hostname, "h")
    assert.strictEqual(parsed.url.port, "6379")
    assert.strictEqual(parsed.url.pathname, "/2")
    assert.deepStrictEqual(parsed.url.params, [["password", "q&w"], ["x", "1"]])
  })

  it("names the part with a bad % escape, never its text", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["redis://:100%zz@host", "password"],
      ["redis://tok%@host", "user name"],
      ["redis://:%ff@host", "password"],
      ["postgres://u@h/db%zz", "path"],
      ["postgres://u@h/db?password=100%zz", "query"],
      ["postgres://u@h/db?pass%zz=1", "query"],
      ["nats://ho%zzst:4222", "host"]
    ]
    for (const [url, part] of cases) {
      const parsed = parseUrl(url)
      assert.deepStrictEqual(parsed, { ok: false, problem: `a bad % escape in the ${part}` }, url)
    }
  })

  it("refuses what is no URL", () => {
    assert.deepStrictEqual(parseUrl("hunter2"), { ok: false, problem: "not a URL" })
    assert.deepStrictEqual(parseUrl("redis://h:99999"), { ok: false, problem: "not a URL" })
    assert.deepStrictEqual(parseUrl("h:4222"), { ok: false, problem: "not a URL" })
  })

  it("reads host:port with a default scheme, and an empty host when asked", () => {
    const nats = parseUrl("tok@127.0.0.1:4222", { defaultScheme: "nats:" })
    assert.isTrue(nats.ok && nats.url.protocol === "nats:" && nats.url.username === "tok")
    assert.isFalse(parseUrl("postgres://u:pw@/db?host=/tmp").ok)
    const socket = parseUrl("postgres://u:pw@/db?host=/tmp", { emptyHost: true })
    assert.isTrue(socket.ok && socket.url.hostname === "" && socket.url.password === "pw")
  })
})

describe("core/url: displayUrl", () => {
  it("replaces the password, a token user and secret query values", () => {
    assert.strictEqual(displayUrl("redis://:100%zz@host"), "redis://:***@host")
    assert.strictEqual(displayUrl("redis://user:pw@host:6379/1"), "redis://user:***@host:6379/1")
    assert.strictEqual(displayUrl("nats://T0KEN@host:4222", { tokenUser: true }), "nats://***@host:4222")
    assert.strictEqual(displayUrl("nats://user@host:4222"), "nats://user@host:4222")
    assert.strictEqual(displayUrl("postgres://u@h/db?password=x&sslpassword=y&application_name=a#frag"), 
      "postgres://u@h/db?password=***&sslpassword=***&application_name=a"
    )
    assert.strictEqual(displayUrl("postgres://u:pw@/db?host=/tmp", { emptyHost: true }), "postgres://u:***@/db?host=/tmp")
    assert.strictEqual(displayUrl("h:4222:x@y"), "<redacted>")
  })
})

describe("core/url: secretsOfUrl", () => {
  it("lists the whole URL, the password and the secret query values", () => {
    const secrets = secretsOfUrl("postgres://u:p%40ss@h/db?password=q1&token=t%2B1&app=x")
    for (const secret of ["postgres://u:p%40ss@h/db?password=q1&token=t%2B1&app=x", "p%40ss", "q1", "t+1"]) {
      assert.include(secrets, secret)
    }
    assert.notInclude(secrets, "u")
    assert.notInclude(secrets, "x")
  })

  it("lists a token given as the user name only with tokenUser", () => {
    assert.include(secretsOfUrl("nats://T0K@h:4222", { tokenUser: true }), "T0K")
    assert.notInclude(secretsOfUrl("nats://T0K@h:4222"), "T0K")
    assert.notInclude(secretsOfUrl("nats://u:pw@h:4222", { tokenUser: true }), "u")
  })

  it("takes what looks like the userinfo of a text that does not parse", () => {
    for (const secret of ["redis://:pw@h:99999", "pw"]) assert.include(secretsOfUrl("redis://:pw@h:99999"), secret)
  })
})
