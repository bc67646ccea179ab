/**
 * Store definitions: what `configureStore` and the `[stores.*]` tables of `rate-sync.toml` name.
 * Each engine's options mirror rate-sync's engine configs, camelCased; secrets are `Redacted`.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryStoreDefinition {
  readonly engine: "memory"
  /** Most (limiter, key) states kept at once. Default 100 000. */
  readonly maxKeys?: number | undefined
  /** How often expired state is swept. Default 10 seconds. */
  readonly sweepInterval?: Duration.DurationInput | undefined
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
  /** Prefix of every key. Default `"rate_limit"`. */
  readonly keyPrefix?: string | undefined
  readonly poolMinSize?: number | undefined
  readonly poolMaxSize?: number | undefined
  readonly timingMarginMs?: number | undefined
  /** Seconds (TOML) or a duration: socket inactivity timeout. */
  readonly socketTimeout?: Duration.DurationInput | undefined
  /** Seconds (TOML) or a duration: connect timeout. */
  readonly socketConnectTimeout?: Duration.DurationInput | undefined
  /** Per-command timeout: every call settles within it. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Redis Cluster: seed nodes (`host:port`); when set, a cluster client is used. */
  readonly clusterNodes?: ReadonlyArray<string> | undefined
  /** Most decisions sent as one batch script (1: no batching). Default 16. */
  readonly maxBatchSize?: number | undefined
  /** ioredis auto-pipelining. Default `false`. */
  readonly autoPipelining?: boolean | undefined
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
  readonly poolMinSize?: number | undefined
  readonly poolMaxSize?: number | undefined
  readonly timingMarginMs?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface NatsStoreDefinition {
  readonly engine: "nats"
  readonly url?: Redacted.Redacted | undefined
  readonly token?: Redacted.Redacted | undefined
  readonly bucketName?: string | undefined
  readonly autoCreate?: boolean | undefined
  readonly retryInterval?: Duration.DurationInput | undefined
  readonly maxRetries?: number | undefined
  readonly timingMarginMs?: number | undefined
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
