/**
 * Store definitions, Effect side: the plain values `core/config/store.ts` decodes from a
 * `[stores.<id>]` table or a definition written in code become a `StoreDefinition` (secrets
 * `Redacted`, durations `Duration`s), and a bad field a `ConfigError`. Loads neither the TOML
 * parser nor the file system: the registry validates definitions written in code with it.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Redacted from "effect/Redacted"
import * as Fx from "#fx/core"
import { storeFieldTables } from "../../core/config/fields.js"
import type { Field } from "../../core/config/fields.js"
import { codeTable, decodeStoreTable } from "../../core/config/store.js"
import type { PlainStore, PlainValue } from "../../core/config/store.js"
import { FieldError, isTable } from "../../core/config/table.js"
import type { CodeValues, Table } from "../../core/config/table.js"
import { describeInput, durationInputMs } from "./input.js"
import { ConfigError } from "../../RateLimitError.js"
import type { StoreDefinition } from "../../StoreDefinition.js"

/** A `FieldError` of the core as the library's `ConfigError`. @internal */
export const toConfigError = (e: FieldError): ConfigError => ConfigError.at(e.path, e.expected, e.received)

/** What a definition written in code holds, read the Effect way. @internal */
export const codeValues: CodeValues = {
  isSecret: Redacted.isRedacted,
  reveal: (u) => Redacted.isRedacted(u) ? Redacted.value(u) : u,
  durationMs: durationInputMs,
  describe: describeInput
}

const valueOf = (f: Field, value: PlainValue): unknown => {
  switch (f.kind) {
    case "secret":
    case "url":
      return typeof value === "string" ? Redacted.make(value) : value
    case "urlList":
      return Array.isArray(value) ? value.map((s: string) => Redacted.make(s)) : value
    case "duration":
      return typeof value === "number" ? (value === Infinity ? Duration.infinity : Duration.millis(value)) : value
    default:
      return value
  }
}

/** The definition plain values describe. @internal */
export const definitionOf = (plain: PlainStore): StoreDefinition => {
  const out: Record<string, unknown> = { engine: plain.engine }
  const table: ReadonlyArray<Field> = storeFieldTables[plain.engine]
  for (const f of table) {
    const value = plain.fields[f.name]
    if (value !== undefined) out[f.name] = valueOf(f, value)
  }
  // A typed boundary: `out` holds the engine and, by TypeScript name, each field of the engine's
  // table with the type its kind gives; `internal/config/fieldChecks.ts` proves at compile time
  // that these are exactly the fields and types of that engine's `StoreDefinition`.
  return out as unknown as StoreDefinition
}

/**
 * Decodes a `[stores.<id>]` table (with its overrides) to a definition; throws the `ConfigError`
 * of the first bad field.
 *
 * @internal
 */
export const decodeStoreFile = (t: Table): StoreDefinition => {
  try {
    return definitionOf(decodeStoreTable(t))
  } catch (e) {
    if (e instanceof FieldError) throw toConfigError(e)
    throw e
  }
}

/**
 * Validates a store definition written in code (what `RateLimiter.configureStore` and
 * `RateLimiter.make` take) by the rules of the `[stores.<id>]` tables: the engine, no unknown
 * field, and every field's type and range (URL schemes, identifiers, key prefix, bucket name, pool
 * sizes). Durations are finite `Fx.DurationInput`s and secrets must be `Redacted`. A bad
 * definition is a `ConfigError` at `stores.<id>.<field>`, with the TypeScript field name
 * (`stores.main.keyPrefix`); a secret's value is never shown. Answers the definition with its
 * durations as `Duration`s, as a `Fx.Result` (an `Either` on Effect 3, a `Result` on Effect 4).
 *
 * @internal
 */
export const decodeStoreDefinition = (id: string, definition: unknown): Fx.Result<StoreDefinition, ConfigError> => {
  const path = `stores.${id}`
  if (!isTable(definition)) {
    return Fx.err(ConfigError.at(path, "a store definition (an object with an engine)", describeInput(definition)))
  }
  try {
    return Fx.ok(definitionOf(decodeStoreTable(codeTable(path, id, definition, codeValues))))
  } catch (e) {
    if (e instanceof FieldError) return Fx.err(toConfigError(e))
    throw e
  }
}
