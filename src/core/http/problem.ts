/**
 * The answer of the HTTP option checks: a value, or the description of the first invalid option
 * (the Effect side turns it into a `ConfigError`).
 *
 * Plain TypeScript, no Effect import: shared by every build.
 *
 * @internal
 */

/**
 * An invalid option: where it is, what was expected, and the value found (`received`, described
 * by the caller, which knows how to name its own types).
 *
 * @internal
 */
export interface ConfigProblem {
  readonly path: string
  readonly expected: string
  readonly received: unknown
}

/** @internal */
export type Checked<A> =
  | { readonly ok: true; readonly value: A }
  | { readonly ok: false; readonly error: ConfigProblem }

/** @internal */
export const valid = <A>(value: A): Checked<A> => ({ ok: true, value })

/** @internal */
export const invalid = (path: string, expected: string, received: unknown): Checked<never> => ({
  ok: false,
  error: { path, expected, received }
})
