/**
 * Path matching of the HTTP middleware's `include` / `exclude`: the three forms of a request
 * target and the compiled patterns tested against them.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */
import { type Checked, invalid, valid } from "./problem.js"

// What a request is routed by, as read from @effect/platform 0.97.2 and
// @effect/platform-node 0.108.2:
// - The Node server hands the request target over unchanged: `request.url` is
//   `IncomingMessage.url`, absolute form included (`GET http://evil/login` gives
//   "http://evil/login"). Node also accepts targets that begin with `*` ("*login").
// - `HttpRouter` (and `HttpLayerRouter`, `HttpApiBuilder`) route with find-my-way-ts 0.1.6, whose
//   defaults are `caseSensitive: false`, `ignoreTrailingSlash: true`, `ignoreDuplicateSlashes:
//   true`. Its `find`: a target not starting with "/" loses /^https?:\/\/.*?\// (the first "/"
//   after "://", even past a "?": "http://evil?x/login" is "/login"); runs of "/" are merged;
//   the path ends at the first "?", ";" or "#" ("/login;x" is "/login"); escapes are decoded with
//   decodeURI, which keeps reserved ones (%2F %3B %3F %23 ... and %25) encoded; one trailing "/"
//   is dropped; the rest is lower-cased with `toLowerCase` (so U+212A KELVIN SIGN reaches "/key");
//   and the first character is never compared (the root node is "/"), so "*login" is "/login".
//   It does not resolve dot segments: "/a/../login" is routed as written.
// - `HttpRouter.mount` prefixes are compared with the raw url, case-sensitively.
// So each request is matched in three forms, computed once: `raw` (as sent), `routed` (exactly
// what find-my-way matches) and `canonical` (also dot segments resolved and every escape decoded,
// for whatever a proxy in front may normalise). Limited when any form is included; excluded only
// when every form is excluded, `raw` against the patterns as written and case-sensitively, so an
// exclusion never covers more than its literal spelling, whatever the router's configuration.

/**
 * A path pattern: an exact path, a glob (`*` one segment, `**` any number), or a `RegExp`.
 *
 * @internal
 */
export type PathPattern = string | RegExp

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const REPEATED_SLASHES = /\/\/+/g
const ROUTER_ABSOLUTE_FORM = /^https?:\/\/.*?\//
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i
const PERCENT_25 = /%25/g

/** `path` without one trailing "/" (the root stays "/"). */
const trimTrailingSlash = (path: string): string =>
  path.length > 1 && path.charCodeAt(path.length - 1) === 47 ? path.slice(0, -1) : path

/** The first index at or after `from` of "?", "#" or (when `semicolon`) ";", or the length. */
const pathEnd = (path: string, from: number, semicolon: boolean): number => {
  for (let i = from; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c === 63 || c === 35 || (semicolon && c === 59)) return i
  }
  return path.length
}

/** A pattern written the way find-my-way stores a route: runs of "/" merged, no trailing "/". */
const routeShape = (pattern: string): string => trimTrailingSlash(pattern.replace(REPEATED_SLASHES, "/"))

/**
 * A glob as a test: without `*` an exact comparison; `*` matches within one segment, a `**`
 * segment any number of segments (none included: `"/static/**"` matches `"/static"`).
 *
 * @internal
 */
export const compileGlob = (pattern: string): (path: string) => boolean => {
  if (!pattern.includes("*")) return (path) => path === pattern
  let source = ""
  const segments = pattern.split("/")
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] ?? ""
    if (i > 0) source += segment === "**" ? "" : "/"
    if (segment === "**") source += i > 0 ? "(?:/.*)?" : ".*"
    else source += segment.split("*").map(escapeRegExp).join("[^/]*")
  }
  const re = new RegExp(`^${source}$`)
  return (path) => re.test(path)
}

/** @internal */
export interface PathMatcher {
  /** The pattern as written, case-sensitive: tested against the raw path. */
  readonly exact: (path: string) => boolean
  /** The pattern shaped like a route and lower-cased: tested against the lower-cased forms. */
  readonly folded: (path: string) => boolean
}

/** @internal */
export const compilePattern = (pattern: PathPattern): PathMatcher => {
  if (typeof pattern !== "string") {
    // copies without the stateful flags, so `test` never depends on a previous call
    const flags = pattern.flags.replace(/[gy]/g, "")
    const exact = new RegExp(pattern.source, flags)
    const folded = new RegExp(pattern.source, flags.includes("i") ? flags : `${flags}i`)
    return { exact: (path) => exact.test(path), folded: (path) => folded.test(path) }
  }
  return { exact: compileGlob(pattern), folded: compileGlob(routeShape(pattern).toLowerCase()) }
}

/**
 * `include` / `exclude` at option `path`: an array of glob strings and regular expressions, or
 * nothing. Checked at run time: plain JavaScript callers and configuration files reach here
 * unchecked.
 *
 * @internal
 */
export const compilePatterns = (
  path: string,
  patterns: ReadonlyArray<PathPattern> | undefined
): Checked<ReadonlyArray<PathMatcher>> => {
  if (patterns === undefined) return valid([])
  const entries: unknown = patterns
  if (!Array.isArray(entries)) return invalid(path, "an array of path patterns (strings or RegExps)", entries)
  const matchers: Array<PathMatcher> = []
  for (let i = 0; i < entries.length; i++) {
    const entry: unknown = entries[i]
    if (typeof entry === "string" || entry instanceof RegExp) matchers.push(compilePattern(entry))
    else return invalid(`${path}[${i}]`, "a path pattern (a string or a RegExp)", entry)
  }
  return valid(matchers)
}

/** @internal */
export interface RequestPaths {
  readonly raw: string
  readonly routed: string
  readonly canonical: string
}

/** find-my-way-ts `find`'s path, step by step (see the comment at the top). */
const routedPath = (url: string): string => {
  let routed = url.charCodeAt(0) === 47 ? url : url.replace(ROUTER_ABSOLUTE_FORM, "/")
  routed = routed.replace(REPEATED_SLASHES, "/")
  routed = routed.slice(0, pathEnd(routed, 1, true))
  if (routed.includes("%")) {
    try {
      routed = decodeURI(routed.replace(PERCENT_25, "%2525"))
    } catch {
      // the router routes nothing here; keep the escapes
    }
  }
  routed = trimTrailingSlash(routed).toLowerCase()
  return `/${routed.slice(1)}`
}

/** Scheme and host dropped, cut at "?" "#" ";", decoded, dot segments resolved, lower-cased. */
const canonicalPath = (url: string): string => {
  let target = url
  if (target.charCodeAt(0) !== 47) {
    const absolute = ABSOLUTE_FORM.exec(target)
    target = absolute === null ? `/${target.slice(1)}` : target.slice(absolute[0].length)
  }
  let path = target.slice(0, pathEnd(target, 0, true))
  if (path.includes("%")) {
    try {
      path = decodeURIComponent(path)
    } catch {
      // an invalid escape: match the path undecoded
    }
  }
  const segments: Array<string> = []
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue
    if (segment === "..") segments.pop()
    else segments.push(segment)
  }
  return `/${segments.join("/")}`.toLowerCase()
}

/**
 * One request target in the three forms matched against `include` / `exclude` (see the comment
 * at the top): `raw`, the target up to the first "?" or "#"; `routed`, what find-my-way-ts routes
 * it by (lower-cased, dot segments kept); `canonical`, scheme and host of an absolute form
 * removed, cut at the first "?", "#" or ";", percent-decoded (kept as is when an escape is
 * invalid), dot segments resolved, empty segments and the trailing "/" dropped, lower-cased.
 * Never throws.
 *
 * @internal
 */
export const requestPaths = (url: string): RequestPaths => {
  const rawEnd = pathEnd(url, 0, false)
  const raw = rawEnd === 0 ? "/" : url.slice(0, rawEnd)
  return { raw, routed: routedPath(url), canonical: canonicalPath(url) }
}

const always = (_url: string): boolean => true

/**
 * Whether a request target is limited, failing toward limiting: excluded only when every form is
 * excluded, included when any form is. Without patterns, a test that answers `true` without
 * looking at the target.
 *
 * @internal
 */
export const pathFilter = (
  includes: ReadonlyArray<PathMatcher>,
  excludes: ReadonlyArray<PathMatcher>
): (url: string) => boolean => {
  if (includes.length === 0 && excludes.length === 0) return always
  return (url) => {
    const { canonical, raw, routed } = requestPaths(url)
    const excluded = excludes.length > 0 &&
      excludes.some((m) => m.exact(raw)) &&
      excludes.some((m) => m.folded(routed)) &&
      (canonical === routed || excludes.some((m) => m.folded(canonical)))
    if (excluded) return false
    return includes.length === 0 ||
      includes.some((m) => m.exact(raw) || m.folded(routed) || (canonical !== routed && m.folded(canonical)))
  }
}
