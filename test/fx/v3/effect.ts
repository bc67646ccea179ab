/**
 * The Effect 3 half of the per-major test helpers (`#test/effect`): the names the tests need whose
 * spelling or shape differs between Effect 3.22 and Effect 4.1, answered with Effect 3's API. Its
 * twin is `test/fx/v4/effect.ts`; the two export the same names with the same meaning, and each doc
 * comment says both spellings. Tests import everything Effect spells the same on both majors from
 * `effect` directly, and the library's own per-major names from `#fx/core` through this module.
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
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Tracer from "effect/Tracer"
import * as Fx from "#fx/core"

export * as FastCheck from "effect/FastCheck"
export * as TestClock from "effect/TestClock"

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

/** Runs `self` in a child fiber of the current one (Effect 3 `Effect.fork`, Effect 4 `Effect.forkChild`). */
export const fork = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<Fx.RuntimeFiber<A, E>, never, R> =>
  Effect.fork(self)

/** `self`'s success or failure as a value (Effect 3 `Effect.either`, Effect 4 `Effect.result`). */
export const result = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<Fx.Result<A, E>, never, R> =>
  Effect.either(self)

/** Lets the other fibers run before this one goes on (Effect 3 `Effect.yieldNow()`, Effect 4 `Effect.yieldNow`). */
export const yieldNow: Effect.Effect<void> = Effect.yieldNow()

/** The exit of `fiber` if it is done, none if it runs (Effect 3 `Fiber.poll`, Effect 4 `fiber.pollUnsafe()`). */
export const poll = <A, E>(fiber: Fiber.Fiber<A, E>): Effect.Effect<Option.Option<Exit.Exit<A, E>>> => fiber.poll

/** A gate fibers wait at until it opens (Effect 3 `Effect.makeLatch`, Effect 4 `Latch.make`). */
export interface Latch {
  readonly open: Effect.Effect<void>
  readonly release: Effect.Effect<void>
  readonly await: Effect.Effect<void>
  readonly close: Effect.Effect<void>
}

/** A closed latch (Effect 3 `Effect.makeLatch()`, Effect 4 `Latch.make()`). */
export const makeLatch = (): Effect.Effect<Latch> => Effect.makeLatch()

/** Whether a cause holds a defect (Effect 3 `Cause.isDie`, Effect 4 `Cause.hasDies`). */
export const isDie = <E>(cause: Cause.Cause<E>): boolean => Cause.isDie(cause)

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

/** A layer that runs a scoped effect and provides nothing (Effect 3 `Layer.scopedDiscard`, Effect 4 `Layer.effectDiscard`). */
export const layerScopedDiscard = <X, E, R>(effect: Effect.Effect<X, E, R>) => Layer.scopedDiscard(effect)

/** The layer an effect builds (Effect 3 `Layer.unwrapEffect`, Effect 4 `Layer.unwrap`). */
export const layerUnwrap = <A, E1, R1, E, R>(self: Effect.Effect<Layer.Layer<A, E1, R1>, E, R>): Layer.Layer<A, E | E1, R | R1> =>
  Layer.unwrapEffect(self)

// ---------------------------------------------------------------------------------------------
// Schedule

/** `self` for at most `duration` of elapsed time (Effect 3 `Schedule.upTo(duration)`, Effect 4 `Schedule.upTo({ duration })`). */
export const upTo = (duration: Duration.DurationInput) =>
<Out, In, R>(self: Schedule.Schedule<Out, In, R>): Schedule.Schedule<Out, In, R> => Schedule.upTo(self, duration)

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

/** The live (system) clock, whatever clock the test provides (Effect 3 `Clock.make()`, Effect 4 `Clock.Clock.defaultValue()`). */
export const liveClock = (): Clock.Clock => Clock.make()

const nanos = (ms: number): bigint => BigInt(Math.round(ms * 1_000_000))

/** A clock that reads `options.millis()` (Effect 3 and 4 `Clock` members differ in name). */
export const clockOf = (options: ClockOptions): Clock.Clock => {
  const live = liveClock()
  const effectful = options.effectfulMillis ?? options.millis
  const sleep = options.sleep ?? ((duration: Duration.Duration) => live.sleep(duration))
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => options.millis(),
    currentTimeMillis: Effect.sync(effectful),
    unsafeCurrentTimeNanos: () => nanos(options.millis()),
    currentTimeNanos: Effect.sync(() => nanos(effectful())),
    sleep
  }
}

/** Runs `self` with `clock` as its Clock (Effect 3 `Effect.withClock`, Effect 4 `Effect.provideService(Clock.Clock, clock)`). */
export const withClock: {
  (clock: Clock.Clock): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, clock: Clock.Clock): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, clock: Clock.Clock) => Effect.withClock(self, clock))

/**
 * Runs `self` with a pseudo-random generator seeded by `seed` (Effect 3
 * `Effect.withRandom(Random.make(seed))`, Effect 4 `Random.withSeed(seed)`). The two majors'
 * generators differ: the same seed gives the same sequence on one major only.
 */
export const withSeed: {
  (seed: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, seed: string): Effect.Effect<A, E, R>
} = dual(2, <A, E, R>(self: Effect.Effect<A, E, R>, seed: string) => Effect.withRandom(self, Random.make(seed)))

// ---------------------------------------------------------------------------------------------
// ConfigProvider

/** How {@link configProvider} joins a nested path into a variable name. */
export interface ConfigProviderOptions {
  /**
   * `"_"`: a nested path `["A", "B"]` is the variable `A_B`, as environment variables (Effect 3
   * `fromMap(…, { pathDelim: "_" })`). Without it, Effect 3 joins with `"."`; Effect 4's
   * `fromEnvRecord` always joins with `"_"` (a flat name is found either way).
   */
  readonly pathDelim?: "_"
}

/**
 * A ConfigProvider whose variables are exactly `vars` (Effect 3 `ConfigProvider.fromMap`, Effect 4
 * `ConfigProvider.fromEnvRecord`).
 */
export const configProvider = (
  vars: Readonly<Record<string, string>> | ReadonlyMap<string, string> = {},
  options: ConfigProviderOptions = {}
): ConfigProvider.ConfigProvider => {
  const map = new Map(vars instanceof Map ? vars : Object.entries(vars))
  return options.pathDelim === undefined ? ConfigProvider.fromMap(map) : ConfigProvider.fromMap(map, { pathDelim: options.pathDelim })
}

/**
 * Runs `self` with `provider` as its ConfigProvider (Effect 3 `Effect.withConfigProvider`, Effect 4
 * `Effect.provideService(ConfigProvider.ConfigProvider, provider)`).
 */
export const withConfigProvider: {
  (provider: ConfigProvider.ConfigProvider): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, provider: ConfigProvider.ConfigProvider): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, provider: ConfigProvider.ConfigProvider) => Effect.withConfigProvider(self, provider)
)

/** Runs `self` with exactly the variables `vars` ({@link configProvider} + {@link withConfigProvider}). */
export const withConfig = (vars: Readonly<Record<string, string>> = {}, options: ConfigProviderOptions = {}) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => withConfigProvider(self, configProvider(vars, options))

// ---------------------------------------------------------------------------------------------
// Tracing

/** The current tracer, wrapped to keep every span it makes (Effect 3 `span(name, parent, …)` positional, Effect 4 `span(options)`). */
export const recordingTracer: Effect.Effect<{ readonly tracer: Tracer.Tracer; readonly spans: ReadonlyArray<Tracer.Span> }> =
  Effect.map(Effect.tracer, (native) => {
    const spans: Array<Tracer.Span> = []
    const tracer = Tracer.make({
      span: (name, parent, context, links, startTime, kind, options) => {
        const span = native.span(name, parent, context, links, startTime, kind, options)
        spans.push(span)
        return span
      },
      context: native.context
    })
    return { tracer, spans }
  })

// ---------------------------------------------------------------------------------------------
// Metrics

/** The count of a counter's series with `labels` (both majors: `Metric.value(…).count`). */
export const counterCount = (metric: Fx.Counter, labels: Readonly<Record<string, string>> = {}): Effect.Effect<number> =>
  Effect.map(Metric.value(Fx.withLabels(metric, labels)), (state) => state.count)

/** How many values a histogram's series with `labels` has recorded. */
export const histogramCount = (metric: Fx.Histogram, labels: Readonly<Record<string, string>> = {}): Effect.Effect<number> =>
  Effect.map(Metric.value(Fx.withLabels(metric, labels)), (state) => state.count)

/**
 * The finite bucket bounds of a histogram (Effect 3 `metric.keyType.boundaries.values`, Effect 4 the
 * bounds of `Metric.value(metric).buckets`), ascending.
 */
export const histogramBounds = (metric: Fx.Histogram): Effect.Effect<ReadonlyArray<number>> =>
  Effect.sync(() => metric.keyType.boundaries.values.filter(Number.isFinite))

/** One series of the metric registry: its name, labels and description. */
export interface Series {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly description: string | undefined
}

/**
 * Every series in the metric registry (Effect 3 `Metric.snapshot`'s `metricKey` name, tags and
 * description; Effect 4 `Metric.snapshot`'s id, attributes and description). Read it before
 * `Metric.value`: that creates a missing series.
 */
export const metricSeries: Effect.Effect<ReadonlyArray<Series>> = Effect.map(Metric.snapshot, (pairs) =>
  pairs.map((pair) => ({
    name: pair.metricKey.name,
    labels: Object.fromEntries(pair.metricKey.tags.map((tag) => [tag.key, tag.value])),
    description: Option.getOrUndefined(pair.metricKey.description)
  })))
