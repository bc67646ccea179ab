/**
 * A driver's environment `Config`, derived from its engine's field table
 * (`core/config/fields.ts`): one variable per field, named by its TOML name upper-cased
 * (`command_timeout` → `COMMAND_TIMEOUT`, under `RATE_SYNC_REDIS_` for `RedisStore.config`), read
 * by its kind. Durations follow the one rule (`internal/store/options.ts` `durationConfig`:
 * seconds or a duration string); lists are comma-separated. An unset variable leaves its option
 * out. Ranges and patterns are checked where every other option is: by the driver's `make`.
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as Redacted from "effect/Redacted"
import * as Fx from "#fx/core"
import type { Field } from "../../core/config/fields.js"
import { durationConfig, optional } from "../store/options.js"
import type { ShapeOf } from "./shape.js"

const list = (name: string): Config.Config<ReadonlyArray<string>> =>
  Config.map(Fx.configString(name), (s) => s.split(",").map((item) => item.trim()).filter((item) => item !== ""))

/** The `Config` of one field, by its kind. @internal */
export const fieldConfig = (field: Field): Config.Config<unknown> => {
  const name = field.toml.toUpperCase()
  switch (field.kind) {
    case "string":
      return Fx.configString(name)
    case "secret":
    case "url":
      return Fx.configRedacted(name)
    case "urlList":
      return Config.map(list(name), (items) => items.map((item) => Redacted.make(item)))
    case "integer":
      return Fx.configInt(name)
    case "number":
      return Fx.configNumber(name)
    case "boolean":
      return Fx.configBoolean(name)
    case "duration":
      return durationConfig(name)
    case "stringList":
      return list(name)
  }
}

/**
 * The options of `fields` read from configuration, under `RATE_SYNC_<ENGINE>_`.
 *
 * @internal
 */
export const fieldsConfig = <F extends Field>(
  engine: string,
  fields: ReadonlyArray<F>
): Config.Config<ShapeOf<F>> => {
  const configs: Record<string, Config.Config<unknown>> = {}
  for (const field of fields) configs[field.name] = optional(fieldConfig(field))
  const all = Config.map(Config.all(configs), (values) => {
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(values)) if (value !== undefined) out[key] = value
    return out
  })
  // A typed boundary: `out` holds, by TypeScript name, each field of `fields` that is set, with
  // the type its kind gives (`fieldConfig`): what `ShapeOf<F>` says.
  return all.pipe(Config.nested(engine.toUpperCase()), Config.nested("RATE_SYNC")) as Config.Config<unknown> as Config.Config<
    ShapeOf<F>
  >
}
