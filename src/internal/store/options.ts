/**
 * The store kit: how every driver reads its options. One duration rule for every engine: in code a
 * `Fx.DurationInput` (Effect 3 `Duration.DurationInput`, Effect 4 `Duration.Input`, a negative one
 * read as 0); from the environment seconds (rate-sync's unit, `"0.5"`) or a duration string
 * (`"50 millis"`), as `core/config/duration.ts` reads them (the `RATE_SYNC_STORES_<ID>_…`
 * overrides of `rate-sync.toml` follow the same rule).
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { err, ok } from "../result.js"
import { envDurationMs } from "../../core/config/duration.js"
import { describeInput } from "../config/input.js"
import * as RateLimitError from "../../RateLimitError.js"

/** A duration option in milliseconds, `fallback` when absent. @internal */
export const toMillis = (input: Fx.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Fx.decodeDuration(input))

/** An optional `Config`: `undefined` when the variable is not set. @internal */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * A duration from the environment: seconds (rate-sync's unit; `inf` for an infinite duration) or a
 * duration string (`"50 millis"`); never negative. Anything else is Effect's invalid-data
 * configuration error naming the variable (`Fx.configStringChecked`). @internal
 */
export const durationConfig = (name: string): Config.Config<Duration.Duration> =>
  Fx.configStringChecked(name, (text: string) => {
    const ms = envDurationMs(text)
    return ms === undefined || Number.isNaN(ms) || ms < 0
      ? err(`Expected seconds or a duration such as "500 millis", received ${JSON.stringify(text)}`)
      : ok(ms === Infinity ? Duration.infinity : Duration.millis(ms))
  })

/**
 * The `blockCache` option as the service carries it (`RateLimitStoreService.blockCache`): only a
 * `false` is written down; a `ConfigError` at `blockCache` for what is not a boolean (an untyped
 * caller's `"no"`). @internal
 */
export const blockCacheOption = (
  value: unknown
): { readonly blockCache?: false } | RateLimitError.ConfigError => {
  if (value === undefined || value === true) return {}
  if (value === false) return { blockCache: false }
  return RateLimitError.ConfigError.at("blockCache", "true or false", describeInput(value))
}

/** What a value that should have been a secret is, in words that never show it. */
const kindOf = (value: unknown): string => {
  if (typeof value === "string") return "a plain string (wrap it: Redacted.make(…))"
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  return typeof value === "object" ? "an object that is not a Redacted" : `a ${typeof value}`
}

/**
 * The text of a secret option (a URL, a password, a token): the value of a `Redacted` string; a
 * `ConfigError` naming `path` for anything else (what an untyped caller may pass: a plain string,
 * a `Redacted` of a number), which says what it was and never shows it. @internal
 */
export const secretText = (value: unknown, path: string): string | RateLimitError.ConfigError => {
  if (!Redacted.isRedacted(value)) return RateLimitError.ConfigError.at(path, "a Redacted string", kindOf(value))
  const text: unknown = Redacted.value(value)
  return typeof text === "string"
    ? text
    : RateLimitError.ConfigError.at(path, "a Redacted string", `a Redacted ${text === null ? "null" : typeof text}`)
}

/**
 * Each text of a list of secret options at `path` (`servers`): a `ConfigError` naming the list
 * when it is not an array, or the first entry that is not a `Redacted` string. @internal
 */
export const secretTexts = (value: unknown, path: string): ReadonlyArray<string> | RateLimitError.ConfigError => {
  if (!Array.isArray(value)) return RateLimitError.ConfigError.at(path, "an array of Redacted strings", kindOf(value))
  const texts: Array<string> = []
  for (const [i, entry] of value.entries()) {
    const text = secretText(entry, `${path}[${i}]`)
    if (text instanceof RateLimitError.ConfigError) return text
    texts.push(text)
  }
  return texts
}
