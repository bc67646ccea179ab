/**
 * Reading one `[stores.<id>]` / `[limiters.<id>]` table of `rate-sync.toml` with its environment
 * overrides, or a definition written in code, field by field, to plain values: secrets are
 * strings, durations milliseconds. Every bad value throws a {@link FieldError} naming the path,
 * what was expected and what was received (a secret's value is never shown); the Effect side
 * (`internal/config/`) turns it into a `ConfigError` and builds `Redacted` and `Duration` values.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */
import { displayUrl, parseUrl } from "../url.js"
import type { StoreUrl } from "../url.js"
import { envDurationMs, envNumber } from "./duration.js"
import { expand, hasReference } from "./interpolate.js"
import type { StringCheck, UrlCheck } from "./fields.js"

/** An invalid value: thrown by the readers, caught at the module's boundary. @internal */
export class FieldError extends Error {
  constructor(readonly path: string, readonly expected: string, readonly received: string) {
    super(`Invalid configuration at ${path || "<root>"}: expected ${expected}, received ${received}`)
  }
}

/** Runs `f`, answering its value or the {@link FieldError} it threw. @internal */
export const attempt = <A>(f: () => A): { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: FieldError } => {
  try {
    return { ok: true, value: f() }
  } catch (e) {
    if (e instanceof FieldError) return { ok: false, error: e }
    throw e
  }
}

/**
 * What a definition written in code holds that only the Effect side can read: `Redacted`
 * secrets, `Duration.DurationInput`s, and how its values are described.
 *
 * @internal
 */
export interface CodeValues {
  readonly isSecret: (u: unknown) => boolean
  /** The text a secret holds (only called when `isSecret`). */
  readonly reveal: (u: unknown) => unknown
  /** A `Duration.DurationInput` in milliseconds; `undefined` when it is not a valid one. */
  readonly durationMs: (u: unknown) => number | undefined
  readonly describe: (u: unknown) => string
}

/** @internal */
export type TomlTable = Readonly<Record<string, unknown>>

/** @internal */
export const isTable = (u: unknown): u is TomlTable =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Date)

/** @internal */
export const quote = (s: string): string => JSON.stringify(s)

/** How an error shows a value of the file (or of a variable). @internal */
export const describe = (u: unknown): string => {
  if (typeof u === "number") return Number.isNaN(u) ? "NaN" : String(u)
  if (typeof u === "string") return quote(u.length > 100 ? `${u.slice(0, 100)}...` : u)
  if (typeof u === "boolean") return String(u)
  if (u === undefined) return "nothing"
  if (u instanceof Date) return "a date-time"
  if (Array.isArray(u)) return "an array"
  if (typeof u === "object" && u !== null) return "a table"
  return typeof u
}

const kindOf = (u: unknown): string =>
  typeof u === "string" ? "a string" : typeof u === "number" ? "a number" : typeof u === "boolean" ? "a boolean" : describe(u)

/**
 * The environment variable that overrides one value: `RATE_SYNC_` then the segments upper-cased,
 * with every character other than `A-Z` and `0-9` turned into `_`.
 *
 * @internal
 */
export const envVariable = (...segments: ReadonlyArray<string>): string =>
  ["RATE_SYNC", ...segments].map((s) => s.toUpperCase().replace(/[^A-Z0-9]/g, "_")).join("_")

/**
 * A value as read: from the file, or (a string) from the environment variable `env`. A file
 * string holding `${VAR}` references is read expanded, with the variables it named in `expanded`.
 *
 * @internal
 */
export interface Raw {
  readonly value: unknown
  readonly env: string | undefined
  readonly expanded?: ReadonlyArray<string> | undefined
}

/**
 * Whether a value is text to decode by the environment's rules (numbers, booleans, durations,
 * comma-separated lists): a variable's value, or a file string with `${VAR}` references.
 *
 * @internal
 */
export const isText = (raw: Raw): raw is Raw & { readonly value: string } =>
  typeof raw.value === "string" && (raw.env !== undefined || raw.expanded !== undefined)

/** Where a value came from, as an error says it (` (from RATE_SYNC_...)`, ` (from ${API_RATE})`). @internal */
export const originOf = (raw: Raw): string =>
  raw.env !== undefined
    ? ` (from ${raw.env})`
    : raw.expanded !== undefined
    ? ` (from ${raw.expanded.map((v) => `\${${v}}`).join(", ")})`
    : ""

const referenceExpected = (variable: string): string =>
  `\${${variable}} to be set (or a default: \${${variable}:-value})`

/**
 * Expands the `${VAR}` references of a file string (`variables` holds the ones set), failing at
 * `at` on an unset variable or a malformed reference. The text itself is never shown.
 */
const expandAt = (
  at: string,
  text: string,
  variables: ReadonlyMap<string, string>
): { readonly text: string; readonly variables: ReadonlyArray<string> } => {
  const result = expand(text, (name) => variables.get(name))
  if (result.ok) return result
  const problem = result.problem
  if (problem.kind === "unset") {
    throw new FieldError(at, referenceExpected(problem.variable), `\${${problem.variable}} is not set`)
  }
  throw new FieldError(at, "a string whose ${...} are ${NAME} or ${NAME:-default}", problem.reason)
}

/**
 * One table, with its environment overrides; or (`code` given) a definition written in
 * TypeScript, whose fields are named by `names` (TOML name to TypeScript name), whose durations
 * are `Duration.DurationInput`s and whose secrets are `Redacted`, with no environment overrides.
 *
 * @internal
 */
export class Table {
  constructor(
    readonly path: string,
    readonly section: "stores" | "limiters",
    readonly id: string,
    private readonly file: TomlTable,
    private readonly env: ReadonlyMap<string, string>,
    readonly code?: { readonly values: CodeValues; readonly names: (field: string) => string } | undefined,
    /** The variables `${VAR}` references in the file's strings read (the ones set, not empty). */
    private readonly variables: ReadonlyMap<string, string> = new Map()
  ) {}

  /** The field's name as the user wrote it. */
  name(field: string): string {
    return this.code === undefined ? field : this.code.names(field)
  }

  at(field: string): string {
    return `${this.path}.${this.name(field)}`
  }

  variable(field: string): string {
    return envVariable(this.section, this.id, field)
  }

  raw(field: string): Raw | undefined {
    const variable = this.variable(field)
    const fromEnv = this.env.get(variable)
    if (fromEnv !== undefined) return { value: fromEnv, env: variable }
    const name = this.name(field)
    const value = Object.hasOwn(this.file, name) ? this.file[name] : undefined
    if (value === undefined) return undefined
    // `${VAR}` references, in a file's strings only (not in code, not in a variable's value)
    if (this.code !== undefined) return { value, env: undefined }
    if (typeof value === "string" && hasReference(value)) {
      const expanded = expandAt(this.at(field), value, this.variables)
      return { value: expanded.text, env: undefined, expanded: expanded.variables.length > 0 ? expanded.variables : undefined }
    }
    if (Array.isArray(value) && value.some((item) => typeof item === "string" && hasReference(item))) {
      const names: Array<string> = []
      const items = value.map((item: unknown, i) => {
        if (typeof item !== "string" || !hasReference(item)) return item
        const expanded = expandAt(`${this.at(field)}[${i}]`, item, this.variables)
        for (const v of expanded.variables) if (!names.includes(v)) names.push(v)
        return expanded.text
      })
      // the items stay items (only a whole string is split on commas)
      return { value: items, env: undefined, expanded: names.length > 0 ? names : undefined }
    }
    return { value, env: undefined }
  }

  /** What an error says it received; a secret's value is never shown. */
  received(raw: Raw, secret: boolean, note?: string): string {
    const shown = secret
      ? typeof raw.value === "string" || this.code?.values.isSecret(raw.value) === true
        ? "<redacted>"
        : `<redacted> (${kindOf(raw.value)})`
      : this.code !== undefined
      ? this.code.values.describe(raw.value)
      : describe(raw.value)
    const noted = note === undefined ? shown : `${shown} (${note})`
    return `${noted}${originOf(raw)}`
  }

  fail(field: string, expected: string, raw: Raw, note?: string, secret = false): never {
    throw new FieldError(this.at(field), expected, this.received(raw, secret, note))
  }

  /** Fails on a field (in the file, or set in the environment) that `allowed` does not hold. */
  rejectUnknown(allowed: ReadonlyArray<string>, candidates: ReadonlyArray<string>, what: string): void {
    const names = allowed.map((field) => this.name(field))
    const expected = `one of ${what}: ${names.join(", ")}`
    for (const name of Object.keys(this.file)) {
      if (!names.includes(name)) throw new FieldError(`${this.path}.${name}`, expected, "an unknown field")
    }
    for (const field of candidates) {
      if (!allowed.includes(field) && this.env.has(this.variable(field))) {
        throw new FieldError(this.at(field), expected, `an unknown field (set by ${this.variable(field)})`)
      }
    }
  }
}

// -------------------------------------------------------------------------------------------
// field readers: each answers undefined when the field is absent, throws a FieldError when bad

const envBoolean = (s: string): boolean | undefined => {
  const x = s.trim().toLowerCase()
  if (x === "true" || x === "1" || x === "yes" || x === "on") return true
  if (x === "false" || x === "0" || x === "no" || x === "off") return false
  return undefined
}

/** A number of any value (range checks are the caller's). @internal */
export const numberField = (t: Table, field: string): number | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const n = isText(raw) ? envNumber(raw.value) : raw.value
  if (typeof n !== "number") return t.fail(field, "a number", raw)
  return n
}

/** @internal */
export type Range = "positive" | "nonNegative" | "positiveInt" | "nonNegativeInt"

const rangeExpected: Record<Range, string> = {
  positive: "a finite number greater than 0",
  nonNegative: "a finite number of 0 or more",
  positiveInt: "a whole number greater than 0",
  nonNegativeInt: "a whole number of 0 or more"
}

const inRange = (n: number, range: Range): boolean => {
  switch (range) {
    case "positive":
      return Number.isFinite(n) && n > 0
    case "nonNegative":
      return Number.isFinite(n) && n >= 0
    case "positiveInt":
      return Number.isSafeInteger(n) && n > 0
    case "nonNegativeInt":
      return Number.isSafeInteger(n) && n >= 0
  }
}

/** A number within `range`. @internal */
export const numberIn = (t: Table, field: string, range: Range): number | undefined => {
  const n = numberField(t, field)
  if (n === undefined || inRange(n, range)) return n
  const raw = t.raw(field)
  // Show the number read (an environment value is shown as the number it decoded to).
  return raw === undefined ? undefined : t.fail(field, rangeExpected[range], { ...raw, value: n })
}

const DURATION_ENV_EXPECTED = `a number of seconds or a duration such as "500 millis"`

/**
 * A duration, in milliseconds. In the file a number of seconds (TOML has no duration type;
 * rate-sync uses seconds); from a variable seconds or a duration string (`core/config/duration.ts`,
 * the rule every environment value follows); in a definition written in code a
 * `Duration.DurationInput`, never negative. Finite unless `infinite` (then `inf` / `Infinity`).
 *
 * @internal
 */
export const durationField = (
  t: Table,
  field: string,
  options: { readonly allowZero: boolean; readonly infinite?: boolean | undefined }
): number | undefined => {
  const infinite = options.infinite === true
  if (t.code !== undefined) return durationInput(t, t.code.values, field, options.allowZero, infinite)
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  let n: number
  if (isText(raw)) {
    const ms = envDurationMs(raw.value)
    if (ms === undefined) return t.fail(field, DURATION_ENV_EXPECTED, raw)
    n = ms / 1000
  } else {
    if (typeof raw.value !== "number") return t.fail(field, "a number", raw)
    n = raw.value
  }
  const ok = Number.isNaN(n) ? false : n === Infinity ? infinite : n > 0 || (options.allowZero && n === 0)
  if (!ok) {
    return t.fail(field, options.allowZero ? rangeExpected.nonNegative : rangeExpected.positive, { ...raw, value: n })
  }
  if (n === Infinity) return Infinity
  // Whole microseconds, so 1.1 s is 1100 ms, not 1100.0000000000002.
  const ms = Math.round(n * 1_000_000) / 1000
  // A number of seconds too large for milliseconds would read as an infinite duration (which in
  // code means "none"): it is a mistake, reported with the bound every duration has.
  if (!Number.isFinite(ms)) return t.fail(field, "a duration of at most 10 years (3650 days)", { ...raw, value: n })
  return ms
}

/**
 * A `Duration.DurationInput` of a definition written in code: finite (like the seconds of a
 * file) unless `infinite`, never negative or NaN (which `Duration` would read as 0).
 */
const durationInput = (
  t: Table,
  values: CodeValues,
  field: string,
  allowZero: boolean,
  infinite: boolean
): number | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const ms = values.durationMs(raw.value)
  if (ms === undefined || (!infinite && !Number.isFinite(ms)) || (!allowZero && ms === 0)) {
    const what = infinite ? "duration" : "finite duration"
    return t.fail(field, allowZero ? `a ${what} of 0 or more` : `a ${what} greater than 0`, raw)
  }
  return ms
}

/** @internal */
export const booleanField = (t: Table, field: string): boolean | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const b = isText(raw) ? envBoolean(raw.value) : raw.value
  if (typeof b !== "boolean") {
    return t.fail(field, isText(raw) ? "true or false (or 1/0, yes/no, on/off)" : "true or false", raw)
  }
  return b
}

/** A non-empty string passing `check`. @internal */
export const stringField = (t: Table, field: string, check?: StringCheck): string | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const expected = check?.expected ?? "a non-empty string"
  if (typeof raw.value !== "string" || raw.value.length === 0) return t.fail(field, expected, raw)
  if (check !== undefined && !check.test(raw.value)) return t.fail(field, expected, raw)
  return raw.value
}

/** A non-empty list of strings passing `check`; from the environment, comma-separated. @internal */
export const stringListField = (t: Table, field: string, check?: StringCheck): ReadonlyArray<string> | undefined => {
  const raw = t.raw(field)
  if (raw === undefined) return undefined
  const items = listItems(raw)
  if (items === undefined || items.length === 0) return t.fail(field, `a non-empty array of ${check?.plural ?? "strings"}`, raw)
  return items.map((item, i) => {
    if (typeof item !== "string" || item.length === 0 || (check !== undefined && !check.test(item))) {
      const suffix = originOf(raw)
      // "user:password@host:port" puts credentials where they do not belong: do not echo them.
      const shown = typeof item === "string" && item.includes("@") ? "<redacted> (holds credentials)" : describe(item)
      throw new FieldError(`${t.at(field)}[${i}]`, check?.expected ?? "a non-empty string", `${shown}${suffix}`)
    }
    return item
  })
}

const listItems = (raw: Raw): ReadonlyArray<unknown> | undefined =>
  isText(raw)
    ? raw.value.split(",").map((s) => s.trim()).filter((s) => s.length > 0)
    : Array.isArray(raw.value)
    ? raw.value
    : undefined

const schemeOf = (s: string): string | undefined => {
  try {
    return new URL(s).protocol
  } catch {
    // a URL the WHATWG parser refuses but its driver takes (a PostgreSQL unix socket URL has an
    // empty host: `postgres://user@/db?host=/var/run/postgresql`)
    return /^([a-z][a-z0-9+.-]*:)\/\//i.exec(s)?.[1]?.toLowerCase()
  }
}

/** A Redis URL's database path (`/3`) must be a whole number: ioredis would send `SELECT NaN`. */
const redisDbPath = (url: StoreUrl): string | undefined => {
  const path = url.pathname
  return path === "" || path === "/" || /^\/\d+$/.test(path) ? undefined : `database path ${quote(path.slice(1))}`
}

/** The text of a secret as read (in code: what its `Redacted` holds); fails when not one. */
const secretText = (t: Table, read: Raw, expected: string, at: string): { readonly raw: Raw; readonly text: string } => {
  const fail = (raw: Raw, note?: string): never => {
    throw new FieldError(at, expected, t.received(raw, true, note))
  }
  // In code a secret is a `Redacted` (a plain string would end up in logs and errors).
  const code = t.code
  if (code !== undefined && !code.values.isSecret(read.value)) {
    throw new FieldError(at, `a Redacted value (Redacted.make(...)) holding ${expected}`, t.received(read, true, "not Redacted"))
  }
  const raw: Raw = code !== undefined ? { value: code.values.reveal(read.value), env: read.env } : read
  if (typeof raw.value !== "string") return fail(raw)
  if (raw.value.length === 0) return fail(raw, "an empty string")
  return { raw, text: raw.value }
}

/** Checks one URL text (or each of a comma-separated list); `at` is the path errors name. */
const checkUrl = (t: Table, raw: Raw, text: string, check: UrlCheck, at: string): void => {
  const fail = (note: string): never => {
    throw new FieldError(at, check.expected, t.received(raw, true, note))
  }
  const texts = check.list === true ? text.split(",").map((s) => s.trim()).filter((s) => s !== "") : [text]
  if (texts.length === 0) fail("no URL")
  for (const one of texts) {
    if (check.schemes !== undefined) {
      const scheme = schemeOf(one)
      if (scheme === undefined) fail("not a URL")
      else if (!check.schemes.includes(scheme)) fail(`scheme ${quote(scheme)}`)
    }
    // what the driver would throw on (`URIError: URI malformed`) or read its own way
    const parsed = parseUrl(one, check.rules)
    if (!parsed.ok) {
      if (parsed.problem === "not a URL") fail("not a URL")
      // A URL with a bad `%` escape is shown with its secrets as `***`, never the value.
      const shown = `${displayUrl(one, check.rules)} (${parsed.problem})`
      throw new FieldError(at, check.expected, `${shown}${originOf(raw)}`)
    }
    if (check.redisDb === true) {
      const problem = redisDbPath(parsed.url)
      if (problem !== undefined) fail(problem)
    }
  }
}

/**
 * A secret: an error says `<redacted>` instead of the value (a URL's scheme is not secret; a URL
 * with a bad `%` escape is shown with its secrets as `***`). Answers the text.
 *
 * @internal
 */
export const secretField = (t: Table, field: string, url?: UrlCheck): string | undefined => {
  const read = t.raw(field)
  if (read === undefined) return undefined
  const expected = url?.expected ?? "a non-empty string"
  const { raw, text } = secretText(t, read, expected, t.at(field))
  if (url !== undefined) checkUrl(t, raw, text, url, t.at(field))
  return text
}

/**
 * A non-empty list of secret URLs (in the file an array of strings, from a variable
 * comma-separated, in code an array of `Redacted`). Answers the texts.
 *
 * @internal
 */
export const urlListField = (t: Table, field: string, url: UrlCheck): ReadonlyArray<string> | undefined => {
  const read = t.raw(field)
  if (read === undefined) return undefined
  const items = listItems(read)
  if (items === undefined || items.length === 0) {
    return t.fail(field, "a non-empty array of URL strings", read, undefined, true)
  }
  return items.map((item, i) => {
    const at = `${t.at(field)}[${i}]`
    const { raw, text } = secretText(t, { ...read, value: item }, url.expected, at)
    checkUrl(t, raw, text, url, at)
    return text
  })
}
