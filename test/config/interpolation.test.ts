/**
 * rate-sync's own files: `${VAR}` / `${VAR:-default}` in the string values of `rate-sync.toml`
 * (read from the current ConfigProvider), the `./config/rate-sync.toml` fallback, and files copied
 * from rate-sync's docs (fixtures/) loading unchanged.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "#test/vitest"
import { Duration, Effect, Redacted } from "effect"
import { type RateLimitError, RateSyncConfig } from "effect-rate-sync"
import * as T from "#test/effect"

const SECRET = "hunter2-s3cr3t"

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

const env = (vars: Record<string, string> = {}) => T.configProvider(vars)

const parse = (text: string, vars: Record<string, string> = {}) =>
  RateSyncConfig.parse(text, "test.toml").pipe(T.withConfigProvider(env(vars)))

const parseError = (text: string, vars: Record<string, string> = {}) => Effect.flip(parse(text, vars))

const fields = (e: RateLimitError.ConfigError) => ({ path: e.path, expected: e.expected, received: e.received })

/** A decoded value with every `Redacted` opened (`{ redacted: text }`) and every `Duration` in millis. */
const reveal = (u: unknown): unknown => {
  if (Redacted.isRedacted(u)) return { redacted: Redacted.value(u) }
  if (Duration.isDuration(u)) return { millis: Duration.toMillis(u) }
  if (Array.isArray(u)) return u.map(reveal)
  if (typeof u === "object" && u !== null) return Object.fromEntries(Object.entries(u).map(([k, v]) => [k, reveal(v)]))
  return u
}

const tempDir = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "rate-sync-interp-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

/** Runs the rest of the scope in `dir` as the working directory. */
const inDirectory = (dir: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const previous = process.cwd()
      process.chdir(dir)
      return previous
    }),
    (previous) => Effect.sync(() => process.chdir(previous))
  )

const readme = {
  stores: {
    local: { engine: "memory" },
    redis: { engine: "redis", url: { redacted: "redis://localhost:6379/0" } },
    nats: { engine: "nats", url: { redacted: "nats://localhost:4222" } },
    db: { engine: "postgres", url: { redacted: "postgresql://user:pass@localhost/db" } }
  },
  limiters: {
    api: { store: "local", ratePerSecond: 10, timeout: { millis: 30_000 } },
    external_api: { store: "redis", ratePerSecond: 10, maxConcurrent: 5 },
    login: { store: "redis", algorithm: "sliding_window", limit: 5, window: { millis: 300_000 } },
    production_api: { store: "redis", ratePerSecond: 100, maxConcurrent: 50, timeout: { millis: 30_000 } }
  }
}

const engines = (urls: { redis: string; nats: string; postgres: string }, password: string, token: string) => ({
  stores: {
    redis: {
      engine: "redis",
      url: { redacted: urls.redis },
      db: 0,
      password: { redacted: password },
      keyPrefix: "rate_limit",
      poolMinSize: 2,
      poolMaxSize: 10,
      timingMarginMs: 10,
      socketTimeout: { millis: 5000 },
      socketConnectTimeout: { millis: 5000 }
    },
    nats: {
      engine: "nats",
      url: { redacted: urls.nats },
      token: { redacted: token },
      bucketName: "rate_limits",
      autoCreate: false,
      retryInterval: { millis: 50 },
      maxRetries: 100,
      timingMarginMs: 10
    },
    postgres: {
      engine: "postgres",
      url: { redacted: urls.postgres },
      tableName: "rate_limiter_state",
      schemaName: "public",
      autoCreate: false,
      poolMinSize: 2,
      poolMaxSize: 10,
      timingMarginMs: 10
    }
  },
  limiters: {
    api: {
      store: "redis",
      algorithm: "token_bucket",
      ratePerSecond: 100,
      maxConcurrent: 50,
      timeout: { millis: 30_000 },
      failClosed: false
    },
    login: { store: "postgres", algorithm: "sliding_window", limit: 5, window: { millis: 300_000 }, failClosed: true }
  }
})

describe("files copied from rate-sync's docs load unchanged", () => {
  it.effect("the README's quick start, engines and limiter examples (fixtures/rate-sync-readme.toml)", () =>
    Effect.gen(function*() {
      const config = yield* RateSyncConfig.load(fixture("rate-sync-readme.toml")).pipe(T.withConfigProvider(env()))
      assert.deepStrictEqual(reveal(config), readme)
      // secrets stay Redacted
      assert.strictEqual(String(config.stores.db?.engine === "postgres" ? config.stores.db.url : undefined), "<redacted>")
    }))

  it.effect("every engine option of the API reference, URLs as ${VAR:-default} (fixtures/rate-sync-engines.toml)", () =>
    Effect.gen(function*() {
      const file = fixture("rate-sync-engines.toml")
      const defaults = yield* RateSyncConfig.load(file).pipe(T.withConfigProvider(env({ REDIS_PASSWORD: SECRET })))
      assert.deepStrictEqual(
        reveal(defaults),
        engines(
          { redis: "redis://localhost:6379/0", nats: "nats://localhost:4222", postgres: "postgresql://user:pass@localhost/db" },
          SECRET,
          "dev-token"
        )
      )
      // the environment (here a ConfigProvider) wins over each default
      const set = yield* RateSyncConfig.load(file).pipe(
        T.withConfigProvider(env({
          REDIS_URL: "rediss://cache.internal:6380/2",
          REDIS_PASSWORD: SECRET,
          NATS_URL: "nats://n1:4222,nats://n2:4222",
          NATS_TOKEN: "t0k3n",
          DATABASE_URL: "postgres://app@db.internal/app"
        }))
      )
      assert.deepStrictEqual(
        reveal(set),
        engines(
          { redis: "rediss://cache.internal:6380/2", nats: "nats://n1:4222,nats://n2:4222", postgres: "postgres://app@db.internal/app" },
          SECRET,
          "t0k3n"
        )
      )
      // ${REDIS_PASSWORD} has no default
      const unset = yield* Effect.flip(RateSyncConfig.load(file).pipe(T.withConfigProvider(env())))
      assert.deepStrictEqual(fields(unset), {
        path: "stores.redis.password",
        expected: "${REDIS_PASSWORD} to be set (or a default: ${REDIS_PASSWORD:-value})",
        received: "${REDIS_PASSWORD} is not set"
      })
    }))
})

describe("${VAR} and ${VAR:-default} in string values", () => {
  it.effect("an unset variable without a default is a ConfigError naming the path and the variable", () =>
    Effect.gen(function*() {
      const e = yield* parseError(`[stores.main]\nengine = "redis"\nurl = "\${REDIS_URL}"\n`)
      assert.deepStrictEqual(fields(e), {
        path: "stores.main.url",
        expected: "${REDIS_URL} to be set (or a default: ${REDIS_URL:-value})",
        received: "${REDIS_URL} is not set"
      })
      assert.strictEqual(
        e.message,
        "Invalid configuration at stores.main.url: expected ${REDIS_URL} to be set (or a default: ${REDIS_URL:-value}), received ${REDIS_URL} is not set"
      )
      // an empty variable counts as unset, as everywhere in this library
      const empty = yield* parseError(`[stores.main]\nengine = "redis"\nurl = "\${REDIS_URL}"\n`, { REDIS_URL: "" })
      assert.strictEqual(empty.received, "${REDIS_URL} is not set")
      // a malformed reference after a set variable is reported as malformed
      const malformed = yield* parseError(`[limiters.api]\nrate = "\${A}/\${"\n`, { A: "1" })
      assert.deepStrictEqual([malformed.path, malformed.received], [
        "limiters.api.rate",
        "a ${ with no closing } (write $${ for a literal ${)"
      ])
      // in an array: the item's path
      const item = yield* parseError(`[stores.r]\nengine = "redis"\ncluster_nodes = ["a:7000", "\${NODE_B}"]\n`)
      assert.strictEqual(item.path, "stores.r.cluster_nodes[1]")
      // in a limiter
      const limiter = yield* parseError(`[limiters.api]\nrate = "\${API_RATE}"\n`)
      assert.deepStrictEqual([limiter.path, limiter.received], ["limiters.api.rate", "${API_RATE} is not set"])
    }))

  it.effect("expands any string value of stores and limiters, in place, arrays included", () =>
    Effect.gen(function*() {
      const config = yield* parse(
        `[stores.main]
engine = "\${ENGINE:-redis}"
url = "redis://\${REDIS_HOST:-localhost}:\${REDIS_PORT}/0"
username = "\${USER_PREFIX:-svc}-api"
key_prefix = "\${APP}:rl"
cluster_nodes = ["\${NODE_A}", "10.0.0.2:7000"]

[limiters.api]
store = "\${STORE:-main}"
rate = "\${API_RATE:-100/min}"
`,
        { REDIS_PORT: "6380", APP: "shop", NODE_A: "10.0.0.1:7000" }
      )
      assert.deepStrictEqual(reveal(config), {
        stores: {
          main: {
            engine: "redis",
            url: { redacted: "redis://localhost:6380/0" },
            username: "svc-api",
            keyPrefix: "shop:rl",
            clusterNodes: ["10.0.0.1:7000", "10.0.0.2:7000"]
          }
        },
        limiters: { api: { store: "main", rate: "100/min" } }
      })
    }))

  it.effect("a number, boolean or duration field may be a string with ${...}: its expansion is read by the variables' rules", () =>
    Effect.gen(function*() {
      const text = `[stores.m]
engine = "memory"
max_keys = "\${MAX_KEYS:-1_000}"
sweep_interval = "\${SWEEP:-500 millis}"

[limiters.api]
rate_per_second = "\${API_RATE:-100}"
timeout = "\${API_TIMEOUT:-2.5}"
fail_closed = "\${FAIL_CLOSED:-yes}"
`
      const defaults = yield* parse(text)
      assert.deepStrictEqual(reveal(defaults), {
        stores: { m: { engine: "memory", maxKeys: 1000, sweepInterval: { millis: 500 } } },
        limiters: { api: { ratePerSecond: 100, timeout: { millis: 2500 }, failClosed: true } }
      })
      const set = yield* parse(text, { API_RATE: "12.5", FAIL_CLOSED: "false", API_TIMEOUT: "0" })
      assert.deepStrictEqual(reveal(set.limiters), { api: { ratePerSecond: 12.5, timeout: { millis: 0 }, failClosed: false } })
      // what it expands to is checked like a variable's value, and the error says where it came from
      const bad = yield* parseError(text, { API_RATE: "fast" })
      assert.deepStrictEqual(fields(bad), {
        path: "limiters.api.rate_per_second",
        expected: "a number",
        received: `"fast" (from \${API_RATE})`
      })
      const zero = yield* parseError(text, { API_RATE: "0" })
      assert.deepStrictEqual([zero.path, zero.received], ["limiters.api.rate_per_second", "0 (from ${API_RATE})"])
      const keys = yield* parseError(text, { MAX_KEYS: "-1" })
      assert.deepStrictEqual([keys.path, keys.received], ["stores.m.max_keys", "-1 (from ${MAX_KEYS})"])
      // a plain string is still not a number
      const plain = yield* parseError(`[limiters.api]\nrate_per_second = "100"\n`)
      assert.deepStrictEqual(fields(plain), { path: "limiters.api.rate_per_second", expected: "a number", received: `"100"` })
    }))

  it.effect("$${ is a literal ${; no other $ is special", () =>
    Effect.gen(function*() {
      const config = yield* parse(
        `[stores.main]\nengine = "redis"\nusername = "a$\${b}"\npassword = "p$$w\${X:-}$d"\n`,
        { b: "never-read" }
      )
      // (the TOML above is username = "a$${b}", password = "p$$w${X:-}$d")
      const main = config.stores.main
      assert.isTrue(main?.engine === "redis")
      if (main?.engine === "redis") {
        assert.strictEqual(main.username, "a${b}")
        assert.strictEqual(main.password === undefined ? undefined : Redacted.value(main.password), "p$$w$d")
      }
    }))

  it.effect("secrets stay Redacted after expansion and never appear in an error", () =>
    Effect.gen(function*() {
      const config = yield* parse(`[stores.main]\nengine = "redis"\nurl = "\${REDIS_URL}"\npassword = "\${REDIS_PASSWORD}"\n`, {
        REDIS_URL: `redis://:${SECRET}@cache:6379/0`,
        REDIS_PASSWORD: SECRET
      })
      const main = config.stores.main
      assert.isTrue(main?.engine === "redis" && Redacted.isRedacted(main.url) && Redacted.isRedacted(main.password))
      assert.notInclude(JSON.stringify(config), SECRET)
      assert.notInclude(String(main?.engine === "redis" ? main.password : ""), SECRET)

      const scheme = yield* parseError(`[stores.main]\nengine = "redis"\nurl = "\${REDIS_URL}"\n`, {
        REDIS_URL: `http://:${SECRET}@cache:6379`
      })
      assert.deepStrictEqual(fields(scheme), {
        path: "stores.main.url",
        expected: "a redis:// or rediss:// URL",
        received: `<redacted> (scheme "http:") (from \${REDIS_URL})`
      })
      // a bad % escape in an expanded URL: shown with its secrets as ***
      const escape = yield* parseError(`[stores.main]\nengine = "redis"\nurl = "redis://:\${PW}@cache"\n`, { PW: `${SECRET}%zz` })
      assert.notInclude(escape.message, SECRET)
      assert.include(escape.received, "(from ${PW})")
      // a malformed reference in a secret never quotes the text
      for (const text of [`${SECRET}\${`, `${SECRET}\${1}`]) {
        const e = yield* parseError(`[stores.main]\nengine = "redis"\npassword = "${text}"\n`)
        assert.strictEqual(e.path, "stores.main.password")
        assert.strictEqual(e.expected, "a string whose ${...} are ${NAME} or ${NAME:-default}")
        assert.notInclude(e.message, SECRET)
      }
    }))

  it.effect("a RATE_SYNC_... override wins over the file's value, which is then not expanded", () =>
    Effect.gen(function*() {
      const config = yield* parse(`[stores.main]\nengine = "redis"\nurl = "\${REDIS_URL}"\n`, {
        RATE_SYNC_STORES_MAIN_URL: "redis://override:6379"
      })
      assert.deepStrictEqual(reveal(config.stores), { main: { engine: "redis", url: { redacted: "redis://override:6379" } } })
      // a variable's own value is never expanded
      const literal = yield* parse(`[stores.main]\nengine = "redis"\n`, { RATE_SYNC_STORES_MAIN_USERNAME: "${NOT_EXPANDED}" })
      assert.deepStrictEqual(reveal(literal.stores), { main: { engine: "redis", username: "${NOT_EXPANDED}" } })
    }))
})

describe("RateSyncConfig.load: the default files", () => {
  it.scoped("./config/rate-sync.toml is read when ./rate-sync.toml is absent; ./rate-sync.toml wins", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* inDirectory(dir)
      assert.deepStrictEqual(RateSyncConfig.DEFAULT_PATHS, ["rate-sync.toml", "config/rate-sync.toml"])
      assert.deepStrictEqual(yield* RateSyncConfig.load().pipe(T.withConfigProvider(env())), RateSyncConfig.empty)
      const text = yield* Effect.promise(() => readFile(fixture("rate-sync-readme.toml"), "utf8"))
      yield* Effect.promise(() => mkdir(join(dir, "config")))
      yield* Effect.promise(() => writeFile(join(dir, "config", "rate-sync.toml"), text))
      assert.deepStrictEqual(reveal(yield* RateSyncConfig.load().pipe(T.withConfigProvider(env()))), readme)
      // errors name the file read
      yield* Effect.promise(() => writeFile(join(dir, "config", "rate-sync.toml"), "[["))
      const bad = yield* Effect.flip(RateSyncConfig.load().pipe(T.withConfigProvider(env())))
      assert.strictEqual(bad.path, "config/rate-sync.toml")
      // ./rate-sync.toml is searched first
      yield* Effect.promise(() => writeFile(join(dir, "rate-sync.toml"), `[limiters.db]\nmax_concurrent = 3\n`))
      assert.deepStrictEqual(
        yield* RateSyncConfig.load().pipe(T.withConfigProvider(env())),
        { stores: {}, limiters: { db: { maxConcurrent: 3 } } }
      )
    }))

  it.scoped("RATE_SYNC_CONFIG or a path disables the search", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* inDirectory(dir)
      yield* Effect.promise(() => mkdir(join(dir, "config")))
      yield* Effect.promise(() => writeFile(join(dir, "config", "rate-sync.toml"), `[limiters.db]\nmax_concurrent = 3\n`))
      const viaEnv = yield* Effect.flip(RateSyncConfig.load().pipe(T.withConfigProvider(env({ RATE_SYNC_CONFIG: "other.toml" }))))
      assert.deepStrictEqual([viaEnv.path, viaEnv.received], ["other.toml", "no such file"])
      const viaPath = yield* Effect.flip(RateSyncConfig.load("rate-sync.toml").pipe(T.withConfigProvider(env())))
      assert.deepStrictEqual([viaPath.path, viaPath.received], ["rate-sync.toml", "no such file"])
    }))
})
