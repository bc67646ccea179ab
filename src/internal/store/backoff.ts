/**
 * The store kit: jittered backoff on `Schedule`. The arithmetic is `core/backoff.ts`; the
 * randomness is Effect's `Random` (the calling fiber's), so a seeded `Random` replays the pauses.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import { jitteredMs } from "../../core/backoff.js"

/**
 * Recurs forever; the n-th recurrence (1-based) waits uniform in `[0, 2·baseMs·2^min(n − 1, 3))`
 * and outputs that wait in milliseconds (as drawn: the delay itself is kept to the nanosecond).
 *
 * @internal
 */
export const jittered = (baseMs: number): Schedule.Schedule<number> =>
  Schedule.forever.pipe(
    Schedule.mapEffect((n) => Effect.map(Random.next, (r) => jitteredMs(baseMs, n + 1, r))),
    Schedule.addDelay((ms) => Duration.millis(ms))
  )

/** A wait schedule's next wait (its output, in milliseconds), and the state to step from after it. @internal */
export interface Next {
  readonly delayMs: number
  readonly state: unknown
}

/**
 * Steps `schedule` once from `state` (its `initial` at first) without sleeping: the next wait, or
 * `undefined` once the schedule is done. For a loop that judges each pause (against a deadline, a
 * retry budget) before taking it, on a clock of its choosing.
 *
 * @internal
 */
export const next = (schedule: Schedule.Schedule<number>, state: unknown): Effect.Effect<Next | undefined> =>
  Effect.map(schedule.step(0, undefined, state), ([after, delayMs, decision]): Next | undefined =>
    ScheduleDecision.isDone(decision) ? undefined : { delayMs, state: after })
