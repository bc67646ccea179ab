/**
 * Store definitions: what `configureStore` and the `[stores.*]` tables of `rate-sync.toml` name.
 * Each engine's options mirror rate-sync's engine configs, camelCased; secrets are `Redacted`.
 * A definition has exactly the fields of its engine's field table (`core/config/fields.ts`): every
 * option of the driver (PostgreSQL adds its pool's `url`, `poolMinSize`, `poolMaxSize`), checked
 * at compile time; see each driver's options for what a field does. Durations are
 * `Fx.DurationInput`s: `Duration.DurationInput` on Effect 3, `Duration.Input` on Effect 4.
 *
 * @since 0.1.0
 */
import type * as Redacted from "effect/Redacted"
import type * as Fx from "#fx/core"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryStoreDefinition {
  readonly engine: "memory"
  /** Most (limiter, key) states kept at once. Default 100 000. */
  readonly maxKeys?: number | undefined
  /** Most bytes of state kept at once. Default 64 MiB (see `MemoryStoreOptions.maxBytes`). */
  readonly maxBytes?: number | undefined
  /** How often expired state is swept. Default 10 seconds. */
  readonly sweepInterval?: Fx.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreDefinition {
  readonly engine: "redis"
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). Default `redis://127.0.0.1:6379`. */
  readonly url?: Redacted.Redacted | undefined
  readonly db?: number | undefined
  readonly password?: Redacted.Redacted | undefined
  /** ACL user name; overrides the one in `url`. */
  readonly username?: string | undefined
  /** Prefix of every key. Default `"rate_limit"`. */
  readonly keyPrefix?: string | undefined
  readonly poolMinSize?: number | undefined
  readonly poolMaxSize?: number | undefined
  readonly timingMarginMs?: number | undefined
  /** Seconds (TOML) or a duration: socket inactivity timeout. */
  readonly socketTimeout?: Fx.DurationInput | undefined
  /** Seconds (TOML) or a duration: connect timeout. */
  readonly socketConnectTimeout?: Fx.DurationInput | undefined
  /** Per-command timeout: every call settles within it. */
  readonly commandTimeout?: Fx.DurationInput | undefined
  /** Redis Cluster: seed nodes (`host:port`); when set, a cluster client is used. */
  readonly clusterNodes?: ReadonlyArray<string> | undefined
  /**
   * Limiters whose keys carry a hash tag of their own (`"<limiter>=key"`,
   * `"<limiter>=group:<name>"`), so that a composite call's keys share a Redis Cluster slot; see
   * `RedisStore.RedisStoreOptions.hashTags`.
   */
  readonly hashTags?: ReadonlyArray<string> | undefined
  /** Most decisions sent as one batch script (1: no batching). Default 16. */
  readonly maxBatchSize?: number | undefined
  /** ioredis auto-pipelining. Default `false`. */
  readonly autoPipelining?: boolean | undefined
  /**
   * The local block cache of the limiters on this store (`RateLimiter`'s `blockCache`): `false`
   * asks the store on every call, as `blockCache: { stores: { <id>: false } }` does. Default `true`.
   */
  readonly blockCache?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresStoreDefinition {
  readonly engine: "postgres"
  readonly url?: Redacted.Redacted | undefined
  readonly tableName?: string | undefined
  readonly schemaName?: string | undefined
  readonly autoCreate?: boolean | undefined
  /** Create the table `UNLOGGED`. Default `false`. */
  readonly unlogged?: boolean | undefined
  /** The pool's `min` (pg's default 0). */
  readonly poolMinSize?: number | undefined
  /** The pool's `max` (pg's default 10). */
  readonly poolMaxSize?: number | undefined
  readonly timingMarginMs?: number | undefined
  /** Wait for the WAL flush when a decision commits. Default `false`. */
  readonly synchronousCommit?: boolean | undefined
  /** Every call settles within it. Default 2 seconds. */
  readonly statementTimeout?: Fx.DurationInput | undefined
  /** Most statements in flight at once. Default 2, or the pool's size when smaller. */
  readonly maxConcurrentStatements?: number | undefined
  /** Most calls waiting for a statement slot. Default 10 000. */
  readonly maxQueuedStatements?: number | undefined
  /** Bound on start-up. Default 15 seconds. */
  readonly initializeTimeout?: Fx.DurationInput | undefined
  /** How often expired rows are deleted. Default 60 seconds. */
  readonly cleanupInterval?: Fx.DurationInput | undefined
  /** Most rows one cleanup statement deletes. Default 1000. */
  readonly cleanupBatchSize?: number | undefined
  /**
   * The local block cache of the limiters on this store (`RateLimiter`'s `blockCache`): `false`
   * asks the store on every call, as `blockCache: { stores: { <id>: false } }` does. Default `true`.
   */
  readonly blockCache?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface NatsStoreDefinition {
  readonly engine: "nats"
  /** Server URL, or several separated by commas. Default `nats://127.0.0.1:4222`. */
  readonly url?: Redacted.Redacted | undefined
  /** Server URLs; when set, used instead of `url`. */
  readonly servers?: ReadonlyArray<Redacted.Redacted> | undefined
  readonly token?: Redacted.Redacted | undefined
  readonly bucketName?: string | undefined
  readonly autoCreate?: boolean | undefined
  /** `max_age` of a bucket the store creates. Default 1 day. */
  readonly maxAge?: Fx.DurationInput | undefined
  readonly retryInterval?: Fx.DurationInput | undefined
  readonly maxRetries?: number | undefined
  readonly timingMarginMs?: number | undefined
  /** Every operation settles within it. Default 2 seconds. */
  readonly timeout?: Fx.DurationInput | undefined
  /** Bound on connecting at start-up. Default 5 seconds. */
  readonly connectTimeout?: Fx.DurationInput | undefined
  /** How often expired keys are deleted (`Duration.infinity`: never). Default 1 minute. */
  readonly purgeInterval?: Fx.DurationInput | undefined
  /**
   * The local block cache of the limiters on this store (`RateLimiter`'s `blockCache`): `false`
   * asks the store on every call, as `blockCache: { stores: { <id>: false } }` does. Default `true`.
   */
  readonly blockCache?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type StoreDefinition =
  | MemoryStoreDefinition
  | RedisStoreDefinition
  | PostgresStoreDefinition
  | NatsStoreDefinition

/**
 * The engines a definition can name.
 *
 * @since 0.1.0
 * @category models
 */
export type Engine = StoreDefinition["engine"]
