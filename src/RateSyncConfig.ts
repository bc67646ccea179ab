/**
 * Loading and validating `rate-sync.toml`, with environment overrides read through Effect's
 * `Config` (so the current `ConfigProvider` decides where they come from).
 *
 * The file has rate-sync's shape: `[stores.<id>]` tables with an `engine` and that engine's
 * snake_case options, and `[limiters.<id>]` tables. It decodes into the same definitions as the
 * TypeScript API (`StoreDefinition`, `LimiterDefinition`); seconds become `Duration`s and secrets
 * (`url`, `password`, `token`) become `Redacted`. Every bad input is a `ConfigError` naming the
 * path (`limiters.api.rate_per_second`), what was expected and what was received; an error about a
 * secret never shows its value.
 *
 * This is the only module of the library that reads files or environment variables.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { parse as parseToml, TomlError } from "smol-toml"
import type { Algorithm, LimiterDefinition } from "./LimiterDefinition.js"
import { describeInput, durationInputMs, resolve } from "./LimiterDefinition.js"
import { displayUrl, parseUrl } from "./core/url.js"
import type { StoreUrl, UrlRules } from "./core/url.js"
import { ConfigError } from "./RateLimitError.js"
import type {
  Engine,
  MemoryStoreDefinition,
  NatsStoreDefinition,
  PostgresStoreDefinition,
  RedisStoreDefinition,
  StoreDefinition
} from "./StoreDefinition.js"

/**
 * A decoded configuration: the stores and limiters `RateLimiter.make` takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateSyncConfig {
  readonly stores: Readonly<Record<string, StoreDefinition>>
  readonly limiters: Readonly<Record<string, LimiterDefinition>>
}

/**
 * The configuration with no store and no limiter (what an absent default file gives).
 *
 * @since 0.1.0
 * @category constants
 */
export const empty: RateSyncConfig = { stores: {}, limiters: {} }

/**
 * The file read when neither a path nor `$RATE_SYNC_CONFIG` is given, relative to the working
 * directory.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PATH = "rate-sync.toml"

/**
 * The variable naming the configuration file.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATH_VARIABLE = "RATE_SYNC_CONFIG"

/**
 * The engines a store can name.
 *
 * @since 0.1.0
 * @category constants
 */
export const engines: ReadonlyArray<Engine> = ["memory", "redis", "nats", "postgres"]

/**
 * The fields each engine's `[stores.<id>]` table accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export const storeFields = {
  memory: ["engine", "max_keys", "sweep_interval"],
  redis: [
    "engine",
    "url",
    "db",
    "password",
    "key_prefix",
    "pool_min_size",
    "pool_max_size",
    "timing_margin_ms",
    "socket_timeout",
    "socket_connect_timeout",
    "command_timeout",
    "cluster_nodes",
    "max_batch_size",
    "auto_pipelining"
  ],
  nats: ["engine", "url", "token", "bucket_name", "auto_create", "retry_interval", "max_retries", "timing_margin_ms"],
  postgres: ["engine", "url", "table_name", "schema_name", "auto_create", "pool_min_size", "pool_max_size", "timing_margin_ms"]
} as const satisfies Record<Engine, ReadonlyArray<string>>

/**
 * The fields a `[limiters.<id>]` table accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export const limiterFields = [
  "store",
  "algorithm",
  "rate_per_second",
  "rate",
  "burst",
  "max_concurrent",
  "limit",
  "window_seconds",
  "timeout",
  "fail_closed",
  "lease_ms"
] as const

type LimiterField = (typeof limiterFields)[number]

/** The TOML name of each `LimiterDefinition` field, so `resolve` names what the user wrote. */
const limiterFieldNames = {
  store: "store",
  algorithm: "algorithm",
  ratePerSecond: "rate_per_second",
  rate: "rate",
  burst: "burst",
  maxConcurrent: "max_concurrent",
  limit: "limit",
  window: "window_seconds",
  timeout: "timeout",
  failClosed: "fail_closed",
  lease: "lease_ms"
} as const satisfies Record<keyof LimiterDefinition, LimiterField>

const secretFields: ReadonlySet<string> = new Set(["url", "password", "token"])

const allStoreFields: ReadonlyArray<string> = Array.from(new Set(engines.flatMap((e) => storeFields[e])))

/**
 * The environment variable that overrides one value: `RATE_SYNC_` then the segments upper-cased,
 * with every character other than `A-Z` and `0-9` turned into `_`.
 *
 * @example
 * ```ts
 * envVariable("stores", "main", "url") // "RATE_SYNC_STORES_MAIN_URL"
 * envVariable("limiters", "api-v2", "rate_per_second") // "RATE_SYNC_LIMITERS_API_V2_RATE_PER_SECOND"
 * ```
 *
 * @since 0.1.0
 * @category environment
 */
export const envVariable = (...segments: ReadonlyArray<string>): string =>
  ["RATE_SYNC", ...segments].map((s) => s.toUpperCase().replace(/[^A-Z0-9]/g, "_")).join("_")

// -------------------------------------------------------------------------------------------
// values

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const set = <T, K extends keyof T>(target: Mutable<T>, key: K, value: T[K] | undefined): void => {
  if (value !== undefined) target[key] = value
}

type TomlTable = Readonly<Record<string, unknown>>

const isTable = (u: unknown): u is TomlTable =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Date)

const quote = (s: string): string => JSON.stringify(s)

const describe = (u: unknown): string => {
  if (typeof u === "number") return Number.isNaN(u) ? "NaN" : String(u)
  if (typeof u === "string") return quote(u.length > 100 ? `${u.slice(0, 100)}...` : u)
  if (typeof u === "boolean") return String(u)
  if (u === undefined) return "nothing"
  if (u instanceof Date) return "a date-time"
  if (Array.isArray(u)) return "an array"
  if (typeof u === "object" && u !== null) return "a table"
  return typeof u
}

const kind = (u: unknown): string =>
  typeof u === "string" ? "a string" : typeof u === "number" ? "a number" : typeof u === "boolean" ? "a boolean" : describe(u)

/** A value as read: from the file, or (a string) from the environment variable `env`. */
interface Raw {
  readonly value: unknown
  readonly env: string | undefined
}

/** `max_keys` → `maxKeys`: the name a field has in the TypeScript definitions. */
const camelCase = (field: string): string => field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/**
 * One `[stores.<id>]` or `[limiters.<id>]` table, with its environment overrides; or (`source`
 * `"code"`) a definition written in TypeScript, whose fields are camelCased, whose durations are
 * `Duration.DurationInput`s and whose secrets are `Redacted`, with no environment overrides.
 */
class Table {
  constructor(
    readonly path: string,
    readonly section: "stores" | "limiters",
    readonly id: string,
    private readonly file: TomlTable,
    private readonly env: ReadonlyMap<string, string>,
    readonly source: "file" | "code" = "file"
  ) {}

  /** The field's name as the user wrote it. */
  name(field: string): string {
    return this.source === "code" ? camelCase(field) : field
  }

  at(field: string): string {
    return `${this.path}.${this.name(field)}`
  }

  variable(field: string): string {
    return envVariable(this.section, this.id, field)
  }

  raw(field: string): Raw | undefined {
    const variable = this.variable(field)
    const fromEnv = this.env.get(variable)
    if (fromEnv !== undefined) return { value: fromEnv, env: variable }
    const name = this.name(field)
    const value = Object.hasOwn(this.file, name) ? this.file[name] : undefined
    return value === undefined ? undefined : { value, env: undefined }
  }

  /** What an error says it received; a secret field's value is never shown. */
  received(field: string, raw: Raw, note?: string): string {
    const shown = secretFields.has(field)
      ? typeof raw.value === "string" || Redacted.isRedacted(raw.value) ? "<redacted>" : `<redacted> (${kind(raw.value)})`
      : this.source === "code"
      ? describeInput(raw.value)
      : describe(raw.value)
    const noted = note === undefined ? shown : `${shown} (${note})`
    return raw.env === undefined ? noted : `${noted} (from ${raw.env})`
  }

  fail(field: string, expected: string, raw: Raw, note?: string): never {
    throw ConfigError.at(this.at(field), expected, this.received(field, raw, note))
  }

  /** Fails on a field (in the file, or set in the environment) that `allowed` does not hold. */
  rejectUnknown(allowed: ReadonlyArray<string>, candidates: ReadonlyArray<string>, what: string): void {
    const names = allowed.map((field) => this.name(field))
    const expected = `one of ${what}: ${names.join(", ")}`
    for (const name of Object.keys(this.file)) {
      if (!names.includes(name)) throw ConfigError.at(`${this.path}.${name}`, expected, "an unknown field")
    }
    for (const field of candidates) {
      if (!allowed.includes(field) && this.env.has(this.variable(field))) {
        throw ConfigError.at(this.at(field), expected, `an unknown field (set by ${this.variable(field)})`)
      }
    }
  }
}

// -------------------------------------------------------------------------------------------
// field decoders: each answers undefined when the field is absent, throws a ConfigError when bad

const envNumber = (s: string): number | undefined => {
  const x = s.trim().replace(/_/g, "")
  if (/^[+-]?nan$/i.test(x)) return NaN
  if (/^[+-]?inf(inity)?$/i.test(x)) return x.startsWith("-") ? -Infinity : Infinity
  if (x === "") return undefined
  const n = Number(x)
  return Number.isNaN(n) ? undefined : n
}

const envBoolean = (s: string): boolean | undefined => {
  const x = s.trim().toLowerCase()
  if (x === "true" || x === "1" || x === "yes" || x === "on") return true
  if (x === "false" || x === "0" || x === "no" || x === "off") return false
  return undefined
}

/** A number of any value (range checks are the caller's, or `resolve`'s). */
const numberField = (t: Table, field: string): number | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const n = raw.env !== undefined && typeof raw.value === "string" ? envNumber(raw.value) : raw.value
  if (typeof n !== "number") return t.fail(field, "a number", raw)
  return n
}

type Range = "positive" | "nonNegative" | "positiveInt" | "nonNegativeInt"

const rangeExpected: Record<Range, string> = {
  positive: "a finite number greater than 0",
  nonNegative: "a finite number of 0 or more",
  positiveInt: "a whole number greater than 0",
  nonNegativeInt: "a whole number of 0 or more"
}

const inRange = (n: number, range: Range): boolean => {
  switch (range) {
    case "positive":
      return Number.isFinite(n) && n > 0
    case "nonNegative":
      return Number.isFinite(n) && n >= 0
    case "positiveInt":
      return Number.isSafeInteger(n) && n > 0
    case "nonNegativeInt":
      return Number.isSafeInteger(n) && n >= 0
  }
}

const numberIn = (t: Table, field: string, range: Range): number | undefined => {
  const n = numberField(t, field)
  if (n === undefined || inRange(n, range)) return n
  const raw = t.raw(field)
  // Show the number read (an environment value is shown as the number it decoded to).
  return raw === undefined ? undefined : t.fail(field, rangeExpected[range], { value: n, env: raw.env })
}

/**
 * A number of seconds, as a `Duration` (TOML has no duration type; rate-sync uses seconds). In a
 * definition written in code: a finite `Duration.DurationInput`, never negative.
 */
const seconds = (t: Table, field: string, allowZero: boolean): Duration.Duration | undefined => {
  if (t.source === "code") return durationInput(t, field, allowZero)
  const n = numberIn(t, field, allowZero ? "nonNegative" : "positive")
  if (n === undefined) return undefined
  // Whole microseconds, so 1.1 s is 1100 ms, not 1100.0000000000002.
  const ms = Math.round(n * 1_000_000) / 1000
  // A number of seconds too large for milliseconds would read as an infinite duration (which in
  // code means "none"): it is a mistake, reported with the bound every duration has.
  if (!Number.isFinite(ms)) {
    const raw = t.raw(field)
    if (raw !== undefined) return t.fail(field, "a duration of at most 10 years (3650 days)", { value: n, env: raw.env })
  }
  return Duration.millis(ms)
}

/**
 * A `Duration.DurationInput` of a definition written in code: finite (like the seconds of a
 * file), never negative or NaN (which `Duration` would read as 0).
 */
const durationInput = (t: Table, field: string, allowZero: boolean): Duration.Duration | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const ms = durationInputMs(raw.value)
  if (ms === undefined || !Number.isFinite(ms) || (!allowZero && ms === 0)) {
    return t.fail(field, allowZero ? "a finite duration of 0 or more" : "a finite duration greater than 0", raw)
  }
  return Duration.millis(ms)
}

const booleanField = (t: Table, field: string): boolean | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const b = raw.env !== undefined && typeof raw.value === "string" ? envBoolean(raw.value) : raw.value
  if (typeof b !== "boolean") {
    return t.fail(field, raw.env === undefined ? "true or false" : "true or false (or 1/0, yes/no, on/off)", raw)
  }
  return b
}

const stringField = (
  t: Table,
  field: string,
  check?: { readonly test: (s: string) => boolean; readonly expected: string }
): string | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const expected = check?.expected ?? "a non-empty string"
  if (typeof raw.value !== "string" || raw.value.length === 0) return t.fail(field, expected, raw)
  if (check !== undefined && !check.test(raw.value)) return t.fail(field, expected, raw)
  return raw.value
}

const schemeOf = (s: string): string | undefined => {
  try {
    return new URL(s).protocol
  } catch {
    // a URL the WHATWG parser refuses but its driver takes (a PostgreSQL unix socket URL has an
    // empty host: `postgres://user@/db?host=/var/run/postgresql`)
    return /^([a-z][a-z0-9+.-]*:)\/\//i.exec(s)?.[1]?.toLowerCase()
  }
}

/** A Redis URL's database path (`/3`) must be a whole number: ioredis would send `SELECT NaN`. */
const redisDbPath = (url: StoreUrl): string | undefined => {
  const path = url.pathname
  return path === "" || path === "/" || /^\/\d+$/.test(path) ? undefined : `database path ${quote(path.slice(1))}`
}

/**
 * Fails on a URL with a bad `%` escape: `shown` is the URL with its secrets as `***`
 * (`core/url.ts` `displayUrl`), never the value.
 */
const failUrl = (t: Table, field: string, expected: string, raw: Raw, shown: string): never => {
  throw ConfigError.at(t.at(field), expected, raw.env === undefined ? shown : `${shown} (from ${raw.env})`)
}

/**
 * A secret: an error says `<redacted>` instead of the value (a URL's scheme is not secret; a URL
 * with a bad `%` escape is shown with its secrets as `***`).
 */
const secretField = (
  t: Table,
  field: string,
  schemes?: {
    /** The schemes accepted; none: any (NATS takes `host:port`). */
    readonly allowed?: ReadonlyArray<string> | undefined
    readonly expected: string
    /** How the store reads the URL (see `core/url.ts`). */
    readonly rules?: UrlRules | undefined
    /** Several URLs separated by commas (NATS). */
    readonly list?: boolean | undefined
    /** A further check of the URL: what is wrong with it (not secret), or `undefined`. */
    readonly problem?: (url: StoreUrl) => string | undefined
  }
): Redacted.Redacted | undefined => {
  const read = t.raw(field)
  if (read === undefined) return undefined
  const expected = schemes?.expected ?? "a non-empty string"
  // In code a secret is a `Redacted` (a plain string would end up in logs and errors).
  if (t.source === "code" && !Redacted.isRedacted(read.value)) {
    return t.fail(field, `a Redacted value (Redacted.make(...)) holding ${expected}`, read, "not Redacted")
  }
  const raw: Raw = Redacted.isRedacted(read.value) ? { value: Redacted.value(read.value), env: read.env } : read
  if (typeof raw.value !== "string") return t.fail(field, expected, raw)
  if (raw.value.length === 0) return t.fail(field, expected, raw, "an empty string")
  if (schemes !== undefined) {
    const texts = schemes.list === true
      ? raw.value.split(",").map((s) => s.trim()).filter((s) => s !== "")
      : [raw.value]
    if (texts.length === 0) return t.fail(field, expected, raw, "no URL")
    for (const text of texts) {
      if (schemes.allowed !== undefined) {
        const scheme = schemeOf(text)
        if (scheme === undefined) return t.fail(field, expected, raw, "not a URL")
        if (!schemes.allowed.includes(scheme)) return t.fail(field, expected, raw, `scheme ${quote(scheme)}`)
      }
      // what the driver would throw on (`URIError: URI malformed`) or read its own way
      const parsed = parseUrl(text, schemes.rules)
      if (!parsed.ok) {
        if (parsed.problem === "not a URL") return t.fail(field, expected, raw, "not a URL")
        return failUrl(t, field, expected, raw, `${displayUrl(text, schemes.rules)} (${parsed.problem})`)
      }
      const problem = schemes.problem?.(parsed.url)
      if (problem !== undefined) return t.fail(field, expected, raw, problem)
    }
  }
  return Redacted.make(raw.value)
}

const hostPortRe = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/

/** A non-empty array of `"host:port"`; from the environment, a comma-separated list. */
const hostPorts = (t: Table, field: string): ReadonlyArray<string> | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const expected = `a non-empty array of "host:port" strings`
  const items: ReadonlyArray<unknown> | undefined = raw.env !== undefined && typeof raw.value === "string"
    ? raw.value.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
    : Array.isArray(raw.value)
    ? raw.value
    : undefined
  if (items === undefined || items.length === 0) return t.fail(field, expected, raw)
  return items.map((item, i) => {
    const port = typeof item === "string" ? hostPortRe.exec(item)?.[1] : undefined
    if (typeof item !== "string" || port === undefined || Number(port) < 1 || Number(port) > 65535) {
      const suffix = raw.env === undefined ? "" : ` (from ${raw.env})`
      // "user:password@host:port" puts credentials where they do not belong: do not echo them.
      const shown = typeof item === "string" && item.includes("@") ? "<redacted> (holds credentials)" : describe(item)
      throw ConfigError.at(`${t.at(field)}[${i}]`, `a "host:port" string (port 1-65535)`, `${shown}${suffix}`)
    }
    return item
  })
}

const poolSizes = (t: Table): { readonly poolMinSize: number | undefined; readonly poolMaxSize: number | undefined } => {
  const poolMinSize = numberIn(t, "pool_min_size", "nonNegativeInt")
  const poolMaxSize = numberIn(t, "pool_max_size", "positiveInt")
  if (poolMinSize !== undefined && poolMaxSize !== undefined && poolMinSize > poolMaxSize) {
    const raw = t.raw("pool_min_size")
    if (raw !== undefined) {
      t.fail("pool_min_size", `a whole number no greater than ${t.name("pool_max_size")} (${poolMaxSize})`, raw)
    }
  }
  return { poolMinSize, poolMaxSize }
}

const identifierRe = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const identifier = { test: (s: string) => identifierRe.test(s), expected: "an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters)" }
// The PostgreSQL store names its functions `<table>_<operation>`: 48 characters leave room for them.
const tableIdentifierRe = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/
const tableIdentifier = {
  test: (s: string) => tableIdentifierRe.test(s),
  expected: "an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 48 characters)"
}
const keyPrefix = { test: (s: string) => !/[{}]/.test(s), expected: "a non-empty key prefix without { or } (they mark Redis Cluster hash tags)" }
const bucketName = { test: (s: string) => /^[A-Za-z0-9_-]+$/.test(s), expected: "a NATS KV bucket name ([A-Za-z0-9_-]+)" }

// -------------------------------------------------------------------------------------------
// stores

const isEngine = (s: string): s is Engine => engines.some((e) => e === s)

const decodeMemory = (t: Table): MemoryStoreDefinition => {
  const def: Mutable<MemoryStoreDefinition> = { engine: "memory" }
  set(def, "maxKeys", numberIn(t, "max_keys", "positiveInt"))
  set(def, "sweepInterval", seconds(t, "sweep_interval", false))
  return def
}

const decodeRedis = (t: Table): RedisStoreDefinition => {
  const def: Mutable<RedisStoreDefinition> = { engine: "redis" }
  set(
    def,
    "url",
    secretField(t, "url", {
      allowed: ["redis:", "rediss:"],
      expected: "a redis:// or rediss:// URL",
      problem: redisDbPath
    })
  )
  set(def, "db", numberIn(t, "db", "nonNegativeInt"))
  set(def, "password", secretField(t, "password"))
  set(def, "keyPrefix", stringField(t, "key_prefix", keyPrefix))
  const pool = poolSizes(t)
  set(def, "poolMinSize", pool.poolMinSize)
  set(def, "poolMaxSize", pool.poolMaxSize)
  set(def, "timingMarginMs", numberIn(t, "timing_margin_ms", "nonNegative"))
  set(def, "socketTimeout", seconds(t, "socket_timeout", false))
  set(def, "socketConnectTimeout", seconds(t, "socket_connect_timeout", false))
  set(def, "commandTimeout", seconds(t, "command_timeout", false))
  set(def, "clusterNodes", hostPorts(t, "cluster_nodes"))
  set(def, "maxBatchSize", numberIn(t, "max_batch_size", "positiveInt"))
  set(def, "autoPipelining", booleanField(t, "auto_pipelining"))
  return def
}

const decodeNats = (t: Table): NatsStoreDefinition => {
  const def: Mutable<NatsStoreDefinition> = { engine: "nats" }
  set(
    def,
    "url",
    secretField(t, "url", {
      expected: "a NATS server URL, or several separated by commas (nats://[user:pass@ | token@]host:port, or host:port)",
      rules: { defaultScheme: "nats:", tokenUser: true },
      list: true
    })
  )
  set(def, "token", secretField(t, "token"))
  set(def, "bucketName", stringField(t, "bucket_name", bucketName))
  set(def, "autoCreate", booleanField(t, "auto_create"))
  set(def, "retryInterval", seconds(t, "retry_interval", false))
  set(def, "maxRetries", numberIn(t, "max_retries", "nonNegativeInt"))
  set(def, "timingMarginMs", numberIn(t, "timing_margin_ms", "nonNegative"))
  return def
}

const decodePostgres = (t: Table): PostgresStoreDefinition => {
  const def: Mutable<PostgresStoreDefinition> = { engine: "postgres" }
  set(
    def,
    "url",
    secretField(t, "url", {
      allowed: ["postgres:", "postgresql:"],
      expected: "a postgres:// or postgresql:// URL",
      rules: { emptyHost: true }
    })
  )
  set(def, "tableName", stringField(t, "table_name", tableIdentifier))
  set(def, "schemaName", stringField(t, "schema_name", identifier))
  set(def, "autoCreate", booleanField(t, "auto_create"))
  const pool = poolSizes(t)
  set(def, "poolMinSize", pool.poolMinSize)
  set(def, "poolMaxSize", pool.poolMaxSize)
  set(def, "timingMarginMs", numberIn(t, "timing_margin_ms", "nonNegative"))
  return def
}

const decodeStore = (t: Table): StoreDefinition => {
  const engineExpected = `one of ${engines.map(quote).join(", ")}`
  const raw = t.raw("engine")
  if (raw === undefined) throw ConfigError.at(t.at("engine"), engineExpected, "nothing")
  if (typeof raw.value !== "string" || !isEngine(raw.value)) return t.fail("engine", engineExpected, raw)
  const engine = raw.value
  t.rejectUnknown(storeFields[engine], allStoreFields, `the ${engine} store fields`)
  switch (engine) {
    case "memory":
      return decodeMemory(t)
    case "redis":
      return decodeRedis(t)
    case "nats":
      return decodeNats(t)
    case "postgres":
      return decodePostgres(t)
  }
}

/**
 * Validates a store definition written in code (what `RateLimiter.configureStore` and
 * `RateLimiter.make` take) by the rules of the `[stores.<id>]` tables: the engine, no unknown
 * field, and every field's type and range (URL schemes, identifiers, key prefix, bucket name, pool
 * sizes). Durations are finite `Duration.DurationInput`s and secrets must be
 * `Redacted`. A bad definition is a `ConfigError` at `stores.<id>.<field>`, with the TypeScript
 * field name (`stores.main.keyPrefix`); a secret's value is never shown. Answers the definition
 * with its durations as `Duration`s.
 *
 * @since 0.1.0
 * @category validation
 */
export const decodeStoreDefinition = (id: string, definition: unknown): Either.Either<StoreDefinition, ConfigError> => {
  const path = `stores.${id}`
  if (!isTable(definition)) {
    return Either.left(ConfigError.at(path, "a store definition (an object with an engine)", describeInput(definition)))
  }
  return attempt(() => decodeStore(new Table(path, "stores", id, definition, new Map(), "code")))
}

// -------------------------------------------------------------------------------------------
// limiters

const algorithms: ReadonlyArray<Algorithm> = ["token_bucket", "sliding_window", "fixed_window"]
const isAlgorithm = (s: string): s is Algorithm => algorithms.some((a) => a === s)

const decodeLimiter = (t: Table, storeIds: ReadonlyArray<string>): LimiterDefinition => {
  t.rejectUnknown(limiterFields, limiterFields, "the limiter fields")
  const def: Mutable<LimiterDefinition> = {}

  const store = stringField(t, "store")
  if (store !== undefined && !storeIds.includes(store)) {
    const raw = t.raw("store")
    if (raw !== undefined) {
      t.fail(
        "store",
        storeIds.length === 0
          ? "a store declared as [stores.<id>] (none is declared; leave store out to use the implicit memory store)"
          : `one of the declared stores: ${storeIds.map(quote).join(", ")}`,
        raw
      )
    }
  }
  set(def, "store", store)

  const algorithm = stringField(t, "algorithm", {
    test: isAlgorithm,
    expected: `one of ${algorithms.map(quote).join(", ")}`
  })
  if (algorithm !== undefined && isAlgorithm(algorithm)) def.algorithm = algorithm

  set(def, "ratePerSecond", numberField(t, "rate_per_second"))
  set(def, "rate", stringField(t, "rate"))
  set(def, "burst", numberField(t, "burst"))
  set(def, "maxConcurrent", numberField(t, "max_concurrent"))
  set(def, "limit", numberField(t, "limit"))
  set(def, "window", seconds(t, "window_seconds", false))
  set(def, "timeout", seconds(t, "timeout", true))
  set(def, "failClosed", booleanField(t, "fail_closed"))
  const leaseMs = numberIn(t, "lease_ms", "positive")
  if (leaseMs !== undefined) def.lease = Duration.millis(leaseMs)

  const resolved = resolve(t.id, def, { path: t.path, fieldNames: limiterFieldNames })
  if (Either.isLeft(resolved)) {
    // Say where a value that came from the environment was set.
    // `resolve` sees the Durations made from window_seconds / timeout: show what the user wrote.
    // Say where a value that came from the environment was set.
    const e = resolved.left
    const field = limiterFields.find((f) => t.at(f) === e.path)
    const raw = field === undefined ? undefined : t.raw(field)
    if (field === undefined || raw === undefined) throw e
    const converted = field === "window_seconds" || field === "timeout"
    const value = converted ? describe(numberField(t, field)) : e.received
    throw ConfigError.at(e.path, e.expected, raw.env === undefined ? value : `${value} (from ${raw.env})`)
  }
  return def
}

// -------------------------------------------------------------------------------------------
// document

interface Shape {
  readonly stores: ReadonlyArray<readonly [string, TomlTable]>
  readonly limiters: ReadonlyArray<readonly [string, TomlTable]>
}

const attempt = <A>(f: () => A): Either.Either<A, ConfigError> => {
  try {
    return Either.right(f())
  } catch (e) {
    if (e instanceof ConfigError) return Either.left(e)
    throw e
  }
}

const tomlOf = (text: string, source: string): Either.Either<TomlTable, ConfigError> => {
  try {
    return Either.right(parseToml(text.startsWith("\uFEFF") ? text.slice(1) : text))
  } catch (e) {
    if (e instanceof TomlError) {
      // The first line only: the rest of the message quotes the file, which may hold a secret.
      const reason = e.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "") ?? "invalid TOML"
      return Either.left(ConfigError.at(source, "a valid TOML document", `${reason} at line ${e.line}, column ${e.column}`))
    }
    return Either.left(ConfigError.at(source, "a valid TOML document", "a document the TOML parser rejected"))
  }
}

const sectionOf = (doc: TomlTable, section: "stores" | "limiters"): ReadonlyArray<readonly [string, TomlTable]> => {
  const value = doc[section]
  if (value === undefined) return []
  const what = section === "stores" ? "store" : "limiter"
  if (!isTable(value)) throw ConfigError.at(section, `a table of ${what}s ([${section}.<id>])`, describe(value))
  return Object.entries(value).map(([id, table]) => {
    const path = `${section}.${id}`
    if (id.length === 0 || id === "__proto__") throw ConfigError.at(path, `a ${what} id (not empty, not __proto__)`, quote(id))
    if (!isTable(table)) throw ConfigError.at(path, `a table ([${section}.${id}])`, describe(table))
    return [id, table] as const
  })
}

const shapeOf = (doc: TomlTable): Shape => {
  for (const key of Object.keys(doc)) {
    if (key !== "stores" && key !== "limiters") {
      throw ConfigError.at(key, "one of the top-level tables: stores, limiters", "an unknown field")
    }
  }
  return { stores: sectionOf(doc, "stores"), limiters: sectionOf(doc, "limiters") }
}

/** Reads one variable from the current `ConfigProvider`; empty counts as unset. */
const readVariable = (name: string): Effect.Effect<Option.Option<string>, ConfigError> =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((s) => s.trim().length > 0)),
    Effect.mapError(() => ConfigError.at(name, "a readable value from the ConfigProvider", "a ConfigProvider failure"))
  )

const readOverrides = (shape: Shape): Effect.Effect<ReadonlyMap<string, string>, ConfigError> => {
  const names = [
    ...shape.stores.flatMap(([id]) => allStoreFields.map((f) => envVariable("stores", id, f))),
    ...shape.limiters.flatMap(([id]) => limiterFields.map((f) => envVariable("limiters", id, f)))
  ]
  return Effect.map(
    Effect.forEach(new Set(names), (name) => Effect.map(readVariable(name), Option.map((value) => [name, value] as const))),
    (found) => new Map(found.flatMap(Option.toArray))
  )
}

const decode = (shape: Shape, env: ReadonlyMap<string, string>): RateSyncConfig => {
  const stores = shape.stores.map(([id, file]) => [id, decodeStore(new Table(`stores.${id}`, "stores", id, file, env))] as const)
  const storeIds = stores.map(([id]) => id)
  const limiters = shape.limiters.map(([id, file]) =>
    [id, decodeLimiter(new Table(`limiters.${id}`, "limiters", id, file, env), storeIds)] as const
  )
  return { stores: Object.fromEntries(stores), limiters: Object.fromEntries(limiters) }
}

/**
 * Decodes the text of a `rate-sync.toml`, then applies the environment overrides the current
 * `ConfigProvider` holds (`RATE_SYNC_STORES_<ID>_<FIELD>`, `RATE_SYNC_LIMITERS_<ID>_<FIELD>`; see
 * {@link envVariable}). Overrides apply to the stores and limiters the text declares. `source`
 * names the text in errors (the path of a syntax error).
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (text: string, source: string = DEFAULT_PATH): Effect.Effect<RateSyncConfig, ConfigError> =>
  Effect.gen(function*() {
    const doc = yield* tomlOf(text, source)
    const shape = yield* attempt(() => shapeOf(doc))
    const env = yield* readOverrides(shape)
    return yield* attempt(() => decode(shape, env))
  })

const errorCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

const unreadable: Record<string, string> = {
  ENOENT: "no such file",
  EISDIR: "a directory",
  EACCES: "a file this process may not read",
  EPERM: "a file this process may not read"
}

/**
 * Reads and decodes a configuration file (see {@link parse}). The file is `path` when given, else
 * `$RATE_SYNC_CONFIG` (read from the current `ConfigProvider`), else `./rate-sync.toml`. An absent
 * default file gives {@link empty}; an absent file that was named explicitly is a `ConfigError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (path?: string): Effect.Effect<RateSyncConfig, ConfigError> =>
  Effect.gen(function*() {
    const named = path !== undefined ? Option.some(path) : yield* readVariable(PATH_VARIABLE)
    const file = Option.getOrElse(named, () => DEFAULT_PATH)
    const text = yield* Effect.tryPromise({
      try: (signal) => readFile(file, { encoding: "utf8", signal }),
      catch: errorCode
    }).pipe(
      Effect.map(Option.some),
      Effect.catchAll((code) =>
        code === "ENOENT" && Option.isNone(named)
          ? Effect.succeed(Option.none<string>())
          : Effect.fail(
            ConfigError.at(
              file,
              path === undefined && Option.isSome(named)
                ? `an existing, readable TOML file (named by ${PATH_VARIABLE})`
                : "an existing, readable TOML file",
              (code === undefined ? undefined : unreadable[code]) ?? `an unreadable file (${code ?? "unknown error"})`
            )
          )
      )
    )
    if (Option.isNone(text)) return empty
    return yield* parse(text.value, file)
  })
