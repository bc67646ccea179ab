/**
 * Backoff arithmetic, kept apart from any scheduler: the jittered, doubling pause the
 * compare-and-set stores take after a lost write (`internal/store/backoff.ts` draws it from
 * Effect's `Random`), and the pause before the PostgreSQL store runs a rolled-back statement
 * again (`internal/postgres/call.ts`). Plain functions of a `random` in `[0, 1)`; the loops that
 * take the pauses draw it, read the clock and sleep.
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

/** The PostgreSQL retry's pause before jitter stops doubling at this many milliseconds. @internal */
export const ROLLBACK_RETRY_CAP_MS = 50

/** The PostgreSQL retry's pause is its base times a factor uniform in `[MIN, MAX)`. @internal */
export const ROLLBACK_JITTER = { min: 0.8, max: 1.2 } as const

/**
 * The pause before the PostgreSQL store runs a statement rolled back by a serialization failure
 * or a deadlock again, after `retries` retries already (0 before the first), for `random` uniform
 * in `[0, 1)`: `min(2^retries, 50)` ms, times a factor uniform in `[0.8, 1.2)`. The same numbers,
 * in the same order of operations, as the `Schedule.exponential(1 ms)` ∪ `spaced(50 ms)`,
 * `jittered` schedule it replaces.
 *
 * Not {@link jitteredMs}: that one is full jitter, made for compare-and-set losers that must
 * spread out; these retries follow a rollback by the server.
 *
 * @internal
 */
export const rollbackRetryMs = (retries: number, random: number): number => {
  const d = Math.min(2 ** Math.max(0, retries), ROLLBACK_RETRY_CAP_MS)
  return d * ROLLBACK_JITTER.min * (1 - random) + d * ROLLBACK_JITTER.max * random
}
