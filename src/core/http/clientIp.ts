/**
 * Client address resolution for the HTTP middleware: strict IP parsing (IPv4, IPv6 with zone ids
 * and embedded IPv4), CIDR matching, IPv6 prefix grouping, and the right-to-left walk of
 * `X-Forwarded-For` / `Forwarded` (RFC 7239) past trusted proxies. Pure functions, no I/O.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */

/** @internal */
export interface IpAddress {
  readonly version: 4 | 6
  /** 4 bytes for IPv4, 16 for IPv6. IPv4-mapped IPv6 addresses are always given as IPv4. */
  readonly bytes: Uint8Array
}

/** @internal */
export interface Cidr {
  readonly version: 4 | 6
  /** Network bytes, host bits cleared. */
  readonly bytes: Uint8Array
  readonly prefix: number
}

const DEC = /^(?:0|[1-9][0-9]{0,2})$/
const HEX = /^[0-9a-fA-F]{1,4}$/
const ZONE = /^[0-9A-Za-z._~-]+$/
const PORT = /^[0-9]{1,5}$/

const parseIpv4Bytes = (input: string): Uint8Array | undefined => {
  const parts = input.split(".")
  if (parts.length !== 4) return undefined
  const bytes = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const part = parts[i]
    // Leading zeros are refused: "010" is octal to some parsers and decimal to others.
    if (part === undefined || !DEC.test(part)) return undefined
    const n = Number(part)
    if (n > 255) return undefined
    bytes[i] = n
  }
  return bytes
}

const parseGroups = (input: string, allowIpv4Tail: boolean): Array<number> | undefined => {
  if (input === "") return []
  const parts = input.split(":")
  const groups: Array<number> = []
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]
    if (part === undefined) return undefined
    if (allowIpv4Tail && i === parts.length - 1 && part.includes(".")) {
      const v4 = parseIpv4Bytes(part)
      if (v4 === undefined) return undefined
      groups.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0))
      continue
    }
    if (!HEX.test(part)) return undefined
    groups.push(parseInt(part, 16))
  }
  return groups
}

const parseIpv6Bytes = (input: string): Uint8Array | undefined => {
  let address = input
  const percent = address.indexOf("%")
  if (percent !== -1) {
    // Zone ids (fe80::1%eth0) name an interface of the host, not the peer: dropped.
    if (!ZONE.test(address.slice(percent + 1))) return undefined
    address = address.slice(0, percent)
  }
  const halves = address.split("::")
  if (halves.length > 2) return undefined
  let groups: Array<number>
  if (halves.length === 2) {
    const head = parseGroups(halves[0] ?? "", false)
    const tail = parseGroups(halves[1] ?? "", true)
    if (head === undefined || tail === undefined) return undefined
    const missing = 8 - head.length - tail.length
    if (missing < 1) return undefined
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail]
  } else {
    const all = parseGroups(address, true)
    if (all === undefined || all.length !== 8) return undefined
    groups = all
  }
  const bytes = new Uint8Array(16)
  for (let i = 0; i < 8; i++) {
    const g = groups[i] ?? 0
    bytes[2 * i] = g >> 8
    bytes[2 * i + 1] = g & 0xff
  }
  return bytes
}

const isMapped = (bytes: Uint8Array): boolean => {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return bytes[10] === 0xff && bytes[11] === 0xff
}

/**
 * Parses a bare address: IPv4 dotted quad (no leading zeros) or IPv6 (compressed, embedded IPv4,
 * zone id stripped). IPv4-mapped IPv6 (`::ffff:1.2.3.4`) answers the IPv4 address. Anything else,
 * including ports and brackets, answers `undefined`.
 *
 * @internal
 */
export const parseIp = (input: string): IpAddress | undefined => {
  if (input.length === 0 || input.length > 64) return undefined
  if (!input.includes(":")) {
    const v4 = parseIpv4Bytes(input)
    return v4 === undefined ? undefined : { version: 4, bytes: v4 }
  }
  const v6 = parseIpv6Bytes(input)
  if (v6 === undefined) return undefined
  if (isMapped(v6)) return { version: 4, bytes: v6.slice(12) }
  return { version: 6, bytes: v6 }
}

/**
 * Parses a node as proxies write it: a bare address, `1.2.3.4:port`, `[v6]` or `[v6]:port`,
 * surrounding whitespace ignored. `unknown`, obfuscated identifiers (`_hidden`) and anything
 * malformed answer `undefined`.
 *
 * @internal
 */
export const parseNode = (raw: string): IpAddress | undefined => {
  const input = raw.trim()
  if (input.startsWith("[")) {
    const close = input.indexOf("]")
    if (close === -1) return undefined
    const rest = input.slice(close + 1)
    if (rest !== "" && !(rest.startsWith(":") && PORT.test(rest.slice(1)))) return undefined
    const inner = input.slice(1, close)
    if (!inner.includes(":")) return undefined
    return parseIp(inner)
  }
  const colon = input.indexOf(":")
  if (colon !== -1 && colon === input.lastIndexOf(":")) {
    // exactly one colon: IPv4 with a port
    if (!PORT.test(input.slice(colon + 1))) return undefined
    const host = input.slice(0, colon)
    return host.includes(".") ? parseIp(host) : undefined
  }
  return parseIp(input)
}

const maskBytes = (bytes: Uint8Array, prefix: number): Uint8Array => {
  const out = new Uint8Array(bytes.length)
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i))
    const mask = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff
    out[i] = (bytes[i] ?? 0) & mask
  }
  return out
}

const PRESETS: Readonly<Record<string, ReadonlyArray<string>>> = {
  loopback: ["127.0.0.0/8", "::1/128"],
  private: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
  linklocal: ["169.254.0.0/16", "fe80::/10"]
}

/**
 * Parses `address` or `address/prefix`. Host bits are cleared; an IPv4-mapped IPv6 range with a
 * prefix of at least 96 becomes the IPv4 range it denotes. Malformed input answers `undefined`.
 *
 * @internal
 */
export const parseCidr = (input: string): Cidr | undefined => {
  const trimmed = input.trim()
  const slash = trimmed.indexOf("/")
  const addressPart = slash === -1 ? trimmed : trimmed.slice(0, slash)
  const prefixPart = slash === -1 ? undefined : trimmed.slice(slash + 1)
  if (addressPart.includes("%")) return undefined
  const v6 = addressPart.includes(":") ? parseIpv6Bytes(addressPart) : undefined
  const v4 = addressPart.includes(":") ? undefined : parseIpv4Bytes(addressPart)
  if (v6 === undefined && v4 === undefined) return undefined
  const max = v4 !== undefined ? 32 : 128
  let prefix = max
  if (prefixPart !== undefined) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(prefixPart)) return undefined
    prefix = Number(prefixPart)
    if (prefix > max) return undefined
  }
  if (v4 !== undefined) return { version: 4, bytes: maskBytes(v4, prefix), prefix }
  if (v6 !== undefined && isMapped(v6) && prefix >= 96) {
    return { version: 4, bytes: maskBytes(v6.slice(12), prefix - 96), prefix: prefix - 96 }
  }
  return { version: 6, bytes: maskBytes(v6 ?? new Uint8Array(16), prefix), prefix }
}

/** @internal */
export const cidrContains = (cidr: Cidr, ip: IpAddress): boolean => {
  if (cidr.version !== ip.version) return false
  const full = Math.floor(cidr.prefix / 8)
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip.bytes[i]) return false
  const bits = cidr.prefix % 8
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return ((ip.bytes[full] ?? 0) & mask) === (cidr.bytes[full] ?? 0)
}

/**
 * Compiles a list of addresses, CIDR ranges and presets (`"loopback"`, `"private"`,
 * `"linklocal"`) into a membership test. Answers the index of the first invalid entry instead
 * when one does not parse.
 *
 * @internal
 */
export const compileTrusted = (
  entries: ReadonlyArray<string>
): { readonly _tag: "Right"; readonly contains: (ip: IpAddress) => boolean } | {
  readonly _tag: "Left"
  readonly index: number
  readonly entry: string
} => {
  const cidrs: Array<Cidr> = []
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] ?? ""
    const preset = PRESETS[entry.trim().toLowerCase()]
    const sources = preset ?? [entry]
    for (const source of sources) {
      const cidr = parseCidr(source)
      if (cidr === undefined) return { _tag: "Left", index: i, entry }
      cidrs.push(cidr)
    }
  }
  if (cidrs.length === 0) return { _tag: "Right", contains: () => false }
  return { _tag: "Right", contains: (ip) => cidrs.some((cidr) => cidrContains(cidr, ip)) }
}

/**
 * RFC 5952 text: IPv4 dotted; IPv6 lowercase, no leading zeros, the longest run (≥ 2) of zero
 * groups compressed to `::` (the first one on a tie).
 *
 * @internal
 */
export const formatIp = (ip: IpAddress): string => {
  if (ip.version === 4) return Array.from(ip.bytes).join(".")
  const groups: Array<number> = []
  for (let i = 0; i < 8; i++) groups.push(((ip.bytes[2 * i] ?? 0) << 8) | (ip.bytes[2 * i + 1] ?? 0))
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestLen < 2) return hex.join(":")
  const head = hex.slice(0, bestStart).join(":")
  const tail = hex.slice(bestStart + bestLen).join(":")
  return `${head}::${tail}`
}

/**
 * The rate-limit identity of an address: the IPv4 address itself, or the IPv6 network of
 * `ipv6Prefix` bits written as `net::/prefix` (the address itself when the prefix is 128).
 *
 * @internal
 */
export const groupKey = (ip: IpAddress, ipv6Prefix: number): string => {
  if (ip.version === 4 || ipv6Prefix >= 128) return formatIp(ip)
  return `${formatIp({ version: 6, bytes: maskBytes(ip.bytes, ipv6Prefix) })}/${ipv6Prefix}`
}

/**
 * Splits a header on commas outside quoted strings.
 */
const splitOutsideQuotes = (input: string, separator: string): Array<string> => {
  const out: Array<string> = []
  let current = ""
  let quoted = false
  for (let i = 0; i < input.length; i++) {
    const c = input[i] ?? ""
    if (quoted) {
      current += c
      if (c === "\\" && i + 1 < input.length) {
        current += input[i + 1] ?? ""
        i++
      } else if (c === "\"") {
        quoted = false
      }
    } else if (c === "\"") {
      quoted = true
      current += c
    } else if (c === separator) {
      out.push(current)
      current = ""
    } else {
      current += c
    }
  }
  out.push(current)
  return out
}

const unquote = (value: string): string | undefined => {
  if (!value.startsWith("\"")) return value
  if (value.length < 2 || !value.endsWith("\"")) return undefined
  return value.slice(1, -1).replace(/\\(.)/g, "$1")
}

/**
 * The `for=` node of each element of an RFC 7239 `Forwarded` header, left to right; `undefined`
 * for an element without a usable `for=` (missing, duplicated, `unknown`, obfuscated, malformed).
 *
 * @internal
 */
export const forwardedChain = (header: string): Array<IpAddress | undefined> =>
  splitOutsideQuotes(header, ",").map((element) => {
    let found: string | undefined
    let count = 0
    for (const pair of splitOutsideQuotes(element, ";")) {
      const eq = pair.indexOf("=")
      if (eq === -1) continue
      if (pair.slice(0, eq).trim().toLowerCase() !== "for") continue
      count++
      found = pair.slice(eq + 1).trim()
    }
    if (count !== 1 || found === undefined) return undefined
    const value = unquote(found)
    return value === undefined ? undefined : parseNode(value)
  })

/**
 * The entries of an `X-Forwarded-For` header, left to right; `undefined` for garbage.
 *
 * @internal
 */
export const xForwardedForChain = (header: string): Array<IpAddress | undefined> =>
  header.split(",").map(parseNode)

/**
 * Which header carries the proxy chain.
 *
 * @internal
 */
export type ProxyHeader = "x-forwarded-for" | "forwarded"

/**
 * Resolves the client address.
 *
 * - No parsable peer: `undefined`.
 * - Peer not trusted: the peer (forwarding headers are ignored, whoever wrote them).
 * - Peer trusted: walk the chain from the right; the first untrusted address is the client. A
 *   garbage entry stops the walk at the last trusted hop seen (garbage never becomes the key,
 *   and nothing left of it can be trusted). When every entry is trusted, the left-most one.
 *
 * @internal
 */
export const resolveClient = (
  peer: string | undefined,
  chainHeader: string | undefined,
  proxyHeader: ProxyHeader,
  isTrusted: (ip: IpAddress) => boolean
): IpAddress | undefined => {
  if (peer === undefined) return undefined
  const peerIp = parseNode(peer)
  if (peerIp === undefined) return undefined
  if (!isTrusted(peerIp) || chainHeader === undefined) return peerIp
  const chain = proxyHeader === "forwarded" ? forwardedChain(chainHeader) : xForwardedForChain(chainHeader)
  let last = peerIp
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i]
    if (hop === undefined) return last
    if (!isTrusted(hop)) return hop
    last = hop
  }
  return last
}

/**
 * The client key function of a compiled configuration: from the socket's peer address and the
 * proxy header's value to the key ({@link resolveClient}, then {@link groupKey}); `undefined`
 * when the address is unknown. Built once; a peer seen before costs a lookup (a trusted proxy with
 * a chain header: the walk).
 *
 * @internal
 */
export const makeClientKey = (
  proxyHeader: ProxyHeader,
  isTrusted: (ip: IpAddress) => boolean,
  ipv6Prefix: number
) =>
{
  // what a peer address gives, parsed once: the same few peers (a keep-alive connection, the
  // proxies in front) send most requests; bounded, and pure, so forgetting is only slower
  const byPeer = new Map<string, { readonly key: string | undefined; readonly trusted: boolean }>()
  return (peer: string | undefined, chainHeader: string | undefined): string | undefined => {
    if (peer === undefined) return undefined
    let known = byPeer.get(peer)
    if (known === undefined) {
      const ip = parseNode(peer)
      known = ip === undefined ? { key: undefined, trusted: false } : { key: groupKey(ip, ipv6Prefix), trusted: isTrusted(ip) }
      if (byPeer.size >= MAX_PEERS) byPeer.clear()
      byPeer.set(peer, known)
    }
    // an untrusted peer is the client whatever it sends; a trusted one's chain is walked
    if (!known.trusted || chainHeader === undefined) return known.key
    const ip = resolveClient(peer, chainHeader, proxyHeader, isTrusted)
    return ip === undefined ? undefined : groupKey(ip, ipv6Prefix)
  }
}

const MAX_PEERS = 4096
