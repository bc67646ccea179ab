/**
 * `${VAR}` and `${VAR:-default}` in the string values of `rate-sync.toml`, as rate-sync writes
 * them (`url = "${REDIS_URL:-redis://localhost:6379/0}"`).
 *
 * - `${NAME}`: the variable's value; unset (or empty) is a problem naming the variable.
 * - `${NAME:-default}`: the value, or `default` (taken literally, up to the first `}`) when the
 *   variable is unset or empty.
 * - `$${` is a literal `${`; no other `$` is special (`"a$b"`, `"$$"` stay as written).
 * - `NAME` is `[A-Za-z_][A-Za-z0-9_]*`; any other `${...}`, or a `${` with no `}`, is a problem.
 *
 * Problems never quote the text (it may be a secret), only the variable's name.
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */

/** What {@link expand} answers. @internal */
export type Expansion =
  | { readonly ok: true; readonly text: string; readonly variables: ReadonlyArray<string> }
  | { readonly ok: false; readonly problem: ExpansionProblem }

/** Why a text could not be expanded. @internal */
export type ExpansionProblem =
  | { readonly kind: "unset"; readonly variable: string }
  | { readonly kind: "syntax"; readonly reason: string }

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Whether `text` holds a `${` (a reference or an escape): only then does {@link expand} change it. @internal */
export const hasReference = (text: string): boolean => text.includes("${")

/**
 * The variables `text` refers to, in order, without duplicates, up to a malformed reference (which
 * {@link expand} reports, once the ones before it are read).
 *
 * @internal
 */
export const variablesOf = (text: string): ReadonlyArray<string> => {
  const names: Array<string> = []
  expand(text, (name) => {
    if (!names.includes(name)) names.push(name)
    return "set"
  })
  return names
}

/**
 * Expands every reference of `text`, reading variables with `lookup` (`undefined` or `""` is
 * unset). `variables` lists the names referred to (empty when `text` has no reference).
 *
 * @internal
 */
export const expand = (text: string, lookup: (name: string) => string | undefined): Expansion => {
  let out = ""
  let i = 0
  const variables: Array<string> = []
  while (i < text.length) {
    if (text.startsWith("$${", i)) {
      out += "${"
      i += 3
      continue
    }
    if (!text.startsWith("${", i)) {
      out += text[i]
      i += 1
      continue
    }
    const close = text.indexOf("}", i + 2)
    if (close < 0) return { ok: false, problem: { kind: "syntax", reason: "a ${ with no closing } (write $${ for a literal ${)" } }
    const body = text.slice(i + 2, close)
    const sep = body.indexOf(":-")
    const name = sep < 0 ? body : body.slice(0, sep)
    if (!NAME.test(name)) {
      return {
        ok: false,
        problem: {
          kind: "syntax",
          reason: "a ${...} that is not ${NAME} or ${NAME:-default} (NAME: [A-Za-z_][A-Za-z0-9_]*; write $${ for a literal ${)"
        }
      }
    }
    if (!variables.includes(name)) variables.push(name)
    const value = lookup(name)
    if (value !== undefined && value !== "") out += value
    else if (sep >= 0) out += body.slice(sep + 2)
    else return { ok: false, problem: { kind: "unset", variable: name } }
    i = close + 1
  }
  return { ok: true, text: out, variables }
}
