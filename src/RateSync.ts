/**
 * Zero-config: a `RateLimiter` built from `rate-sync.toml` (or `$RATE_SYNC_CONFIG`) plus
 * environment overrides, like rate-sync's auto-loaded configuration.
 *
 * A store driver is loaded only when the file names its engine, and only when the layer is built.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Fx from "#fx/core"
import type { LimiterDefinition } from "./LimiterDefinition.js"
import { ConfigError } from "./RateLimitError.js"
import type { StoreNotFound, StoreUnavailable } from "./RateLimitError.js"
import * as RateLimiter from "./RateLimiter.js"
import * as RateSyncConfig from "./RateSyncConfig.js"
import type { StoreDefinition } from "./StoreDefinition.js"

/**
 * The id of the memory store added when the configuration declares no store.
 *
 * @since 0.1.0
 * @category constants
 */
export const IMPLICIT_STORE_ID = "memory"

/**
 * Turns a configuration into `RateLimiter.make` options, choosing the default store:
 * - no store declared: a memory store with id `"memory"` is added and is the default;
 * - exactly one store: limiters without `store` use it;
 * - several stores: every limiter must name its store (else a `ConfigError` at
 *   `limiters.<id>.store`).
 *
 * The answer is an `Either` on Effect 3 and a `Result` on Effect 4 (`Fx.Result`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeOptions = (config: RateSyncConfig.RateSyncConfig): Fx.Result<RateLimiter.MakeOptions, ConfigError> => {
  const storeIds = Object.keys(config.stores)
  const [only] = storeIds
  if (only === undefined) {
    const stores: Record<string, StoreDefinition> = { [IMPLICIT_STORE_ID]: { engine: "memory" } }
    return Fx.ok({ stores, limiters: config.limiters, defaultStore: IMPLICIT_STORE_ID })
  }
  if (storeIds.length === 1) {
    return Fx.ok({ stores: config.stores, limiters: config.limiters, defaultStore: only })
  }
  const unbound = Object.entries(config.limiters).find(
    ([, def]: readonly [string, LimiterDefinition]) => def.store === undefined
  )
  if (unbound !== undefined) {
    return Fx.err(
      ConfigError.at(
        `limiters.${unbound[0]}.store`,
        `a store id (the configuration declares several stores: ${storeIds.map((id) => JSON.stringify(id)).join(", ")})`,
        "nothing"
      )
    )
  }
  return Fx.ok({ stores: config.stores, limiters: config.limiters })
}

const build = <R>(
  config: Effect.Effect<RateSyncConfig.RateSyncConfig, ConfigError, R>
): Layer.Layer<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable, R> =>
  Fx.layerScoped(
    RateLimiter.RateLimiter,
    config.pipe(
      Effect.flatMap((config) => {
        const options = makeOptions(config)
        return Fx.isErr(options) ? Effect.fail(Fx.errOf(options)) : Effect.succeed(Fx.valueOf(options))
      }),
      Effect.flatMap(RateLimiter.make)
    )
  )

/**
 * A registry built from a decoded configuration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromConfig = (
  config: RateSyncConfig.RateSyncConfig
): Layer.Layer<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable> =>
  build(Effect.succeed(config))

/**
 * A registry built from the TOML file at `path` (which must exist), with environment overrides.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (
  path: string
): Layer.Layer<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable> =>
  build(RateSyncConfig.load(path))

/**
 * The zero-config registry: `$RATE_SYNC_CONFIG`, `./rate-sync.toml` or `./config/rate-sync.toml` (absent: no limiters, one
 * memory store), with environment overrides, all read from the current `ConfigProvider` when the
 * layer is built.
 *
 * @example
 * ```ts
 * Effect.runPromise(program.pipe(Effect.provide(RateSync.layer)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable> = build(
  RateSyncConfig.load()
)
