/**
 * One field table per store engine: the single place an engine's options are named. Each field
 * says its TypeScript name (the option, the `StoreDefinition` field), its TOML name (the
 * `[stores.<id>]` key, and upper-cased the suffix of its environment variables), its kind, its
 * bounds, its default and one line of documentation. From these tables come:
 *
 * - the `[stores.<id>]` decoder and the validation of store definitions written in code
 *   (`core/config/store.ts`, wrapped by `internal/config/storeDefinition.ts`);
 * - each driver's environment `Config` (`RedisStore.config`, ...: `internal/config/envConfig.ts`);
 * - a compile-time check that each driver's options interface and each `StoreDefinition` have
 *   exactly these fields, with the types their kinds give (`internal/config/fieldChecks.ts`);
 * - a test that the option tables of docs/configuration.md list exactly these fields.
 *
 * Plain data, no Effect import: shared by every build.
 *
 * @internal
 */
import type { UrlRules } from "../url.js"

/**
 * What a field holds, and so how it is read:
 *
 * | kind | TOML | environment | TypeScript |
 * |---|---|---|---|
 * | `string` | a non-empty string | the text | `string` |
 * | `secret` | a non-empty string | the text | `Redacted` |
 * | `url` | a URL string (several separated by commas with `list`) | the text | `Redacted` |
 * | `urlList` | a non-empty array of URL strings | comma-separated | `ReadonlyArray<Redacted>` |
 * | `integer` | a whole number | a number | `number` |
 * | `number` | a number | a number | `number` |
 * | `boolean` | `true` / `false` | `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` | `boolean` |
 * | `duration` | a number of seconds | seconds or a duration string (`"500 millis"`) | `Duration.DurationInput` |
 * | `stringList` | a non-empty array of strings | comma-separated | `ReadonlyArray<string>` |
 *
 * @internal
 */
export type FieldKind = "string" | "secret" | "url" | "urlList" | "integer" | "number" | "boolean" | "duration" | "stringList"

/** A check of a string (or of each item of a list) beyond its kind. @internal */
export interface StringCheck {
  readonly test: (s: string) => boolean
  /** What an error says was expected. */
  readonly expected: string
  /** A list of such strings, as an error names it (`"host:port" strings`). Default `strings`. */
  readonly plural?: string | undefined
}

/** How a `url` / `urlList` field is read. @internal */
export interface UrlCheck {
  /** The schemes accepted (`"redis:"`); none: every scheme (NATS takes `host:port`). */
  readonly schemes?: ReadonlyArray<string> | undefined
  /** What an error says was expected. */
  readonly expected: string
  /** How the store reads the URL (see `core/url.ts`). */
  readonly rules?: UrlRules | undefined
  /** A `url` field holding several URLs separated by commas (NATS). */
  readonly list?: boolean | undefined
  /** A Redis URL: its path (`/3`) must be a database number. */
  readonly redisDb?: boolean | undefined
}

/** @internal */
export interface Field {
  /** The TypeScript name: the driver option and the `StoreDefinition` field. */
  readonly name: string
  /** The TOML name; upper-cased, the suffix of its environment variables. */
  readonly toml: string
  readonly kind: FieldKind
  /** Numbers and durations: greater than 0 (`"positive"`) or at least 0 (`"nonNegative"`). */
  readonly min?: "positive" | "nonNegative" | undefined
  /** A duration that may be infinite (`Duration.infinity` in code, `inf` in TOML): "never". */
  readonly infinite?: boolean | undefined
  /** An integer no greater than the value of this other field (by TypeScript name). */
  readonly atMost?: string | undefined
  /** Strings (and string-list items): a further check. */
  readonly check?: StringCheck | undefined
  /** `url` / `urlList`: how the URL is read. */
  readonly url?: UrlCheck | undefined
  /**
   * `false`: a field of the definition that is not an option of the driver's `make` (PostgreSQL's
   * connection fields, which configure the pool). Default: both.
   */
  readonly option?: boolean | undefined
  /** The default, as the docs say it. */
  readonly default: string
  /** One line of documentation. */
  readonly doc: string
}

/** The engines a store can name. @internal */
export type Engine = "memory" | "redis" | "nats" | "postgres"

/** @internal */
export const engines: ReadonlyArray<Engine> = ["memory", "redis", "nats", "postgres"]

// -------------------------------------------------------------------------------------------
// checks

const hostPortRe = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/

/** `"host:port"`, port 1-65535. @internal */
export const hostPort: StringCheck = {
  test: (s) => {
    const port = hostPortRe.exec(s)?.[1]
    return port !== undefined && Number(port) >= 1 && Number(port) <= 65535
  },
  expected: `a "host:port" string (port 1-65535)`,
  plural: `"host:port" strings`
}

const identifierRe = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
/** @internal */
export const sqlIdentifier: StringCheck = {
  test: (s) => identifierRe.test(s),
  expected: "an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters)"
}

// The PostgreSQL store names its functions `<table>_<operation>`: 48 characters leave room for them.
const tableIdentifierRe = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/
/** @internal */
export const tableIdentifier: StringCheck = {
  test: (s) => tableIdentifierRe.test(s),
  expected: "an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 48 characters)"
}

/** @internal */
export const keyPrefix: StringCheck = {
  test: (s) => !/[{}]/.test(s),
  expected: "a non-empty key prefix without { or } (they mark Redis Cluster hash tags)"
}

/** A Redis `hashTags` entry (the store checks each limiter is named once). @internal */
export const hashTag: StringCheck = {
  test: (s) => /^.+=(?:key|group:.+)$/.test(s),
  expected: `"<limiter>=key" or "<limiter>=group:<name>"`,
  plural: `"<limiter>=key" or "<limiter>=group:<name>" strings`
}

/** @internal */
export const bucketName: StringCheck = {
  test: (s) => /^[A-Za-z0-9_-]+$/.test(s),
  expected: "a NATS KV bucket name ([A-Za-z0-9_-]+)"
}

const natsUrl: UrlCheck = {
  expected: "a NATS server URL, or several separated by commas (nats://[user:pass@ | token@]host:port, or host:port)",
  rules: { defaultScheme: "nats:", tokenUser: true },
  list: true
}

// -------------------------------------------------------------------------------------------
// the tables

/**
 * A networked store's switch for the local block cache of the limiters on it (`RateLimiter`'s
 * `blockCache.stores`, written where the store is declared): the driver only carries it on the
 * service it makes (`RateLimitStoreService.blockCache`), where the registry reads it.
 */
const blockCacheField = {
  name: "blockCache",
  toml: "block_cache",
  kind: "boolean",
  default: "true",
  doc: "the local block cache of the limiters on this store; false asks the store on every call"
} as const satisfies Field

/** `engine = "memory"`. @internal */
export const memoryFields = [
  {
    name: "maxKeys",
    toml: "max_keys",
    kind: "integer",
    min: "positive",
    default: "100000",
    doc: "most (limiter, key) states kept at once"
  },
  {
    name: "maxBytes",
    toml: "max_bytes",
    kind: "integer",
    min: "positive",
    default: "67108864 (64 MiB)",
    doc: "most bytes of state kept at once (a state counts 192 bytes plus 2 per character of its key)"
  },
  {
    name: "sweepInterval",
    toml: "sweep_interval",
    kind: "duration",
    min: "positive",
    default: "10 seconds",
    doc: "how often a sweep of expired state starts"
  }
] as const satisfies ReadonlyArray<Field>

/** `engine = "redis"`. @internal */
export const redisFields = [
  {
    name: "url",
    toml: "url",
    kind: "url",
    url: { schemes: ["redis:", "rediss:"], expected: "a redis:// or rediss:// URL", redisDb: true },
    default: "redis://127.0.0.1:6379",
    doc: "server; rediss:// for TLS; may carry user, password and db"
  },
  {
    name: "db",
    toml: "db",
    kind: "integer",
    min: "nonNegative",
    default: "from url, else 0",
    doc: "database index (standalone only); overrides the one in url"
  },
  { name: "password", toml: "password", kind: "secret", default: "from url", doc: "AUTH password; overrides the one in url" },
  { name: "username", toml: "username", kind: "string", default: "from url", doc: "ACL user name; overrides the one in url" },
  {
    name: "keyPrefix",
    toml: "key_prefix",
    kind: "string",
    check: keyPrefix,
    default: `"rate_limit"`,
    doc: "prefix of every key"
  },
  {
    name: "poolMinSize",
    toml: "pool_min_size",
    kind: "integer",
    min: "nonNegative",
    atMost: "poolMaxSize",
    default: "1",
    doc: "connections opened (ioredis pipelines on one connection)"
  },
  {
    name: "poolMaxSize",
    toml: "pool_max_size",
    kind: "integer",
    min: "positive",
    default: "none",
    doc: "upper bound on pool_min_size"
  },
  {
    name: "timingMarginMs",
    toml: "timing_margin_ms",
    kind: "number",
    min: "nonNegative",
    default: "0",
    doc: "milliseconds added to each wait the store answers (network slack)"
  },
  {
    name: "socketTimeout",
    toml: "socket_timeout",
    kind: "duration",
    min: "positive",
    default: "5 × command_timeout, at least 1 second",
    doc: "while replies are awaited, a silent connection is dropped after this long"
  },
  {
    name: "socketConnectTimeout",
    toml: "socket_connect_timeout",
    kind: "duration",
    min: "positive",
    default: "5 seconds",
    doc: "connect timeout (also bounds start-up)"
  },
  {
    name: "commandTimeout",
    toml: "command_timeout",
    kind: "duration",
    min: "positive",
    default: "1 second",
    doc: "every command settles (answers or fails) within it"
  },
  {
    name: "clusterNodes",
    toml: "cluster_nodes",
    kind: "stringList",
    check: hostPort,
    default: "none",
    doc: "Redis Cluster seed nodes; when set a cluster client is used and url only gives credentials"
  },
  {
    name: "hashTags",
    toml: "hash_tags",
    kind: "stringList",
    check: hashTag,
    default: "none",
    doc: "limiters whose keys carry a hash tag of their own, so a composite call's keys share a Cluster slot: \"<limiter>=key\" or \"<limiter>=group:<name>\""
  },
  {
    name: "maxBatchSize",
    toml: "max_batch_size",
    kind: "integer",
    min: "positive",
    default: "16",
    doc: "most decisions of one tick sent as one batch script; 1 sends each on its own"
  },
  { name: "autoPipelining", toml: "auto_pipelining", kind: "boolean", default: "false", doc: "ioredis auto-pipelining" },
  blockCacheField
] as const satisfies ReadonlyArray<Field>

/** `engine = "nats"` (JetStream KV). @internal */
export const natsFields = [
  { name: "url", toml: "url", kind: "url", url: natsUrl, default: "nats://127.0.0.1:4222", doc: "server(s)" },
  {
    name: "servers",
    toml: "servers",
    kind: "urlList",
    url: { ...natsUrl, expected: "a NATS server URL (nats://[user:pass@ | token@]host:port, or host:port)", list: false },
    default: "none",
    doc: "server URLs; when set, used instead of url"
  },
  { name: "token", toml: "token", kind: "secret", default: "none", doc: "auth token" },
  {
    name: "bucketName",
    toml: "bucket_name",
    kind: "string",
    check: bucketName,
    default: `"rate_limits"`,
    doc: "KV bucket"
  },
  { name: "autoCreate", toml: "auto_create", kind: "boolean", default: "true", doc: "create the bucket when missing" },
  {
    name: "maxAge",
    toml: "max_age",
    kind: "duration",
    min: "positive",
    default: "1 day",
    doc: "max_age of a bucket the store creates; must exceed the longest window and lease"
  },
  {
    name: "retryInterval",
    toml: "retry_interval",
    kind: "duration",
    min: "positive",
    default: "0.01 seconds",
    doc: "mean wait between compare-and-set retries (jittered)"
  },
  {
    name: "maxRetries",
    toml: "max_retries",
    kind: "integer",
    min: "nonNegative",
    default: "100",
    doc: "compare-and-set retries before failing"
  },
  {
    name: "timingMarginMs",
    toml: "timing_margin_ms",
    kind: "number",
    min: "nonNegative",
    default: "10",
    doc: "clock-skew margin (NATS has no server clock)"
  },
  {
    name: "timeout",
    toml: "timeout",
    kind: "duration",
    min: "positive",
    default: "2 seconds",
    doc: "every operation settles within it, its compare-and-set retries included"
  },
  {
    name: "connectTimeout",
    toml: "connect_timeout",
    kind: "duration",
    min: "positive",
    default: "5 seconds",
    doc: "bound on connecting (and opening the bucket) at start-up"
  },
  {
    name: "purgeInterval",
    toml: "purge_interval",
    kind: "duration",
    min: "positive",
    infinite: true,
    default: "1 minute",
    doc: "how often keys past their expiry are deleted; infinite turns the purge off"
  },
  blockCacheField
] as const satisfies ReadonlyArray<Field>

/** `engine = "postgres"`. @internal */
export const postgresFields = [
  {
    name: "url",
    toml: "url",
    kind: "url",
    url: { schemes: ["postgres:", "postgresql:"], expected: "a postgres:// or postgresql:// URL", rules: { emptyHost: true } },
    option: false,
    default: "pg's defaults (PGHOST, PGPORT, ... else localhost:5432)",
    doc: "connection string of the store's own pool"
  },
  {
    name: "tableName",
    toml: "table_name",
    kind: "string",
    check: tableIdentifier,
    default: `"rate_limiter_state"`,
    doc: "state table"
  },
  { name: "schemaName", toml: "schema_name", kind: "string", check: sqlIdentifier, default: `"public"`, doc: "its schema" },
  {
    name: "autoCreate",
    toml: "auto_create",
    kind: "boolean",
    default: "true",
    doc: "create the table and functions when missing"
  },
  {
    name: "unlogged",
    toml: "unlogged",
    kind: "boolean",
    default: "false",
    doc: "create the table UNLOGGED (faster writes, emptied after a crash)"
  },
  {
    name: "poolMinSize",
    toml: "pool_min_size",
    kind: "integer",
    min: "nonNegative",
    atMost: "poolMaxSize",
    option: false,
    default: "pg's: 0",
    doc: "connections the idle timeout does not close"
  },
  {
    name: "poolMaxSize",
    toml: "pool_max_size",
    kind: "integer",
    min: "positive",
    option: false,
    default: "pg's: 10",
    doc: "most connections of the pool"
  },
  {
    name: "timingMarginMs",
    toml: "timing_margin_ms",
    kind: "number",
    min: "nonNegative",
    default: "0",
    doc: "margin added to waits"
  },
  {
    name: "synchronousCommit",
    toml: "synchronous_commit",
    kind: "boolean",
    default: "false",
    doc: "wait for the WAL flush when a decision commits"
  },
  {
    name: "statementTimeout",
    toml: "statement_timeout",
    kind: "duration",
    min: "positive",
    default: "2 seconds",
    doc: "every call settles within it"
  },
  {
    name: "maxConcurrentStatements",
    toml: "max_concurrent_statements",
    kind: "integer",
    min: "positive",
    default: "2, or the pool's size when smaller",
    doc: "most statements of the store in flight at once"
  },
  {
    name: "maxQueuedStatements",
    toml: "max_queued_statements",
    kind: "integer",
    min: "nonNegative",
    default: "10000",
    doc: "most calls waiting for a statement slot"
  },
  {
    name: "initializeTimeout",
    toml: "initialize_timeout",
    kind: "duration",
    min: "positive",
    default: "15 seconds",
    doc: "bound on start-up (DDL may wait for locks)"
  },
  {
    name: "cleanupInterval",
    toml: "cleanup_interval",
    kind: "duration",
    min: "positive",
    default: "60 seconds",
    doc: "how often expired rows are deleted"
  },
  {
    name: "cleanupBatchSize",
    toml: "cleanup_batch_size",
    kind: "integer",
    min: "positive",
    default: "1000",
    doc: "most rows one cleanup statement deletes"
  },
  blockCacheField
] as const satisfies ReadonlyArray<Field>

/**
 * Every engine's table.
 *
 * @internal
 */
export const storeFieldTables = {
  memory: memoryFields,
  redis: redisFields,
  nats: natsFields,
  postgres: postgresFields
} as const satisfies Record<Engine, ReadonlyArray<Field>>

/** The TOML names an engine's table accepts, `engine` first. @internal */
export const tomlNamesOf = (engine: Engine): ReadonlyArray<string> => [
  "engine",
  ...storeFieldTables[engine].map((f: Field) => f.toml)
]

/** Every TOML name of every engine (what an environment variable may set). @internal */
export const allTomlNames: ReadonlyArray<string> = Array.from(new Set(engines.flatMap(tomlNamesOf)))
