/**
 * rate-sync.toml naming each engine, end to end: the registry builds the store from the file (the
 * driver is loaded only then) and a limiter on it decides against the real server.
 */
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { assert, it } from "#test/vitest"
import { Effect, Redacted } from "effect"
import { RateLimiter, RateSync, RateSyncConfig } from "effect-rate-sync"
import { describeWhenUp, requireService } from "../utils/services.js"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const redisUp = await requireService("Redis", "127.0.0.1", 6379)
const natsUp = await requireService("NATS", "127.0.0.1", 4222)
const postgresUp = await requireService("PostgreSQL", "127.0.0.1", 5432)

const roundTrip = (toml: string, engine: string) =>
  Effect.gen(function*() {
    const config = yield* RateSyncConfig.parse(toml)
    const id = `engine-${crypto.randomUUID()}`
    yield* Effect.gen(function*() {
      yield* RateLimiter.configureLimiter(id, { store: "main", ratePerSecond: 1, burst: 2 })
      yield* RateLimiter.initializeAll
      const stores = yield* RateLimiter.listStores
      assert.deepStrictEqual(stores.map((s) => [s.id, s.engine]), [["main", engine]])
      const decisions = [yield* RateLimiter.check(id), yield* RateLimiter.check(id), yield* RateLimiter.check(id)]
      assert.deepStrictEqual(decisions.map((d) => [d.allowed, d.remaining, d.failedOpen]), [
        [true, 1, false],
        [true, 0, false],
        [false, 0, false]
      ])
      assert.isTrue(decisions[2] !== undefined && decisions[2].retryAfterMs > 0)
      yield* RateLimiter.reset(id)
      assert.isTrue((yield* RateLimiter.check(id)).allowed)
    }).pipe(Effect.provide(RateSync.layerFromConfig(config)))
  })

describeWhenUp(redisUp)("rate-sync.toml with engine = \"redis\"", () => {
  it.live("builds the Redis store from the file and decides on the server", () =>
    roundTrip(
      `[stores.main]\nengine = "redis"\nurl = "redis://127.0.0.1:6379/0"\nkey_prefix = "toml-${crypto.randomUUID()}"\ncommand_timeout = 2.0\n`,
      "redis"
    ))
})

/** Deletes a KV bucket the test created. */
const destroyBucket = (bucket: string) =>
  Effect.acquireUseRelease(
    Effect.promise(() => connect({ servers: "nats://127.0.0.1:4222" })),
    (nc) => Effect.promise(() => new Kvm(nc).open(bucket).then((kv) => kv.destroy())),
    (nc) => Effect.promise(() => nc.close())
  )

describeWhenUp(natsUp)("rate-sync.toml with engine = \"nats\"", () => {
  it.live("builds the NATS store from the file and decides on the server", () => {
    const bucket = `toml_${crypto.randomUUID().replaceAll("-", "")}`
    return roundTrip(
      `[stores.main]\nengine = "nats"\nurl = "nats://127.0.0.1:4222"\nbucket_name = "${bucket}"\nauto_create = true\n`,
      "nats"
    ).pipe(Effect.ensuring(destroyBucket(bucket)))
  })
})

const PG_URL = "postgres://postgres@127.0.0.1:5432/test"

/** Drops a schema the test created, with the store's table and functions in it. */
const dropSchema = (schema: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).pipe(
    Effect.provide(Sql.pgLayer({ url: Redacted.make(PG_URL) })),
    Effect.orDie
  )

describeWhenUp(postgresUp)("rate-sync.toml with engine = \"postgres\"", () => {
  it.live("builds the PostgreSQL store from the file (creating its table) and decides on the server", () => {
    const schema = `toml_${crypto.randomUUID().replaceAll("-", "")}`
    return Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`CREATE SCHEMA "${schema}"`)
    }).pipe(
      Effect.provide(Sql.pgLayer({ url: Redacted.make(PG_URL) })),
      Effect.orDie,
      Effect.andThen(roundTrip(
        `[stores.main]\nengine = "postgres"\nurl = "${PG_URL}"\nschema_name = "${schema}"\nauto_create = true\n`,
        "postgres"
      )),
      Effect.ensuring(dropSchema(schema))
    )
  })
})
