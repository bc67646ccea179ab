/**
 * Secret redaction shared by every store: the forms a secret can take in a driver's or a server's
 * message (raw, percent-decoded, percent-encoded, JSON-escaped), computed once per store, and a
 * redactor that covers every occurrence of any of them.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */

/** The body of the JSON string of `s`: what a server echoing a JSON document (NATS `CONNECT`) shows. */
const jsonEscaped = (s: string): string => JSON.stringify(s).slice(1, -1)

const tryDecode = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/** `encodeURIComponent` / `encodeURI`, which throw on a lone surrogate. */
const tryEncode = (encode: (s: string) => string, s: string): string | undefined => {
  try {
    return encode(s)
  } catch {
    return undefined
  }
}

/** Decodes each run of valid escapes and leaves a bad one as it is (what a lenient decoder does). */
const lenientDecode = (s: string): string => s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => tryDecode(run) ?? run)

/** `s` as a URL's userinfo holds it (the WHATWG userinfo percent-encode set). */
const userinfoEncoded = (s: string): string => {
  const url = new URL("x://h")
  url.password = s
  return url.password
}

/** `s` as a URL's query holds it when set as a whole (the WHATWG query percent-encode set). */
const queryEncoded = (s: string): string => {
  const url = new URL("x://h")
  url.search = s
  return url.search.slice(1)
}

/** `s` as a form-encoded (`URLSearchParams`) value: space is `+`. */
const formEncoded = (s: string): string => new URLSearchParams([["k", s]]).toString().slice(2)

const lowerHex = (s: string): string => s.replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())

/**
 * Every form `secret` can take in a message, longest first: the secret itself, its
 * percent-decoded forms (strict when it is valid percent-encoding, lenient, and form-decoded with
 * `+` as space), each of those percent-encoded (`encodeURIComponent`, `encodeURI`, a URL's
 * userinfo and query encodings, form encoding; upper- and lower-case hex), and the JSON-escaped
 * form of every one (`JSON.stringify(s).slice(1, -1)`). Empty for an empty secret.
 *
 * @internal
 */
export const variantsOf = (secret: string): ReadonlyArray<string> => {
  if (secret === "") return []
  const bases = new Set<string>([secret, lenientDecode(secret)])
  const decoded = tryDecode(secret)
  if (decoded !== undefined) bases.add(decoded)
  const formDecoded = tryDecode(secret.replace(/\+/g, " "))
  if (formDecoded !== undefined) bases.add(formDecoded)
  const forms = new Set<string>()
  for (const base of bases) {
    const encoded = [
      base,
      tryEncode(encodeURIComponent, base),
      tryEncode(encodeURI, base),
      userinfoEncoded(base),
      queryEncoded(base),
      formEncoded(base)
    ]
    for (const form of encoded) {
      if (form === undefined) continue
      forms.add(form)
      forms.add(lowerHex(form))
    }
  }
  const out = new Set<string>()
  for (const form of forms) {
    out.add(form)
    out.add(jsonEscaped(form))
  }
  return Array.from(out).filter((s) => s !== "").sort((a, b) => b.length - a.length)
}

/**
 * A pattern a redactor applies after the secrets: text that is secret by its place whatever its
 * value (a URL's userinfo, a `password=` pair, the arguments of Redis `AUTH`).
 *
 * @internal
 */
export interface Pattern {
  readonly regex: RegExp
  readonly replacement: string
}

/** The mark left where a secret was. @internal */
export const MASK = "***"

/** `scheme://<userinfo>@` → `scheme://***@`. @internal */
export const userinfoPattern: Pattern = { regex: /([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, replacement: `$1${MASK}@` }

/** The query parameters that hold a secret in a store URL (compared case-insensitively). @internal */
export const SECRET_PARAMS: ReadonlySet<string> = new Set(["password", "sslpassword", "pass", "token", "auth_token"])

/** `?password=…`, `&token=…` and the other secret query parameters of a URL in a message. @internal */
export const secretParamPattern: Pattern = {
  regex: /([?&;](?:password|sslpassword|pass|token|auth_token)=)[^&\s#'"]*/gi,
  replacement: `$1${MASK}`
}

/**
 * Covers every occurrence of every variant in `message` (overlapping ones included) and writes
 * each covered run once as `***`: a secret inside another, or two that overlap, never leave a
 * piece behind, whatever the order.
 */
const mask = (message: string, variants: ReadonlyArray<string>): string => {
  let covered: Uint8Array | undefined
  for (const variant of variants) {
    let i = message.indexOf(variant)
    while (i >= 0) {
      covered ??= new Uint8Array(message.length)
      covered.fill(1, i, i + variant.length)
      i = message.indexOf(variant, i + 1)
    }
  }
  if (covered === undefined) return message
  let out = ""
  let i = 0
  while (i < message.length) {
    if (covered[i] === 1) {
      while (i < message.length && covered[i] === 1) i++
      out += MASK
    } else {
      const start = i
      while (i < message.length && covered[i] !== 1) i++
      out += message.slice(start, i)
    }
  }
  return out
}

/**
 * A function that removes the secrets from a message: every variant ({@link variantsOf}) of each
 * secret, then the `patterns`. The variants are computed here, once: build one redactor per store,
 * not per message.
 *
 * @internal
 */
export const makeRedactor = (
  secrets: ReadonlyArray<string>,
  patterns: ReadonlyArray<Pattern> = []
): (message: string) => string => {
  const variants = Array.from(new Set(secrets.flatMap(variantsOf))).sort((a, b) => b.length - a.length)
  return (message) => {
    let out = mask(message, variants)
    for (const pattern of patterns) out = out.replace(pattern.regex, pattern.replacement)
    return out
  }
}

/**
 * The text of a thrown value: an `Error`'s message, a string as it is.
 *
 * @internal
 */
export const messageOf = (u: unknown): string => {
  if (u instanceof Error) return u.message
  if (typeof u === "string") return u
  return "unknown error"
}
