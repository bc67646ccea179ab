/**
 * The NATS JetStream KV store: every SPI operation is one read (`get`, which answers the value and
 * its revision) and at most one compare-and-set write (`create` when the key is absent, `update` on
 * the revision read otherwise), decided in this process by the pure steps of `core/nats/decide.ts`
 * (over `core/algorithm.ts`). A write that loses the race (another process wrote the key since the
 * read) is retried from the read, after a jittered pause that grows with each loss, at most
 * `maxRetries` times and never past `timeout` from the start of the operation; the number of lost
 * writes is reported on every decision as `casRetries`. Losing the race is not an outage: when the
 * retries or the time run out, a take answers a refusal (`allowed: false` / `acquired: false`, a
 * short `retryAfterMs`), never a `StoreError`, so contention can never turn into a fail-open
 * admission.
 *
 * Hot keys are coalesced: the concurrent takes (`tokenBucket`, `slidingWindow`, `fixedWindow`) of
 * this process on one key reach the server as one read and one write per batch (while a loop for
 * the key is in flight, later callers queue; the next write applies them all, decided in arrival
 * order, each caller its own decision), and a take first decides on the value this instance last
 * wrote to the key, writing on that revision without a read (a stale value loses its
 * compare-and-set and is read again; a refusal is never decided on it). See
 * docs/engines/nats-performance.md.
 *
 * NATS KV has no server clock a compare-and-set can use, so decisions read Effect's `Clock`, and
 * `timingMarginMs` absorbs clock skew between processes (see docs/engines/nats.md).
 *
 * NATS KV has no multi-key transaction either: `takeAll` charges its takes one at a time in a fixed
 * order (limiter, key, state) and undoes the charged ones (`adjust`, by the same compare-and-set)
 * when a later one refuses, when the store fails mid-way or when the fiber is interrupted (the
 * call is uninterruptible but for its reads and pauses, so a write once sent is always followed by
 * its answer). Between its first write and the undo another caller can see a partial charge: it
 * may be refused where it would have been admitted, never admitted beyond a limit (see
 * docs/engines/nats.md, *Composite takes*).
 *
 * Keys: `<limiter>.<key>.<state>` where `<limiter>` and `<key>` are encoded into the KV key charset
 * (`=` + the text when it is only `[A-Za-z0-9_-]`, else `/` + base64url of its UTF-8): neither
 * encoding produces `.`, each decodes to exactly one string, and no token is empty, so distinct
 * pairs never share a key and `reset(limiter)` lists `<limiter>.>` without wildcards in the id.
 *
 * Expiry: the installed servers (2.9/2.10) have no per-message TTL, so each value carries the
 * instant it stops mattering (`x`); the ops treat state past it as absent, a scoped fiber deletes
 * such keys periodically (compare-and-set on their revision), and the bucket's `max_age` bounds
 * the life of anything left behind.
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
import * as Connection from "./internal/nats/connection.js"
import * as Ops from "./internal/nats/ops.js"
import * as Purge from "./internal/nats/purge.js"
import { natsFields } from "./core/config/fields.js"
import { fieldsConfig } from "./internal/config/envConfig.js"
import { storeLayers } from "./internal/store/layers.js"
import { blockCacheOption } from "./internal/store/options.js"
import type { RateLimitStoreService } from "./RateLimitStore.js"
import * as RateLimitError from "./RateLimitError.js"
import { make as makeStore, RateLimitStore, StoreError } from "./RateLimitStore.js"
import type { NatsStoreDefinition } from "./StoreDefinition.js"

/**
 * Options of the NATS store (rate-sync's NATS engine options, camelCased, plus timeouts and expiry).
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsStoreOptions {
  /**
   * Server URL (`nats://[user:pass@]host:4222`), or several separated by commas.
   * Default `nats://127.0.0.1:4222`.
   */
  readonly url?: Redacted.Redacted | undefined
  /** Server URLs; when set, used instead of `url`. */
  readonly servers?: ReadonlyArray<Redacted.Redacted> | undefined
  /** Authentication token. */
  readonly token?: Redacted.Redacted | undefined
  /** KV bucket holding the state (`[-_A-Za-z0-9]+`). Default `"rate_limits"`. */
  readonly bucketName?: string | undefined
  /** Create the bucket when it does not exist. Default `true`; when `false` a missing bucket fails `make`. */
  readonly autoCreate?: boolean | undefined
  /**
   * `max_age` of a bucket this store creates: how long a key that is never written again may stay.
   * Must exceed the longest window and lease you use. Default 1 day.
   */
  readonly maxAge?: Fx.DurationInput | undefined
  /**
   * Mean pause before the first retry of a lost compare-and-set; the pause after the n-th loss is
   * uniform in `[0, 2·retryInterval·2^min(n − 1, 3))` (it doubles up to 8×). Default 10 ms.
   */
  readonly retryInterval?: Fx.DurationInput | undefined
  /**
   * Lost compare-and-sets retried per operation; one more loss answers a refusal (`allowed: false`,
   * `acquired: false`; `renewSlot` / `releaseSlot` fail with `StoreError`). Default 100.
   */
  readonly maxRetries?: number | undefined
  /**
   * Clock-skew allowance, in milliseconds: instants written by another process (a token-bucket
   * arrival time, sliding-window entries) are judged as if they were this much later, so a process
   * whose clock runs ahead by up to this much cannot admit early. Default 10.
   */
  readonly timingMarginMs?: number | undefined
  /**
   * Every operation settles within this, its compare-and-set retries included: a request with no
   * answer in time fails with `StoreError`, unless a write was already lost in this operation, when
   * the race is given up with a refusal. Default 2 seconds.
   */
  readonly timeout?: Fx.DurationInput | undefined
  /** Bound on connecting (and on opening the bucket) at start-up. Default 5 seconds. */
  readonly connectTimeout?: Fx.DurationInput | undefined
  /**
   * How often keys past their expiry are deleted (every instance lists the whole bucket).
   * Default 1 minute; `Duration.infinity` turns the purge off and leaves expiry to `maxAge`.
   */
  readonly purgeInterval?: Fx.DurationInput | undefined
  /**
   * The local block cache of the limiters on this store (`RateLimiter`'s `blockCache`): `false`
   * asks the store on every call, as `blockCache: { stores: { <id>: false } }` does, wherever the
   * store is handed to (`RateLimiter.layer`, `stores`). Default `true`.
   */
  readonly blockCache?: boolean | undefined
}

/**
 * Builds the store: connects (bounded by `connectTimeout`), creates or opens the bucket, and forks
 * the purge of expired keys. Fails with `StoreError` when NATS cannot be reached, JetStream is
 * off, or the bucket is missing and `autoCreate` is `false`; the message never holds a secret.
 * The connection closes with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: NatsStoreOptions
) => Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> = Effect.fnUntraced(
  function*(options: NatsStoreOptions = {}) {
    const blockCache = blockCacheOption(options.blockCache)
    if (blockCache instanceof RateLimitError.ConfigError) return yield* Effect.fail(blockCache)
    const settings = yield* Connection.settingsOf(options)
    const bucket = yield* Connection.open(settings)
    const ops = yield* Ops.make(bucket)
    yield* ops.initialize
    yield* Purge.fork(bucket)
    return makeStore({ engine: Connection.ENGINE, ...blockCache, ...ops })
  }
)

// ---------------------------------------------------------------------------------------------
// layers and config

/**
 * The options read from configuration, one variable per field of the NATS field table
 * (`core/config/fields.ts`), under `RATE_SYNC_NATS_` in the environment: `URL`, `SERVERS` (comma
 * separated), `TOKEN`, `BUCKET_NAME`, `AUTO_CREATE`, `MAX_AGE`, `RETRY_INTERVAL`, `MAX_RETRIES`,
 * `TIMING_MARGIN_MS`, `TIMEOUT`, `CONNECT_TIMEOUT`, `PURGE_INTERVAL`, `BLOCK_CACHE` (durations: seconds or a
 * duration string).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<NatsStoreOptions> = fieldsConfig("nats", natsFields)

const layers = storeLayers(make, config, make)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: (options?: NatsStoreOptions) => Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError> =
  layers.layer

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: (
  options: ConfigWrap<NatsStoreOptions>
) => Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | Fx.EffectConfigError> = layers.layerConfig

/**
 * The store configured from the environment (`RATE_SYNC_NATS_URL`, ...; see {@link config}):
 * `Effect.provide(NatsStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const NatsStoreLive: Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | Fx.EffectConfigError> =
  layers.live

/**
 * The options a `NatsStoreDefinition` (TOML `engine = "nats"`, `configureStore`) describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromDefinition = (definition: NatsStoreDefinition): NatsStoreOptions => {
  const { engine: _, ...rest } = definition
  return rest
}

/**
 * Builds the store a `NatsStoreDefinition` (TOML `engine = "nats"`, `configureStore`) describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDefinition = (
  definition: NatsStoreDefinition
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  make(optionsFromDefinition(definition))
