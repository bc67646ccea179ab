/**
 * One field table per engine (src/core/config/fields.ts): the docs list exactly its fields, and
 * everything derived from it (the `[stores.<id>]` decoder, definitions written in code, each
 * driver's environment `Config`) reaches every field, including those that had drifted out of
 * some of them (Redis `username`, NATS `servers` / `maxAge` / `timeout` / `connectTimeout` /
 * `purgeInterval`, memory `maxBytes`, the PostgreSQL store options; `RedisStore.config`'s
 * `MAX_BATCH_SIZE`).
 */
import { readFileSync } from "node:fs"
import { assert, describe, it } from "#test/vitest"
import { Duration, Effect, Redacted } from "effect"
import { MemoryStore, RateSyncConfig } from "effect-rate-sync"
import { NatsStore } from "effect-rate-sync/nats"
import { PostgresStore } from "effect-rate-sync/postgres"
import { RedisStore } from "effect-rate-sync/redis"
import { type Engine, engines, storeFieldTables } from "../../src/core/config/fields.js"
import * as T from "#test/effect"

const docs = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8")

/** The rows of the options table under the heading for `engine`: [TOML name, TypeScript name]. */
const docRows = (engine: Engine): ReadonlyArray<readonly [string, string]> => {
  const heading = docs.indexOf(`### \`engine = "${engine}"\``)
  assert.isAtLeast(heading, 0, `docs/configuration.md has no section for ${engine}`)
  const lines = docs.slice(heading).split("\n").slice(1)
  const start = lines.findIndex((l) => l.startsWith("|"))
  const table = lines.slice(start).filter((_, i, all) => all.slice(0, i + 1).every((l) => l.startsWith("|")))
  return table.slice(2).map((line) => {
    const cells = line.split("|").map((c) => c.trim())
    const toml = /^`([a-z_]+)`/.exec(cells[1] ?? "")?.[1] ?? `? ${cells[1]}`
    const ts = /^`([A-Za-z]+)/.exec(cells[4] ?? "")?.[1] ?? `? ${cells[4]}`
    return [toml, ts] as const
  })
}

const env = (vars: Record<string, string>) => T.configProvider(vars, { pathDelim: "_" })

describe("field tables", () => {
  it("docs/configuration.md lists exactly each engine's fields, in the table's order, with their TypeScript names", () => {
    for (const engine of engines) {
      const fields = storeFieldTables[engine].map((f) => [f.toml, f.name] as const)
      assert.deepStrictEqual(docRows(engine), fields, engine)
    }
  })

  it("RateSyncConfig.storeFields is the tables' TOML names, engine first", () => {
    for (const engine of engines) {
      assert.deepStrictEqual(RateSyncConfig.storeFields[engine], ["engine", ...storeFieldTables[engine].map((f) => f.toml)])
    }
  })

  it.effect("the fields that had drifted decode from TOML (and their overrides)", () =>
    Effect.gen(function*() {
      const config = yield* RateSyncConfig.parse(
        `
[stores.m]
engine = "memory"
max_bytes = 1000000

[stores.r]
engine = "redis"
username = "app"

[stores.n]
engine = "nats"
servers = ["nats://a:4222", "b:4222"]
max_age = 3600
timeout = 1.5
connect_timeout = 2
purge_interval = inf

[stores.p]
engine = "postgres"
unlogged = true
synchronous_commit = true
statement_timeout = 3
max_concurrent_statements = 4
max_queued_statements = 0
initialize_timeout = 20
cleanup_interval = 30
cleanup_batch_size = 500
`,
        "test.toml"
      ).pipe(T.withConfigProvider(env({ RATE_SYNC_STORES_N_TIMEOUT: "250 millis" })))
      const { m, n, p, r } = config.stores
      assert.deepStrictEqual(m, { engine: "memory", maxBytes: 1_000_000 })
      assert.deepStrictEqual(r, { engine: "redis", username: "app" })
      assert.isTrue(n !== undefined && n.engine === "nats")
      if (n !== undefined && n.engine === "nats") {
        assert.deepStrictEqual(n.servers?.map(Redacted.value), ["nats://a:4222", "b:4222"])
        assert.isTrue(n.servers?.every(Redacted.isRedacted))
        assert.deepStrictEqual(n.maxAge, Duration.hours(1))
        assert.deepStrictEqual(n.timeout, Duration.millis(250), "the variable wins, as a duration string")
        assert.deepStrictEqual(n.connectTimeout, Duration.seconds(2))
        assert.deepStrictEqual(n.purgeInterval, Duration.infinity)
      }
      assert.deepStrictEqual(p, {
        engine: "postgres",
        unlogged: true,
        synchronousCommit: true,
        statementTimeout: Duration.seconds(3),
        maxConcurrentStatements: 4,
        maxQueuedStatements: 0,
        initializeTimeout: Duration.seconds(20),
        cleanupInterval: Duration.seconds(30),
        cleanupBatchSize: 500
      })
    }))

  it.effect("the new fields are validated like the others, in the file and in code", () =>
    Effect.gen(function*() {
      const bad = (text: string) => Effect.flip(RateSyncConfig.parse(text, "test.toml").pipe(T.withConfigProvider(env({}))))
      const fields = (e: { path: string; expected: string; received: string }) => [e.path, e.expected, e.received]
      assert.deepStrictEqual(fields(yield* bad(`[stores.m]\nengine = "memory"\nmax_bytes = 0\n`)), [
        "stores.m.max_bytes",
        "a whole number greater than 0",
        "0"
      ])
      assert.deepStrictEqual(fields(yield* bad(`[stores.n]\nengine = "nats"\nservers = ["nats://a:4222", "http://:x%zz@b"]\n`)), [
        "stores.n.servers[1]",
        "a NATS server URL (nats://[user:pass@ | token@]host:port, or host:port)",
        "http://:***@b/ (a bad % escape in the password)"
      ])
      assert.deepStrictEqual(fields(yield* bad(`[stores.n]\nengine = "nats"\ntimeout = inf\n`)), [
        "stores.n.timeout",
        "a finite number greater than 0",
        "Infinity"
      ])
      const code = (definition: unknown) => {
        const result = RateSyncConfig.decodeStoreDefinition("s", definition)
        return T.isErr(result) ? fields(T.errOf(result)) : undefined
      }
      assert.deepStrictEqual(code({ engine: "nats", servers: ["nats://a:4222"] }), [
        "stores.s.servers[0]",
        "a Redacted value (Redacted.make(...)) holding a NATS server URL (nats://[user:pass@ | token@]host:port, or host:port)",
        "<redacted> (not Redacted)"
      ])
      assert.deepStrictEqual(code({ engine: "redis", username: "" }), ["stores.s.username", "a non-empty string", `""`])
      assert.deepStrictEqual(code({ engine: "postgres", statementTimeout: -1 }), [
        "stores.s.statementTimeout",
        "a finite duration greater than 0",
        "-1"
      ])
      const good = T.getOk(RateSyncConfig.decodeStoreDefinition("s", {
        engine: "nats",
        servers: [Redacted.make("nats://a:4222")],
        purgeInterval: Duration.infinity,
        maxAge: "2 hours"
      }))
      assert.strictEqual(good.engine, "nats")
      if (good.engine === "nats") {
        assert.deepStrictEqual(good.purgeInterval, Duration.infinity)
        assert.deepStrictEqual(good.maxAge, Duration.hours(2))
      }
    }))

  it.effect("each driver's config reads one variable per field of its table", () =>
    Effect.gen(function*() {
      const redis = yield* T.withConfigProvider(
        RedisStore.config,
        env({ RATE_SYNC_REDIS_MAX_BATCH_SIZE: "4", RATE_SYNC_REDIS_USERNAME: "app", RATE_SYNC_REDIS_COMMAND_TIMEOUT: "0.5" })
      )
      assert.deepStrictEqual(redis, { username: "app", commandTimeout: Duration.millis(500), maxBatchSize: 4 })
      const nats = yield* T.withConfigProvider(
        NatsStore.config,
        env({ RATE_SYNC_NATS_SERVERS: "nats://a:4222, b:4222", RATE_SYNC_NATS_PURGE_INTERVAL: "inf" })
      )
      assert.deepStrictEqual(nats.servers?.map(Redacted.value), ["nats://a:4222", "b:4222"])
      assert.deepStrictEqual(nats.purgeInterval, Duration.infinity)
      const memory = yield* T.withConfigProvider(
        MemoryStore.config,
        env({ RATE_SYNC_MEMORY_MAX_BYTES: "2048", RATE_SYNC_MEMORY_SWEEP_INTERVAL: "2 seconds" })
      )
      assert.deepStrictEqual(memory, { maxBytes: 2048, sweepInterval: Duration.seconds(2) })
      const postgres = yield* T.withConfigProvider(
        PostgresStore.config,
        env({ RATE_SYNC_POSTGRES_STATEMENT_TIMEOUT: "3", RATE_SYNC_POSTGRES_UNLOGGED: "true" })
      )
      assert.deepStrictEqual(postgres, { engine: "postgres", unlogged: true, statementTimeout: Duration.seconds(3) })
      const bad = yield* Effect.flip(
        T.withConfigProvider(RedisStore.config, env({ RATE_SYNC_REDIS_SOCKET_TIMEOUT: "-1" }))
      )
      assert.include(String(bad), "SOCKET_TIMEOUT")
    }))

  it.effect("MemoryStoreLive builds the store from RATE_SYNC_MEMORY_*", () =>
    Effect.gen(function*() {
      const bytes = yield* Effect.flatMap(
        Effect.flatMap(MemoryStore.fromDefinition({ engine: "memory", maxBytes: 4096 }), (s) => s.bytes),
        (n) => Effect.succeed(n)
      ).pipe(Effect.scoped)
      assert.strictEqual(bytes, 0)
      const layer = yield* Effect.exit(
        Effect.scoped(Effect.asVoid(Effect.provide(Effect.void, MemoryStore.MemoryStoreLive))).pipe(
          T.withConfigProvider(env({ RATE_SYNC_MEMORY_MAX_KEYS: "many" }))
        )
      )
      assert.strictEqual(layer._tag, "Failure")
    }))
})
