/**
 * The Effect 4 half of the per-major test helpers (`#test/effect`): the same names as
 * `test/fx/v3/effect.ts`, with the same meaning, answered with Effect 4.1's API. See that file for
 * what this module is; each doc comment there says the Effect 3 and Effect 4 spelling of the name.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Latch_ from "effect/Latch"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Tracer from "effect/Tracer"
import * as Fx from "#fx/core"

/**
 * fast-check itself: Effect 4 has no `FastCheck` module (its `effect/Arbitrary` is its own
 * generator). This is the fast-check 3.23 that Effect 3 re-exports as `FastCheck` (at the root's
 * `node_modules`), so a property and its seed mean the same on both majors.
 */
export * as FastCheck from "fast-check"
export * as TestClock from "effect/testing/TestClock"

/** Which Effect major the tests run on. */
export const major = Fx.major

// ---------------------------------------------------------------------------------------------
// The library's per-major names the tests use (from `#fx/core`)

export {
  callback,
  catchAll,
  causeFailure,
  configNumber,
  configString,
  decodeDuration,
  durationInputName,
  type DurationInput,
  err,
  errOf,
  exponentialHistogram,
  forkDetach,
  isErr,
  isOk,
  layerScoped,
  ok,
  type Result,
  type RuntimeFiber,
  scopeExtend,
  Service,
  valueOf,
  withLabels
} from "#fx/core"

// ---------------------------------------------------------------------------------------------
// Effect

/** Runs `self` in a child fiber of the current one. */
export const fork = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<Fx.RuntimeFiber<A, E>, never, R> =>
  Effect.forkChild(self)

/** `self`'s success or failure as a value. */
export const result = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<Fx.Result<A, E>, never, R> =>
  Effect.result(self)

/** Lets the other fibers run before this one goes on. */
export const yieldNow: Effect.Effect<void> = Effect.yieldNow

/** The exit of `fiber` if it is done, none if it runs. */
export const poll = <A, E>(fiber: Fiber.Fiber<A, E>): Effect.Effect<Option.Option<Exit.Exit<A, E>>> =>
  Effect.sync(() => Option.fromUndefinedOr(fiber.pollUnsafe()))

/** A gate fibers wait at until it opens. */
export interface Latch {
  readonly open: Effect.Effect<void>
  readonly release: Effect.Effect<void>
  readonly await: Effect.Effect<void>
  readonly close: Effect.Effect<void>
}

/** A closed latch. */
export const makeLatch = (): Effect.Effect<Latch> => Latch_.make()

/** Whether a cause holds a defect. */
export const isDie = <E>(cause: Cause.Cause<E>): boolean => Cause.hasDies(cause)

// ---------------------------------------------------------------------------------------------
// Result reads for tests

/** The value of a success; throws (failing the test) on a failure. */
export const getOk = <A, E>(r: Fx.Result<A, E>): A => {
  if (Fx.isOk(r)) return Fx.valueOf(r)
  throw new Error(`expected a success, got the failure ${String(Fx.errOf(r))}`)
}

/** The error of a failure; throws (failing the test) on a success. */
export const getErr = <A, E>(r: Fx.Result<A, E>): E => {
  if (Fx.isErr(r)) return Fx.errOf(r)
  throw new Error(`expected a failure, got the success ${String(Fx.valueOf(r))}`)
}

// ---------------------------------------------------------------------------------------------
// Layer

/** A layer that runs a scoped effect and provides nothing. */
export const layerScopedDiscard = <X, E, R>(effect: Effect.Effect<X, E, R>) => Layer.effectDiscard(effect)

/** The layer an effect builds. */
export const layerUnwrap = <A, E1, R1, E, R>(self: Effect.Effect<Layer.Layer<A, E1, R1>, E, R>) => Layer.unwrap(self)

// ---------------------------------------------------------------------------------------------
// Schedule

/** `self` for at most `duration` of elapsed time. */
export const upTo = (duration: Duration.Input) =>
<Out, In, E, R>(self: Schedule.Schedule<Out, In, E, R>): Schedule.Schedule<Out, In, E, R> => Schedule.upTo(self, { duration })

// ---------------------------------------------------------------------------------------------
// Clock and Random

/** What a clock made by {@link clockOf} reads and how it sleeps. */
export interface ClockOptions {
  /** The time in milliseconds, read by every read of the clock (unless `effectfulMillis` is given). */
  readonly millis: () => number
  /** The time read by the clock's effectful reads (`Clock.currentTimeMillis`), when it differs from `millis`. */
  readonly effectfulMillis?: () => number
  /** How the clock sleeps; by default as the live clock (real time). */
  readonly sleep?: (duration: Duration.Duration) => Effect.Effect<void>
}

/** The live (system) clock, whatever clock the test provides. */
export const liveClock = (): Clock.Clock => Clock.Clock.defaultValue()

const nanos = (ms: number): bigint => BigInt(Math.round(ms * 1_000_000))

/** A clock that reads `options.millis()`. */
export const clockOf = (options: ClockOptions): Clock.Clock => {
  const live = liveClock()
  const effectful = options.effectfulMillis ?? options.millis
  const sleep = options.sleep ?? ((duration: Duration.Duration) => live.sleep(duration))
  return {
    currentTimeMillisUnsafe: () => options.millis(),
    currentTimeMillis: Effect.sync(effectful),
    currentTimeNanosUnsafe: () => nanos(options.millis()),
    currentTimeNanos: Effect.sync(() => nanos(effectful())),
    monotonicTimeNanosUnsafe: () => nanos(options.millis()),
    monotonicTimeNanos: Effect.sync(() => nanos(effectful())),
    sleep
  }
}

/** Runs `self` with `clock` as its Clock. */
export const withClock: {
  (clock: Clock.Clock): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, clock: Clock.Clock): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, clock: Clock.Clock) => Effect.provideService(self, Clock.Clock, clock))

/** Runs `self` with a pseudo-random generator seeded by `seed` (the same seed gives the same sequence on one major only). */
export const withSeed: {
  (seed: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, seed: string): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, seed: string) => Random.withSeed(self, seed))

// ---------------------------------------------------------------------------------------------
// ConfigProvider

/** How {@link configProvider} joins a nested path into a variable name (see test/fx/v3/effect.ts). */
export interface ConfigProviderOptions {
  readonly pathDelim?: "_"
}

/**
 * A ConfigProvider whose variables are exactly `vars`: environment-variable semantics (a nested path
 * is joined with `"_"`), empty strings read as missing, as `ConfigProvider.fromEnv` does.
 */
export const configProvider = (
  vars: Readonly<Record<string, string>> | ReadonlyMap<string, string> = {},
  _options: ConfigProviderOptions = {}
): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromEnvRecord(vars instanceof Map ? Object.fromEntries(vars) : { ...vars })

/** Runs `self` with `provider` as its ConfigProvider. */
export const withConfigProvider: {
  (provider: ConfigProvider.ConfigProvider): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, provider: ConfigProvider.ConfigProvider): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, provider: ConfigProvider.ConfigProvider) =>
    Effect.provideService(self, ConfigProvider.ConfigProvider, provider)
)

/** Runs `self` with exactly the variables `vars` ({@link configProvider} + {@link withConfigProvider}). */
export const withConfig = (vars: Readonly<Record<string, string>> = {}, options: ConfigProviderOptions = {}) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => withConfigProvider(self, configProvider(vars, options))

// ---------------------------------------------------------------------------------------------
// Tracing

/** The current tracer, wrapped to keep every span it makes. */
export const recordingTracer: Effect.Effect<{ readonly tracer: Tracer.Tracer; readonly spans: ReadonlyArray<Tracer.Span> }> =
  Effect.map(Effect.tracer, (native) => {
    const spans: Array<Tracer.Span> = []
    const tracer = Tracer.make({
      span: (options) => {
        const span = native.span(options)
        spans.push(span)
        return span
      },
      context: native.context
    })
    return { tracer, spans }
  })

// ---------------------------------------------------------------------------------------------
// Metrics

/** The count of a counter's series with `labels`. */
export const counterCount = (metric: Fx.Counter, labels: Readonly<Record<string, string>> = {}): Effect.Effect<number> =>
  Effect.map(Metric.value(Fx.withLabels(metric, labels)), (state) => state.count)

/** How many values a histogram's series with `labels` has recorded. */
export const histogramCount = (metric: Fx.Histogram, labels: Readonly<Record<string, string>> = {}): Effect.Effect<number> =>
  Effect.map(Metric.value(Fx.withLabels(metric, labels)), (state) => state.count)

/** The finite bucket bounds of a histogram, ascending. */
export const histogramBounds = (metric: Fx.Histogram): Effect.Effect<ReadonlyArray<number>> =>
  Effect.map(Metric.value(metric), (state) => state.buckets.map(([bound]) => bound).filter(Number.isFinite))

/** One series of the metric registry: its name, labels and description. */
export interface Series {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly description: string | undefined
}

/** Every series in the metric registry. Read it before `Metric.value`: that creates a missing series. */
export const metricSeries: Effect.Effect<ReadonlyArray<Series>> = Effect.map(Metric.snapshot, (snapshots) =>
  snapshots.map((snapshot) => ({
    name: snapshot.id,
    labels: { ...snapshot.attributes },
    description: snapshot.description
  })))
