/**
 * The store kit: the jittered backoff of the compare-and-set loops, drawn. The arithmetic is
 * `core/backoff.ts`; the randomness is Effect's `Random` (the calling fiber's), so a seeded
 * `Random` replays the pauses. Only the draw: the loop judges each pause (against its deadline,
 * its retry budget) before it sleeps, on a clock of its choosing.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import { jitteredMs } from "../../core/backoff.js"

/**
 * The pause before retry `attempt` (1 after the first loss), in milliseconds as drawn: uniform in
 * `[0, 2·baseMs·2^min(attempt − 1, 3))`, one `Random.next` per call.
 *
 * @internal
 */
export const jittered = (baseMs: number, attempt: number): Effect.Effect<number> =>
  Effect.map(Random.next, (random) => jitteredMs(baseMs, attempt, random))
