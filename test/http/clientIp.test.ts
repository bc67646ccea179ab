import { assert, describe, it } from "#test/vitest"

import * as ClientIp from "../../src/core/http/clientIp.js"
import { FastCheck } from "#test/effect"

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
    assert.strictEqual(fmt("203.0.113.7"), "203.0.113.7")
    assert.strictEqual(fmt("0.0.0.0"), "0.0.0.0")
    assert.strictEqual(fmt("255.255.255.255"), "255.255.255.255")
    for (const bad of ["256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.-4", "1.2.3.4 ", "", "a.b.c.d", "1..2.3", "0x7f.0.0.1", "1.2.3.4/8"]) {
      assert.isUndefined(fmt(bad), bad)
    }
  })

  it("parses IPv6 and formats it per RFC 5952", () => {
    assert.strictEqual(fmt("2001:DB8:0:0:0:0:0:1"), "2001:db8::1")
    assert.strictEqual(fmt("2001:db8::1"), "2001:db8::1")
    assert.strictEqual(fmt("::"), "::")
    assert.strictEqual(fmt("::1"), "::1")
    assert.strictEqual(fmt("fe80::"), "fe80::")
    assert.strictEqual(fmt("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1")
    assert.strictEqual(fmt("2001:0db8:0000:0001:0000:0000:0000:0001"), "2001:db8:0:1::1")
    assert.strictEqual(fmt("1:0:1:1:1:1:1:1"), "1:0:1:1:1:1:1:1")
    assert.strictEqual(fmt("64:ff9b::192.0.2.33"), "64:ff9b::c000:221")
    for (const bad of ["1::2::3", ":::", "12345::", "g::1", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "::1.2.3", "1.2.3.4::", "fe80::1%", "fe80::1%a b"]) {
      assert.isUndefined(fmt(bad), bad)
    }
  })

  it("strips zone ids", () => {
    assert.strictEqual(fmt("fe80::1%eth0"), "fe80::1")
    assert.strictEqual(fmt("fe80::1%25"), "fe80::1")
  })

  it("treats IPv4-mapped IPv6 as IPv4", () => {
    assert.strictEqual(ClientIp.parseIp("::ffff:192.0.2.1")?.version, 4)
    assert.strictEqual(fmt("::ffff:192.0.2.1"), "192.0.2.1")
    assert.strictEqual(fmt("::FFFF:c000:0201"), "192.0.2.1")
    assert.strictEqual(fmt("0:0:0:0:0:ffff:127.0.0.1"), "127.0.0.1")
    // IPv4-compatible (deprecated) is not mapped: it stays IPv6
    assert.strictEqual(fmt("::192.0.2.1"), "::c000:201")
  })

  it("parses proxy nodes with ports and brackets, refuses garbage", () => {
    assert.strictEqual(node(" 203.0.113.7 "), "203.0.113.7")
    assert.strictEqual(node("203.0.113.7:8080"), "203.0.113.7")
    assert.strictEqual(node("[2001:db8::1]:443"), "2001:db8::1")
    assert.strictEqual(node("[2001:db8::1]"), "2001:db8::1")
    assert.strictEqual(node("2001:db8::1"), "2001:db8::1")
    assert.strictEqual(node("[::ffff:10.0.0.1]:80"), "10.0.0.1")
    for (const bad of ["unknown", "_hidden", "", "localhost", "[2001:db8::1", "[2001:db8::1]x", "1.2.3.4:", "1.2.3.4:99999x", "[1.2.3.4]", "evil.example:80", "<script>", "1.2.3.4, 5.6.7.8"]) {
      assert.isUndefined(node(bad), bad)
    }
  })

  it.prop("IPv4 round-trips", [FastCheck.ipV4()], ([ip]) => {
    assert.strictEqual(fmt(ip), ip)
  })

  it.prop("IPv6 round-trips through RFC 5952 form (idempotent)", [FastCheck.ipV6()], ([ip]) => {
    const once = fmt(ip)
    assert.isDefined(once)
    if (once !== undefined) assert.strictEqual(fmt(once), once)
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
    assert.isTrue(t(ip("10.255.1.2")))
    assert.isFalse(t(ip("11.0.0.1")))
    assert.isTrue(t(ip("192.168.1.7")))
    assert.isFalse(t(ip("192.168.1.8")))
    assert.isTrue(t(ip("172.31.255.255")))
    assert.isFalse(t(ip("172.32.0.0")))
    assert.isTrue(t(ip("2001:db8:abcd:ffff::1")))
    assert.isFalse(t(ip("2001:db8:abce::1")))
    assert.isTrue(t(ip("::ffff:10.1.1.1")))
  })

  it("handles odd prefixes, host bits, /0 and mapped ranges", () => {
    const c = ClientIp.parseCidr("10.1.2.3/9")
    assert.deepStrictEqual(c, { version: 4, bytes: new Uint8Array([10, 0, 0, 0]), prefix: 9 })
    const t9 = trusted(["10.128.0.0/9"])
    assert.isTrue(t9(ClientIp.parseIp("10.200.0.1") ?? { version: 4, bytes: new Uint8Array(4) }))
    assert.isFalse(t9(ClientIp.parseIp("10.127.0.1") ?? { version: 4, bytes: new Uint8Array(4) }))
    const all4 = trusted(["0.0.0.0/0"])
    assert.isTrue(all4(ClientIp.parseIp("8.8.8.8") ?? { version: 6, bytes: new Uint8Array(16) }))
    assert.isFalse(all4(ClientIp.parseIp("2001:db8::1") ?? { version: 4, bytes: new Uint8Array(4) }))
    assert.deepStrictEqual(ClientIp.parseCidr("::ffff:10.0.0.0/104"), { version: 4, bytes: new Uint8Array([10, 0, 0, 0]), prefix: 8 })
    assert.strictEqual(ClientIp.parseCidr("fe80::/10")?.prefix, 10)
  })

  it("refuses malformed entries and reports which", () => {
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/08", "banana", "10.0.0/8", "fe80::1%eth0/64", ""]) {
      assert.isUndefined(ClientIp.parseCidr(bad), bad)
    }
    const r = ClientIp.compileTrusted(["10.0.0.0/8", "loopback", "nope"])
    assert.strictEqual(r._tag, "Left")
    if (r._tag === "Left") assert.strictEqual(r.index, 2)
  })

  it("expands presets", () => {
    const t = trusted(["loopback", "private"])
    for (const s of ["127.0.0.1", "127.9.9.9", "::1", "10.1.1.1", "172.20.0.1", "192.168.0.1", "fd12::1"]) {
      assert.isTrue(t(ClientIp.parseIp(s) ?? { version: 4, bytes: new Uint8Array([1, 1, 1, 1]) }), s)
    }
    assert.isFalse(t(ClientIp.parseIp("8.8.8.8") ?? { version: 4, bytes: new Uint8Array(4) }))
  })
})

describe("clientIp: grouping", () => {
  it("groups IPv6 by /64 by default, configurable", () => {
    const ip = ClientIp.parseIp("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    if (ip === undefined) throw new Error("parse")
    assert.strictEqual(ClientIp.groupKey(ip, 64), "2001:db8:1:2::/64")
    assert.strictEqual(ClientIp.groupKey(ip, 48), "2001:db8:1::/48")
    assert.strictEqual(ClientIp.groupKey(ip, 56), "2001:db8:1::/56")
    assert.strictEqual(ClientIp.groupKey(ip, 128), "2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    const other = ClientIp.parseIp("2001:db8:1:2::1")
    if (other === undefined) throw new Error("parse")
    assert.strictEqual(ClientIp.groupKey(other, 64), ClientIp.groupKey(ip, 64))
    const v4 = ClientIp.parseIp("::ffff:198.51.100.9")
    if (v4 === undefined) throw new Error("parse")
    assert.strictEqual(ClientIp.groupKey(v4, 64), "198.51.100.9")
  })
})

describe("clientIp: resolving the client", () => {
  it("uses the peer when it is not trusted, whatever the headers say", () => {
    assert.strictEqual(resolve("198.51.100.1", "1.2.3.4", []), "198.51.100.1")
    assert.strictEqual(resolve("198.51.100.1", "1.2.3.4", ["10.0.0.0/8"]), "198.51.100.1")
    assert.strictEqual(resolve("::ffff:198.51.100.1", "1.2.3.4", ["10.0.0.0/8"]), "198.51.100.1")
  })

  it("walks X-Forwarded-For from the right past trusted proxies", () => {
    const proxies = ["10.0.0.0/8", "192.168.0.0/16"]
    // client 203.0.113.9 -> proxy 192.168.1.1 -> proxy 10.0.0.2 -> us
    assert.strictEqual(resolve("10.0.0.2", "203.0.113.9, 192.168.1.1", proxies), "203.0.113.9")
    // a spoofed left-most entry is ignored: the first untrusted from the right wins
    assert.strictEqual(resolve("10.0.0.2", "6.6.6.6, 203.0.113.9, 192.168.1.1", proxies), "203.0.113.9")
    // no header: the proxy itself
    assert.strictEqual(resolve("10.0.0.2", undefined, proxies), "10.0.0.2")
    // every hop trusted: the left-most
    assert.strictEqual(resolve("10.0.0.2", "192.168.5.5, 10.1.1.1", proxies), "192.168.5.5")
    // ports and brackets written by proxies
    assert.strictEqual(resolve("10.0.0.2", "[2001:db8:9:9::1]:5555", proxies), "2001:db8:9:9::/64")
  })

  it("never turns garbage into a key", () => {
    const proxies = ["10.0.0.0/8"]
    assert.strictEqual(resolve("10.0.0.2", "garbage", proxies), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", "203.0.113.9, unknown", proxies), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", "203.0.113.9, 10.0.0.7, <x>", proxies), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", "garbage, 10.0.0.7", proxies), "10.0.0.7")
    assert.strictEqual(resolve("10.0.0.2", "", proxies), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", " , ", proxies), "10.0.0.2")
    assert.isUndefined(resolve("not-an-ip", "203.0.113.9", proxies))
    assert.isUndefined(resolve(undefined, "203.0.113.9", proxies))
  })

  it("reads RFC 7239 Forwarded", () => {
    const proxies = ["10.0.0.0/8"]
    assert.strictEqual(resolve("10.0.0.2", "for=192.0.2.60;proto=http;by=203.0.113.43", proxies, "forwarded"), "192.0.2.60")
    assert.strictEqual(resolve("10.0.0.2", "For=\"[2001:db8:cafe::17]:4711\"", proxies, "forwarded"), "2001:db8:cafe::/64")
    assert.strictEqual(resolve("10.0.0.2", "for=6.6.6.6, for=192.0.2.43, for=10.0.0.5;proto=https", proxies, "forwarded"), 
      "192.0.2.43"
    )
    assert.strictEqual(resolve("10.0.0.2", "for=\"192.0.2.1:80\";by=x, for=10.9.9.9", proxies, "forwarded"), "192.0.2.1")
    // unknown / obfuscated / missing / duplicated for= / quoted commas: garbage stops the walk
    assert.strictEqual(resolve("10.0.0.2", "for=192.0.2.1, for=unknown", proxies, "forwarded"), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", "for=192.0.2.1, for=_hidden", proxies, "forwarded"), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", "for=192.0.2.1, proto=https", proxies, "forwarded"), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", "for=192.0.2.1;for=192.0.2.2", proxies, "forwarded"), "10.0.0.2")
    assert.strictEqual(resolve("10.0.0.2", "for=\"1.1.1.1, 2.2.2.2\"", proxies, "forwarded"), "10.0.0.2")
    // the X-Forwarded-For syntax is not Forwarded syntax
    assert.strictEqual(resolve("10.0.0.2", "192.0.2.1", proxies, "forwarded"), "10.0.0.2")
  })
})
