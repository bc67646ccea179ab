/**
 * The Redis store's options, checked and resolved once per store: what is wrong with them (before
 * any connection is opened), the redactor every message goes through, and the numbers the other
 * parts run on.
 *
 * @internal
 */
import { err, ok, type Result } from "#fx/core"
import { type ErrorKind } from "../../core/errorKind.js"
import { makeRedactor, secretParamPattern, userinfoPattern } from "../../core/secrets.js"
import { displayUrl, parseUrl, secretsOfUrl } from "../../core/url.js"
import type { StoreUrl } from "../../core/url.js"
import * as RateLimitError from "../../RateLimitError.js"
import { StoreError } from "../../RateLimitStore.js"
import type { RedisStoreOptions } from "../../RedisStore.js"
import { secretText, toMillis } from "../store/options.js"
import { groupTag, type HashTag } from "./keys.js"

/** @internal */
export const ENGINE = "redis"
const DEFAULT_PREFIX = "rate_limit"
const DEFAULT_MAX_BATCH = 16

/** The options resolved: defaults applied, bounds enforced. @internal */
export interface Settings {
  readonly options: RedisStoreOptions
  /** `options.url` parsed (credentials for a cluster). */
  readonly url: StoreUrl | undefined
  readonly prefix: string
  /** The limiters laid out by a tag of their own (the `hashTags` option), by limiter id. */
  readonly hashTags: ReadonlyMap<string, HashTag>
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  /** A connection silent this long while replies are awaited is dropped (ioredis `socketTimeout`). */
  readonly socketTimeoutMs: number
  readonly marginMs: number
  readonly poolSize: number
  readonly clustered: boolean
  readonly maxBatch: number
  /** Releases and resets publish slot notifications (standalone only: see the docs' Cluster section). */
  readonly notifications: boolean
  /** A `StoreError` of `operation`, its message scrubbed of every secret of the options. */
  readonly fail: (operation: string, message: string, kind?: ErrorKind) => StoreError
}

/**
 * The settings of `options`, or (as the failure) why they are refused: a `ConfigError` for a URL that does not
 * parse, a `StoreError` (operation `configure`) for what ioredis would misuse.
 *
 * @internal
 */
export const resolve = (
  options: RedisStoreOptions
): Result<Settings, StoreError | RateLimitError.ConfigError> => {
  const prefix = options.keyPrefix ?? DEFAULT_PREFIX
  const urlText = options.url === undefined ? undefined : secretText(options.url, "url")
  if (urlText instanceof RateLimitError.ConfigError) return err(urlText)
  const password = options.password === undefined ? undefined : secretText(options.password, "password")
  if (password instanceof RateLimitError.ConfigError) return err(password)
  const sanitize = redactorOf(urlText, password)
  const fail = (operation: string, message: string, kind: ErrorKind = "unavailable") =>
    new StoreError({ engine: ENGINE, operation, message: sanitize(message), kind })
  const url = parseOptionUrl(urlText)
  if (url instanceof RateLimitError.ConfigError) return err(url)
  if (prefix.includes("{") || prefix.includes("}")) {
    return err(fail("configure", `keyPrefix must not contain "{" or "}" (it would choose the cluster slot)`))
  }
  const badUrl = urlProblem(options, url)
  if (badUrl !== undefined) return err(fail("configure", badUrl))
  const hashTags = parseHashTags(options.hashTags)
  if (hashTags instanceof RateLimitError.ConfigError) return err(hashTags)
  const timeoutMs = toMillis(options.commandTimeout, 1000)
  const clustered = options.clusterNodes !== undefined && options.clusterNodes.length > 0
  return ok({
    options,
    url,
    prefix,
    hashTags,
    timeoutMs,
    connectTimeoutMs: toMillis(options.socketConnectTimeout, 5000),
    // Commands of a hung server are cleared by the driver once the socket stays silent this long;
    // the caller was already answered by the deadline sweeper (see `internal/store/deadlines.ts`).
    socketTimeoutMs: options.socketTimeout === undefined
      ? Math.max(1000, 5 * timeoutMs)
      : toMillis(options.socketTimeout, 0),
    marginMs: options.timingMarginMs ?? 0,
    poolSize: Math.max(1, Math.min(options.poolMaxSize ?? Infinity, options.poolMinSize ?? 1)),
    clustered,
    maxBatch: clustered ? 1 : Math.max(1, Math.floor(options.maxBatchSize ?? DEFAULT_MAX_BATCH)),
    notifications: !clustered,
    fail
  })
}

const HASH_TAG_EXPECTED = `"<limiter>=key" or "<limiter>=group:<name>", each limiter once`

/**
 * The `hashTags` entries by limiter: `<limiter>=key` or `<limiter>=group:<name>`, split at the last
 * `=` (neither value holds one, so any limiter id can be named); a `ConfigError` naming the entry
 * otherwise.
 */
const parseHashTags = (
  entries: ReadonlyArray<string> | undefined
): ReadonlyMap<string, HashTag> | RateLimitError.ConfigError => {
  const tags = new Map<string, HashTag>()
  if (entries === undefined) return tags
  for (const [i, entry] of entries.entries()) {
    const at = entry.lastIndexOf("=")
    const limiter = at > 0 ? entry.slice(0, at) : ""
    const value = entry.slice(at + 1)
    const tag: HashTag | undefined = value === "key"
      ? { kind: "key" }
      : value.startsWith("group:") && value.length > "group:".length
      ? { kind: "group", tag: groupTag(value.slice("group:".length)) }
      : undefined
    if (limiter === "" || tag === undefined || tags.has(limiter)) {
      return RateLimitError.ConfigError.at(`hashTags[${i}]`, HASH_TAG_EXPECTED, JSON.stringify(entry))
    }
    tags.set(limiter, tag)
  }
  return tags
}

/** The arguments of `AUTH` / `HELLO` in a message (a server may echo the command). */
const authArgsPattern = { regex: /\b(AUTH|HELLO)\b(\s+\S+)+/gi, replacement: "$1 ***" }

/**
 * Removes from a driver message every form (raw, decoded, encoded, JSON-escaped: see
 * `core/secrets.ts`) of the password, the URL, its password and its `?password=`, then any URL
 * userinfo, secret query value and `AUTH`/`HELLO` arguments. Built once per store.
 */
const redactorOf = (url: string | undefined, password: string | undefined): (message: string) => string =>
  makeRedactor(
    [...(password !== undefined ? [password] : []), ...(url !== undefined ? secretsOfUrl(url) : [])],
    [userinfoPattern, secretParamPattern, authArgsPattern]
  )

const URL_EXPECTED = "a redis:// or rediss:// URL (redis://[user:password@]host:port[/db]) with valid % escapes"

/** `url` parsed, or a `ConfigError` naming the option (the URL shown with its secrets as `***`). */
const parseOptionUrl = (
  text: string | undefined
): StoreUrl | RateLimitError.ConfigError | undefined => {
  if (text === undefined) return undefined
  const parsed = parseUrl(text)
  return parsed.ok ? parsed.url : RateLimitError.ConfigError.at("url", URL_EXPECTED, `${displayUrl(text)} (${parsed.problem})`)
}

/**
 * What makes ioredis misbehave instead of failing: a database path or `db` that is not a whole
 * number (it would send `SELECT NaN`), another scheme. (A URL it cannot parse, or with a bad `%`
 * escape, is a `ConfigError`: see `parseOptionUrl`.) Never quotes the URL.
 */
const urlProblem = (options: RedisStoreOptions, url: StoreUrl | undefined): string | undefined => {
  if (options.db !== undefined && !(Number.isSafeInteger(options.db) && options.db >= 0)) {
    return `db must be a whole number ≥ 0, received ${String(options.db)}`
  }
  if (url === undefined) return undefined
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return `url must be redis:// or rediss://, received the scheme ${JSON.stringify(url.protocol)}`
  }
  const path = url.pathname
  if (path !== "" && path !== "/" && !/^\/\d+$/.test(path)) {
    return `url's database path must be a whole number, received ${JSON.stringify(path.slice(1))}`
  }
  return undefined
}
