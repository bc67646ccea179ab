/**
 * The Redis store: every SPI operation is one Lua script run by `EVALSHA` (reloaded by `EVAL` on
 * `NOSCRIPT`), decided with the server's clock (`TIME` inside the script), on a standalone server
 * or a Redis Cluster.
 *
 * Keys are `<keyPrefix>:{<limiter>.<key>}:<state>`, where `<limiter>` and `<key>` are encoded
 * (`=` + the text when it is only `[A-Za-z0-9_-]`, else base64url of its UTF-8): the braces are
 * the Redis Cluster hash tag, so the state of one `(limiter, key)` lives in one slot; user input
 * cannot inject braces to pick another tag, and two distinct pairs never share a key (neither
 * encoding produces `.`, `{` or `}`, and each decodes to exactly one string).
 *
 * This module is the public surface; the scripts are `core/redis/scripts.ts` and the driver's
 * private parts `internal/redis/` (see docs/engines/redis.md, "Code layout").
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Fx from "#fx/core"
import type { ConfigWrap } from "#fx/driver"
import * as Batch from "./internal/redis/batch.js"
import * as Client from "./internal/redis/client.js"
import * as Keys from "./internal/redis/keys.js"
import * as Ops from "./internal/redis/ops.js"
import * as Settings from "./internal/redis/settings.js"
import * as Slots from "./internal/redis/slots.js"
import * as Deadlines from "./internal/store/deadlines.js"
import { redisFields } from "./core/config/fields.js"
import { fieldsConfig } from "./internal/config/envConfig.js"
import { storeLayers } from "./internal/store/layers.js"
import { blockCacheOption } from "./internal/store/options.js"
import type { RateLimitStoreService } from "./RateLimitStore.js"
import * as RateLimitError from "./RateLimitError.js"
import { make as makeStore, RateLimitStore, StoreError } from "./RateLimitStore.js"
import type { RedisStoreDefinition } from "./StoreDefinition.js"

/**
 * Options of the Redis store (rate-sync's Redis engine options, camelCased, plus what ioredis adds).
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). Default `redis://127.0.0.1:6379`. */
  readonly url?: Redacted.Redacted | undefined
  /** Database index (standalone only); overrides the one in `url`. */
  readonly db?: number | undefined
  /** Password (`AUTH`); overrides the one in `url`. */
  readonly password?: Redacted.Redacted | undefined
  /** ACL user name; overrides the one in `url`. */
  readonly username?: string | undefined
  /** Prefix of every key. Default `"rate_limit"`. Must not contain `{` or `}`. */
  readonly keyPrefix?: string | undefined
  /**
   * Connections opened (standalone only). ioredis multiplexes and pipelines every command on one
   * connection, so the default is 1; more connections are used round-robin.
   */
  readonly poolMinSize?: number | undefined
  /** Upper bound on `poolMinSize` (rate-sync parity). */
  readonly poolMaxSize?: number | undefined
  /**
   * Added to every non-zero `delayMs` / `retryAfterMs` the store answers, to absorb the network
   * time between the server's decision and the caller's wake-up. Default 0.
   */
  readonly timingMarginMs?: number | undefined
  /**
   * While replies are awaited, a connection silent for this long is dropped and its commands
   * rejected (ioredis `socketTimeout`). Default: 5 × the command timeout, at least 1 second.
   */
  readonly socketTimeout?: Fx.DurationInput | undefined
  /** Connect timeout, also the bound on connecting at start-up. Default 5 seconds. */
  readonly socketConnectTimeout?: Fx.DurationInput | undefined
  /** Every call settles (answers or fails with `StoreError`) within this. Default 1 second. */
  readonly commandTimeout?: Fx.DurationInput | undefined
  /** Redis Cluster seed nodes (`host:port`). When set, a cluster client is used and `url` only gives credentials. */
  readonly clusterNodes?: ReadonlyArray<string> | undefined
  /**
   * ioredis auto-pipelining: commands issued in the same tick share one write. Default `false`:
   * measured slower for Effect callers (see docs/benchmarks.md), whose fibers resume across
   * several ticks.
   */
  readonly autoPipelining?: boolean | undefined
  /**
   * The local block cache of the limiters on this store (`RateLimiter`'s `blockCache`): `false`
   * asks the store on every call, as `blockCache: { stores: { <id>: false } }` does, wherever the
   * store is handed to (`RateLimiter.layer`, `stores`). Default `true`.
   */
  readonly blockCache?: boolean | undefined
  /**
   * Most decisions sent as one batch script. Calls issued in the same tick (the fibers a reply
   * wakes up, a burst of requests) leave as one `EVALSHA` that runs each call's own script in
   * turn, atomically, at one server instant: one command and one reply for the lot. `1` sends
   * every call on its own. Default 16: smaller batches keep several in flight, so Redis runs one
   * while the process handles the replies of another (measured best at 64 callers). Not used on
   * a cluster (a batch's keys would span slots).
   */
  readonly maxBatchSize?: number | undefined
  /**
   * Limiters whose keys carry a hash tag of their own instead of `{<limiter>.<key>}`, so that the
   * keys of one composite call (`takeAll`) can share a Redis Cluster slot. Each entry is
   * `"<limiter>=key"` (tagged by the key alone: every limiter so tagged keeps the state of one key
   * in one slot, e.g. the per-user `rpm` and `tpm` of one user) or `"<limiter>=group:<name>"`
   * (every key of every limiter of the group in one slot, e.g. a per-IP and a global login limit;
   * that slot's master then holds all of their state). The limiters named move to the layout
   * `<keyPrefix>:{<tag>}:<limiter>.<key>:<state>`; the others, and existing data, keep theirs.
   * Changing a limiter's entry starts its state afresh (the old keys expire on their own).
   * On a cluster, a composite call whose keys carry different tags is refused (`StoreError`,
   * kind `"rejected"`, naming this option); a standalone server runs every call. Default: none.
   * TOML `hash_tags = ["rpm=key", "tpm=key"]`; environment `RATE_SYNC_REDIS_HASH_TAGS=rpm=key,tpm=key`.
   */
  readonly hashTags?: ReadonlyArray<string> | undefined
}

/**
 * The Redis store's key-layout options: `hashTags`, now a field of {@link RedisStoreOptions} (and
 * of `rate-sync.toml`, `hash_tags`). Kept as a name for code written against 0.2.0 betas.
 *
 * @since 0.2.0
 * @category models
 */
export type RedisStoreLayoutOptions = Pick<RedisStoreOptions, "hashTags">

/**
 * Builds the store: opens the connection(s), waits until Redis is ready (bounded by
 * `socketConnectTimeout`) and loads the scripts. Fails with `StoreError` when Redis cannot be
 * reached or refuses the credentials; the message never holds a secret. Connections close with the
 * scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function*(
  options: RedisStoreOptions = {}
): Effect.fn.Return<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> {
  const resolved = Settings.resolve(options)
  if (Fx.isErr(resolved)) return yield* Effect.fail(Fx.errOf(resolved))
  const blockCache = blockCacheOption(options.blockCache)
  if (blockCache instanceof RateLimitError.ConfigError) return yield* Effect.fail(blockCache)
  const settings = Fx.valueOf(resolved)
  const deadlines = yield* Deadlines.make(settings.timeoutMs)
  const pool = yield* Client.open(settings)
  const keys = Keys.make(settings.prefix, settings.hashTags)
  const channels = Slots.channelsOf(settings.prefix)
  const deps: Ops.Deps = { settings, pool, keys, channels, runner: Batch.make(settings, pool, deadlines) }
  const awaitSlot = yield* Slots.make(pool, keys, channels)
  const initialize = Ops.loadScripts(deps)
  yield* initialize
  return makeStore({
    engine: Settings.ENGINE,
    ...blockCache,
    ...Ops.rateOperations(deps),
    ...Ops.slotOperations(deps),
    ...Ops.compositeOperations(deps),
    reset: Ops.resetOperation(deps),
    initialize,
    ...(settings.notifications ? { awaitSlot } : {})
  })
})

// ---------------------------------------------------------------------------------------------
// layers and config

/**
 * The options read from configuration, one variable per field of the Redis field table
 * (`core/config/fields.ts`), under `RATE_SYNC_REDIS_` in the environment: `URL`, `DB`, `PASSWORD`,
 * `USERNAME`, `KEY_PREFIX`, `POOL_MIN_SIZE`, `POOL_MAX_SIZE`, `TIMING_MARGIN_MS`, `SOCKET_TIMEOUT`,
 * `SOCKET_CONNECT_TIMEOUT`, `COMMAND_TIMEOUT` (durations: seconds or a duration string),
 * `CLUSTER_NODES` (comma separated), `MAX_BATCH_SIZE`, `AUTO_PIPELINING` and `BLOCK_CACHE`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<RedisStoreOptions> = fieldsConfig("redis", redisFields)

const layers = storeLayers(make, config, make)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: (
  options?: RedisStoreOptions
) => Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError> = layers.layer

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: (
  options: ConfigWrap<RedisStoreOptions>
) => Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | Fx.EffectConfigError> = layers.layerConfig

/**
 * The store configured from the environment (`RATE_SYNC_REDIS_URL`, ...; see {@link config}):
 * `Effect.provide(RedisStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const RedisStoreLive: Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | Fx.EffectConfigError> =
  layers.live

/**
 * Builds the store a `RedisStoreDefinition` (TOML `engine = "redis"`, `configureStore`) describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDefinition = (
  definition: RedisStoreDefinition
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  make(optionsFromDefinition(definition))

/**
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromDefinition = (definition: RedisStoreDefinition): RedisStoreOptions => {
  const { engine: _, ...rest } = definition
  return rest
}
