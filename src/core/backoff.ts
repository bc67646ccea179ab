/**
 * Backoff arithmetic, kept apart from any scheduler: the jittered, doubling pause the
 * compare-and-set stores take after a lost write (`internal/store/backoff.ts` puts it on
 * `Schedule`).
 *
 * @internal
 */

/** The mean pause doubles this many times at most (up to 8× the base). @internal */
export const MAX_DOUBLINGS = 3

/**
 * The pause before retry `attempt` (1 after the first loss), for `random` uniform in `[0, 1)`:
 * uniform in `[0, 2·baseMs·2^min(attempt − 1, 3))`, so the mean is `baseMs` at first and doubles
 * with each attempt up to 8× `baseMs`, and the losers of a round spread out instead of colliding
 * again.
 *
 * @internal
 */
export const jitteredMs = (baseMs: number, attempt: number, random: number): number =>
  random * 2 * baseMs * 2 ** Math.min(Math.max(0, attempt - 1), MAX_DOUBLINGS)
