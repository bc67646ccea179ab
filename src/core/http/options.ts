/**
 * The HTTP middleware's options checked and compiled once, when the middleware is built: the
 * header mode, the IPv6 grouping, the proxy header and trusted ranges, the cost, the path
 * patterns and the policy name. The first invalid option is described, in this order.
 *
 * Plain TypeScript, no Effect import: shared by every build. The key and cost functions are the
 * Effect side's: a cost function is passed through as `F`, untouched.
 *
 * @internal
 */
import { compileTrusted, type IpAddress, makeClientKey, type ProxyHeader } from "./clientIp.js"
import { HEADER_MODES, type HeadersMode, sfString } from "./headers.js"
import { compilePatterns, pathFilter, type PathPattern } from "./paths.js"
import { type Checked, invalid, valid } from "./problem.js"

/**
 * The options this module checks (the plain part of `HttpRateLimit.LimitOptions`).
 *
 * @internal
 */
export interface HttpOptions<F> {
  readonly cost?: number | F | undefined
  readonly include?: ReadonlyArray<PathPattern> | undefined
  readonly exclude?: ReadonlyArray<PathPattern> | undefined
  readonly failOpen?: boolean | undefined
  readonly headers?: HeadersMode | undefined
  readonly policyName?: string | undefined
  readonly trustedProxies?: ReadonlyArray<string> | undefined
  readonly proxyHeader?: ProxyHeader | undefined
  readonly ipv6Prefix?: number | undefined
}

/**
 * The options with their defaults, compiled.
 *
 * @internal
 */
export interface ResolvedOptions<F> {
  readonly limiter: string
  readonly headers: HeadersMode
  /** The policy name as a structured-field string, ready for the IETF headers. */
  readonly policy: string
  /** A whole number of at least 1, or the cost function as given. */
  readonly cost: number | F
  /** `undefined`: follow the limiter's own fail-open / fail-closed policy. */
  readonly failOpen: boolean | undefined
  /** The header the forwarding chain is read from. */
  readonly proxyHeader: ProxyHeader
  /** Whether a request target is limited (see `pathFilter`). */
  readonly applies: (url: string) => boolean
  /** From the peer address and the proxy header's value to the client key (see `makeClientKey`). */
  readonly clientKey: (peer: string | undefined, chainHeader: string | undefined) => string | undefined
}

const PATH = "http"

interface ClientOptions {
  readonly proxyHeader: ProxyHeader
  readonly ipv6Prefix: number
  readonly isTrusted: (ip: IpAddress) => boolean
}

/** `ipv6Prefix`, `proxyHeader`, `trustedProxies`. */
const checkClient = <F>(options: HttpOptions<F> | undefined): Checked<ClientOptions> => {
  const ipv6Prefix = options?.ipv6Prefix ?? 64
  if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 1 || ipv6Prefix > 128) {
    return invalid(`${PATH}.ipv6Prefix`, "a whole number in [1, 128]", ipv6Prefix)
  }
  const proxyHeader = options?.proxyHeader ?? "x-forwarded-for"
  if (proxyHeader !== "x-forwarded-for" && proxyHeader !== "forwarded") {
    return invalid(`${PATH}.proxyHeader`, `"x-forwarded-for" or "forwarded"`, proxyHeader)
  }
  const trusted = compileTrusted(options?.trustedProxies ?? [])
  if (trusted._tag === "Left") {
    return invalid(
      `${PATH}.trustedProxies[${trusted.index}]`,
      `an IP address, a CIDR range or one of "loopback", "private", "linklocal"`,
      trusted.entry
    )
  }
  return valid({ proxyHeader, ipv6Prefix, isTrusted: trusted.contains })
}

/** `include` then `exclude`, as one path filter. */
const checkPaths = <F>(options: HttpOptions<F> | undefined): Checked<(url: string) => boolean> => {
  const includes = compilePatterns(`${PATH}.include`, options?.include)
  if (!includes.ok) return includes
  const excludes = compilePatterns(`${PATH}.exclude`, options?.exclude)
  if (!excludes.ok) return excludes
  return valid(pathFilter(includes.value, excludes.value))
}

/**
 * Checks and compiles the options of limiter `limiter`. Checked at run time: plain JavaScript
 * callers reach here unchecked, so a wrong type is described, never thrown on.
 *
 * @internal
 */
export const resolveOptions = <F>(limiter: string, options: HttpOptions<F> | undefined): Checked<ResolvedOptions<F>> => {
  if (typeof limiter !== "string" || limiter.length === 0) return invalid(`${PATH}.limiter`, "a limiter id", limiter)
  const headers = options?.headers ?? "both"
  if (!HEADER_MODES.includes(headers)) {
    return invalid(`${PATH}.headers`, `one of "draft", "legacy", "both", "none"`, headers)
  }
  const client = checkClient(options)
  if (!client.ok) return client
  const cost = options?.cost ?? 1
  if (typeof cost === "number" && !(Number.isSafeInteger(cost) && cost >= 1)) {
    return invalid(`${PATH}.cost`, "a whole number of at least 1, or a function", cost)
  }
  const applies = checkPaths(options)
  if (!applies.ok) return applies
  const { ipv6Prefix, isTrusted, proxyHeader } = client.value
  return valid({
    limiter,
    headers,
    policy: sfString(options?.policyName ?? limiter),
    cost,
    failOpen: options?.failOpen,
    proxyHeader,
    applies: applies.value,
    clientKey: makeClientKey(proxyHeader, isTrusted, ipv6Prefix)
  })
}
