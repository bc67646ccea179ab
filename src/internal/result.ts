/**
 * A success or a failure, as a value: the one spelling the shared code uses, so that it reads the
 * same on Effect 3 (`Either`, fields `.right` / `.left`) and Effect 4 (`Result`, fields `.success` /
 * `.failure`). The type and its helpers are the per-major module's (`#fx/core`, which answers
 * `Either` on Effect 3 and `Result` on Effect 4); this module re-exports them for the callers that
 * import `./internal/result.js`, and adds {@link toEffect}, written once on top of them.
 *
 * Read a value only after narrowing: `if (isErr(r)) return … errOf(r)`, then `valueOf(r)`.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Effect from "effect/Effect"

export { err, errOf, isErr, isOk, ok, valueOf } from "#fx/core"
export type { Err, Ok, Result } from "#fx/core"

/**
 * The `Result` as an effect: fails with the error or succeeds with the value. Say it where a
 * `Result` is yielded or flat-mapped (an `Either` is an `Effect` on Effect 3 only). @internal
 */
export const toEffect = <A, E>(r: Fx.Result<A, E>): Effect.Effect<A, E> =>
  Fx.isErr(r) ? Effect.fail(Fx.errOf(r)) : Effect.succeed(Fx.valueOf(r))
