import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "#test/vitest"
import { Duration, Effect, Layer, Redacted } from "effect"
import { LimiterDefinition, MemoryStore, RateLimiter, type RateLimitError, RateSync, RateSyncConfig } from "effect-rate-sync"
import * as T from "#test/effect"

const SECRET = "hunter2-s3cr3t"

const env = (vars: Record<string, string> = {}) => T.configProvider(vars)

/** Decodes `text` with exactly the variables `vars` in the ConfigProvider. */
const parse = (text: string, vars: Record<string, string> = {}) =>
  RateSyncConfig.parse(text, "test.toml").pipe(T.withConfigProvider(env(vars)))

const parseError = (text: string, vars: Record<string, string> = {}) => Effect.flip(parse(text, vars))

const fields = (e: RateLimitError.ConfigError) => ({ path: e.path, expected: e.expected, received: e.received })

/** A fresh temporary directory, removed when the scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "rate-sync-config-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

const writeToml = (dir: string, text: string) =>
  Effect.gen(function*() {
    const file = join(dir, `${crypto.randomUUID()}.toml`)
    yield* Effect.promise(() => writeFile(file, text))
    return file
  })

const maxRateExpected =
  "a rate of at most 9007199254740991 per second (the default burst, ceil of the rate, must be a safe integer)"
const maxDurationExpected = "a duration of at most 10 years (3650 days)"

const redisFields =
  "engine, url, db, password, username, key_prefix, pool_min_size, pool_max_size, timing_margin_ms, socket_timeout, socket_connect_timeout, command_timeout, cluster_nodes, hash_tags, max_batch_size, auto_pipelining, block_cache"
const limiterFieldList =
  "store, algorithm, rate_per_second, rate, burst, max_concurrent, limit, window_seconds, timeout, fail_closed, lease_ms, block_cache"

describe("RateSyncConfig.parse: good inputs", () => {
  it.effect("an empty document, or one without [stores]/[limiters], is no stores and no limiters", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* parse(""), { stores: {}, limiters: {} })
      assert.deepStrictEqual(yield* parse("# nothing\n"), { stores: {}, limiters: {} })
      const onlyLimiters = yield* parse(`[limiters.api]\nrate_per_second = 5.0\n`)
      assert.deepStrictEqual(onlyLimiters, { stores: {}, limiters: { api: { ratePerSecond: 5 } } })
    }))

  it.effect("every redis field maps onto RedisStoreDefinition (seconds become Durations, secrets Redacted)", () =>
    Effect.gen(function*() {
      const config = yield* parse(`
[stores.main]
engine = "redis"
url = "redis://:${SECRET}@127.0.0.1:6379/0"
db = 0
password = "${SECRET}"
key_prefix = "rl"
pool_min_size = 1
pool_max_size = 20
timing_margin_ms = 0
socket_timeout = 2.5
socket_connect_timeout = 1
command_timeout = 0.25
cluster_nodes = ["10.0.0.1:7000", "[::1]:7001"]
hash_tags = ["rpm=key", "login-ip=group:login"]
max_batch_size = 32
auto_pipelining = false
`)
      const main = config.stores["main"]
      assert(main !== undefined && main.engine === "redis")
      assert(main.url !== undefined && main.password !== undefined)
      assert.strictEqual(Redacted.value(main.url), `redis://:${SECRET}@127.0.0.1:6379/0`)
      assert.strictEqual(Redacted.value(main.password), SECRET)
      const { url: _url, password: _password, socketTimeout, socketConnectTimeout, commandTimeout, ...rest } = main
      assert.deepStrictEqual(rest, {
        engine: "redis",
        db: 0,
        keyPrefix: "rl",
        poolMinSize: 1,
        poolMaxSize: 20,
        timingMarginMs: 0,
        clusterNodes: ["10.0.0.1:7000", "[::1]:7001"],
        hashTags: ["rpm=key", "login-ip=group:login"],
        maxBatchSize: 32,
        autoPipelining: false
      })
      assert.deepStrictEqual(
        [socketTimeout, socketConnectTimeout, commandTimeout].map((d) => d === undefined ? -1 : Duration.toMillis(d)),
        [2500, 1000, 250]
      )
      // The decoded config never shows a secret either.
      assert.notInclude(JSON.stringify(config), SECRET)
      assert.notInclude(String(main.url), SECRET)
    }))

  it.effect("a PostgreSQL unix-socket URL (empty host) and a Redis URL with a database number are accepted", () =>
    Effect.gen(function*() {
      const config = yield* parse(`
[stores.db]
engine = "postgres"
url = "postgres://u:${SECRET}@/app?host=/var/run/postgresql"

[stores.r]
engine = "redis"
url = "redis://127.0.0.1:6379/3"
`)
      const db = config.stores["db"]
      const r = config.stores["r"]
      assert(db?.engine === "postgres" && db.url !== undefined && r?.engine === "redis" && r.url !== undefined)
      assert.strictEqual(Redacted.value(db.url), `postgres://u:${SECRET}@/app?host=/var/run/postgresql`)
      assert.strictEqual(Redacted.value(r.url), "redis://127.0.0.1:6379/3")
    }))

  it.effect("memory, nats and postgres stores keep only their own fields", () =>
    Effect.gen(function*() {
      const config = yield* parse(`
[stores.mem]
engine = "memory"
max_keys = 1000
sweep_interval = 1.1

[stores.bus]
engine = "nats"
url = "nats://127.0.0.1:4222"
token = "${SECRET}"
bucket_name = "rate_limits"
auto_create = true
retry_interval = 0.05
max_retries = 0
timing_margin_ms = 10.0

[stores.db]
engine = "postgres"
url = "postgresql://u:${SECRET}@127.0.0.1/app"
table_name = "rate_limiter_state"
schema_name = "public"
auto_create = false
pool_min_size = 2
pool_max_size = 10
timing_margin_ms = 5
`)
      const { mem, bus, db } = config.stores
      assert(mem?.engine === "memory" && bus?.engine === "nats" && db?.engine === "postgres")
      assert.deepStrictEqual(Object.keys(mem).sort(), ["engine", "maxKeys", "sweepInterval"])
      assert.strictEqual(mem.maxKeys, 1000)
      assert.strictEqual(mem.sweepInterval === undefined ? -1 : Duration.toMillis(mem.sweepInterval), 1100)
      assert.deepStrictEqual(
        Object.keys(bus).sort(),
        ["autoCreate", "bucketName", "engine", "maxRetries", "retryInterval", "timingMarginMs", "token", "url"]
      )
      assert(bus.token !== undefined && Redacted.value(bus.token) === SECRET)
      assert.deepStrictEqual([bus.bucketName, bus.autoCreate, bus.maxRetries, bus.timingMarginMs], ["rate_limits", true, 0, 10])
      assert.strictEqual(bus.retryInterval === undefined ? -1 : Duration.toMillis(bus.retryInterval), 50)
      assert.deepStrictEqual(
        [db.tableName, db.schemaName, db.autoCreate, db.poolMinSize, db.poolMaxSize, db.timingMarginMs],
        ["rate_limiter_state", "public", false, 2, 10, 5]
      )
      assert.notInclude(JSON.stringify(config), SECRET)
    }))

  it.effect("limiter fields map onto LimiterDefinition (seconds and milliseconds become Durations)", () =>
    Effect.gen(function*() {
      const config = yield* parse(`
[stores.main]
engine = "memory"

[limiters.api]
store = "main"
rate_per_second = 100.0
burst = 150
max_concurrent = 50
timeout = 30.0
fail_closed = true
lease_ms = 5000

[limiters.reports]
rate = "100/min"
timeout = 0

[limiters.login]
algorithm = "sliding_window"
limit = 5
window_seconds = 300
`)
      const { api, reports, login } = config.limiters
      assert(api !== undefined && reports !== undefined && login !== undefined)
      const ms = (d: T.DurationInput | undefined) => d === undefined ? undefined : Duration.toMillis(T.decodeDuration(d))
      assert.deepStrictEqual(
        { ...api, timeout: ms(api.timeout), lease: ms(api.lease) },
        {
          store: "main",
          ratePerSecond: 100,
          burst: 150,
          maxConcurrent: 50,
          timeout: 30_000,
          failClosed: true,
          lease: 5000
        }
      )
      assert.deepStrictEqual({ ...reports, timeout: ms(reports.timeout) }, { rate: "100/min", timeout: 0 })
      assert.deepStrictEqual(
        { ...login, window: ms(login.window) },
        { algorithm: "sliding_window", limit: 5, window: 300_000 }
      )
    }))
})

/** [title, TOML, path, expected, received] */
const badInputs: ReadonlyArray<readonly [string, string, string, string, string]> = [
  ["an unknown top-level table", `[limiter.api]\nrate_per_second = 1\n`, "limiter", "one of the top-level tables: stores, limiters", "an unknown field"],
  ["[stores] that is not a table", `stores = 5\n`, "stores", "a table of stores ([stores.<id>])", "5"],
  ["a store that is not a table", `[stores]\nmain = "redis"\n`, "stores.main", "a table ([stores.main])", `"redis"`],
  ["an unknown engine", `[stores.main]\nengine = "mongo"\n`, "stores.main.engine", `one of "memory", "redis", "nats", "postgres"`, `"mongo"`],
  ["a store without engine", `[stores.main]\nurl = "redis://x"\n`, "stores.main.engine", `one of "memory", "redis", "nats", "postgres"`, "nothing"],
  [
    "a redis field on a memory store",
    `[stores.main]\nengine = "memory"\nkey_prefix = "x"\n`,
    "stores.main.key_prefix",
    "one of the memory store fields: engine, max_keys, max_bytes, sweep_interval",
    "an unknown field"
  ],
  ["a misspelled redis field", `[stores.main]\nengine = "redis"\npool_size = 3\n`, "stores.main.pool_size", `one of the redis store fields: ${redisFields}`, "an unknown field"],
  ["a string where a number goes", `[stores.m]\nengine = "memory"\nmax_keys = "10"\n`, "stores.m.max_keys", "a number", `"10"`],
  ["a negative number", `[stores.m]\nengine = "memory"\nmax_keys = -1\n`, "stores.m.max_keys", "a whole number greater than 0", "-1"],
  ["zero seconds", `[stores.m]\nengine = "memory"\nsweep_interval = 0\n`, "stores.m.sweep_interval", "a finite number greater than 0", "0"],
  ["nan", `[stores.r]\nengine = "redis"\ntiming_margin_ms = nan\n`, "stores.r.timing_margin_ms", "a finite number of 0 or more", "NaN"],
  ["inf", `[stores.r]\nengine = "redis"\nsocket_timeout = inf\n`, "stores.r.socket_timeout", "a finite number greater than 0", "Infinity"],
  ["a fractional db", `[stores.r]\nengine = "redis"\ndb = 1.5\n`, "stores.r.db", "a whole number of 0 or more", "1.5"],
  [
    "pool_min_size above pool_max_size",
    `[stores.r]\nengine = "redis"\npool_min_size = 8\npool_max_size = 4\n`,
    "stores.r.pool_min_size",
    "a whole number no greater than pool_max_size (4)",
    "8"
  ],
  ["cluster_nodes that is a string", `[stores.r]\nengine = "redis"\ncluster_nodes = "a:1"\n`, "stores.r.cluster_nodes", `a non-empty array of "host:port" strings`, `"a:1"`],
  ["max_batch_size = 0", `[stores.r]\nengine = "redis"\nmax_batch_size = 0\n`, "stores.r.max_batch_size", "a whole number greater than 0", "0"],
  ["a bad cluster node", `[stores.r]\nengine = "redis"\ncluster_nodes = ["a:1", "b"]\n`, "stores.r.cluster_nodes[1]", `a "host:port" string (port 1-65535)`, `"b"`],
  ["a url that is a number", `[stores.r]\nengine = "redis"\nurl = 6379\n`, "stores.r.url", "a redis:// or rediss:// URL", "<redacted> (a number)"],
  [
    "a redis url whose database path is not a number",
    `[stores.r]\nengine = "redis"\nurl = "redis://:s3cret@127.0.0.1:6379/abc"\n`,
    "stores.r.url",
    "a redis:// or rediss:// URL",
    `<redacted> (database path "abc")`
  ],
  [
    "a key_prefix with a hash tag",
    `[stores.r]\nengine = "redis"\nkey_prefix = "{rl}"\n`,
    "stores.r.key_prefix",
    "a non-empty key prefix without { or } (they mark Redis Cluster hash tags)",
    `"{rl}"`
  ],
  ["a bad SQL identifier", `[stores.p]\nengine = "postgres"\ntable_name = "x; drop"\n`, "stores.p.table_name", "an SQL identifier ([A-Za-z_][A-Za-z0-9_]*, at most 48 characters)", `"x; drop"`],
  ["a bad NATS bucket", `[stores.n]\nengine = "nats"\nbucket_name = "a.b"\n`, "stores.n.bucket_name", "a NATS KV bucket name ([A-Za-z0-9_-]+)", `"a.b"`],
  ["auto_create as a string", `[stores.n]\nengine = "nats"\nauto_create = "yes"\n`, "stores.n.auto_create", "true or false", `"yes"`],
  [
    "a limiter with no limit",
    `[limiters.api]\ntimeout = 3\n`,
    "limiters.api",
    "at least one limit: limiters.api.rate_per_second, limiters.api.rate or limiters.api.max_concurrent",
    "none"
  ],
  ["rate_per_second = 0", `[limiters.api]\nrate_per_second = 0\n`, "limiters.api.rate_per_second", "a finite number greater than 0", "0"],
  ["rate_per_second = -inf", `[limiters.api]\nrate_per_second = -inf\n`, "limiters.api.rate_per_second", "a finite number greater than 0", "-Infinity"],
  ["rate_per_second as a string", `[limiters.api]\nrate_per_second = "10"\n`, "limiters.api.rate_per_second", "a number", `"10"`],
  [
    "a bad rate string",
    `[limiters.api]\nrate = "fast"\n`,
    "limiters.api.rate",
    `a rate such as "100/min", "10/5s" or "5 per hour" (units ms, s, m, h, d)`,
    `"fast"`
  ],
  [
    "both rate and rate_per_second",
    `[limiters.api]\nrate = "1/s"\nrate_per_second = 1\n`,
    "limiters.api.rate",
    "either limiters.api.rate_per_second or limiters.api.rate, not both",
    "both"
  ],
  ["a fractional max_concurrent", `[limiters.db]\nmax_concurrent = 2.5\n`, "limiters.db.max_concurrent", "a whole number greater than 0", "2.5"],
  [
    "an unknown algorithm",
    `[limiters.api]\nalgorithm = "leaky_bucket"\nmax_concurrent = 1\n`,
    "limiters.api.algorithm",
    `one of "token_bucket", "sliding_window", "fixed_window"`,
    `"leaky_bucket"`
  ],
  ["a misspelled limiter field", `[limiters.api]\nrate_per_sec = 5\n`, "limiters.api.rate_per_sec", `one of the limiter fields: ${limiterFieldList}`, "an unknown field"],
  [
    "a window limiter without window_seconds",
    `[limiters.login]\nalgorithm = "fixed_window"\nlimit = 5\n`,
    "limiters.login.window_seconds",
    "a duration greater than 0 (required by fixed_window)",
    "nothing"
  ],
  [
    "window_seconds on a token bucket",
    `[limiters.api]\nrate_per_second = 1\nwindow_seconds = 60\n`,
    "limiters.api.window_seconds",
    "no limiters.api.window_seconds for the token bucket (use sliding_window or fixed_window)",
    "60"
  ],
  ["negative window_seconds", `[limiters.login]\nalgorithm = "sliding_window"\nlimit = 5\nwindow_seconds = -1\n`, "limiters.login.window_seconds", "a finite number greater than 0", "-1"],
  ["a negative timeout", `[limiters.api]\nrate_per_second = 1\ntimeout = -1\n`, "limiters.api.timeout", "a finite number of 0 or more", "-1"],
  ["a lease under 100 ms", `[limiters.db]\nmax_concurrent = 1\nlease_ms = 50\n`, "limiters.db.lease_ms", "a lease of at least 100 ms", "50 ms"],
  ["fail_closed as a number", `[limiters.api]\nrate_per_second = 1\nfail_closed = 1\n`, "limiters.api.fail_closed", "true or false", "1"],
  ["rate_per_second = 1e308 (its burst would not be a safe integer)", `[limiters.api]\nrate_per_second = 1e308\n`, "limiters.api.rate_per_second", maxRateExpected, "1e+308"],
  [
    "a rate string above the highest rate",
    `[limiters.api]\nrate = "99999999999999999999/ms"\n`,
    "limiters.api.rate",
    maxRateExpected,
    `"99999999999999999999/ms"`
  ],
  ["a burst that is not a safe integer", `[limiters.api]\nrate_per_second = 1\nburst = 1e20\n`, "limiters.api.burst", "a whole number greater than 0", "100000000000000000000"],
  ["a limit that is not a safe integer", `[limiters.l]\nalgorithm = "fixed_window"\nlimit = 1e300\nwindow_seconds = 1\n`, "limiters.l.limit", "a whole number greater than 0", "1e+300"],
  [
    "window_seconds = 1e300",
    `[limiters.l]\nalgorithm = "sliding_window"\nlimit = 5\nwindow_seconds = 1e300\n`,
    "limiters.l.window_seconds",
    maxDurationExpected,
    "1e+300"
  ],
  [
    "window_seconds one second over 10 years",
    `[limiters.l]\nalgorithm = "fixed_window"\nlimit = 5\nwindow_seconds = 315360001\n`,
    "limiters.l.window_seconds",
    maxDurationExpected,
    "315360001"
  ],
  ["timeout = 1e300", `[limiters.api]\nrate_per_second = 1\ntimeout = 1e300\n`, "limiters.api.timeout", maxDurationExpected, "1e+300"],
  ["timeout = 1e306 (Infinity in milliseconds)", `[limiters.api]\nrate_per_second = 1\ntimeout = 1e306\n`, "limiters.api.timeout", maxDurationExpected, "1e+306"],
  ["lease_ms = 1e300", `[limiters.db]\nmax_concurrent = 1\nlease_ms = 1e300\n`, "limiters.db.lease_ms", maxDurationExpected, "1e+300 ms"],
  [
    "a limiter naming an unknown store",
    `[stores.main]\nengine = "memory"\n[stores.other]\nengine = "memory"\n[limiters.api]\nstore = "mian"\nrate_per_second = 1\n`,
    "limiters.api.store",
    `one of the declared stores: "main", "other"`,
    `"mian"`
  ],
  [
    "a limiter naming a store when none is declared",
    `[limiters.api]\nstore = "main"\nrate_per_second = 1\n`,
    "limiters.api.store",
    "a store declared as [stores.<id>] (none is declared; leave store out to use the implicit memory store)",
    `"main"`
  ]
]

describe("bounds: safe integers and durations of at most 10 years, in TOML and in code alike", () => {
  it.effect("the largest values accepted are the documented maxima", () =>
    Effect.gen(function*() {
      const config = yield* parse(`
[limiters.fast]
rate_per_second = 9007199254740991
timeout = 315360000
lease_ms = 315360000000
max_concurrent = 1

[limiters.long]
algorithm = "sliding_window"
limit = 9007199254740991
window_seconds = 315360000
`)
      const spec = (id: string) => {
        const def = config.limiters[id]
        assert(def !== undefined)
        return LimiterDefinition.resolve(id, def)
      }
      const fast = T.getOk(spec("fast"))
      assert.deepStrictEqual(
        [fast.ratePerSecond, fast.burst, fast.timeoutMs, fast.leaseMs],
        [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, LimiterDefinition.MAX_DURATION_MS, LimiterDefinition.MAX_DURATION_MS]
      )
      const long = T.getOk(spec("long"))
      assert.deepStrictEqual([long.limit, long.windowMs], [Number.MAX_SAFE_INTEGER, 315_360_000_000])
      assert.strictEqual(LimiterDefinition.MAX_DURATION_MS, 315_360_000_000)
    }))

  it("an infinite timeout in code is the same as none: wait as long as needed", () => {
    const spec = T.getOk(LimiterDefinition.resolve("api", { ratePerSecond: 1, timeout: Duration.infinity }))
    assert.strictEqual(spec.timeoutMs, undefined)
  })

  it.effect("a value from the environment is bounded the same way", () =>
    Effect.gen(function*() {
      const error = yield* parseError(`[limiters.api]\nrate_per_second = 1\n`, { RATE_SYNC_LIMITERS_API_TIMEOUT: "1e300" })
      assert.deepStrictEqual(fields(error), {
        path: "limiters.api.timeout",
        expected: maxDurationExpected,
        received: "1e+300 (from RATE_SYNC_LIMITERS_API_TIMEOUT)"
      })
    }))

  /** [title, definition, path, expected, received] for `configureLimiter("api", definition)`. */
  const badDefinitions: ReadonlyArray<readonly [string, LimiterDefinition.LimiterDefinition, string, string, string]> = [
    ["ratePerSecond: 1e308", { ratePerSecond: 1e308 }, "limiters.api.ratePerSecond", maxRateExpected, "1e+308"],
    ["ratePerSecond: 2^53 (just above the maximum)", { ratePerSecond: 2 ** 53, burst: 10 }, "limiters.api.ratePerSecond", maxRateExpected, "9007199254740992"],
    ["a rate string above the maximum", { rate: "99999999999999999999/ms" }, "limiters.api.rate", maxRateExpected, `"99999999999999999999/ms"`],
    ["a burst that is not a safe integer", { ratePerSecond: 1, burst: 2 ** 53 }, "limiters.api.burst", "a whole number greater than 0", "9007199254740992"],
    [
      "a limit that is not a safe integer",
      { algorithm: "sliding_window", limit: 1e300, window: "1 second" },
      "limiters.api.limit",
      "a whole number greater than 0",
      "1e+300"
    ],
    [
      "window: Duration.seconds(1e300)",
      { algorithm: "sliding_window", limit: 5, window: Duration.seconds(1e300) },
      "limiters.api.window",
      maxDurationExpected,
      "1e+303 ms"
    ],
    ["window: 3651 days", { algorithm: "fixed_window", limit: 5, window: "3651 days" }, "limiters.api.window", maxDurationExpected, `"3651 days"`],
    ["timeout: 1e300 (milliseconds)", { ratePerSecond: 1, timeout: 1e300 }, "limiters.api.timeout", maxDurationExpected, "1e+300"],
    ["lease: 1e300 seconds", { maxConcurrent: 1, lease: Duration.seconds(1e300) }, "limiters.api.lease", maxDurationExpected, "1e+303 ms"]
  ]
  for (const [title, definition, path, expected, received] of badDefinitions) {
    it.effect(`configureLimiter rejects ${title}`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(RateLimiter.configureLimiter("api", definition))
        assert.strictEqual(error._tag, "ConfigError")
        if (error._tag === "ConfigError") assert.deepStrictEqual(fields(error), { path, expected, received })
        assert.deepStrictEqual((yield* RateLimiter.list).map((l) => l.id), [])
      }).pipe(Effect.provide(RateLimiter.layer({}).pipe(Layer.provide(MemoryStore.layer())))))
  }
})

describe("RateSyncConfig.parse: bad inputs are ConfigErrors naming path, expected and received", () => {
  for (const [title, toml, path, expected, received] of badInputs) {
    it.effect(title, () =>
      Effect.gen(function*() {
        const error = yield* parseError(toml)
        assert.strictEqual(error._tag, "ConfigError")
        assert.deepStrictEqual(fields(error), { path, expected, received })
        assert.strictEqual(error.message, `Invalid configuration at ${path}: expected ${expected}, received ${received}`)
      }))
  }

  it.effect("a syntax error names the file, the line and the column", () =>
    Effect.gen(function*() {
      const error = yield* parseError(`[stores.main]\nengine = "memory"\nmax_keys = = 3\n`)
      assert.deepStrictEqual(fields(error), {
        path: "test.toml",
        expected: "a valid TOML document",
        received: "invalid value at line 3, column 12"
      })
      const other = yield* Effect.flip(RateSyncConfig.parse("[limiters\n", "/etc/app/rate-sync.toml"))
      assert.strictEqual(other.path, "/etc/app/rate-sync.toml")
      assert.match(other.received, /at line 1, column \d+$/)
    }))
})

describe("RateSyncConfig: secrets never appear in errors", () => {
  const secretCases: ReadonlyArray<readonly [string, string, Record<string, string>, string]> = [
    ["a url with the wrong scheme", `[stores.r]\nengine = "redis"\nurl = "http://u:${SECRET}@h"\n`, {}, `<redacted> (scheme "http:")`],
    ["a url that is no URL", `[stores.p]\nengine = "postgres"\nurl = "${SECRET}"\n`, {}, "<redacted> (not a URL)"],
    ["a url on a memory store", `[stores.m]\nengine = "memory"\nurl = "redis://:${SECRET}@h"\n`, {}, "an unknown field"],
    ["a misspelled password", `[stores.r]\nengine = "redis"\npasword = "${SECRET}"\n`, {}, "an unknown field"],
    [
      "a bad url from the environment",
      `[stores.r]\nengine = "redis"\n`,
      { RATE_SYNC_STORES_R_URL: `ftp://:${SECRET}@h` },
      `<redacted> (scheme "ftp:") (from RATE_SYNC_STORES_R_URL)`
    ],
    [
      "credentials in a cluster node",
      `[stores.r]\nengine = "redis"\ncluster_nodes = ["u:${SECRET}@h:7000"]\n`,
      {},
      "<redacted> (holds credentials)"
    ],
    [
      "a syntax error on the line of a secret",
      `[stores.r]\nengine = "redis"\nurl = "redis://:${SECRET}@h" junk\n`,
      {},
      "line 3"
    ]
  ]
  for (const [title, toml, vars, received] of secretCases) {
    it.effect(title, () =>
      Effect.gen(function*() {
        const error = yield* parseError(toml, vars)
        assert.include(error.received, received)
        assert.notInclude(String(error), SECRET)
        assert.notInclude(JSON.stringify(error), SECRET)
        assert.notInclude(error.message, SECRET)
      }))
  }
})

describe("RateSyncConfig: environment overrides through the ConfigProvider", () => {
  const base = `
[stores.main]
engine = "redis"
url = "redis://file-host:6379"
key_prefix = "from_file"

[limiters.api]
store = "main"
max_concurrent = 5
`

  it.effect("variables override file values and add fields the file leaves out (a number and a secret)", () =>
    Effect.gen(function*() {
      const config = yield* parse(base, {
        RATE_SYNC_STORES_MAIN_URL: "redis://env-host:6380/1",
        RATE_SYNC_STORES_MAIN_PASSWORD: SECRET,
        RATE_SYNC_STORES_MAIN_POOL_MAX_SIZE: "7",
        RATE_SYNC_STORES_MAIN_CLUSTER_NODES: "a:7000, b:7001",
        RATE_SYNC_LIMITERS_API_RATE_PER_SECOND: "12.5",
        RATE_SYNC_LIMITERS_API_FAIL_CLOSED: "1",
        RATE_SYNC_LIMITERS_API_TIMEOUT: "2",
        RATE_SYNC_LIMITERS_API_RATE: "" // empty counts as unset
      })
      const main = config.stores["main"]
      assert(main?.engine === "redis" && main.url !== undefined && main.password !== undefined)
      assert.strictEqual(Redacted.value(main.url), "redis://env-host:6380/1")
      assert.strictEqual(Redacted.value(main.password), SECRET)
      assert.deepStrictEqual([main.keyPrefix, main.poolMaxSize, main.clusterNodes], ["from_file", 7, ["a:7000", "b:7001"]])
      const api = config.limiters["api"]
      assert(api !== undefined)
      assert.deepStrictEqual(
        [api.store, api.ratePerSecond, api.maxConcurrent, api.failClosed, api.rate],
        ["main", 12.5, 5, true, undefined]
      )
      assert.strictEqual(api.timeout === undefined ? -1 : Duration.toMillis(T.decodeDuration(api.timeout)), 2000)
      assert.notInclude(JSON.stringify(config), SECRET)
    }))

  it.effect("ids are upper-cased with non-alphanumerics turned into _", () =>
    Effect.gen(function*() {
      assert.strictEqual(RateSyncConfig.envVariable("stores", "main", "url"), "RATE_SYNC_STORES_MAIN_URL")
      const config = yield* parse(`[limiters."api-v2.eu"]\nrate = "10/s"\n`, {
        RATE_SYNC_LIMITERS_API_V2_EU_BURST: "3"
      })
      assert.deepStrictEqual(config.limiters["api-v2.eu"], { rate: "10/s", burst: 3 })
    }))

  it.effect("the engine can be overridden, and is then validated with that engine's fields", () =>
    Effect.gen(function*() {
      const config = yield* parse(`[stores.main]\nengine = "redis"\n`, { RATE_SYNC_STORES_MAIN_ENGINE: "memory" })
      assert.deepStrictEqual(config.stores, { main: { engine: "memory" } })
      const error = yield* parseError(base, { RATE_SYNC_STORES_MAIN_ENGINE: "memory" })
      assert.deepStrictEqual(fields(error), {
        path: "stores.main.url",
        expected: "one of the memory store fields: engine, max_keys, max_bytes, sweep_interval",
        received: "an unknown field"
      })
      const fromEnv = yield* parseError(`[stores.m]\nengine = "memory"\n`, { RATE_SYNC_STORES_M_DB: "1" })
      assert.deepStrictEqual(fields(fromEnv), {
        path: "stores.m.db",
        expected: "one of the memory store fields: engine, max_keys, max_bytes, sweep_interval",
        received: "an unknown field (set by RATE_SYNC_STORES_M_DB)"
      })
    }))

  const badEnv: ReadonlyArray<readonly [string, string, string, string]> = [
    ["RATE_SYNC_LIMITERS_API_RATE_PER_SECOND", "fast", "limiters.api.rate_per_second", "a number"],
    ["RATE_SYNC_LIMITERS_API_RATE_PER_SECOND", "-3", "limiters.api.rate_per_second", "a finite number greater than 0"],
    ["RATE_SYNC_LIMITERS_API_RATE_PER_SECOND", "nan", "limiters.api.rate_per_second", "a finite number greater than 0"],
    ["RATE_SYNC_LIMITERS_API_MAX_CONCURRENT", "0", "limiters.api.max_concurrent", "a whole number greater than 0"],
    ["RATE_SYNC_LIMITERS_API_FAIL_CLOSED", "maybe", "limiters.api.fail_closed", "true or false (or 1/0, yes/no, on/off)"],
    ["RATE_SYNC_LIMITERS_API_STORE", "nope", "limiters.api.store", `one of the declared stores: "main"`],
    ["RATE_SYNC_STORES_MAIN_POOL_MIN_SIZE", "-1", "stores.main.pool_min_size", "a whole number of 0 or more"],
    ["RATE_SYNC_STORES_MAIN_ENGINE", "mongo", "stores.main.engine", `one of "memory", "redis", "nats", "postgres"`]
  ]
  for (const [variable, value, path, expected] of badEnv) {
    it.effect(`a bad ${variable}=${value} is decoded with the file's rules and paths`, () =>
      Effect.gen(function*() {
        const error = yield* parseError(base, { [variable]: value })
        const shown = value === "nan" ? "NaN" : value === "-3" || value === "0" || value === "-1" ? value : JSON.stringify(value)
        assert.deepStrictEqual(fields(error), { path, expected, received: `${shown} (from ${variable})` })
      }))
  }
})

describe("RateSyncConfig.load", () => {
  it.scoped("reads the file named by RATE_SYNC_CONFIG from the ConfigProvider, with overrides", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = yield* writeToml(dir, `[limiters.api]\nrate_per_second = 5.0\n`)
      const config = yield* RateSyncConfig.load().pipe(
        T.withConfigProvider(env({ RATE_SYNC_CONFIG: file, RATE_SYNC_LIMITERS_API_BURST: "2" }))
      )
      assert.deepStrictEqual(config, { stores: {}, limiters: { api: { ratePerSecond: 5, burst: 2 } } })
      // Errors in that file are named by its path.
      const bad = yield* writeToml(dir, `[limiters.api]\nrate_per_second = "x"\n[[`)
      const error = yield* Effect.flip(RateSyncConfig.load(bad).pipe(T.withConfigProvider(env())))
      assert.strictEqual(error.path, bad)
    }))

  it.scoped("an explicitly named file that is absent is a ConfigError; so is a directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const missing = join(dir, "missing.toml")
      const viaEnv = yield* Effect.flip(RateSyncConfig.load().pipe(T.withConfigProvider(env({ RATE_SYNC_CONFIG: missing }))))
      assert.deepStrictEqual(fields(viaEnv), {
        path: missing,
        expected: "an existing, readable TOML file (named by RATE_SYNC_CONFIG)",
        received: "no such file"
      })
      const viaArg = yield* Effect.flip(RateSyncConfig.load(missing).pipe(T.withConfigProvider(env())))
      assert.deepStrictEqual(fields(viaArg), { path: missing, expected: "an existing, readable TOML file", received: "no such file" })
      const directory = yield* Effect.flip(RateSyncConfig.load(dir).pipe(T.withConfigProvider(env())))
      assert.strictEqual(directory.received, "a directory")
    }))

  it.scoped("without RATE_SYNC_CONFIG it reads ./rate-sync.toml, and an absent default file means no limiters", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const previous = process.cwd()
      yield* Effect.acquireRelease(Effect.sync(() => process.chdir(dir)), () => Effect.sync(() => process.chdir(previous)))
      assert.deepStrictEqual(yield* RateSyncConfig.load().pipe(T.withConfigProvider(env())), RateSyncConfig.empty)
      yield* Effect.promise(() => writeFile(join(dir, "rate-sync.toml"), `[limiters.db]\nmax_concurrent = 3\n`))
      assert.deepStrictEqual(
        yield* RateSyncConfig.load().pipe(T.withConfigProvider(env())),
        { stores: {}, limiters: { db: { maxConcurrent: 3 } } }
      )
    }))
})

describe("RateSync", () => {
  it.effect("makeOptions: no store adds an implicit memory store; one store is the default", () =>
    Effect.gen(function*() {
      const none = T.getOk(RateSync.makeOptions({ stores: {}, limiters: { api: { ratePerSecond: 1 } } }))
      assert.deepStrictEqual(none, {
        stores: { memory: { engine: "memory" } },
        limiters: { api: { ratePerSecond: 1 } },
        defaultStore: "memory"
      })
      const one = T.getOk(RateSync.makeOptions({ stores: { main: { engine: "memory" } }, limiters: {} }))
      assert.strictEqual(one.defaultStore, "main")
    }))

  it.effect("with several stores, a limiter without store is a ConfigError at limiters.<id>.store", () =>
    Effect.gen(function*() {
      const config = yield* parse(`
[stores.a]
engine = "memory"
[stores.b]
engine = "memory"
[limiters.bound]
store = "a"
max_concurrent = 1
[limiters.loose]
max_concurrent = 1
`)
      const error = T.getErr(RateSync.makeOptions(config))
      assert.deepStrictEqual(fields(error), {
        path: "limiters.loose.store",
        expected: `a store id (the configuration declares several stores: "a", "b")`,
        received: "nothing"
      })
      const layerError = yield* Effect.flip(Layer.build(RateSync.layerFromConfig(config)).pipe(Effect.scoped))
      assert.strictEqual(layerError._tag, "ConfigError")
    }))

  it.scoped("RateSync.layer end to end: RATE_SYNC_CONFIG names a memory-store file, acquire works", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const id = `api-${crypto.randomUUID()}`
      const file = yield* writeToml(dir, `[stores.local]\nengine = "memory"\n\n[limiters."${id}"]\nrate_per_second = 1.0\ntimeout = 0\n`)
      const program = Effect.gen(function*() {
        const permit = yield* RateLimiter.acquire(id)
        assert.strictEqual(permit.limiterId, id)
        // burst defaults to max(1, ceil(1)) = 1, so a second call right away is refused.
        assert.isFalse(yield* RateLimiter.tryAcquire(id))
        const info = yield* RateLimiter.get(id)
        assert.deepStrictEqual([info.store, info.engine], ["local", "memory"])
        // The environment override of the same run applied (max_concurrent came from env only).
        assert.strictEqual(info.spec.maxConcurrent, 4)
      })
      yield* program.pipe(
        Effect.scoped,
        Effect.provide(RateSync.layer),
        T.withConfigProvider(env({
          RATE_SYNC_CONFIG: file,
          [RateSyncConfig.envVariable("limiters", id, "max_concurrent")]: "4"
        }))
      )
    }))

  it.scoped("layerFrom with no [stores] runs limiters on the implicit memory store", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = yield* writeToml(dir, `[limiters.db]\nmax_concurrent = 1\n`)
      yield* Effect.gen(function*() {
        assert.isTrue(yield* RateLimiter.tryAcquire("db"))
        assert.isFalse(yield* Effect.scoped(RateLimiter.tryAcquire("db")))
        const stores = yield* RateLimiter.listStores
        assert.deepStrictEqual(stores.map((s) => [s.id, s.engine]), [["memory", "memory"]])
      }).pipe(Effect.scoped, Effect.provide(RateSync.layerFrom(file)), T.withConfigProvider(env()))
    }))

  it.effect("a bad file fails the layer build with the ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Layer.build(RateSync.layerFrom("/nonexistent/rate-sync.toml")).pipe(Effect.scoped, T.withConfigProvider(env()))
      )
      assert.deepStrictEqual(error._tag === "ConfigError" ? fields(error) : error, {
        path: "/nonexistent/rate-sync.toml",
        expected: "an existing, readable TOML file",
        received: "no such file"
      })
    }))
})
