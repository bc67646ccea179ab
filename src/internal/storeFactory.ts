/** @internal */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { errOf, isErr, valueOf } from "./result.js"
import { ConfigError, StoreUnavailable } from "../RateLimitError.js"
import type { RateLimitStoreService, StoreError } from "../RateLimitStore.js"
import { TypeId as StoreTypeId } from "../RateLimitStore.js"
import { decodeStoreDefinition } from "./config/storeDefinition.js"
import type { StoreDefinition } from "../StoreDefinition.js"

/** @internal */
export const isStoreService = (u: StoreDefinition | RateLimitStoreService): u is RateLimitStoreService =>
  // From JavaScript anything can arrive here: `in` would throw on a primitive.
  typeof u === "object" && u !== null && StoreTypeId in u

const missingDriver = (storeId: string, engine: string, pkg: string) =>
  ConfigError.at(
    `stores.${storeId}.engine`,
    `an engine whose driver is installed (engine "${engine}" needs the package ${pkg}: npm install ${pkg})`,
    JSON.stringify(engine)
  )

/**
 * Loads a driver module (only now: importing it needs its optional peer) and builds its store.
 */
const fromDriver = <D>(
  storeId: string,
  engine: string,
  packages: string,
  load: () => Promise<{
    readonly fromDefinition: (
      definition: D
    ) => Effect.Effect<RateLimitStoreService, StoreError | ConfigError, Scope.Scope>
  }>,
  definition: D
): Effect.Effect<RateLimitStoreService, ConfigError | StoreUnavailable, Scope.Scope> =>
  Effect.tryPromise({ try: load, catch: () => missingDriver(storeId, engine, packages) }).pipe(
    Effect.flatMap((m) => m.fromDefinition(definition)),
    Effect.catchTags({
      StoreError: (e) => Effect.fail(new StoreUnavailable({ storeId, engine, cause: e.message })),
      // a driver names its option (`url`): the path of the store's table is `stores.<id>.url`
      ConfigError: (e) =>
        Effect.fail(
          e.path.startsWith("stores.") ? e : ConfigError.at(`stores.${storeId}.${e.path}`, e.expected, e.received)
        )
    })
  )

/**
 * Builds a store from its definition in the given scope. The definition is validated first, by the
 * rules of the `[stores.<id>]` tables (`internal/config/storeDefinition.ts`, exposed as `RateSyncConfig.decodeStoreDefinition`), so a bad one fails
 * with a `ConfigError` before anything is opened. A driver module is imported only here, only for
 * the engine named, so the root import never loads an optional peer.
 *
 * @internal
 */
export const buildStore = (
  storeId: string,
  store: StoreDefinition | RateLimitStoreService
): Effect.Effect<RateLimitStoreService, ConfigError | StoreUnavailable, Scope.Scope> => {
  if (isStoreService(store)) return Effect.succeed(store)
  const decoded = decodeStoreDefinition(storeId, store)
  if (isErr(decoded)) return Effect.fail(errOf(decoded))
  const input = valueOf(decoded)
  switch (input.engine) {
    case "memory":
      return Effect.flatMap(Effect.promise(() => import("../MemoryStore.js")), (m) => m.fromDefinition(input))
    case "redis":
      return fromDriver(storeId, "redis", "ioredis", () => import("../RedisStore.js"), input)
    case "nats":
      return fromDriver(storeId, "nats", "@nats-io/transport-node @nats-io/kv", () => import("../NatsStore.js"), input)
    case "postgres":
      return fromDriver(storeId, "postgres", "@effect/sql @effect/sql-pg", () => import("../PostgresStore.js"), input)
  }
}
