import { describe, expect, it } from "vitest"
import { displayUrl, parseUrl, secretsOfUrl } from "../../src/core/url.js"

describe("core/url: parseUrl", () => {
  it("decodes the userinfo and the query", () => {
    const parsed = parseUrl("redis://us%40er:p%40ss@h:6379/2?password=q%26w&x=1")
    expect(parsed.ok).toBe(true)
    if (!parsed.ok) return
    expect(parsed.url.username).toBe("us@er")
    expect(parsed.url.password).toBe("p@ss")
    expect(parsed.url.rawPassword).toBe("p%40ss")
    expect(parsed.url.hostname).toBe("h")
    expect(parsed.url.port).toBe("6379")
    expect(parsed.url.pathname).toBe("/2")
    expect(parsed.url.params).toEqual([["password", "q&w"], ["x", "1"]])
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
      expect(parsed, url).toEqual({ ok: false, problem: `a bad % escape in the ${part}` })
    }
  })

  it("refuses what is no URL", () => {
    expect(parseUrl("hunter2")).toEqual({ ok: false, problem: "not a URL" })
    expect(parseUrl("redis://h:99999")).toEqual({ ok: false, problem: "not a URL" })
    expect(parseUrl("h:4222")).toEqual({ ok: false, problem: "not a URL" })
  })

  it("reads host:port with a default scheme, and an empty host when asked", () => {
    const nats = parseUrl("tok@127.0.0.1:4222", { defaultScheme: "nats:" })
    expect(nats.ok && nats.url.protocol === "nats:" && nats.url.username === "tok").toBe(true)
    expect(parseUrl("postgres://u:pw@/db?host=/tmp").ok).toBe(false)
    const socket = parseUrl("postgres://u:pw@/db?host=/tmp", { emptyHost: true })
    expect(socket.ok && socket.url.hostname === "" && socket.url.password === "pw").toBe(true)
  })
})

describe("core/url: displayUrl", () => {
  it("replaces the password, a token user and secret query values", () => {
    expect(displayUrl("redis://:100%zz@host")).toBe("redis://:***@host")
    expect(displayUrl("redis://user:pw@host:6379/1")).toBe("redis://user:***@host:6379/1")
    expect(displayUrl("nats://T0KEN@host:4222", { tokenUser: true })).toBe("nats://***@host:4222")
    expect(displayUrl("nats://user@host:4222")).toBe("nats://user@host:4222")
    expect(displayUrl("postgres://u@h/db?password=x&sslpassword=y&application_name=a#frag")).toBe(
      "postgres://u@h/db?password=***&sslpassword=***&application_name=a"
    )
    expect(displayUrl("postgres://u:pw@/db?host=/tmp", { emptyHost: true })).toBe("postgres://u:***@/db?host=/tmp")
    expect(displayUrl("h:4222:x@y")).toBe("<redacted>")
  })
})

describe("core/url: secretsOfUrl", () => {
  it("lists the whole URL, the password and the secret query values", () => {
    const secrets = secretsOfUrl("postgres://u:p%40ss@h/db?password=q1&token=t%2B1&app=x")
    expect(secrets).toEqual(expect.arrayContaining(["postgres://u:p%40ss@h/db?password=q1&token=t%2B1&app=x", "p%40ss", "q1", "t+1"]))
    expect(secrets).not.toContain("u")
    expect(secrets).not.toContain("x")
  })

  it("lists a token given as the user name only with tokenUser", () => {
    expect(secretsOfUrl("nats://T0K@h:4222", { tokenUser: true })).toContain("T0K")
    expect(secretsOfUrl("nats://T0K@h:4222")).not.toContain("T0K")
    expect(secretsOfUrl("nats://u:pw@h:4222", { tokenUser: true })).not.toContain("u")
  })

  it("takes what looks like the userinfo of a text that does not parse", () => {
    expect(secretsOfUrl("redis://:pw@h:99999")).toEqual(expect.arrayContaining(["redis://:pw@h:99999", "pw"]))
  })
})
