/**
 * Compile-time checks: each driver's options interface and each `StoreDefinition` have exactly
 * the fields of their engine's table (`core/config/fields.ts`), with the types the fields' kinds
 * give (`shape.ts`). A field added to an interface and not to its table (or the reverse), or
 * given another type, fails `tsc` here, naming the field. Types only: nothing is loaded at run
 * time.
 *
 * @internal
 */
import type { memoryFields, natsFields, postgresFields, redisFields } from "../../core/config/fields.js"
import type { MemoryStoreOptions } from "../../MemoryStore.js"
import type { NatsStoreOptions } from "../../NatsStore.js"
import type { PostgresStoreOptions } from "../../PostgresStore.js"
import type { RedisStoreOptions } from "../../RedisStore.js"
import type {
  MemoryStoreDefinition,
  NatsStoreDefinition,
  PostgresStoreDefinition,
  RedisStoreDefinition
} from "../../StoreDefinition.js"
import type { DefinitionOf, OptionsOf, SameFields } from "./shape.js"

type Memory = (typeof memoryFields)[number]
type Redis = (typeof redisFields)[number]
type Nats = (typeof natsFields)[number]
type Postgres = (typeof postgresFields)[number]

/** Compiles only when `T` is `true`. */
type Holds<T extends true> = T

/** @internal */
export type FieldChecks = [
  Holds<SameFields<OptionsOf<Memory>, MemoryStoreOptions>>,
  Holds<SameFields<OptionsOf<Redis>, RedisStoreOptions>>,
  Holds<SameFields<OptionsOf<Nats>, NatsStoreOptions>>,
  Holds<SameFields<OptionsOf<Postgres>, PostgresStoreOptions>>,
  Holds<SameFields<DefinitionOf<"memory", Memory>, MemoryStoreDefinition>>,
  Holds<SameFields<DefinitionOf<"redis", Redis>, RedisStoreDefinition>>,
  Holds<SameFields<DefinitionOf<"nats", Nats>, NatsStoreDefinition>>,
  Holds<SameFields<DefinitionOf<"postgres", Postgres>, PostgresStoreDefinition>>
]
