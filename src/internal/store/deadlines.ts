/**
 * Bounded driver calls for the networked stores: every call is registered with its deadline, and
 * one sweeper fiber (in the store's scope, on the Effect clock) fails it once the deadline passes,
 * whatever the driver does. `Effect.timeoutFail` (`Fx.timeoutFail`) per call would fork a fiber and a timer per call,
 * which measured at a third to a half of the throughput; a driver's own per-command timer costs
 * 10-15 %. No canceler either: Effect wraps cancellable asyncs in interruption machinery (a fifth
 * of the throughput); an interrupted call stays registered until its answer or its deadline, and a
 * late answer is ignored.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** What the sweeper needs of a call. */
interface Expirable {
  readonly deadline: number
  expire(): void
}

/**
 * One call in flight: settled once, by its answer or by the sweeper. A class, so the hot path
 * allocates one object instead of several closures.
 *
 * @internal
 */
export class InFlight<A, E> implements Expirable {
  done = false
  constructor(
    readonly deadline: number,
    private readonly timeoutError: () => E,
    private readonly resume: (effect: Effect.Effect<A, E>) => void,
    private readonly pending: Set<Expirable>
  ) {}
  expire(): void {
    this.settle(Effect.fail(this.timeoutError()))
  }
  succeed(a: A): void {
    this.settle(Effect.succeed(a))
  }
  fail(e: E): void {
    this.settle(Effect.fail(e))
  }
  private settle(result: Effect.Effect<A, E>): void {
    if (this.done) return
    this.done = true
    this.pending.delete(this)
    this.resume(result)
  }
}

/** @internal */
export interface Deadlines {
  /** Registers a call that must settle within `ms`; answer it with `succeed` / `fail`. */
  readonly track: <A, E>(
    resume: (effect: Effect.Effect<A, E>) => void,
    timeoutError: () => E,
    ms: number
  ) => InFlight<A, E>
  /** Runs one promise-returning call, settled within `ms`. */
  readonly settle: <A, E>(f: () => Promise<A>, onError: (e: unknown) => E, timeoutError: () => E, ms: number) => Effect.Effect<A, E>
}

/**
 * Starts the sweeper in the current scope. It wakes every fifth of `timeoutMs` (5 to 100 ms), so
 * a call settles at most that long after its deadline.
 *
 * @internal
 */
export const make = (timeoutMs: number): Effect.Effect<Deadlines, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clockWith(Effect.succeed)
    const pending = new Set<Expirable>()
    const sweepEvery = Duration.millis(Math.min(100, Math.max(5, Math.floor(timeoutMs / 5))))
    yield* Effect.forkScoped(
      Effect.interruptible(Effect.forever(
        Effect.andThen(
          Effect.sleep(sweepEvery),
          Effect.sync(() => {
            if (pending.size === 0) return
            const now = Fx.nowMillisUnsafe(clock)
            for (const call of pending) {
              if (call.deadline <= now) call.expire()
            }
          })
        )
      ))
    )
    const track = <A, E>(
      resume: (effect: Effect.Effect<A, E>) => void,
      timeoutError: () => E,
      ms: number
    ): InFlight<A, E> => {
      const call = new InFlight<A, E>(Fx.nowMillisUnsafe(clock) + ms, timeoutError, resume, pending)
      pending.add(call)
      return call
    }
    const settle = <A, E>(
      f: () => Promise<A>,
      onError: (e: unknown) => E,
      timeoutError: () => E,
      ms: number
    ): Effect.Effect<A, E> =>
      Fx.callback<A, E>((resume) => {
        const call = track(resume, timeoutError, ms)
        let promise: Promise<A>
        try {
          promise = f()
        } catch (e) {
          promise = Promise.reject(e)
        }
        promise.then((a) => call.succeed(a), (e: unknown) => call.fail(onError(e)))
      })
    return { track, settle }
  })
