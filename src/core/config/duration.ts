/**
 * The one duration rule for values read from the environment (`RATE_SYNC_REDIS_COMMAND_TIMEOUT`,
 * `RATE_SYNC_STORES_MAIN_SWEEP_INTERVAL`, ...): a number of seconds (rate-sync's unit, `"0.5"`,
 * `"inf"` for an infinite duration) or a duration string as Effect's `Duration` reads it
 * (`"500 millis"`, `"2 seconds"`). Never negative.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */

// Effect's `Duration.decode` string form (effect/src/Duration.ts), without its negative values.
const DURATION_RE = /^(\d+(?:\.\d+)?)\s+(nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?)$/

const unitMs: Record<string, number> = {
  nano: 1e-6,
  micro: 1e-3,
  milli: 1,
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000
}

/**
 * A number as read from the environment: `_` separators allowed (`"1_000"`), `nan` and `inf`
 * read (so a range check can reject them with what was received); `undefined` when not a number.
 *
 * @internal
 */
export const envNumber = (s: string): number | undefined => {
  const x = s.trim().replace(/_/g, "")
  if (/^[+-]?nan$/i.test(x)) return NaN
  if (/^[+-]?inf(inity)?$/i.test(x)) return x.startsWith("-") ? -Infinity : Infinity
  if (x === "") return undefined
  const n = Number(x)
  return Number.isNaN(n) ? undefined : n
}

/**
 * A duration string (`"500 millis"`) in milliseconds; `undefined` when `s` is not one.
 *
 * @internal
 */
export const durationStringMs = (s: string): number | undefined => {
  const match = DURATION_RE.exec(s.trim())
  if (match === null) return undefined
  const [, value, unit] = match
  if (value === undefined || unit === undefined) return undefined
  const scale = unitMs[unit.endsWith("s") ? unit.slice(0, -1) : unit]
  return scale === undefined ? undefined : Number(value) * scale
}

/**
 * What an environment value of a duration field is, in milliseconds: seconds first (a number,
 * `NaN`, `±Infinity` or negative included, for the caller's range check to refuse), else a
 * duration string; `undefined` when it is neither.
 *
 * @internal
 */
export const envDurationMs = (s: string): number | undefined => {
  const seconds = envNumber(s)
  if (seconds !== undefined) return seconds * 1000
  return durationStringMs(s)
}
