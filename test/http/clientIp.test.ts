import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as ClientIp from "../../src/core/http/clientIp.js"

const fmt = (s: string) => {
  const ip = ClientIp.parseIp(s)
  return ip === undefined ? undefined : ClientIp.formatIp(ip)
}
const node = (s: string) => {
  const ip = ClientIp.parseNode(s)
  return ip === undefined ? undefined : ClientIp.formatIp(ip)
}
const trusted = (entries: ReadonlyArray<string>) => {
  const compiled = ClientIp.compileTrusted(entries)
  if (compiled._tag === "Left") throw new Error(`bad entry ${compiled.entry}`)
  return compiled.contains
}
const resolve = (
  peer: string | undefined,
  header: string | undefined,
  proxies: ReadonlyArray<string>,
  kind: ClientIp.ProxyHeader = "x-forwarded-for",
  prefix = 64
) => {
  const ip = ClientIp.resolveClient(peer, header, kind, trusted(proxies))
  return ip === undefined ? undefined : ClientIp.groupKey(ip, prefix)
}

describe("clientIp: parsing", () => {
  it("parses IPv4 strictly", () => {
    expect(fmt("203.0.113.7")).toBe("203.0.113.7")
    expect(fmt("0.0.0.0")).toBe("0.0.0.0")
    expect(fmt("255.255.255.255")).toBe("255.255.255.255")
    for (const bad of ["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.-4", "1.2.3.4 ", "", "a.b.c.d", "1..2.3", "0x7f.0.0.1", "1.2.3.4/8"]) {
      expect(fmt(bad), bad).toBeUndefined()
    }
  })

  it("parses IPv6 and formats it per RFC 5952", () => {
    expect(fmt("2001:DB8:0:0:0:0:0:1")).toBe("2001:db8::1")
    expect(fmt("2001:db8::1")).toBe("2001:db8::1")
    expect(fmt("::")).toBe("::")
    expect(fmt("::1")).toBe("::1")
    expect(fmt("fe80::")).toBe("fe80::")
    expect(fmt("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1")
    expect(fmt("2001:0db8:0000:0001:0000:0000:0000:0001")).toBe("2001:db8:0:1::1")
    expect(fmt("1:0:1:1:1:1:1:1")).toBe("1:0:1:1:1:1:1:1")
    expect(fmt("64:ff9b::192.0.2.33")).toBe("64:ff9b::c000:221")
    for (const bad of ["1::2::3", ":::", "12345::", "g::1", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "::1.2.3", "1.2.3.4::", "fe80::1%", "fe80::1%a b"]) {
      expect(fmt(bad), bad).toBeUndefined()
    }
  })

  it("strips zone ids", () => {
    expect(fmt("fe80::1%eth0")).toBe("fe80::1")
    expect(fmt("fe80::1%25")).toBe("fe80::1")
  })

  it("treats IPv4-mapped IPv6 as IPv4", () => {
    expect(ClientIp.parseIp("::ffff:192.0.2.1")?.version).toBe(4)
    expect(fmt("::ffff:192.0.2.1")).toBe("192.0.2.1")
    expect(fmt("::FFFF:c000:0201")).toBe("192.0.2.1")
    expect(fmt("0:0:0:0:0:ffff:127.0.0.1")).toBe("127.0.0.1")
    // IPv4-compatible (deprecated) is not mapped: it stays IPv6
    expect(fmt("::192.0.2.1")).toBe("::c000:201")
  })

  it("parses proxy nodes with ports and brackets, refuses garbage", () => {
    expect(node(" 203.0.113.7 ")).toBe("203.0.113.7")
    expect(node("203.0.113.7:8080")).toBe("203.0.113.7")
    expect(node("[2001:db8::1]:443")).toBe("2001:db8::1")
    expect(node("[2001:db8::1]")).toBe("2001:db8::1")
    expect(node("2001:db8::1")).toBe("2001:db8::1")
    expect(node("[::ffff:10.0.0.1]:80")).toBe("10.0.0.1")
    for (const bad of ["unknown", "_hidden", "", "localhost", "[2001:db8::1", "[2001:db8::1]x", "1.2.3.4:", "1.2.3.4:99999x", "[1.2.3.4]", "evil.example:80", "<script>", "1.2.3.4, 5.6.7.8"]) {
      expect(node(bad), bad).toBeUndefined()
    }
  })

  it.prop("IPv4 round-trips", [FastCheck.ipV4()], ([ip]) => {
    expect(fmt(ip)).toBe(ip)
  })

  it.prop("IPv6 round-trips through RFC 5952 form (idempotent)", [FastCheck.ipV6()], ([ip]) => {
    const once = fmt(ip)
    expect(once).toBeDefined()
    if (once !== undefined) expect(fmt(once)).toBe(once)
  })
})

describe("clientIp: CIDR", () => {
  it("matches IPv4 and IPv6 ranges", () => {
    const t = trusted(["10.0.0.0/8", "192.168.1.7", "2001:db8:abcd::/48", "172.16.0.0/12"])
    const ip = (s: string) => {
      const parsed = ClientIp.parseIp(s)
      if (parsed === undefined) throw new Error(s)
      return parsed
    }
    expect(t(ip("10.255.1.2"))).toBe(true)
    expect(t(ip("11.0.0.1"))).toBe(false)
    expect(t(ip("192.168.1.7"))).toBe(true)
    expect(t(ip("192.168.1.8"))).toBe(false)
    expect(t(ip("172.31.255.255"))).toBe(true)
    expect(t(ip("172.32.0.0"))).toBe(false)
    expect(t(ip("2001:db8:abcd:ffff::1"))).toBe(true)
    expect(t(ip("2001:db8:abce::1"))).toBe(false)
    expect(t(ip("::ffff:10.1.1.1"))).toBe(true)
  })

  it("handles odd prefixes, host bits, /0 and mapped ranges", () => {
    const c = ClientIp.parseCidr("10.1.2.3/9")
    expect(c).toEqual({ version: 4, bytes: new Uint8Array([10, 0, 0, 0]), prefix: 9 })
    const t9 = trusted(["10.128.0.0/9"])
    expect(t9(ClientIp.parseIp("10.200.0.1") ?? { version: 4, bytes: new Uint8Array(4) })).toBe(true)
    expect(t9(ClientIp.parseIp("10.127.0.1") ?? { version: 4, bytes: new Uint8Array(4) })).toBe(false)
    const all4 = trusted(["0.0.0.0/0"])
    expect(all4(ClientIp.parseIp("8.8.8.8") ?? { version: 6, bytes: new Uint8Array(16) })).toBe(true)
    expect(all4(ClientIp.parseIp("2001:db8::1") ?? { version: 4, bytes: new Uint8Array(4) })).toBe(false)
    expect(ClientIp.parseCidr("::ffff:10.0.0.0/104")).toEqual({ version: 4, bytes: new Uint8Array([10, 0, 0, 0]), prefix: 8 })
    expect(ClientIp.parseCidr("fe80::/10")?.prefix).toBe(10)
  })

  it("refuses malformed entries and reports which", () => {
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "banana", "10.0.0/8", "fe80::1%eth0/64", ""]) {
      expect(ClientIp.parseCidr(bad), bad).toBeUndefined()
    }
    const r = ClientIp.compileTrusted(["10.0.0.0/8", "loopback", "nope"])
    expect(r._tag).toBe("Left")
    if (r._tag === "Left") expect(r.index).toBe(2)
  })

  it("expands presets", () => {
    const t = trusted(["loopback", "private"])
    for (const s of ["127.0.0.1", "127.9.9.9", "::1", "10.1.1.1", "172.20.0.1", "192.168.0.1", "fd12::1"]) {
      expect(t(ClientIp.parseIp(s) ?? { version: 4, bytes: new Uint8Array([1, 1, 1, 1]) }), s).toBe(true)
    }
    expect(t(ClientIp.parseIp("8.8.8.8") ?? { version: 4, bytes: new Uint8Array(4) })).toBe(false)
  })
})

describe("clientIp: grouping", () => {
  it("groups IPv6 by /64 by default, configurable", () => {
    const ip = ClientIp.parseIp("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    if (ip === undefined) throw new Error("parse")
    expect(ClientIp.groupKey(ip, 64)).toBe("2001:db8:1:2::/64")
    expect(ClientIp.groupKey(ip, 48)).toBe("2001:db8:1::/48")
    expect(ClientIp.groupKey(ip, 56)).toBe("2001:db8:1::/56")
    expect(ClientIp.groupKey(ip, 128)).toBe("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    const other = ClientIp.parseIp("2001:db8:1:2::1")
    if (other === undefined) throw new Error("parse")
    expect(ClientIp.groupKey(other, 64)).toBe(ClientIp.groupKey(ip, 64))
    const v4 = ClientIp.parseIp("::ffff:198.51.100.9")
    if (v4 === undefined) throw new Error("parse")
    expect(ClientIp.groupKey(v4, 64)).toBe("198.51.100.9")
  })
})

describe("clientIp: resolving the client", () => {
  it("uses the peer when it is not trusted, whatever the headers say", () => {
    expect(resolve("198.51.100.1", "1.2.3.4", [])).toBe("198.51.100.1")
    expect(resolve("198.51.100.1", "1.2.3.4", ["10.0.0.0/8"])).toBe("198.51.100.1")
    expect(resolve("::ffff:198.51.100.1", "1.2.3.4", ["10.0.0.0/8"])).toBe("198.51.100.1")
  })

  it("walks X-Forwarded-For from the right past trusted proxies", () => {
    const proxies = ["10.0.0.0/8", "192.168.0.0/16"]
    // client 203.0.113.9 -> proxy 192.168.1.1 -> proxy 10.0.0.2 -> us
    expect(resolve("10.0.0.2", "203.0.113.9, 192.168.1.1", proxies)).toBe("203.0.113.9")
    // a spoofed left-most entry is ignored: the first untrusted from the right wins
    expect(resolve("10.0.0.2", "6.6.6.6, 203.0.113.9, 192.168.1.1", proxies)).toBe("203.0.113.9")
    // no header: the proxy itself
    expect(resolve("10.0.0.2", undefined, proxies)).toBe("10.0.0.2")
    // every hop trusted: the left-most
    expect(resolve("10.0.0.2", "192.168.5.5, 10.1.1.1", proxies)).toBe("192.168.5.5")
    // ports and brackets written by proxies
    expect(resolve("10.0.0.2", "[2001:db8:9:9::1]:5555", proxies)).toBe("2001:db8:9:9::/64")
  })

  it("never turns garbage into a key", () => {
    const proxies = ["10.0.0.0/8"]
    expect(resolve("10.0.0.2", "garbage", proxies)).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", "203.0.113.9, unknown", proxies)).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", "203.0.113.9, 10.0.0.7, <x>", proxies)).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", "garbage, 10.0.0.7", proxies)).toBe("10.0.0.7")
    expect(resolve("10.0.0.2", "", proxies)).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", " , ", proxies)).toBe("10.0.0.2")
    expect(resolve("not-an-ip", "203.0.113.9", proxies)).toBeUndefined()
    expect(resolve(undefined, "203.0.113.9", proxies)).toBeUndefined()
  })

  it("reads RFC 7239 Forwarded", () => {
    const proxies = ["10.0.0.0/8"]
    expect(resolve("10.0.0.2", "for=192.0.2.60;proto=http;by=203.0.113.43", proxies, "forwarded")).toBe("192.0.2.60")
    expect(resolve("10.0.0.2", "For=\"[2001:db8:cafe::17]:4711\"", proxies, "forwarded")).toBe("2001:db8:cafe::/64")
    expect(resolve("10.0.0.2", "for=6.6.6.6, for=192.0.2.43, for=10.0.0.5;proto=https", proxies, "forwarded")).toBe(
      "192.0.2.43"
    )
    expect(resolve("10.0.0.2", "for=\"192.0.2.1:80\";by=x, for=10.9.9.9", proxies, "forwarded")).toBe("192.0.2.1")
    // unknown / obfuscated / missing / duplicated for= / quoted commas: garbage stops the walk
    expect(resolve("10.0.0.2", "for=192.0.2.1, for=unknown", proxies, "forwarded")).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", "for=192.0.2.1, for=_hidden", proxies, "forwarded")).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", "for=192.0.2.1, proto=https", proxies, "forwarded")).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", "for=192.0.2.1;for=192.0.2.2", proxies, "forwarded")).toBe("10.0.0.2")
    expect(resolve("10.0.0.2", "for=\"1.1.1.1, 2.2.2.2\"", proxies, "forwarded")).toBe("10.0.0.2")
    // the X-Forwarded-For syntax is not Forwarded syntax
    expect(resolve("10.0.0.2", "192.0.2.1", proxies, "forwarded")).toBe("10.0.0.2")
  })
})
