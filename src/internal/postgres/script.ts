/**
 * A multi-statement SQL text (what the PostgreSQL store sends as one simple-protocol message on
 * Effect 3) as its statements, for a driver that only speaks the extended protocol (`@effect/sql-pg`
 * 4, see `src/fx/v4/sql.ts`), which refuses a second command in one statement (42601 `cannot insert
 * multiple commands into a prepared statement`). Plain functions, no Effect import.
 *
 * @internal
 */

/** A character that continues an identifier (PostgreSQL identifiers may hold `$` and non-ASCII letters). */
const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/

/** The dollar-quote tag (`$tag$`, `$$`) starting at `i`, or `undefined` (`$1` is a parameter). */
const dollarTag = (text: string, i: number): string | undefined => {
  if (i > 0 && IDENT.test(text.charAt(i - 1))) return undefined
  const m = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 64))
  return m === null ? undefined : m[0]
}

/** Past the quoted literal or identifier opening at `i` (`''` doubles the quote; `\` escapes in an `E'…'`). */
const skipQuoted = (text: string, i: number, quote: string, backslashes: boolean): number => {
  let j = i + 1
  while (j < text.length) {
    const c = text.charAt(j)
    if (backslashes && c === "\\") j += 2
    else if (c === quote) {
      if (text.charAt(j + 1) !== quote) return j + 1
      j += 2
    } else j++
  }
  return j
}

/** Past the block comment opening at `i` (PostgreSQL nests them). */
const skipBlockComment = (text: string, i: number): number => {
  let depth = 0
  let j = i
  while (j < text.length) {
    if (text.startsWith("/*", j)) {
      depth++
      j += 2
    } else if (text.startsWith("*/", j)) {
      depth--
      j += 2
      if (depth === 0) return j
    } else j++
  }
  return j
}

/** Whether the `'` at `i` opens an escape string (`E'…'`: an `E` that is not the end of a longer word). */
const isEscapeString = (text: string, i: number): boolean =>
  i > 0 && /[Ee]/.test(text.charAt(i - 1)) && (i < 2 || !IDENT.test(text.charAt(i - 2)))

/**
 * The statements of `text`, split at each `;` outside string literals, quoted identifiers,
 * dollar-quoted bodies and comments; each trimmed, empty ones left out.
 *
 * @internal
 */
export const splitStatements = (text: string): ReadonlyArray<string> => {
  const statements: Array<string> = []
  const push = (statement: string) => {
    const trimmed = statement.trim()
    if (trimmed !== "") statements.push(trimmed)
  }
  let start = 0
  let i = 0
  while (i < text.length) {
    const c = text.charAt(i)
    if (c === "'") i = skipQuoted(text, i, "'", isEscapeString(text, i))
    else if (c === "\"") i = skipQuoted(text, i, "\"", false)
    else if (c === "-" && text.charAt(i + 1) === "-") {
      const end = text.indexOf("\n", i)
      i = end < 0 ? text.length : end + 1
    } else if (c === "/" && text.charAt(i + 1) === "*") i = skipBlockComment(text, i)
    else if (c === "$") {
      const tag = dollarTag(text, i)
      if (tag === undefined) i++
      else {
        const end = text.indexOf(tag, i + tag.length)
        i = end < 0 ? text.length : end + tag.length
      }
    } else if (c === ";") {
      push(text.slice(start, i))
      i++
      start = i
    } else i++
  }
  push(text.slice(start))
  return statements
}

/** A script as one transaction: how it begins (`undefined`: plain `BEGIN`) and the statements inside. @internal */
export interface Script {
  readonly begin: string | undefined
  readonly statements: ReadonlyArray<string>
}

/**
 * `text` as one transaction: its statements, a leading `SET TRANSACTION <modes>` (isolation level,
 * read only / write, deferrable; not `SNAPSHOT`) folded into the `BEGIN <modes>` that opens it (the
 * same modes; one round trip less).
 *
 * @internal
 */
export const scriptOf = (text: string): Script => {
  const statements = splitStatements(text)
  const first = statements[0]
  const modes = first === undefined ? null : /^SET\s+TRANSACTION\s+((?:ISOLATION|READ|NOT|DEFERRABLE)\b[\s\S]*)$/i.exec(first)
  return modes === null || modes[1] === undefined
    ? { begin: undefined, statements }
    : { begin: `BEGIN ${modes[1]}`, statements: statements.slice(1) }
}
