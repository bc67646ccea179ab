/**
 * The Effect 3 half of the per-major module: every name the shared code needs whose spelling or
 * shape differs between Effect 3.22 and Effect 4.1, answered with Effect 3's own API. Its twin is
 * `src/fx/v4/core.ts`; the two export the same names with the same meaning (checked by
 * `test/fx/surface.test.ts` and by type-checking the whole tree against each major). Shared code
 * imports these from `#fx/core` (package.json `imports`; `tsconfig.json` / `tsconfig.effect4.json`
 * `paths`); everything Effect spells the same on both majors is imported from `effect/*` directly.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"

/** Which Effect major this build is for. @internal */
export const major = 3 as const

// ---------------------------------------------------------------------------------------------
// Services

/**
 * A service class: `class X extends Service<X, Shape>()("id") {}` (Effect 3 `Context.Tag`, Effect 4
 * `Context.Service`). @internal
 */
export const Service = <Self, Shape>() => <const Id extends string>(id: Id) => Context.Tag(id)<Self, Shape>()

// ---------------------------------------------------------------------------------------------
// Effect

/** Recovers from every failure (Effect 3 `catchAll`, Effect 4 `catch`). @internal */
export const catchAll = Effect.catchAll

/** An effect from a callback API (Effect 3 `async`, Effect 4 `callback`). @internal */
export const callback: <A, E = never, R = never>(
  register: (resume: (effect: Effect.Effect<A, E, R>) => void, signal: AbortSignal) => void | Effect.Effect<void, never, R>
) => Effect.Effect<A, E, R> = Effect.async

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
  ): Effect.Effect<A, E | E2, R> => Effect.timeoutFail(self, options)
)

/** Runs `self` in a fiber of the global scope, outliving its parent (v3 `forkDaemon`). @internal */
export const forkDetach = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<RuntimeFiber<A, E>, never, R> =>
  Effect.forkDaemon(self)

/** Runs `self` with a context changed by `f` (Effect 3 `mapInputContext`, Effect 4 `updateContext`). @internal */
export const updateContext = <A, E, R, R2>(
  self: Effect.Effect<A, E, R>,
  f: (context: Context.Context<R2>) => Context.Context<R>
): Effect.Effect<A, E, R2> => Effect.mapInputContext(self, f)

/** An effect built from the current context (Effect 3 `contextWithEffect`, Effect 4 `contextWith`). @internal */
export const contextWithEffect = <R, A, E, R2>(
  f: (context: Context.Context<R>) => Effect.Effect<A, E, R2>
): Effect.Effect<A, E, R | R2> => Effect.contextWithEffect(f)

// ---------------------------------------------------------------------------------------------
// Layer

/** A layer built by a scoped effect (Effect 3 `Layer.scoped`, Effect 4 `Layer.effect`). @internal */
export const layerScoped = Layer.scoped

/** A layer that fails with `e`. @internal */
export const layerFail = <E>(e: E): Layer.Layer<never, E> => Layer.fail(e)

/** A layer whose build failure is mapped by `f`. @internal */
export const layerMapError = <A, E, R, E2>(self: Layer.Layer<A, E, R>, f: (e: E) => E2): Layer.Layer<A, E2, R> =>
  Layer.mapError(self, f)

// ---------------------------------------------------------------------------------------------
// Duration

/** What a duration may be given as (Effect 3 `Duration.DurationInput`, Effect 4 `Duration.Input`). @internal */
export type DurationInput = Duration.DurationInput

/** The name of {@link DurationInput} as users of this major spell it, for messages (Effect 3 `"Duration.DurationInput"`, Effect 4 `"Duration.Input"`). @internal */
export const durationInputName = "Duration.DurationInput" as const

/** A duration from its input; throws on an unparsable one (as both majors do). @internal */
export const decodeDuration = (input: DurationInput): Duration.Duration => Duration.decode(input)

/** A duration from an unknown value, or none. @internal */
export const decodeDurationOption = (input: unknown): Option.Option<Duration.Duration> => Duration.decodeUnknown(input)

/** Whether `a` is longer than `b`. @internal */
export const durationGreater = (a: Duration.Duration, b: Duration.Duration): boolean => Duration.greaterThan(a, b)

// ---------------------------------------------------------------------------------------------
// Result (Effect 3 `Either`, Effect 4 `Result`)

/** A success `A` or a failure `E` (Effect 3 `Either`). @internal */
export type Result<A, E = never> = Either.Either<A, E>

/** A `Result` known to be a success. @internal */
export type Ok<A, E = never> = Either.Right<E, A>

/** A `Result` known to be a failure. @internal */
export type Err<A, E = never> = Either.Left<E, A>

/** A success. @internal */
export const ok = <A>(a: A): Result<A> => Either.right(a)

/** A failure. @internal */
export const err = <E>(e: E): Result<never, E> => Either.left(e)

/** Whether `r` is a failure (narrows `r`). @internal */
export const isErr = <A, E>(r: Result<A, E>): r is Err<A, E> => Either.isLeft(r)

/** Whether `r` is a success (narrows `r`). @internal */
export const isOk = <A, E>(r: Result<A, E>): r is Ok<A, E> => Either.isRight(r)

/** The error of a failure. @internal */
export const errOf = <A, E>(r: Err<A, E>): E => r.left

/** The value of a success. @internal */
export const valueOf = <A, E>(r: Ok<A, E>): A => r.right

// ---------------------------------------------------------------------------------------------
// Schema

/** A schema of one of the given literals (Effect 3 `Literal(...v)`, Effect 4 `Literals(v)`). @internal */
export const literals = <const L extends ReadonlyArray<string | number>>(...values: L) => Schema.Literal(...values)

/** A schema of a union of two members (Effect 3 `Union(a, b)`, Effect 4 `Union([a, b])`). @internal */
export const union2 = <A extends Schema.Schema.All, B extends Schema.Schema.All>(a: A, b: B) => Schema.Union(a, b)

/** An optional field that defaults to `value` when omitted at construction. @internal */
export const optionalWithDefault = <S extends Schema.Schema.Any>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value })

// ---------------------------------------------------------------------------------------------
// Tracing

/**
 * Span options that capture no stack trace, spread into the options of `Effect.useSpan` (Effect 3
 * `{ captureStackTrace: false }`: it captures one by default; Effect 4 `{}`: its `useSpan` captures
 * none and takes no such option). @internal
 */
export const noSpanStack: { readonly captureStackTrace?: false } = { captureStackTrace: false }

// ---------------------------------------------------------------------------------------------
// Scope, Cause, Deferred, Fiber, Clock

/** A scope that can be closed (Effect 3 `Scope.CloseableScope`, Effect 4 `Scope.Closeable`). @internal */
export type Closeable = Scope.CloseableScope

/** Runs `self` in `scope` (Effect 3 `Scope.extend`, Effect 4 `Scope.provide`). @internal */
export const scopeExtend = <A, E, R>(self: Effect.Effect<A, E, R>, scope: Scope.Scope): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
  Scope.extend(self, scope)

/** A child of `scope` whose finalizers run one after another. @internal */
export const forkSequential = (scope: Scope.Scope): Effect.Effect<Closeable> => Scope.fork(scope, ExecutionStrategy.sequential)

/** The first failure of a cause, or none. @internal */
export const causeFailure = <E>(cause: Cause.Cause<E>): Option.Option<E> => Cause.failureOption(cause)

/** Whether a cause holds interruptions only. @internal */
export const isInterruptedOnly = <E>(cause: Cause.Cause<E>): boolean => Cause.isInterruptedOnly(cause)

/** A new deferred, made outside an effect. @internal */
export const deferredUnsafe = <A, E = never>(): Deferred.Deferred<A, E> => Deferred.unsafeMake<A, E>(FiberId.none)

/** Completes a deferred outside an effect. @internal */
export const deferredDone = <A, E>(self: Deferred.Deferred<A, E>, effect: Effect.Effect<A, E>): void =>
  Deferred.unsafeDone(self, effect)

/** A running fiber. @internal */
export type RuntimeFiber<A, E = never> = Fiber.RuntimeFiber<A, E>

/** The clock's time in milliseconds, read outside an effect. @internal */
export const nowMillisUnsafe = (clock: Clock.Clock): number => clock.unsafeCurrentTimeMillis()

// ---------------------------------------------------------------------------------------------
// Metrics

/** A counter of numbers. @internal */
export type Counter = Metric.Metric.Counter<number>

/** A gauge of numbers. @internal */
export type Gauge = Metric.Metric.Gauge<number>

/** A histogram of numbers. @internal */
export type Histogram = Metric.Metric.Histogram<number>

/** Labels (attributes) of a metric series, made once. @internal */
export type Labels = ReadonlyArray<MetricLabel.MetricLabel>

/** Labels from a record of names to values. @internal */
export const labels = (record: Readonly<Record<string, string>>): Labels =>
  Object.entries(record).map(([key, value]) => MetricLabel.make(key, value))

/** The metric with labels applied (Effect 3 `Metric.tagged`, Effect 4 `Metric.withAttributes`). @internal */
export const withLabels = <T, I, O>(metric: Metric.Metric<T, I, O>, record: Readonly<Record<string, string>>): Metric.Metric<T, I, O> =>
  Metric.taggedWithLabels(metric, labels(record))

/**
 * An update function for one series of `metric`, bound once: calling it costs no allocation on
 * either major. Effect 3: `metric.unsafeUpdate(n, series)` (the metric caches its hook per label
 * array, so `series` is made once). Effect 4: `updateUnsafe(n, context)` on a metric of that series
 * with its attributes built in (made once, for the metrics of {@link counter}, {@link gauge} and
 * {@link exponentialHistogram}) or, for another metric, with the attributes in a context made
 * once. Effect 3's metrics are global (one registry); Effect 4's go to the `Metric.MetricRegistry`
 * of `metrics` (see {@link metricContext}), the default one when absent. @internal
 */
export const updater = <T, O>(
  metric: Metric.Metric<T, number, O>,
  series: Labels,
  _metrics?: MetricContext
): ((n: number) => void) =>
(n) => metric.unsafeUpdate(n, series)

/**
 * Where the library's metric updates go, read once from the context of the code that builds what
 * updates them (a `RateLimiter` registry, a middleware): nothing on Effect 3, whose metrics are
 * global; on Effect 4 the `Metric.MetricRegistry` in that context. @internal
 */
export type MetricContext = undefined

/** The {@link MetricContext} of the current context. @internal */
export const metricContext: Effect.Effect<MetricContext> = Effect.succeed(undefined)

/**
 * A counter of numbers (Effect 3 `Metric.counter(name, options)`; Effect 4 the same call, and the
 * counter remembers how to make its series with attributes built in, for {@link updater}). @internal
 */
export const counter = (
  name: string,
  options: { readonly description: string; readonly incremental?: boolean | undefined }
): Counter => Metric.counter(name, options)

/**
 * A gauge of numbers (Effect 3 `Metric.gauge(name, options)`; Effect 4 the same call, and the
 * gauge remembers how to make its series with attributes built in, for {@link updater}). @internal
 */
export const gauge = (name: string, options: { readonly description: string }): Gauge => Metric.gauge(name, options)

/** A histogram with exponential bucket bounds (Effect 3 `Metric.histogram(name, MetricBoundaries.exponential(…), description)`, Effect 4 `Metric.histogram(name, { boundaries, description })`). @internal */
export const exponentialHistogram = (
  name: string,
  options: { readonly start: number; readonly factor: number; readonly count: number; readonly description: string }
): Histogram =>
  Metric.histogram(
    name,
    MetricBoundaries.exponential({ start: options.start, factor: options.factor, count: options.count }),
    options.description
  )

// ---------------------------------------------------------------------------------------------
// Config

/**
 * A `Config` of `A`, or a record of `Config`s for each field of `A` (Effect 3
 * `Config.Config.Wrap<A>`, Effect 4 `Config.Wrap<A>`). @internal
 */
export type ConfigWrap<A> = Config.Config.Wrap<A>

/** Effect's own configuration error, what a `Config` read fails with (Effect 3 `ConfigError.ConfigError`, Effect 4 `Config.ConfigError`). @internal */
export type EffectConfigError = ConfigError.ConfigError

/** A string read from the ConfigProvider (Effect 3 `Config.string`, Effect 4 `Config.String`). @internal */
export const configString = (name: string): Config.Config<string> => Config.string(name)

/** A whole number (Effect 3 `Config.integer`, Effect 4 `Config.Int`). @internal */
export const configInt = (name: string): Config.Config<number> => Config.integer(name)

/** A number (Effect 3 `Config.number`, Effect 4 `Config.Number`). @internal */
export const configNumber = (name: string): Config.Config<number> => Config.number(name)

/** A boolean (Effect 3 `Config.boolean`, Effect 4 `Config.Boolean`). @internal */
export const configBoolean = (name: string): Config.Config<boolean> => Config.boolean(name)

/** A secret string (Effect 3 `Config.redacted`, Effect 4 `Config.Redacted`). @internal */
export const configRedacted = (name: string): Config.Config<Redacted.Redacted<string>> => Config.redacted(name)

/**
 * `self` checked by `f`: a failure's message becomes Effect's invalid-data configuration error
 * (Effect 3 `Config.mapOrFail` + `ConfigError.InvalidData`, Effect 4 `Config.mapEffect` +
 * `Config.ConfigError(SourceError)`). @internal
 */
export const configValidate: {
  <A, B>(f: (a: A) => Result<B, string>): (self: Config.Config<A>) => Config.Config<B>
  <A, B>(self: Config.Config<A>, f: (a: A) => Result<B, string>): Config.Config<B>
} = dual(
  2,
  <A, B>(self: Config.Config<A>, f: (a: A) => Result<B, string>): Config.Config<B> =>
    Config.mapOrFail(self, (a) => {
      const r = f(a)
      return isErr(r) ? Either.left(ConfigError.InvalidData([], errOf(r))) : Either.right(r.right)
    })
)

/**
 * The string variable `name`, checked by `f`. A failure is Effect's invalid-data configuration
 * error at `name`: Effect 3 puts the variable's path (with any `Config.nested` prefix) in front of
 * the message itself; Effect 4's error carries no path, so the Effect 4 half writes `name` into
 * the message. @internal
 */
export const configStringChecked = <B>(name: string, f: (text: string) => Result<B, string>): Config.Config<B> =>
  configValidate(Config.string(name), f)
