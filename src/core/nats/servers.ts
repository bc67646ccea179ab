/**
 * How the NATS store reads its server URLs: the servers as the driver gets them (no userinfo),
 * the credentials their userinfo holds, and the secrets a message about them may leak.
 *
 * @internal
 */
import { makeRedactor, secretParamPattern, userinfoPattern } from "../secrets.js"
import { displayUrl, parseUrl, secretsOfUrl } from "../url.js"
import type { UrlRules } from "../url.js"

/** A server without a scheme is `nats://…`; `nats://<token>@host` (no password) is a token. @internal */
export const URL_RULES: UrlRules = { defaultScheme: "nats:", tokenUser: true }

/** What the URLs' userinfo says: a user and password, or a token (`nats://<token>@host`). @internal */
export interface UrlCredentials {
  readonly user?: string
  readonly pass?: string
  readonly token?: string
}

/** @internal */
export type Servers =
  | { readonly ok: true; readonly servers: ReadonlyArray<string>; readonly credentials: UrlCredentials }
  | { readonly ok: false; readonly path: string; readonly expected: string; readonly received: string }

const SERVER_EXPECTED = "a NATS server URL (nats://[user:pass@ | token@]host:port, or host:port) with valid % escapes"

const sameCredentials = (a: UrlCredentials, b: UrlCredentials): boolean =>
  a.user === b.user && a.pass === b.pass && a.token === b.token

/**
 * The servers as the driver gets them (`scheme://host:port`, no userinfo) and the credentials
 * their userinfo holds, or the problem, naming the option (`url`, `servers[1]`), with the URL
 * shown with its secrets as `***`. Every server that carries credentials must carry the same (the
 * driver sends one set).
 *
 * @internal
 */
export const parseServers = (servers: ReadonlyArray<string>, field: (i: number) => string): Servers => {
  const out: Array<string> = []
  let credentials: UrlCredentials | undefined
  let first = -1
  for (let i = 0; i < servers.length; i++) {
    const text = servers[i] ?? ""
    const parsed = parseUrl(text, URL_RULES)
    if (!parsed.ok) {
      return { ok: false, path: field(i), expected: SERVER_EXPECTED, received: `${displayUrl(text, URL_RULES)} (${parsed.problem})` }
    }
    const url = parsed.url
    out.push(`${url.protocol}//${url.host}`)
    if (url.username === "" && url.password === "") continue
    const these: UrlCredentials = url.password === "" ? { token: url.username } : { user: url.username, pass: url.password }
    if (credentials === undefined) {
      credentials = these
      first = i
    } else if (!sameCredentials(credentials, these)) {
      return {
        ok: false,
        path: field(i),
        expected: `the credentials of ${field(first)} (the driver sends one set)`,
        received: `${displayUrl(text, URL_RULES)} (other credentials)`
      }
    }
  }
  return { ok: true, servers: out, credentials: credentials ?? {} }
}

/**
 * Removes from a driver message every form (raw, decoded, encoded, JSON-escaped, as the `CONNECT`
 * line a server may echo holds it: see `core/secrets.ts`) of the token, the server URLs, their
 * passwords and a token given as the URL user, then any URL userinfo (`scheme://…@`) and secret
 * query value. A user name that comes with a password is not a secret: it is only removed as part
 * of the userinfo, never as a substring of other words (a user `u` must not turn "connection
 * refused" into "connection ref***sed"). Build one per store.
 *
 * @internal
 */
export const redactorOf = (servers: ReadonlyArray<string>, token: string | undefined): (message: string) => string =>
  makeRedactor(
    [...(token !== undefined ? [token] : []), ...servers.flatMap((server) => secretsOfUrl(server, URL_RULES))],
    [userinfoPattern, secretParamPattern]
  )
