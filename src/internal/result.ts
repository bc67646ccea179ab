/**
 * A success or a failure, as a value: the one spelling the shared code uses, so that it reads the
 * same on Effect 3 (`Either`, fields `.right` / `.left`) and Effect 4 (`Result`, fields `.success` /
 * `.failure`). Today it is `Either`; it moves into the per-major module (scratchpad/effect4/PLAN.md,
 * section 2a) with a `Result` twin for Effect 4. Public signatures that answer `Either.Either` keep
 * that type: it is the same type as `Result` here.
 *
 * Read a value only after narrowing: `if (isErr(r)) return … errOf(r)`, then `valueOf(r)`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"

/** A success `A` or a failure `E`. @internal */
export type Result<A, E = never> = Either.Either<A, E>

/** A `Result` known to be a success. @internal */
export type Ok<A, E = never> = Either.Right<E, A>

/** A `Result` known to be a failure. @internal */
export type Err<A, E = never> = Either.Left<E, A>

/** A success. @internal */
export const ok = <A>(a: A): Result<A> => Either.right(a)

/** A failure. @internal */
export const err = <E>(e: E): Result<never, E> => Either.left(e)

/** Whether `r` is a failure (narrows `r`; the other branch is a success). @internal */
export const isErr = <A, E>(r: Result<A, E>): r is Err<A, E> => Either.isLeft(r)

/** Whether `r` is a success (narrows `r`; the other branch is a failure). @internal */
export const isOk = <A, E>(r: Result<A, E>): r is Ok<A, E> => Either.isRight(r)

/** The error of a failure. @internal */
export const errOf = <A, E>(r: Err<A, E>): E => r.left

/** The value of a success. @internal */
export const valueOf = <A, E>(r: Ok<A, E>): A => r.right

/**
 * The `Result` as an effect: fails with the error or succeeds with the value. Say it where a
 * `Result` is yielded or flat-mapped (an `Either` is an `Effect` on Effect 3 only). @internal
 */
export const toEffect = <A, E>(r: Result<A, E>): Effect.Effect<A, E> =>
  isErr(r) ? Effect.fail(errOf(r)) : Effect.succeed(valueOf(r))
