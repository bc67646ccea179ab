/**
 * The PostgreSQL store, on the `SqlClient` of `@effect/sql-pg` (Effect 3: `@effect/sql` 0.52 with
 * `@effect/sql-pg` 0.53, on `pg`; Effect 4: `effect/sql` with `@effect/sql-pg` 4, which speaks the
 * protocol itself; see docs/engines/postgres.md, "On Effect 4"): every SPI operation is one
 * statement, `SELECT * FROM <schema>.<table>_<op>(...)`, calling a PL/pgSQL function that
 * `initialize` installs (with `autoCreate`). The function locks the `(limiter, key)` row
 * (`SELECT … FOR UPDATE`, so concurrent callers of one key serialize), reads the server's clock
 * (`clock_timestamp()`), decides, and writes only what it admitted.
 *
 * State lives in one table (default `public.rate_limiter_state`), one row per
 * `(limiter, key, kind)` with its own `expires_at`; expired rows are ignored by the math and
 * deleted by a cleanup fiber (`DELETE … LIMIT`, `SKIP LOCKED`) forked in the store's scope.
 * Limiter ids and keys are stored as `text` (compared byte for byte), so distinct pairs never
 * share state; `reset(limiter)` is an index range delete.
 *
 * Several limits in one call (`takeAll`) are one call of `<table>_take_all`: it locks the rows of
 * the call in one fixed order (no deadlock between calls), judges every take at one instant, and
 * charges all or none (a refused call leaves the table as it found it). `adjust` is one call of
 * the algorithm's adjust function.
 *
 * Hot keys are coalesced: token-bucket and fixed-window takes of this process on a key that has a
 * statement in flight wait for it, then go as one call of `<table>_tb_take_many` /
 * `<table>_fw_take_many`, decided in arrival order on one row lock, each caller its own decision
 * (`internal/postgres/coalesce.ts`). Single takes of different keys (token bucket, fixed and
 * sliding window) that wait for a statement slot together go as one call of `<table>_tb_take_keys`
 * / `_fw_take_keys` / `_sw_take_keys`, and so do slot acquires and releases (`_cc_acq_keys`,
 * `_cc_rel_keys`), each decided as its own statement would decide it, the rows locked in
 * `(limiter, key)` order (`internal/postgres/gate.ts`). See docs/engines/postgres.md.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Fx from "#fx/core"
import type { ConfigWrap } from "#fx/driver"
import * as Sql from "#fx/sql"
import { describe } from "./core/postgres/errors.js"
import { namesOf } from "./core/postgres/names.js"
import * as pgSql from "./core/postgres/sql.js"
import * as Call from "./internal/postgres/call.js"
import * as Coalesce from "./internal/postgres/coalesce.js"
import * as Driver from "./internal/postgres/driver.js"
import * as Ops from "./internal/postgres/ops.js"
import * as Schema from "./internal/postgres/schema.js"
import { sanitizeWith, secretsOf, urlConfigError } from "./internal/postgres/secrets.js"
import { postgresFields } from "./core/config/fields.js"
import { fieldsConfig } from "./internal/config/envConfig.js"
import { storeLayers } from "./internal/store/layers.js"
import { blockCacheOption } from "./internal/store/options.js"
import * as RateLimitError from "./RateLimitError.js"
import type { RateLimitStoreService } from "./RateLimitStore.js"
import { make as makeStore, RateLimitStore, StoreError } from "./RateLimitStore.js"
import type { PostgresStoreDefinition } from "./StoreDefinition.js"

/**
 * Options of the PostgreSQL store (rate-sync's PostgreSQL engine options, camelCased). The
 * connection itself comes from the `SqlClient` in context (see {@link layerWithPgClient} and
 * {@link fromDefinition} to build one).
 *
 * @since 0.1.0
 * @category models
 */
export interface PostgresStoreOptions {
  /** Table of the state. Default `"rate_limiter_state"`. `[A-Za-z_][A-Za-z0-9_]*`, at most 48 characters; quoted (case-sensitive). */
  readonly tableName?: string | undefined
  /** Schema of the table and functions. Default `"public"`. `[A-Za-z_][A-Za-z0-9_]*`; quoted. */
  readonly schemaName?: string | undefined
  /**
   * Create the table (and the schema when not `public`) and install the functions at start-up.
   * Default `true`. With `false`, start-up checks they exist and fails otherwise; apply
   * {@link ddl} with a privileged role beforehand.
   */
  readonly autoCreate?: boolean | undefined
  /**
   * Create the table `UNLOGGED` (no WAL: several times faster writes, but the state is emptied
   * after a crash and not replicated). Only applies when the table is created. Default `false`.
   */
  readonly unlogged?: boolean | undefined
  /**
   * Added to every non-zero `delayMs` / `retryAfterMs` the store answers, to absorb the network
   * time between the server's decision and the caller's wake-up. Default 0.
   */
  readonly timingMarginMs?: number | undefined
  /**
   * Wait for the WAL flush when a decision commits (PostgreSQL's `synchronous_commit`). Default
   * `false`: the writing statements turn it off for their own transaction, which halves the latency
   * of a take; a server crash may lose the last few hundred milliseconds of decisions (as Redis
   * does by default), never consistency. `true` keeps the server's setting.
   */
  readonly synchronousCommit?: boolean | undefined
  /** Every call settles (answers or fails with `StoreError`) within this. Default 2 seconds. */
  readonly statementTimeout?: Fx.DurationInput | undefined
  /**
   * Most statements of the store in flight at once; the other calls wait in the store's own
   * queue, which a caller that times out leaves without a trace in the pg pool. Token bucket and
   * window takes, slot acquires and slot releases of different keys that wait together are decided
   * by one statement (one per kind), so a few slots carry a heavy load. Default 2, or the
   * `maxConnections` of the `PgClient` in context when smaller.
   */
  readonly maxConcurrentStatements?: number | undefined
  /**
   * Most calls waiting for a statement slot. Past it, and whenever the calls already waiting
   * could not all be answered within `statementTimeout` at the recent pace, a call fails at once
   * with `StoreError` (`overloaded`) instead of queueing. Default 10 000.
   */
  readonly maxQueuedStatements?: number | undefined
  /** Bound on `initialize` (DDL may wait for locks). Default 15 seconds. */
  readonly initializeTimeout?: Fx.DurationInput | undefined
  /** How often expired rows are deleted. Default 60 seconds. */
  readonly cleanupInterval?: Fx.DurationInput | undefined
  /** Most rows one cleanup statement deletes (a cleanup runs up to 10 of them). Default 1000. */
  readonly cleanupBatchSize?: number | undefined
  /**
   * The local block cache of the limiters on this store (`RateLimiter`'s `blockCache`): `false`
   * asks the store on every call, as `blockCache: { stores: { <id>: false } }` does, wherever the
   * store is handed to (`RateLimiter.layer`, `stores`). Default `true`.
   */
  readonly blockCache?: boolean | undefined
}

/**
 * The SQL reference of the store (schema, table, functions), as `autoCreate` applies it: for a
 * DBA to run when the application's role may not create objects (`autoCreate: false`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const ddl = (options: PostgresStoreOptions = {}): Effect.Effect<string, StoreError> => Schema.ddl(options)

// ---------------------------------------------------------------------------------------------
// make

/**
 * Builds the store on the `SqlClient` in context (a pg client): validates the names, runs
 * `initialize` (creates the table and installs the functions with `autoCreate`, else checks
 * they exist), and forks the cleanup of expired rows in the scope. Fails with `StoreError`; the
 * message never holds a URL with credentials or a password.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PostgresStoreOptions = {}
): Effect.Effect<RateLimitStoreService, StoreError, Sql.SqlClient.SqlClient | Scope.Scope> =>
  makeWith(options, [])

/**
 * {@link make}, the driver's messages scrubbed of `secrets` (those of the connection, when the
 * store opened it): the gate and the deadlines' sweeper (`internal/postgres/call.ts`), the
 * operations (`ops.ts`) on one `Driver`, `initialize` run once, the cleanup forked (`schema.ts`).
 */
const makeWith = Effect.fnUntraced(function*(options: PostgresStoreOptions, secrets: ReadonlyArray<string>) {
  const failures = Driver.failures(sanitizeWith(secrets))
  const names = namesOf(options)
  if (typeof names === "string") return yield* Effect.fail(failures.fail("configure", names))
  const blockCache = blockCacheOption(options.blockCache)
  if (blockCache instanceof RateLimitError.ConfigError) {
    return yield* Effect.fail(failures.fail("configure", blockCache.message))
  }
  const sql = (yield* Sql.SqlClient.SqlClient).withoutTransforms()
  const settings = Driver.settingsOf(options, yield* Driver.poolSize)
  const driver: Driver.Driver = {
    sql,
    names,
    specs: pgSql.specs(names),
    settings,
    failures,
    call: yield* Call.make(sql, settings, failures),
    coalescer: yield* Coalesce.make(settings.timeoutMs, failures)
  }
  const initialize = Schema.initialize(driver)
  yield* initialize
  yield* Schema.forkCleanup(driver)
  return makeStore({ engine: Driver.ENGINE, ...blockCache, ...Ops.make(driver), initialize })
})

/**
 * Deletes the expired rows of the store's table now (the store also does it every
 * `cleanupInterval`); answers how many rows went.
 *
 * @since 0.1.0
 * @category constructors
 */
export const deleteExpired = (
  options: PostgresStoreOptions = {}
): Effect.Effect<number, StoreError, Sql.SqlClient.SqlClient> => Schema.deleteExpired(options)

// ---------------------------------------------------------------------------------------------
// layers and config

/**
 * The pool's layer (`#fx/sql` `pgLayer`: `PgClient.layer`, checked with one statement at build),
 * its `SqlError` turned into a sanitized `StoreError`; a `url` that does not parse (or has a bad
 * `%` escape) is a `ConfigError` before anything is opened.
 */
const pgClientLayer = (
  pgConfig: Sql.PgPoolConfig
): Layer.Layer<Sql.PgClient.PgClient | Sql.SqlClient.SqlClient, StoreError | RateLimitError.ConfigError> => {
  const badUrl = urlConfigError(pgConfig.url)
  // a layer of the pool's services that fails (spelled alike on both majors; Fx.layerFail has no services)
  if (badUrl !== undefined) return Layer.effectContext(Effect.fail(badUrl))
  const sanitize = sanitizeWith(secretsOf(pgConfig.url, pgConfig.password))
  return Fx.layerMapError(
    Sql.pgLayer(pgConfig),
    (e) => new StoreError({ engine: Driver.ENGINE, operation: "connect", message: sanitize(describe(e)) })
  )
}

/**
 * The store with its own pg pool (`PgClient.layer(pgConfig)`; `pgConfig` is `PgClient.PgClientConfig`
 * on Effect 3, `PgClient.PgPoolConfig` on Effect 4), closed with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithPgClient = (
  pgConfig: Sql.PgPoolConfig,
  options: PostgresStoreOptions = {}
): Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError> =>
  Fx.layerScoped(
    RateLimitStore,
    makeWith(options, secretsOf(pgConfig.url, pgConfig.password))
  ).pipe(Layer.provide(pgClientLayer(pgConfig)))

/**
 * Builds the store a `PostgresStoreDefinition` (TOML `engine = "postgres"`, `configureStore`)
 * describes, with its own pg pool (`url`, `poolMinSize`, `poolMaxSize`) closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDefinition = (
  definition: PostgresStoreDefinition
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const pgConfig: Sql.PgPoolConfig = {
      ...(definition.url !== undefined ? { url: definition.url } : {}),
      ...(definition.poolMinSize !== undefined ? { minConnections: definition.poolMinSize } : {}),
      ...(definition.poolMaxSize !== undefined ? { maxConnections: definition.poolMaxSize } : {}),
      applicationName: "effect-rate-sync"
    }
    const context = yield* Layer.build(pgClientLayer(pgConfig))
    return yield* makeWith(optionsFromDefinition(definition), secretsOf(definition.url, undefined)).pipe(
      Effect.provide(context)
    )
  })

/**
 * The store options of a definition (the connection fields are for the pool).
 *
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromDefinition = (definition: PostgresStoreDefinition): PostgresStoreOptions => {
  const { engine: _, url: _url, poolMinSize: _min, poolMaxSize: _max, ...options } = definition
  return options
}

/**
 * The definition read from configuration, one variable per field of the PostgreSQL field table
 * (`core/config/fields.ts`), under `RATE_SYNC_POSTGRES_` in the environment: `URL`, `TABLE_NAME`,
 * `SCHEMA_NAME`, `AUTO_CREATE`, `UNLOGGED`, `POOL_MIN_SIZE`, `POOL_MAX_SIZE`, `TIMING_MARGIN_MS`,
 * `SYNCHRONOUS_COMMIT`, `STATEMENT_TIMEOUT`, `MAX_CONCURRENT_STATEMENTS`, `MAX_QUEUED_STATEMENTS`,
 * `INITIALIZE_TIMEOUT`, `CLEANUP_INTERVAL`, `CLEANUP_BATCH_SIZE`, `BLOCK_CACHE` (durations: seconds or a duration
 * string). A bad table or schema name fails here.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<PostgresStoreDefinition> = fieldsConfig("postgres", postgresFields).pipe(
  Fx.configValidate((fields) => {
    const definition: PostgresStoreDefinition = { engine: "postgres", ...fields }
    const n = namesOf(optionsFromDefinition(definition))
    return typeof n === "string" ? Fx.err(n) : Fx.ok(definition)
  })
)

const layers = storeLayers(make, config, fromDefinition)

/**
 * The store on the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: (options?: PostgresStoreOptions) => Layer.Layer<RateLimitStore, StoreError, Sql.SqlClient.SqlClient> =
  layers.layer

/**
 * The store on the `SqlClient` in context, its options read from configuration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: (
  options: ConfigWrap<PostgresStoreOptions>
) => Layer.Layer<RateLimitStore, StoreError | Fx.EffectConfigError, Sql.SqlClient.SqlClient> = layers.layerConfig

/**
 * The store with its own pool, configured from the environment (`RATE_SYNC_POSTGRES_URL`, ...;
 * see {@link config}): `Effect.provide(PostgresStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const PostgresStoreLive: Layer.Layer<
  RateLimitStore,
  StoreError | RateLimitError.ConfigError | Fx.EffectConfigError
> = layers.live
