/**
 * The Effect 4 half of the per-major module: the same names as `src/fx/v3/core.ts`, with the same
 * meaning, answered with Effect 4.1's API. See that file for what this module is; each doc comment
 * there says the Effect 3 and Effect 4 spelling of the name.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as R from "effect/Result"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"

/** Which Effect major this build is for. @internal */
export const major = 4 as const

// ---------------------------------------------------------------------------------------------
// Services

/** A service class: `class X extends Service<X, Shape>()("id") {}`. @internal */
export const Service = <Self, Shape>() => <const Id extends string>(id: Id) => Context.Service<Self, Shape>()(id)

// ---------------------------------------------------------------------------------------------
// Effect

/** Recovers from every failure. @internal */
export const catchAll = Effect.catch

/** An effect from a callback API. @internal */
export const callback = <A, E = never, R = never>(
  register: (resume: (effect: Effect.Effect<A, E, R>) => void, signal: AbortSignal) => void | Effect.Effect<void, never, R>
): Effect.Effect<A, E, R> => Effect.callback<A, E, R>((resume, signal) => register(resume, signal))

/** Fails with `onTimeout()` when `self` does not finish within `duration`. @internal */
export const timeoutFail: {
  <E2>(options: { readonly duration: DurationInput; readonly onTimeout: () => E2 }): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | E2, R>
  <A, E, R, E2>(
    self: Effect.Effect<A, E, R>,
    options: { readonly duration: DurationInput; readonly onTimeout: () => E2 }
  ): Effect.Effect<A, E | E2, R>
} = dual(
  2,
  <A, E, R, E2>(
    self: Effect.Effect<A, E, R>,
    options: { readonly duration: DurationInput; readonly onTimeout: () => E2 }
  ): Effect.Effect<A, E | E2, R> =>
    Effect.timeoutOrElse(self, { duration: options.duration, orElse: () => Effect.fail(options.onTimeout()) })
)

/** Runs `self` in a fiber that outlives its parent. @internal */
export const forkDetach = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<RuntimeFiber<A, E>, never, R> =>
  Effect.forkDetach(self)

/** Runs `self` with a context changed by `f`. @internal */
export const updateContext = <A, E, R, R2>(
  self: Effect.Effect<A, E, R>,
  f: (context: Context.Context<R2>) => Context.Context<R>
): Effect.Effect<A, E, R2> => Effect.updateContext(self, f)

/** An effect built from the current context. @internal */
export const contextWithEffect = <R, A, E, R2>(
  f: (context: Context.Context<R>) => Effect.Effect<A, E, R2>
): Effect.Effect<A, E, R | R2> => Effect.contextWith(f)

// ---------------------------------------------------------------------------------------------
// Layer

/** A layer built by a scoped effect. @internal */
export const layerScoped = Layer.effect

/** A layer that fails with `e`. @internal */
export const layerFail = <E>(e: E): Layer.Layer<never, E> => Layer.unwrap(Effect.fail(e))

/** A layer whose build failure is mapped by `f`. @internal */
export const layerMapError = <A, E, R, E2>(self: Layer.Layer<A, E, R>, f: (e: E) => E2): Layer.Layer<A, E2, R> =>
  Layer.catch(self, (e) => Layer.unwrap(Effect.fail(f(e))))

// ---------------------------------------------------------------------------------------------
// Duration

/** What a duration may be given as. @internal */
export type DurationInput = Duration.Input

/** The name of {@link DurationInput} as users of this major spell it, for messages (Effect 3 `"Duration.DurationInput"`, Effect 4 `"Duration.Input"`). @internal */
export const durationInputName = "Duration.Input" as const

const clampNegative = (d: Duration.Duration): Duration.Duration =>
  Duration.isGreaterThan(Duration.zero, d) ? Duration.zero : d

/** A duration from its input; throws on an unparsable one; a negative one is zero, as on Effect 3. @internal */
export const decodeDuration = (input: DurationInput): Duration.Duration => clampNegative(Duration.fromInputUnsafe(input))

/** A duration from an unknown value, or none. @internal */
export const decodeDurationOption = (input: unknown): Option.Option<Duration.Duration> =>
  // typed boundary: fromInput inspects its argument at run time and answers none for what it cannot read
  Option.map(Duration.fromInput(input as Duration.Input), clampNegative)

/** Whether `a` is longer than `b`. @internal */
export const durationGreater = (a: Duration.Duration, b: Duration.Duration): boolean => Duration.isGreaterThan(a, b)

// ---------------------------------------------------------------------------------------------
// Result

/** A success `A` or a failure `E`. @internal */
export type Result<A, E = never> = R.Result<A, E>

/** A `Result` known to be a success. @internal */
export type Ok<A, E = never> = R.Success<A, E>

/** A `Result` known to be a failure. @internal */
export type Err<A, E = never> = R.Failure<A, E>

/** A success. @internal */
export const ok = <A>(a: A): Result<A> => R.succeed(a)

/** A failure. @internal */
export const err = <E>(e: E): Result<never, E> => R.fail(e)

/** Whether `r` is a failure (narrows `r`). @internal */
export const isErr = <A, E>(r: Result<A, E>): r is Err<A, E> => R.isFailure(r)

/** Whether `r` is a success (narrows `r`). @internal */
export const isOk = <A, E>(r: Result<A, E>): r is Ok<A, E> => R.isSuccess(r)

/** The error of a failure. @internal */
export const errOf = <A, E>(r: Err<A, E>): E => r.failure

/** The value of a success. @internal */
export const valueOf = <A, E>(r: Ok<A, E>): A => r.success

// ---------------------------------------------------------------------------------------------
// Schema

/** A schema of one of the given literals. @internal */
export const literals = <const L extends ReadonlyArray<string | number>>(...values: L) => Schema.Literals(values)

/** A schema of a union of two members. @internal */
export const union2 = <A extends Schema.Top, B extends Schema.Top>(a: A, b: B) => Schema.Union([a, b])

/** An optional field that defaults to `value` when omitted at construction. @internal */
export const optionalWithDefault = <S extends Schema.Top & Schema.WithoutConstructorDefault>(
  schema: S,
  value: () => S["~type.make.in"]
) => schema.pipe(Schema.withConstructorDefault(Effect.sync(value)))

// ---------------------------------------------------------------------------------------------
// Tracing

/**
 * Span options that capture no stack trace, spread into the options of `Effect.useSpan` (Effect 3
 * `{ captureStackTrace: false }`: it captures one by default; Effect 4 `{}`: its `useSpan` captures
 * none and takes no such option). @internal
 */
export const noSpanStack: { readonly captureStackTrace?: false } = {}

// ---------------------------------------------------------------------------------------------
// Scope, Cause, Deferred, Fiber, Clock

/** A scope that can be closed. @internal */
export type Closeable = Scope.Closeable

/** Runs `self` in `scope`. @internal */
export const scopeExtend = <A, E, R>(self: Effect.Effect<A, E, R>, scope: Scope.Scope): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
  Scope.provide(self, scope)

/** A child of `scope` whose finalizers run one after another. @internal */
export const forkSequential = (scope: Scope.Scope): Effect.Effect<Closeable> => Scope.fork(scope, "sequential")

/** The first failure of a cause, or none. @internal */
export const causeFailure = <E>(cause: Cause.Cause<E>): Option.Option<E> => Cause.findErrorOption(cause)

/** Whether a cause holds interruptions only. @internal */
export const isInterruptedOnly = <E>(cause: Cause.Cause<E>): boolean => Cause.hasInterruptsOnly(cause)

/** A new deferred, made outside an effect. @internal */
export const deferredUnsafe = <A, E = never>(): Deferred.Deferred<A, E> => Deferred.makeUnsafe<A, E>()

/** Completes a deferred outside an effect. @internal */
export const deferredDone = <A, E>(self: Deferred.Deferred<A, E>, effect: Effect.Effect<A, E>): void => {
  Deferred.doneUnsafe(self, effect)
}

/** A running fiber. @internal */
export type RuntimeFiber<A, E = never> = Fiber.Fiber<A, E>

/** The clock's time in milliseconds, read outside an effect. @internal */
export const nowMillisUnsafe = (clock: Clock.Clock): number => clock.currentTimeMillisUnsafe()

// ---------------------------------------------------------------------------------------------
// Metrics

/** A counter of numbers. @internal */
export type Counter = Metric.Counter<number>

/** A gauge of numbers. @internal */
export type Gauge = Metric.Gauge<number>

/** A histogram of numbers. @internal */
export type Histogram = Metric.Histogram<number>

/** Labels (attributes) of a metric series, made once. @internal */
export type Labels = Readonly<Record<string, string>>

/** Labels from a record of names to values. @internal */
export const labels = (record: Readonly<Record<string, string>>): Labels => ({ ...record })

/** The metric with labels applied. @internal */
export const withLabels = <I, S>(metric: Metric.Metric<I, S>, record: Readonly<Record<string, string>>): Metric.Metric<I, S> =>
  Metric.withAttributes(metric, record)

/**
 * How to make one series of a metric this module made: the same metric (kind, name, description,
 * options) with the series' attributes built in. Effect 4 addresses a series by a key made of
 * those, so it is the series `Metric.withAttributes(metric, attributes)` reads; and a metric caches
 * the key of the last attributes it was updated with, so a metric per series updates without
 * making its key again (one metric updated for several series in turn would make it each time).
 */
const seriesMakers = new WeakMap<object, (attributes: Labels) => Metric.Metric<number, unknown>>()

const withSeries = <M extends Metric.Metric<number, unknown>>(metric: M, make: (attributes: Labels) => M): M => {
  seriesMakers.set(metric, make)
  return metric
}

/**
 * A counter of numbers (Effect 3 `Metric.counter(name, options)`; Effect 4 the same call, and the
 * counter remembers how to make its series with attributes built in, for {@link updater}). @internal
 */
export const counter = (
  name: string,
  options: { readonly description: string; readonly incremental?: boolean | undefined }
): Counter =>
  withSeries(Metric.counter(name, options), (attributes) => Metric.counter(name, { ...options, attributes }))

/**
 * A gauge of numbers (Effect 3 `Metric.gauge(name, options)`; Effect 4 the same call, and the
 * gauge remembers how to make its series with attributes built in, for {@link updater}). @internal
 */
export const gauge = (name: string, options: { readonly description: string }): Gauge =>
  withSeries(Metric.gauge(name, options), (attributes) => Metric.gauge(name, { ...options, attributes }))

/**
 * An update function for one series of `metric`, bound once: calling it costs no allocation on
 * either major. Effect 3: `metric.unsafeUpdate(n, series)` (the metric caches its hook per label
 * array, so `series` is made once). Effect 4: `updateUnsafe(n, context)` on a metric of that series
 * with its attributes built in (made once, for the metrics of {@link counter}, {@link gauge} and
 * {@link exponentialHistogram}) or, for another metric, with the attributes in a context made
 * once. Effect 4's updates go to the `Metric.MetricRegistry` of `metrics` (see
 * {@link metricContext}), the default one when absent; Effect 3's metrics are global. @internal
 */
export const updater = <S>(
  metric: Metric.Metric<number, S>,
  series: Labels,
  metrics: MetricContext = Context.empty()
): ((n: number) => void) => {
  const make = seriesMakers.get(metric)
  if (make !== undefined) {
    const own = make(series)
    return (n) => own.updateUnsafe(n, metrics)
  }
  const context = Context.add(metrics, Metric.CurrentMetricAttributes, series)
  return (n) => metric.updateUnsafe(n, context)
}

/**
 * Where the library's metric updates go, read once from the context of the code that builds what
 * updates them (a `RateLimiter` registry, a middleware): the `Metric.MetricRegistry` in that
 * context (the default one when none is provided), and no contextual attribute. @internal
 */
export type MetricContext = Context.Context<never>

/** The {@link MetricContext} of the current context. @internal */
export const metricContext: Effect.Effect<MetricContext> = Effect.map(
  Effect.context<never>(),
  (context) => Context.make(Metric.MetricRegistry, Context.get(context, Metric.MetricRegistry))
)

/** A histogram with exponential bucket bounds (Effect 3 `Metric.histogram(name, MetricBoundaries.exponential(…), description)`, Effect 4 `Metric.histogram(name, { boundaries, description })`). @internal */
export const exponentialHistogram = (
  name: string,
  options: { readonly start: number; readonly factor: number; readonly count: number; readonly description: string }
): Histogram => {
  const boundaries = Metric.exponentialBoundaries({ start: options.start, factor: options.factor, count: options.count })
  return withSeries(
    Metric.histogram(name, { boundaries, description: options.description }),
    (attributes) => Metric.histogram(name, { boundaries, description: options.description, attributes })
  )
}

// ---------------------------------------------------------------------------------------------
// Config

/**
 * A `Config` of `A`, or a record of `Config`s for each field of `A` (Effect 3
 * `Config.Config.Wrap<A>`, Effect 4 `Config.Wrap<A>`). @internal
 */
export type ConfigWrap<A> = Config.Wrap<A>

/** Effect's own configuration error, what a `Config` read fails with. @internal */
export type EffectConfigError = Config.ConfigError

/** A string read from the ConfigProvider. @internal */
export const configString = (name: string): Config.Config<string> => Config.String(name)

/** A whole number. @internal */
export const configInt = (name: string): Config.Config<number> => Config.Int(name)

/** A number. @internal */
export const configNumber = (name: string): Config.Config<number> => Config.Number(name)

/** A boolean. @internal */
export const configBoolean = (name: string): Config.Config<boolean> => Config.Boolean(name)

/** A secret string. @internal */
export const configRedacted = (name: string): Config.Config<Redacted.Redacted<string>> => Config.Redacted(name)

/** `self` checked by `f`: a failure's message becomes Effect's configuration error. @internal */
export const configValidate: {
  <A, B>(f: (a: A) => Result<B, string>): (self: Config.Config<A>) => Config.Config<B>
  <A, B>(self: Config.Config<A>, f: (a: A) => Result<B, string>): Config.Config<B>
} = dual(
  2,
  <A, B>(self: Config.Config<A>, f: (a: A) => Result<B, string>): Config.Config<B> =>
    Config.mapEffect(self, (a) => {
      const r = f(a)
      return isErr(r)
        ? Effect.fail(new Config.ConfigError(new ConfigProvider.SourceError({ message: errOf(r) })))
        : Effect.succeed(r.success)
    })
)

/**
 * The string variable `name`, checked by `f`; a failure's message names `name` (Effect 4's
 * configuration error carries no path of its own). @internal
 */
export const configStringChecked = <B>(name: string, f: (text: string) => Result<B, string>): Config.Config<B> =>
  configValidate(Config.String(name), (text: string) => {
    const r = f(text)
    return isErr(r) ? err(`${name}: ${errOf(r)}`) : r
  })
