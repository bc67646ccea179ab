/**
 * Loading and validating `rate-sync.toml`, with environment overrides read through Effect's
 * `Config` (so the current `ConfigProvider` decides where they come from).
 *
 * The file has rate-sync's shape: `[stores.<id>]` tables with an `engine` and that engine's
 * snake_case options, and `[limiters.<id>]` tables. It decodes into the same definitions as the
 * TypeScript API (`StoreDefinition`, `LimiterDefinition`); seconds become `Duration`s and secrets
 * (`url`, `password`, `token`) become `Redacted`. Every bad input is a `ConfigError` naming the
 * path (`limiters.api.rate_per_second`), what was expected and what was received; an error about a
 * secret never shows its value.
 *
 * This is the only module of the library that reads files or environment variables.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fx from "#fx/core"
import { engines as engineList, tomlNamesOf } from "./core/config/fields.js"
import { envNumber } from "./core/config/duration.js"
import { hasReference, variablesOf } from "./core/config/interpolate.js"
import { tsNameOf } from "./core/config/store.js"
import {
  booleanField,
  describe,
  durationField,
  envVariable as envVariableOf,
  FieldError,
  isTable,
  isText,
  numberField,
  numberIn,
  originOf,
  quote,
  stringField,
  Table
} from "./core/config/table.js"
import type { Raw, TomlTable } from "./core/config/table.js"
import * as StoreDefinitions from "./internal/config/storeDefinition.js"
import type { Algorithm, LimiterDefinition } from "./LimiterDefinition.js"
import { resolve } from "./LimiterDefinition.js"
import { ConfigError } from "./RateLimitError.js"
import type { Engine, StoreDefinition } from "./StoreDefinition.js"

/**
 * A decoded configuration: the stores and limiters `RateLimiter.make` takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateSyncConfig {
  readonly stores: Readonly<Record<string, StoreDefinition>>
  readonly limiters: Readonly<Record<string, LimiterDefinition>>
}

/**
 * The configuration with no store and no limiter (what an absent default file gives).
 *
 * @since 0.1.0
 * @category constants
 */
export const empty: RateSyncConfig = { stores: {}, limiters: {} }

/**
 * The file read when neither a path nor `$RATE_SYNC_CONFIG` is given, relative to the working
 * directory.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PATH = "rate-sync.toml"

/**
 * The files searched, in order, when neither a path nor `$RATE_SYNC_CONFIG` is given (relative to
 * the working directory, as rate-sync searches them): the first that exists is read.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_PATHS: ReadonlyArray<string> = [DEFAULT_PATH, "config/rate-sync.toml"]

/**
 * The variable naming the configuration file.
 *
 * @since 0.1.0
 * @category constants
 */
export const PATH_VARIABLE = "RATE_SYNC_CONFIG"

/**
 * The engines a store can name.
 *
 * @since 0.1.0
 * @category constants
 */
export const engines: ReadonlyArray<Engine> = engineList

/**
 * The fields each engine's `[stores.<id>]` table accepts (`engine`, then the engine's field table,
 * `core/config/fields.ts`).
 *
 * @since 0.1.0
 * @category constants
 */
export const storeFields: Readonly<Record<Engine, ReadonlyArray<string>>> = {
  memory: tomlNamesOf("memory"),
  redis: tomlNamesOf("redis"),
  nats: tomlNamesOf("nats"),
  postgres: tomlNamesOf("postgres")
}

/**
 * The TypeScript name (`StoreDefinition` field, driver option) of each `[stores.<id>]` field.
 *
 * @since 0.1.0
 * @category constants
 */
export const storeFieldName = (field: string): string => tsNameOf(field)

/**
 * The fields a `[limiters.<id>]` table accepts.
 *
 * @since 0.1.0
 * @category constants
 */
export const limiterFields = [
  "store",
  "algorithm",
  "rate_per_second",
  "rate",
  "burst",
  "max_concurrent",
  "limit",
  "window_seconds",
  "timeout",
  "fail_closed",
  "lease_ms",
  "block_cache"
] as const

type LimiterField = (typeof limiterFields)[number]

/** The TOML name of each `LimiterDefinition` field, so `resolve` names what the user wrote. */
const limiterFieldNames = {
  store: "store",
  algorithm: "algorithm",
  ratePerSecond: "rate_per_second",
  rate: "rate",
  burst: "burst",
  maxConcurrent: "max_concurrent",
  limit: "limit",
  window: "window_seconds",
  timeout: "timeout",
  failClosed: "fail_closed",
  lease: "lease_ms",
  blockCache: "block_cache"
} as const satisfies Record<keyof LimiterDefinition, LimiterField>

const allStoreFields: ReadonlyArray<string> = Array.from(new Set(engines.flatMap((e) => storeFields[e])))

/**
 * The environment variable that overrides one value: `RATE_SYNC_` then the segments upper-cased,
 * with every character other than `A-Z` and `0-9` turned into `_`.
 *
 * @example
 * ```ts
 * envVariable("stores", "main", "url") // "RATE_SYNC_STORES_MAIN_URL"
 * envVariable("limiters", "api-v2", "rate_per_second") // "RATE_SYNC_LIMITERS_API_V2_RATE_PER_SECOND"
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const envVariable = (...segments: ReadonlyArray<string>): string => envVariableOf(...segments)

/**
 * Validates a store definition written in code (what `RateLimiter.configureStore` and
 * `RateLimiter.make` take) by the rules of the `[stores.<id>]` tables: the engine, no unknown
 * field, and every field's type and range (URL schemes, identifiers, key prefix, bucket name, pool
 * sizes). Durations are finite `Fx.DurationInput`s (Effect 3 `Duration.DurationInput`, Effect 4
 * `Duration.Input`) and secrets must be `Redacted`. A bad definition is a `ConfigError` at
 * `stores.<id>.<field>`, with the TypeScript field name (`stores.main.keyPrefix`); a secret's
 * value is never shown. Answers the definition with its durations as `Duration`s; the answer is
 * an `Either` on Effect 3 and a `Result` on Effect 4 (`Fx.Result`).
 *
 * @since 0.1.0
 * @category config
 */
export const decodeStoreDefinition: (id: string, definition: unknown) => Fx.Result<StoreDefinition, ConfigError> =
  StoreDefinitions.decodeStoreDefinition

// -------------------------------------------------------------------------------------------
// values

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const set = <T, K extends keyof T>(target: Mutable<T>, key: K, value: T[K] | undefined): void => {
  if (value !== undefined) target[key] = value
}

/** A duration field of a limiter as a `Duration`. */
const seconds = (t: Table, field: string, allowZero: boolean): Duration.Duration | undefined => {
  const ms = durationField(t, field, { allowZero })
  return ms === undefined ? undefined : Duration.millis(ms)
}

// -------------------------------------------------------------------------------------------
// limiters

const algorithms: ReadonlyArray<Algorithm> = ["token_bucket", "sliding_window", "fixed_window"]
const isAlgorithm = (s: string): s is Algorithm => algorithms.some((a) => a === s)

/** A duration field as the user wrote it (a variable's number of seconds shown as the number read). */
const describeSeconds = (raw: Raw): string => describe(isText(raw) ? envNumber(raw.value) ?? raw.value : raw.value)

const decodeLimiter = (t: Table, storeIds: ReadonlyArray<string>): LimiterDefinition => {
  t.rejectUnknown(limiterFields, limiterFields, "the limiter fields")
  const def: Mutable<LimiterDefinition> = {}

  const store = stringField(t, "store")
  if (store !== undefined && !storeIds.includes(store)) {
    const raw = t.raw("store")
    if (raw !== undefined) {
      t.fail(
        "store",
        storeIds.length === 0
          ? "a store declared as [stores.<id>] (none is declared; leave store out to use the implicit memory store)"
          : `one of the declared stores: ${storeIds.map(quote).join(", ")}`,
        raw
      )
    }
  }
  set(def, "store", store)

  const algorithm = stringField(t, "algorithm", {
    test: isAlgorithm,
    expected: `one of ${algorithms.map(quote).join(", ")}`
  })
  if (algorithm !== undefined && isAlgorithm(algorithm)) def.algorithm = algorithm

  set(def, "ratePerSecond", numberField(t, "rate_per_second"))
  set(def, "rate", stringField(t, "rate"))
  set(def, "burst", numberField(t, "burst"))
  set(def, "maxConcurrent", numberField(t, "max_concurrent"))
  set(def, "limit", numberField(t, "limit"))
  set(def, "window", seconds(t, "window_seconds", false))
  set(def, "timeout", seconds(t, "timeout", true))
  set(def, "failClosed", booleanField(t, "fail_closed"))
  const leaseMs = numberIn(t, "lease_ms", "positive")
  if (leaseMs !== undefined) def.lease = Duration.millis(leaseMs)
  set(def, "blockCache", booleanField(t, "block_cache"))

  const resolved = resolve(t.id, def, { path: t.path, fieldNames: limiterFieldNames })
  if (Fx.isErr(resolved)) {
    // Say where a value that came from the environment was set.
    // `resolve` sees the Durations made from window_seconds / timeout: show what the user wrote.
    const e = Fx.errOf(resolved)
    const field = limiterFields.find((f) => t.at(f) === e.path)
    const raw = field === undefined ? undefined : t.raw(field)
    if (field === undefined || raw === undefined) throw e
    const converted = field === "window_seconds" || field === "timeout"
    const value = converted ? describeSeconds(raw) : e.received
    throw ConfigError.at(e.path, e.expected, `${value}${originOf(raw)}`)
  }
  return def
}

// -------------------------------------------------------------------------------------------
// document

interface Shape {
  readonly stores: ReadonlyArray<readonly [string, TomlTable]>
  readonly limiters: ReadonlyArray<readonly [string, TomlTable]>
}

/**
 * `f()` as an effect: a thrown `ConfigError` (or a core `FieldError`, as one) is the failure; any
 * other exception is a defect of the effect this is yielded in.
 */
const attempt = <A>(f: () => A): Effect.Effect<A, ConfigError> => {
  try {
    return Effect.succeed(f())
  } catch (e) {
    if (e instanceof ConfigError) return Effect.fail(e)
    if (e instanceof FieldError) return Effect.fail(StoreDefinitions.toConfigError(e))
    throw e
  }
}

/**
 * The TOML parser, loaded only when a text is parsed: importing this module (or the registry,
 * which validates definitions with `internal/config/storeDefinition.ts`) does not load it.
 */
const tomlOf = (text: string, source: string): Effect.Effect<TomlTable, ConfigError> =>
  Effect.flatMap(Effect.promise(() => import("smol-toml")), ({ parse: parseToml, TomlError }) => {
    try {
      return Effect.succeed(parseToml(text.startsWith("\uFEFF") ? text.slice(1) : text))
    } catch (e) {
      if (e instanceof TomlError) {
        // The first line only: the rest of the message quotes the file, which may hold a secret.
        const reason = e.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "") ?? "invalid TOML"
        return Effect.fail(ConfigError.at(source, "a valid TOML document", `${reason} at line ${e.line}, column ${e.column}`))
      }
      return Effect.fail(ConfigError.at(source, "a valid TOML document", "a document the TOML parser rejected"))
    }
  })

const sectionOf = (doc: TomlTable, section: "stores" | "limiters"): ReadonlyArray<readonly [string, TomlTable]> => {
  const value = doc[section]
  if (value === undefined) return []
  const what = section === "stores" ? "store" : "limiter"
  if (!isTable(value)) throw ConfigError.at(section, `a table of ${what}s ([${section}.<id>])`, describe(value))
  return Object.entries(value).map(([id, table]) => {
    const path = `${section}.${id}`
    if (id.length === 0 || id === "__proto__") throw ConfigError.at(path, `a ${what} id (not empty, not __proto__)`, quote(id))
    if (!isTable(table)) throw ConfigError.at(path, `a table ([${section}.${id}])`, describe(table))
    return [id, table] as const
  })
}

const shapeOf = (doc: TomlTable): Shape => {
  for (const key of Object.keys(doc)) {
    if (key !== "stores" && key !== "limiters") {
      throw ConfigError.at(key, "one of the top-level tables: stores, limiters", "an unknown field")
    }
  }
  return { stores: sectionOf(doc, "stores"), limiters: sectionOf(doc, "limiters") }
}

/** Reads one variable from the current `ConfigProvider`; empty counts as unset. */
const readVariable = (name: string): Effect.Effect<Option.Option<string>, ConfigError> =>
  Config.option(Fx.configString(name)).pipe(
    Effect.map(Option.filter((s) => s.trim().length > 0)),
    Effect.mapError(() => ConfigError.at(name, "a readable value from the ConfigProvider", "a ConfigProvider failure"))
  )

const readOverrides = (shape: Shape): Effect.Effect<ReadonlyMap<string, string>, ConfigError> => {
  const names = [
    ...shape.stores.flatMap(([id]) => allStoreFields.map((f) => envVariable("stores", id, f))),
    ...shape.limiters.flatMap(([id]) => limiterFields.map((f) => envVariable("limiters", id, f)))
  ]
  return Effect.map(
    Effect.forEach(new Set(names), (name) => Effect.map(readVariable(name), Option.map((value) => [name, value] as const))),
    (found) => new Map(found.flatMap(Option.toArray))
  )
}

/** The variables the `${VAR}` references of the tables' strings (and arrays of strings) name. */
const referencedVariables = (shape: Shape): ReadonlySet<string> => {
  const names = new Set<string>()
  const visit = (value: unknown): void => {
    if (typeof value === "string" && hasReference(value)) for (const name of variablesOf(value)) names.add(name)
    else if (Array.isArray(value)) for (const item of value) visit(item)
  }
  for (const [, table] of [...shape.stores, ...shape.limiters]) for (const value of Object.values(table)) visit(value)
  return names
}

/** Reads the variables the file's `${VAR}` references name (the ones set, not empty). */
const readReferences = (shape: Shape): Effect.Effect<ReadonlyMap<string, string>, ConfigError> =>
  Effect.map(
    Effect.forEach(referencedVariables(shape), (name) => Effect.map(readVariable(name), Option.map((value) => [name, value] as const))),
    (found) => new Map(found.flatMap(Option.toArray))
  )

const decode = (
  shape: Shape,
  env: ReadonlyMap<string, string>,
  variables: ReadonlyMap<string, string>
): RateSyncConfig => {
  const stores = shape.stores.map(([id, file]) =>
    [id, StoreDefinitions.decodeStoreFile(new Table(`stores.${id}`, "stores", id, file, env, undefined, variables))] as const
  )
  const storeIds = stores.map(([id]) => id)
  const limiters = shape.limiters.map(([id, file]) =>
    [id, decodeLimiter(new Table(`limiters.${id}`, "limiters", id, file, env, undefined, variables), storeIds)] as const
  )
  return { stores: Object.fromEntries(stores), limiters: Object.fromEntries(limiters) }
}

/**
 * Decodes the text of a `rate-sync.toml`, then applies the environment overrides the current
 * `ConfigProvider` holds (`RATE_SYNC_STORES_<ID>_<FIELD>`, `RATE_SYNC_LIMITERS_<ID>_<FIELD>`; see
 * {@link envVariable}). Overrides apply to the stores and limiters the text declares. `source`
 * names the text in errors (the path of a syntax error).
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (text: string, source: string = DEFAULT_PATH): Effect.Effect<RateSyncConfig, ConfigError> =>
  Effect.gen(function*() {
    const doc = yield* tomlOf(text, source)
    const shape = yield* attempt(() => shapeOf(doc))
    const env = yield* readOverrides(shape)
    const variables = yield* readReferences(shape)
    return yield* attempt(() => decode(shape, env, variables))
  })

const errorCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

const unreadable: Record<string, string> = {
  ENOENT: "no such file",
  EISDIR: "a directory",
  EACCES: "a file this process may not read",
  EPERM: "a file this process may not read"
}

/** Reads a file: its text, or the error code of a failure (`ENOENT`, ...). */
const readText = (file: string): Effect.Effect<string, string | undefined> =>
  Effect.tryPromise({
    // node:fs is loaded only when a file is read
    try: (signal) => import("node:fs/promises").then(({ readFile }) => readFile(file, { encoding: "utf8", signal })),
    catch: errorCode
  })

const unreadableError = (file: string, code: string | undefined, expected: string): ConfigError =>
  ConfigError.at(
    file,
    expected,
    (code === undefined ? undefined : unreadable[code]) ?? `an unreadable file (${code ?? "unknown error"})`
  )

/**
 * Reads and decodes a configuration file (see {@link parse}). The file is `path` when given, else
 * `$RATE_SYNC_CONFIG` (read from the current `ConfigProvider`), else the first of
 * {@link DEFAULT_PATHS} that exists (`./rate-sync.toml`, then `./config/rate-sync.toml`). No
 * default file gives {@link empty}; an absent file that was named explicitly is a `ConfigError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (path?: string): Effect.Effect<RateSyncConfig, ConfigError> =>
  Effect.gen(function*() {
    const named = path !== undefined ? Option.some(path) : yield* readVariable(PATH_VARIABLE)
    if (Option.isSome(named)) {
      const file = named.value
      const expected = path === undefined
        ? `an existing, readable TOML file (named by ${PATH_VARIABLE})`
        : "an existing, readable TOML file"
      const text = yield* Effect.mapError(readText(file), (code) => unreadableError(file, code, expected))
      return yield* parse(text, file)
    }
    for (const file of DEFAULT_PATHS) {
      const text = yield* readText(file).pipe(
        Effect.map(Option.some),
        Fx.catchAll((code) =>
          code === "ENOENT"
            ? Effect.succeed(Option.none<string>())
            : Effect.fail(unreadableError(file, code, "an existing, readable TOML file"))
        )
      )
      if (Option.isSome(text)) return yield* parse(text.value, file)
    }
    return empty
  })
