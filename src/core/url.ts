/**
 * Store URLs (`redis://`, `postgres://`, `nats://`): parsing that refuses what a driver would
 * choke on (a URL the WHATWG parser refuses, a bad `%` escape that makes `decodeURIComponent`
 * throw), the secrets a URL holds, and the URL as an error may show it (secrets as `***`).
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */
import { MASK, SECRET_PARAMS } from "./secrets.js"

/**
 * How a store reads its URLs.
 *
 * @internal
 */
export interface UrlRules {
  /** Scheme (`"nats:"`) assumed for a URL without `://` (NATS takes `host:port`). None: such a text is no URL. */
  readonly defaultScheme?: string | undefined
  /** An empty host is accepted (`postgres://user@/db?host=/var/run/postgresql`). */
  readonly emptyHost?: boolean | undefined
  /** A user name without a password is a secret (NATS reads `nats://<token>@host` as a token). */
  readonly tokenUser?: boolean | undefined
}

/**
 * A parsed store URL. `username`, `password` and the query values are percent-decoded; `raw*`
 * are as the URL holds them.
 *
 * @internal
 */
export interface StoreUrl {
  readonly protocol: string
  readonly username: string
  readonly password: string
  readonly rawUsername: string
  readonly rawPassword: string
  /** `host:port` (`""` for an empty host). */
  readonly host: string
  readonly hostname: string
  readonly port: string
  readonly pathname: string
  /** The query pairs, decoded as `URLSearchParams` decodes them. */
  readonly params: ReadonlyArray<readonly [string, string]>
  /** The query pairs as the URL holds them. */
  readonly rawParams: ReadonlyArray<readonly [string, string]>
}

/**
 * A parse: the URL, or what is wrong with it (never quoting it).
 *
 * @internal
 */
export type UrlParse =
  | { readonly ok: true; readonly url: StoreUrl }
  | { readonly ok: false; readonly problem: string }

const DUMMY_HOST = "rate-sync-empty-host.invalid"

const validEscapes = (s: string): boolean => {
  try {
    decodeURIComponent(s)
    return true
  } catch {
    return false
  }
}

const withScheme = (text: string, rules: UrlRules): string =>
  rules.defaultScheme !== undefined && !text.includes("://") ? `${rules.defaultScheme}//${text}` : text

const whatwg = (text: string, rules: UrlRules): { readonly url: URL; readonly emptyHost: boolean } | undefined => {
  // a store URL has an authority (`scheme://`): `h:4222` would read as scheme `h:` and a path
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return undefined
  try {
    return { url: new URL(text), emptyHost: false }
  } catch {
    // The WHATWG parser refuses userinfo before an empty host; pg takes it (a unix socket in `?host=`).
    if (rules.emptyHost === true && text.includes("@/")) {
      try {
        return { url: new URL(text.replace("@/", `@${DUMMY_HOST}/`)), emptyHost: true }
      } catch {
        return undefined
      }
    }
    return undefined
  }
}

const splitQuery = (search: string): ReadonlyArray<readonly [string, string]> =>
  search.replace(/^\?/, "").split("&").filter((pair) => pair !== "").map((pair) => {
    const i = pair.indexOf("=")
    return i < 0 ? [pair, ""] : [pair.slice(0, i), pair.slice(i + 1)]
  })

/**
 * Parses a store URL. Refuses (with a problem that names the part, never its text) a URL the
 * WHATWG parser refuses, and a `%` not followed by two hex digits, or escapes that are not UTF-8,
 * in the user name, password, host, path or query: drivers decode these with
 * `decodeURIComponent`, which throws `URIError: URI malformed`, or read them differently from one
 * another.
 *
 * @internal
 */
export const parseUrl = (text: string, rules: UrlRules = {}): UrlParse => {
  const parsed = whatwg(withScheme(text, rules), rules)
  if (parsed === undefined) return { ok: false, problem: "not a URL" }
  const { url } = parsed
  const hostname = parsed.emptyHost ? "" : url.hostname
  const checks: ReadonlyArray<readonly [string, string]> = [
    ["user name", url.username],
    ["password", url.password],
    ["host", hostname],
    ["path", url.pathname]
  ]
  for (const [part, value] of checks) {
    if (!validEscapes(value)) return { ok: false, problem: `a bad % escape in the ${part}` }
  }
  const rawParams = splitQuery(url.search)
  for (const [key, value] of rawParams) {
    if (!validEscapes(key.replace(/\+/g, " ")) || !validEscapes(value.replace(/\+/g, " "))) {
      return { ok: false, problem: "a bad % escape in the query" }
    }
  }
  return {
    ok: true,
    url: {
      protocol: url.protocol,
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      rawUsername: url.username,
      rawPassword: url.password,
      host: parsed.emptyHost ? "" : url.host,
      hostname,
      port: url.port,
      pathname: url.pathname,
      params: Array.from(url.searchParams.entries()),
      rawParams
    }
  }
}

const isSecretParam = (key: string): boolean => {
  let name = key
  try {
    name = decodeURIComponent(key.replace(/\+/g, " "))
  } catch {
    // a bad escape: compare the key as written
  }
  return SECRET_PARAMS.has(name.toLowerCase())
}

/** The user name is a secret: a token in its place (no password, and the store reads it so). */
const userIsSecret = (url: { readonly username: string; readonly password: string }, rules: UrlRules): boolean =>
  rules.tokenUser === true && url.password === "" && url.username !== ""

/**
 * Every secret `text` holds, as it holds them and decoded: the whole text, the password, a token
 * given as the user name (with `tokenUser`), the values of `password`, `sslpassword`, `pass`,
 * `token` and `auth_token` query parameters. A text that does not parse gives itself and what
 * looks like its userinfo.
 *
 * @internal
 */
export const secretsOfUrl = (text: string, rules: UrlRules = {}): ReadonlyArray<string> => {
  const out: Array<string> = [text]
  const parsed = whatwg(withScheme(text, rules), rules)
  if (parsed === undefined) {
    // not a URL: what sits between `://` and the last `@` (and after its first `:`) may be secret
    const userinfo = /^[^/]*:\/\/(.*)@/.exec(text)?.[1]
    if (userinfo !== undefined) {
      out.push(userinfo)
      const colon = userinfo.indexOf(":")
      if (colon >= 0) out.push(userinfo.slice(colon + 1))
    }
    for (const [key, value] of splitQuery(text.includes("?") ? text.slice(text.indexOf("?")) : "")) {
      if (isSecretParam(key)) out.push(value)
    }
    return out.filter((s) => s !== "")
  }
  const { url } = parsed
  // the variants of each secret (decoded and encoded forms) are the redactor's: the raw forms suffice here
  if (url.password !== "") out.push(url.password)
  if (userIsSecret(url, rules)) out.push(url.username)
  for (const [key, value] of splitQuery(url.search)) {
    if (isSecretParam(key)) out.push(value)
  }
  for (const [key, value] of url.searchParams.entries()) {
    if (SECRET_PARAMS.has(key.toLowerCase())) out.push(value)
  }
  return out.filter((s) => s !== "")
}

/**
 * `text` as an error may show it: the password, a token given as the user name (with
 * `tokenUser`) and the secret query values replaced by `***` (`redis://:***@host:6379`), the
 * fragment dropped. A text that does not parse is shown as `<redacted>`.
 *
 * @internal
 */
export const displayUrl = (text: string, rules: UrlRules = {}): string => {
  const parsed = whatwg(withScheme(text, rules), rules)
  if (parsed === undefined) return "<redacted>"
  const { url } = parsed
  const user = userIsSecret(url, rules) ? MASK : url.username
  const userinfo = url.username === "" && url.password === ""
    ? ""
    : `${user}${url.password === "" ? "" : `:${MASK}`}@`
  const query = url.search.replace(/^\?/, "").split("&").filter((pair) => pair !== "").map((pair) => {
    const i = pair.indexOf("=")
    return i >= 0 && isSecretParam(pair.slice(0, i)) ? `${pair.slice(0, i)}=${MASK}` : pair
  })
  const host = parsed.emptyHost ? "" : url.host
  return `${url.protocol}//${userinfo}${host}${url.pathname}${query.length === 0 ? "" : `?${query.join("&")}`}`
}
