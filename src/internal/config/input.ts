/**
 * How the library reads values written in code: a value as an error shows it, a
 * `Fx.DurationInput` (Effect 3 `Duration.DurationInput`, Effect 4 `Duration.Input`) decoded
 * strictly, and the unknown-field check of a limiter definition. Used by every module that
 * validates input (definitions, call options, HTTP options).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Fx from "#fx/core"
import type { LimiterDefinition } from "../../LimiterDefinition.js"
import { ConfigError } from "../../RateLimitError.js"

/**
 * A value passed in code, as an error shows it: numbers and booleans as written, strings quoted
 * (`"2"`), a `Duration` formatted, other values by their kind (`an object`, `a function`).
 *
 * @internal
 */
export const describeInput = (u: unknown): string => {
  switch (typeof u) {
    case "number":
      return Number.isNaN(u) ? "NaN" : String(u)
    case "string":
      return JSON.stringify(u.length > 100 ? `${u.slice(0, 100)}...` : u)
    case "boolean":
      return String(u)
    case "bigint":
      return `${u}n`
    case "undefined":
      return "undefined"
    case "symbol":
      return "a symbol"
    case "function":
      return "a function"
    case "object":
      if (u === null) return "null"
      if (Duration.isDuration(u)) return `${Duration.format(u)} (a Duration)`
      return Array.isArray(u) ? "an array" : "an object"
  }
}

/** The units of an Effect 4 duration object (`{ seconds: 5 }`, `Duration.DurationObject`). */
const objectUnits: ReadonlyArray<string> = [
  "weeks",
  "days",
  "hours",
  "minutes",
  "seconds",
  "milliseconds",
  "microseconds",
  "nanoseconds"
]

/**
 * Whether an object input is one that decoding would accept and turn into something else than it
 * says: a negative `Duration` (Effect 4 has them; Effect 3 makes every `Duration` 0 or more), or a
 * duration object (Effect 4 only; Effect 3 refuses every plain object) with a field that is not a
 * unit or a unit that is not a number of 0 or more (Effect 4 reads `{}` and `{ secs: 5 }` as 0).
 */
const isMisleadingObject = (u: object): boolean => {
  if (Duration.isDuration(u)) return Duration.toMillis(u) < 0
  return Object.entries(u).some(([unit, n]) =>
    !objectUnits.includes(unit) || (n !== undefined && (typeof n !== "number" || Number.isNaN(n) || n < 0))
  ) || Object.keys(u).length === 0
}

/**
 * Decodes a `Fx.DurationInput` to milliseconds, refusing what decoding would throw on (an
 * unparsable string) and what it would quietly turn into 0 (a negative or NaN number, a negative
 * bigint, `"-1 seconds"`, a `[seconds, nanos]` pair with a negative or non-finite part, and on
 * Effect 4 a negative `Duration` or a duration object that is empty, has a field that is not a
 * unit or a negative unit). Answers `undefined` for a bad input; an infinite duration is
 * `Infinity`. What each major accepts otherwise is its own input type: Effect 4 also reads
 * `"Infinity"` and `{ seconds: 5 }`, which Effect 3 refuses.
 *
 * @internal
 */
export const durationInputMs = (u: unknown): number | undefined => {
  if (typeof u === "number" && (Number.isNaN(u) || u < 0)) return undefined
  if (typeof u === "bigint" && u < BigInt(0)) return undefined
  if (typeof u === "string" && u.startsWith("-")) return undefined
  if (Array.isArray(u)) {
    if (u.length !== 2 || !u.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0)) return undefined
  } else if (typeof u === "object" && u !== null && isMisleadingObject(u)) {
    return undefined
  }
  const d = Fx.decodeDurationOption(u)
  return Option.isSome(d) ? Duration.toMillis(d.value) : undefined
}

/**
 * The fields of a `LimiterDefinition` (re-exported as `LimiterDefinition.definitionFields`).
 *
 * @internal
 */
export const definitionFields = [
  "store",
  "algorithm",
  "ratePerSecond",
  "rate",
  "burst",
  "maxConcurrent",
  "limit",
  "window",
  "timeout",
  "failClosed",
  "lease",
  "blockCache"
] as const satisfies ReadonlyArray<keyof LimiterDefinition>

const isDefinitionField = (field: string): field is keyof LimiterDefinition =>
  definitionFields.some((f) => f === field)

/**
 * The first field of `u` that a definition does not have, reported at `base.<field>` with the
 * fields it accepts (as `fieldNames` names them); `undefined` when every field is known.
 *
 * @internal
 */
export const unknownField = (
  u: object,
  base: string,
  fieldNames?: Partial<Record<keyof LimiterDefinition, string>>
): ConfigError | undefined => {
  for (const field of Object.keys(u)) {
    if (!isDefinitionField(field)) {
      const accepted = definitionFields.map((f) => fieldNames?.[f] ?? f).join(", ")
      return ConfigError.at(`${base}.${field}`, `one of the limiter fields: ${accepted}`, "an unknown field")
    }
  }
  return undefined
}
