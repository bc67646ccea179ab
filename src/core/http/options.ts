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
import { HEADER_MODES, type HeadersMode } from "./headers.js"
import { compilePatterns, pathFilter, type PathPattern } from "./paths.js"
import { type Checked, invalid, valid } from "./problem.js"

/**
 * The options this module checks (the plain part of `HttpRateLimit.LimitOptions`).
 *
 * @internal
 */
export interface HttpOptions<F> {
  readonly cost?: number | F | undefined
  readonly partitionKey?: boolean | undefined
  readonly include?: ReadonlyArray<PathPattern> | undefined
  readonly exclude?: ReadonlyArray<PathPattern> | undefined
  readonly failOpen?: boolean | undefined
  readonly headers?: HeadersMode | undefined
  readonly policyName?: string | Readonly<Record<string, string>> | undefined
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
  /** The limits every request is charged to, unless a per-request choice answers others. */
  readonly limits: StaticLimits | undefined
  /** The limiter ids of {@link limits} (the HTTP counter's `limiter` tags of an exemption). */
  readonly limiterIds: ReadonlyArray<string>
  readonly headers: HeadersMode
  /** The policy name of a limiter in the headers and the 429 body (`single`: the call has one limit). */
  readonly policyOf: (limiterId: string, single: boolean) => string
  /** Whether the IETF items carry `pk` (the rate-limit key). */
  readonly partitionKey: boolean
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

/**
 * One limit of a request's call: what `RateLimiter.Limit` says (a limiter, its own key and cost).
 *
 * @internal
 */
export interface LimitShape {
  readonly limiter: string
  readonly key?: string | undefined
  readonly cost?: number | undefined
}

/**
 * The limits of a call: one limiter id, or several limits charged as one unit.
 *
 * @internal
 */
export type StaticLimits = string | ReadonlyArray<string | LimitShape>

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Checks the shape of a call's limits (a limiter id, or a non-empty array of ids and
 * `{ limiter, key?, cost? }`), `path` naming where they came from; answers the limiter ids. The
 * limiters themselves, the keys and costs are checked by `RateLimiter.check`.
 *
 * @internal
 */
export const checkLimits = (
  path: string,
  limits: unknown
): Checked<{ readonly limits: StaticLimits; readonly ids: ReadonlyArray<string> }> => {
  if (typeof limits === "string") {
    return limits.length > 0 ? valid({ limits, ids: [limits] }) : invalid(path, "a limiter id", limits)
  }
  if (!Array.isArray(limits) || limits.length === 0) {
    return invalid(path, "a limiter id or a non-empty array of limits", limits)
  }
  const ids: Array<string> = []
  const out: Array<string | LimitShape> = []
  for (let i = 0; i < limits.length; i++) {
    const entry: unknown = limits[i]
    if (typeof entry === "string" && entry.length > 0) {
      ids.push(entry)
      out.push(entry)
      continue
    }
    const id = isRecord(entry) ? entry["limiter"] : undefined
    const key = isRecord(entry) ? entry["key"] : undefined
    const cost = isRecord(entry) ? entry["cost"] : undefined
    if (typeof id !== "string" || id.length === 0) {
      return invalid(`${path}[${i}]`, "a limiter id or { limiter, key?, cost? }", entry)
    }
    if (key !== undefined && typeof key !== "string") return invalid(`${path}[${i}].key`, "a string", key)
    if (cost !== undefined && typeof cost !== "number") return invalid(`${path}[${i}].cost`, "a whole number of at least 1", cost)
    ids.push(id)
    out.push({ limiter: id, key, cost })
  }
  return valid({ limits: out, ids })
}

/** `policyName`: a name (a call of one limit) or a record of names by limiter id. */
const checkPolicyName = (
  policyName: unknown,
  limiterIds: ReadonlyArray<string>
): Checked<(limiterId: string, single: boolean) => string> => {
  if (policyName === undefined) return valid((id) => id)
  if (typeof policyName === "string") {
    if (limiterIds.length > 1) {
      return invalid(`${PATH}.policyName`, "a record of names by limiter id (the call has several limits)", policyName)
    }
    return valid((id, single) => (single ? policyName : id))
  }
  if (isRecord(policyName)) {
    for (const [id, name] of Object.entries(policyName)) {
      if (typeof name !== "string") return invalid(`${PATH}.policyName.${id}`, "a policy name (a string)", name)
    }
    const names = new Map(Object.entries(policyName).filter((e): e is [string, string] => typeof e[1] === "string"))
    return valid((id) => names.get(id) ?? id)
  }
  return invalid(`${PATH}.policyName`, "a policy name or a record of names by limiter id", policyName)
}

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
 * Checks and compiles the options of the limits `limiter` (a limiter id or an array of limits;
 * absent when `perRequest`: a per-request choice gives them). Checked at run time: plain
 * JavaScript callers reach here unchecked, so a wrong type is described, never thrown on.
 *
 * @internal
 */
export const resolveOptions = <F>(
  limiter: unknown,
  options: HttpOptions<F> | undefined,
  perRequest = false
): Checked<ResolvedOptions<F>> => {
  const limits = limiter === undefined && perRequest ? valid(undefined) : checkLimits(`${PATH}.limiter`, limiter)
  if (!limits.ok) return limits
  const limiterIds = limits.value?.ids ?? []
  const policyOf = checkPolicyName(options?.policyName, limiterIds)
  if (!policyOf.ok) return policyOf
  const partitionKey = options?.partitionKey ?? false
  if (typeof partitionKey !== "boolean") return invalid(`${PATH}.partitionKey`, "a boolean", partitionKey)
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
    limits: limits.value?.limits,
    limiterIds,
    headers,
    policyOf: policyOf.value,
    partitionKey,
    cost,
    failOpen: options?.failOpen,
    proxyHeader,
    applies: applies.value,
    clientKey: makeClientKey(proxyHeader, isTrusted, ipv6Prefix)
  })
}
