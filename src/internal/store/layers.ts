/**
 * The store kit: one layer builder for every driver. Given a driver's `make` and its environment
 * `config`, it gives the driver's three layers, so each driver's layer block is a few lines:
 *
 * - `layer(options)`: the store built from options written in code;
 * - `layerConfig(config)`: the store built from options read through `Config`;
 * - `live`: the store configured from the environment, `config` read then built (the driver
 *   exports it as `XStoreLive`).
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { RateLimitStore } from "../../RateLimitStore.js"
import type { RateLimitStoreService } from "../../RateLimitStore.js"

/** @internal */
export interface StoreLayers<O, E, R, E2 = E, R2 = R> {
  readonly layer: (options?: O) => Layer.Layer<RateLimitStore, E, R>
  readonly layerConfig: (config: Fx.ConfigWrap<O>) => Layer.Layer<RateLimitStore, E | Fx.EffectConfigError, R>
  readonly live: Layer.Layer<RateLimitStore, E2 | Fx.EffectConfigError, R2>
}

/**
 * `make`'s layers; `live` reads `config` and builds the store with `build` (`make` itself, or,
 * for the PostgreSQL store, which reads a definition and opens its own pool, `fromDefinition`).
 *
 * @internal
 */
export const storeLayers = <O, E, R, D, E2, R2>(
  make: (options?: O) => Effect.Effect<RateLimitStoreService, E, R | Scope.Scope>,
  config: Config.Config<D>,
  build: (read: D) => Effect.Effect<RateLimitStoreService, E2, R2 | Scope.Scope>
): StoreLayers<O, E, Exclude<R, Scope.Scope>, E2, Exclude<R2, Scope.Scope>> => ({
  layer: (options) => Fx.layerScoped(RateLimitStore, make(options)),
  layerConfig: (wrapped) => Fx.layerScoped(RateLimitStore, Effect.flatMap(Config.unwrap(wrapped), make)),
  live: Fx.layerScoped(RateLimitStore, Effect.flatMap(config, build))
})
