/**
 * What the PostgreSQL store scrubs from a driver message, and how it checks a `url` before
 * opening anything.
 *
 * @internal
 */
import * as Redacted from "effect/Redacted"
import { makeRedactor, secretParamPattern, userinfoPattern } from "../../core/secrets.js"
import { displayUrl, parseUrl, secretsOfUrl } from "../../core/url.js"
import type { UrlRules } from "../../core/url.js"
import * as RateLimitError from "../../RateLimitError.js"
import { secretText } from "../store/options.js"

/** `password=…` / `password: …` (a keyword/value connection string, a driver's echo of one). */
const passwordPairPattern = { regex: /(password\s*[=:]\s*)\S+/gi, replacement: "$1***" }

/**
 * A redactor (built once per store) that removes from a driver message every form (raw,
 * decoded, encoded, JSON-escaped: see `core/secrets.ts`) of the known secrets, then URL userinfo,
 * secret query values (`?password=`, `sslpassword`, ...) and `password=…` pairs.
 *
 * @internal
 */
export const sanitizeWith = (secrets: ReadonlyArray<string>): (message: string) => string =>
  makeRedactor(secrets, [userinfoPattern, secretParamPattern, passwordPairPattern])

/** pg takes userinfo before an empty host (a unix socket in `?host=`). */
const URL_RULES: UrlRules = { emptyHost: true }

/**
 * The password, the URL, its password and its secret query values (`?password=`, `sslpassword`).
 * `password` is the pool configuration's: a `Redacted`, or on Effect 4 also an effect that answers
 * one for each connection, whose value is not known here (`@effect/sql-pg` 4 does not echo it).
 *
 * @internal
 */
export const secretsOf = (
  url: Redacted.Redacted | undefined,
  password: unknown
): ReadonlyArray<string> => {
  // a url that is not a Redacted string is refused (`urlConfigError`); its text is still a secret
  const text: unknown = Redacted.isRedacted(url) ? Redacted.value(url) : url
  return [
    ...(Redacted.isRedacted(password) ? [String(Redacted.value(password))] : []),
    ...(typeof text === "string" ? secretsOfUrl(text, URL_RULES) : [])
  ]
}

const URL_EXPECTED = "a postgres:// or postgresql:// URL with valid % escapes"

/** A `ConfigError` naming the option `url` when it does not parse (shown with its secrets as `***`). @internal */
export const urlConfigError = (url: Redacted.Redacted | undefined): RateLimitError.ConfigError | undefined => {
  if (url === undefined) return undefined
  const text = secretText(url, "url")
  if (text instanceof RateLimitError.ConfigError) return text
  const parsed = parseUrl(text, URL_RULES)
  return parsed.ok ? undefined : RateLimitError.ConfigError.at("url", URL_EXPECTED, `${displayUrl(text, URL_RULES)} (${parsed.problem})`)
}
