/**
 * A `[stores.<id>]` table (with its `RATE_SYNC_STORES_<ID>_<FIELD>` overrides), or a store
 * definition written in code, decoded by its engine's field table (`fields.ts`) to plain values:
 * the engine and, by TypeScript name, each field given (secrets as their text, durations in
 * milliseconds). Throws a `FieldError` on the first bad field, in the table's order.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */
import { allTomlNames, engines, storeFieldTables, tomlNamesOf } from "./fields.js"
import type { Engine, Field } from "./fields.js"
import type { CodeValues, Table, TomlTable } from "./table.js"
import {
  booleanField,
  durationField,
  FieldError,
  numberIn,
  quote,
  secretField,
  stringField,
  stringListField,
  Table as TableClass,
  urlListField
} from "./table.js"

/** A field's decoded value: a secret is its text, a duration milliseconds. @internal */
export type PlainValue = string | number | boolean | ReadonlyArray<string>

/** @internal */
export interface PlainStore {
  readonly engine: Engine
  /** By TypeScript name, the fields given. */
  readonly fields: Readonly<Record<string, PlainValue>>
}

const isEngine = (s: string): s is Engine => engines.some((e) => e === s)

/** A field's value, or `undefined` when absent. */
const read = (t: Table, f: Field): PlainValue | undefined => {
  switch (f.kind) {
    case "string":
      return stringField(t, f.toml, f.check)
    case "secret":
      return secretField(t, f.toml)
    case "url":
      return secretField(t, f.toml, f.url)
    case "urlList":
      return f.url === undefined ? undefined : urlListField(t, f.toml, f.url)
    case "integer":
      return numberIn(t, f.toml, f.min === "nonNegative" ? "nonNegativeInt" : "positiveInt")
    case "number":
      return numberIn(t, f.toml, f.min === "positive" ? "positive" : "nonNegative")
    case "boolean":
      return booleanField(t, f.toml)
    case "duration":
      return durationField(t, f.toml, { allowZero: f.min === "nonNegative", infinite: f.infinite })
    case "stringList":
      return stringListField(t, f.toml, f.check)
  }
}

/**
 * Decodes one store table by its engine's fields: the engine, no unknown field (in the table or
 * set by a variable), then each field in the table's order.
 *
 * @internal
 */
export const decodeStoreTable = (t: Table): PlainStore => {
  const engineExpected = `one of ${engines.map(quote).join(", ")}`
  const raw = t.raw("engine")
  if (raw === undefined) throw new FieldError(t.at("engine"), engineExpected, "nothing")
  if (typeof raw.value !== "string" || !isEngine(raw.value)) return t.fail("engine", engineExpected, raw)
  const engine = raw.value
  t.rejectUnknown(tomlNamesOf(engine), allTomlNames, `the ${engine} store fields`)
  const table: ReadonlyArray<Field> = storeFieldTables[engine]
  const fields: Record<string, PlainValue> = {}
  for (const f of table) {
    const value = read(t, f)
    if (value !== undefined) fields[f.name] = value
    // `pool_min_size <= pool_max_size`, checked once the bound is read
    for (const g of table) {
      const gValue = fields[g.name]
      if (g.atMost !== f.name || typeof gValue !== "number" || typeof value !== "number" || gValue <= value) continue
      const gRaw = t.raw(g.toml)
      if (gRaw !== undefined) t.fail(g.toml, `a whole number no greater than ${t.name(f.toml)} (${value})`, gRaw)
    }
  }
  return { engine, fields }
}

/** The TypeScript name of each TOML name, over every engine. */
const tsNames: ReadonlyMap<string, string> = new Map(
  engines.flatMap((e) => storeFieldTables[e].map((f: Field) => [f.toml, f.name] as const))
)

/** `max_keys` → `maxKeys`: how a field the tables do not hold is named in code. */
const camelCase = (field: string): string => field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())

/** The TypeScript name of a store field given by its TOML name. @internal */
export const tsNameOf = (toml: string): string => tsNames.get(toml) ?? camelCase(toml)

/**
 * A store definition written in code as a {@link Table} (TypeScript field names, no environment).
 *
 * @internal
 */
export const codeTable = (path: string, id: string, definition: TomlTable, values: CodeValues): Table =>
  new TableClass(path, "stores", id, definition, new Map(), { values, names: tsNameOf })
