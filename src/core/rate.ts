/**
 * Rate strings (`"100/min"`, `"10/5s"`, `"5 per hour"`), as rate-sync and traffik write them, to a
 * rate per second. Plain TypeScript, no Effect import.
 *
 * @internal
 */

const unitMs: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000
}

const rateRe = /^\s*(\d+(?:\.\d+)?)\s*(?:\/|per)\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$/i

/**
 * The rate per second of a rate string: a positive count, `/` or `per`, an optional positive span,
 * and a unit (ms, s, m, h, d, or their long forms); `undefined` for anything else.
 *
 * @internal
 */
export const ratePerSecondOf = (input: string): number | undefined => {
  const m = rateRe.exec(input)
  if (m === null) return undefined
  const count = Number(m[1])
  const span = m[2] === undefined ? 1 : Number(m[2])
  const unit = unitMs[(m[3] ?? "").toLowerCase()]
  if (unit === undefined || !(count > 0) || !(span > 0)) return undefined
  return count / (span * unit / 1000)
}
