/** @internal */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { ConfigError, StoreUnavailable } from "../RateLimitError.js"
import type { RateLimitStoreService } from "../RateLimitStore.js"
import { TypeId as StoreTypeId } from "../RateLimitStore.js"
import type { StoreDefinition } from "../StoreDefinition.js"

/** @internal */
export const isStoreService = (u: StoreDefinition | RateLimitStoreService): u is RateLimitStoreService =>
  StoreTypeId in u

const missingDriver = (storeId: string, engine: string, pkg: string) =>
  ConfigError.at(
    `stores.${storeId}.engine`,
    `an engine whose driver is installed (engine "${engine}" needs the package ${pkg}: npm install ${pkg})`,
    JSON.stringify(engine)
  )

/**
 * Builds a store from its definition in the given scope. A driver module is imported only here,
 * only for the engine named, so the root import never loads an optional peer.
 *
 * @internal
 */
export const buildStore = (
  storeId: string,
  input: StoreDefinition | RateLimitStoreService
): Effect.Effect<RateLimitStoreService, ConfigError | StoreUnavailable, Scope.Scope> => {
  if (isStoreService(input)) return Effect.succeed(input)
  switch (input.engine) {
    case "memory":
      return Effect.flatMap(
        Effect.promise(() => import("../MemoryStore.js")),
        (m) =>
          m.make({
            ...(input.maxKeys !== undefined ? { maxKeys: input.maxKeys } : {}),
            ...(input.sweepInterval !== undefined ? { sweepInterval: input.sweepInterval } : {})
          })
      )
    case "redis":
      return Effect.tryPromise({
        try: () => import("../RedisStore.js"),
        catch: () => missingDriver(storeId, "redis", "ioredis")
      }).pipe(
        Effect.flatMap((m) => m.fromDefinition(input)),
        Effect.catchTag("StoreError", (e) =>
          Effect.fail(new StoreUnavailable({ storeId, engine: "redis", cause: e.message })))
      )
    case "nats":
      return Effect.tryPromise({
        try: () => import("../NatsStore.js"),
        catch: () => missingDriver(storeId, "nats", "@nats-io/transport-node @nats-io/kv")
      }).pipe(
        Effect.flatMap((m) => m.fromDefinition(input)),
        Effect.catchTag("StoreError", (e) =>
          Effect.fail(new StoreUnavailable({ storeId, engine: "nats", cause: e.message })))
      )
    case "postgres":
      return Effect.fail(
        ConfigError.at(
          `stores.${storeId}.engine`,
          `an engine available in this version ("memory" or "redis"; the ${input.engine} store is not released yet)`,
          JSON.stringify(input.engine)
        )
      )
  }
}
