/**
 * A Promise facade with rate-sync's surface, for code that does not run on Effect.
 *
 * Everything runs on one `ManagedRuntime` built lazily from `RateSync.layer` (`$RATE_SYNC_CONFIG`,
 * `./rate-sync.toml` or `./config/rate-sync.toml`, with environment overrides), or from the file
 * given to `loadConfig`.
 * Failures reject with the library's tagged errors themselves (`RateLimitExceeded`,
 * `LimiterNotFound`, ...), so `instanceof` and `_tag` work.
 *
 * ## Timeouts
 *
 * `timeout` (in {@link PromiseAcquireOptions}) is a duration input (Effect 3
 * `Duration.DurationInput`, Effect 4 `Duration.Input`): a string such as
 * `"2 seconds"` or `"500 millis"`, a `Duration`, or a plain number, which the facade reads as
 * SECONDS, as `rate-sync.toml` and rate-sync's `acquire(timeout=2.0)` do (`timeout: 0.5` is half a
 * second, `Infinity` waits as long as needed). This differs from the Effect API, where a plain
 * number is milliseconds (Effect's `Duration` rule); a string or a `Duration` means the same in
 * both, so write those in code shared between the two. The decision: a facade that mirrors
 * rate-sync's surface reads numbers the way rate-sync and its TOML file do, so a call ported from
 * Python (`try_acquire("api", timeout=2)`) waits 2 s, not 2 ms. A negative or `NaN` number
 * rejects with a `ConfigError` at `options.timeout`. Limiter definitions given to
 * `configureLimiter` / `cloneLimiter` are the Effect API's own and keep its rule (a number is
 * milliseconds): give them strings.
 *
 * ```ts
 * import { acquire, rateLimited } from "effect-rate-sync/promise"
 *
 * const permit = await acquire("api", { timeout: 2 })  // waits up to 2 seconds
 * try {
 *   // ... the rate-limited work ...
 * } finally {
 *   await permit.release()
 * }
 * const fetchData = rateLimited("api", { timeout: "500 millis" })(async (url: string) => fetch(url))
 * ```
 *
 * (`await using permit = await acquire("api")` releases it too, where `await using` is
 * supported: TypeScript 5.2+, not plain JavaScript on Node 20.)
 *
 * @since 0.1.0
 */
import * as Fx from "#fx/core"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type { LimiterDefinition, LimiterOverrides } from "./LimiterDefinition.js"
import { describeInput } from "./internal/config/input.js"
import { type CheckNow, checkNowOf } from "./internal/limiter/check.js"
import { type Metrics, metricContextOf } from "./internal/limiter/metricContext.js"
import { ConfigError, LimiterNotFound, type StoreNotFound, type StoreUnavailable } from "./RateLimitError.js"
import * as RateLimiter from "./RateLimiter.js"
import * as RateSync from "./RateSync.js"

/**
 * A call was still running (an `acquire` waiting for a slot, say) when the configuration it ran
 * on was closed: by `dispose()` (`reason: "disposed"`) or by a `loadConfig` / `useLayer` that
 * replaced it (`reason: "replaced"`). The call was interrupted; an `acquire` rejected this way
 * holds no slot.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigurationClosed extends Schema.TaggedError<ConfigurationClosed>(
  "effect-rate-sync/ConfigurationClosed"
)("ConfigurationClosed", { reason: Fx.literals("disposed", "replaced") }) {
  override get message(): string {
    return this.reason === "disposed"
      ? "The rate-sync configuration was disposed before the call completed"
      : "The rate-sync configuration was replaced (loadConfig / useLayer) before the call completed"
  }
}

type Runtime = ManagedRuntime.ManagedRuntime<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable>

type FacadeLayer = Layer.Layer<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable>

// One configuration: its runtime, the calls running on it, the scopes of the permits acquired on
// it and not yet released, and the releases under way. Replacing or disposing the configuration
// interrupts the running calls, closes the permits' scopes (so their slots are given back and
// their lease renewals stop) and waits for the releases before the runtime itself is disposed.
interface Generation {
  readonly runtime: Runtime
  readonly fibers: Set<Fx.RuntimeFiber<unknown, unknown>>
  readonly permits: Set<Fx.Closeable>
  readonly releases: Set<Promise<unknown>>
  closed: ConfigurationClosed["reason"] | undefined
  /**
   * Where its limiters' metrics go (`internal/limiter/metricContext.ts`), read once it is built
   * (`value` undefined: a `RateLimiter` not made by `RateLimiter.make`, its metrics unknown).
   */
  metrics: { readonly value: Metrics | undefined } | undefined
  /**
   * `check` without a fiber on its limiters of in-process stores (`internal/limiter/check.ts`
   * `CheckNow`, on its runtime's `Clock`), read once it is built; `value` undefined: a `RateLimiter`
   * not made by `RateLimiter.make`, every call a fiber.
   */
  checkNow: { readonly value: { readonly check: CheckNow; readonly clock: Clock.Clock } | undefined } | undefined
}

let current: Generation | undefined

const makeGeneration = (layer: FacadeLayer): Generation => ({
  runtime: ManagedRuntime.make(layer),
  fibers: new Set(),
  permits: new Set(),
  releases: new Set(),
  closed: undefined,
  metrics: undefined,
  checkNow: undefined
})

const generation = (): Generation => {
  if (current === undefined) current = makeGeneration(RateSync.layer)
  return current
}

const squash = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/**
 * Runs `effect` on `gen` as a tracked fiber, which closing `gen` interrupts. Rejects with the
 * failure itself (a tagged error such as `RateLimitExceeded`), not a wrapper, or with
 * `ConfigurationClosed` when closing `gen` interrupted it.
 */
const runOn = <A, E>(gen: Generation, effect: Effect.Effect<A, E, RateLimiter.RateLimiter>): Promise<A> => {
  if (gen.closed !== undefined) return Promise.reject(new ConfigurationClosed({ reason: gen.closed }))
  const fiber = gen.runtime.runFork(effect)
  gen.fibers.add(fiber)
  return new Promise<A>((resolve, reject) => {
    fiber.addObserver((exit) => {
      gen.fibers.delete(fiber)
      if (Exit.isSuccess(exit)) resolve(exit.value)
      else if (gen.closed !== undefined && Fx.isInterruptedOnly(exit.cause)) {
        reject(new ConfigurationClosed({ reason: gen.closed }))
      } else reject(Cause.squash(exit.cause))
    })
  })
}

const run = <A, E>(effect: Effect.Effect<A, E, RateLimiter.RateLimiter>): Promise<A> => runOn(generation(), effect)

/**
 * Where the metrics of the current configuration's limiters go (Effect 4: the
 * `Metric.MetricRegistry` its `RateLimiter` was made with), one object per registry; `undefined`
 * while none is built. For the HTTP adapters' counter, which lands beside them.
 *
 * @internal
 */
export const currentMetrics = (): Metrics | undefined => {
  const gen = current
  if (gen === undefined) return undefined
  if (gen.metrics === undefined) {
    // not built yet: asked again at the next count (the runtime builds asynchronously)
    const exit = gen.runtime.runSyncExit(Effect.map(RateLimiter.RateLimiter, metricContextOf))
    if (Exit.isFailure(exit)) return undefined
    gen.metrics = { value: exit.value }
  }
  return gen.metrics.value
}

/** `gen`'s `CheckNow` and the clock it reads (asked again at the next call while `gen` is not built). */
const checkNowIn = (gen: Generation): { readonly check: CheckNow; readonly clock: Clock.Clock } | undefined => {
  if (gen.checkNow === undefined) {
    const exit = gen.runtime.runSyncExit(
      Effect.zipWith(RateLimiter.RateLimiter, Effect.clockWith(Effect.succeed), (service, clock) => {
        const check = checkNowOf(service)
        return check === undefined ? undefined : { check, clock }
      })
    )
    if (Exit.isFailure(exit)) return undefined
    gen.checkNow = { value: exit.value }
  }
  return gen.checkNow.value
}

// Interrupts the calls running on `gen`, closes the permits still held on it, waits for the
// releases under way, then closes its runtime (stores, connections). Never rejects.
const close = async (gen: Generation, reason: ConfigurationClosed["reason"]): Promise<void> => {
  gen.closed = reason
  const fibers = Array.from(gen.fibers)
  // On the default runtime: interrupting needs nothing from `gen`'s, which may have failed to build.
  if (fibers.length > 0) await Effect.runPromise(Fiber.interruptAll(fibers))
  // Taken after the interruptions: an `acquire` that completed meanwhile has registered its scope.
  const scopes = Array.from(gen.permits)
  gen.permits.clear()
  if (scopes.length > 0) {
    await gen.runtime.runPromiseExit(Effect.forEach(scopes, (scope) => Scope.close(scope, Exit.void), { discard: true }))
  }
  await Promise.all(gen.releases)
  await gen.runtime.dispose()
}

// Builds the new configuration completely before it replaces the current one: on failure the
// current configuration is untouched and the tagged error is thrown.
const install = async (layer: FacadeLayer): Promise<void> => {
  const next = makeGeneration(layer)
  const built = await next.runtime.runPromiseExit(Effect.void)
  if (Exit.isFailure(built)) {
    await next.runtime.dispose()
    throw Cause.squash(built.cause)
  }
  const previous = current
  current = next
  if (previous !== undefined) await close(previous, "replaced")
}

/**
 * The options of `acquire`, `tryAcquire` and `rateLimited`: those of the Effect API, with a plain
 * number `timeout` read as seconds (see the module doc, "Timeouts").
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseAcquireOptions {
  /** The key to limit by (see `RateLimiter.AcquireOptions`). */
  readonly key?: string | undefined
  /** Tokens (or window units) to take: a whole number in [1, capacity]. Default 1. */
  readonly cost?: number | undefined
  /**
   * How long `acquire` may wait (overrides the limiter's `timeout`), or how long `tryAcquire`
   * may wait before answering `false` (default 0): `"2 seconds"`, a `Duration`, or a number of
   * SECONDS (`2`, `0.5`, `Infinity`).
   */
  readonly timeout?: Fx.DurationInput | undefined
}

// A number is seconds here; a negative or NaN one is passed on as given so that the Effect API
// rejects it with its `ConfigError` at `options.timeout` (Duration.seconds would clamp it to 0).
const toEffectOptions = (options: PromiseAcquireOptions | undefined): RateLimiter.AcquireOptions | undefined => {
  if (options === undefined || typeof options.timeout !== "number") return options
  const seconds = options.timeout
  return { ...options, timeout: Number.isNaN(seconds) || seconds < 0 ? seconds : Duration.seconds(seconds) }
}

/**
 * A held permit. `release()` gives the concurrency slot back (idempotent); `await using` does it
 * for you. After `dispose()` (or a `loadConfig` / `useLayer` that replaced the configuration it
 * was acquired on) the slot has already been given back and `release()` does nothing.
 *
 * `adjust(delta)` and `refund()` change what it charged, as `permit.adjust` / `permit.refund`
 * of the Effect API do (a number for every rate limit it holds, or `{ [limiterId]: delta }`);
 * they run on the configuration the permit was acquired on, and reject with
 * `ConfigurationClosed` once it is closed.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromisePermit<P extends RateLimiter.Permit | RateLimiter.CompositePermit = RateLimiter.Permit>
  extends AsyncDisposable
{
  readonly permit: P
  readonly release: () => Promise<void>
  readonly adjust: (delta: RateLimiter.AdjustDelta) => Promise<ReadonlyArray<RateLimiter.Adjustment>>
  readonly refund: () => Promise<ReadonlyArray<RateLimiter.Adjustment>>
}

/**
 * Replaces the configuration with the given file. The new runtime is built first; only once it
 * is ready does it replace the previous one: its calls still running (an `acquire` waiting for a
 * slot, say) reject with `ConfigurationClosed`, its held permits are released, and its runtime
 * and stores are closed. On failure it rejects with the tagged error (`ConfigError`, ...) and the
 * previous configuration stays in place, untouched.
 *
 * @since 0.1.0
 * @category config
 */
export const loadConfig = (path: string): Promise<void> => install(RateSync.layerFrom(path))

/**
 * Uses a layer of your own (for example `RateLimiter.layer(...)` over a store) instead of the
 * TOML configuration. Replaces the current configuration the way `loadConfig` does.
 *
 * @since 0.1.0
 * @category config
 */
export const useLayer = (layer: FacadeLayer): Promise<void> => install(layer)

/**
 * Closes the runtime: calls still running on it reject with `ConfigurationClosed` (an `acquire`
 * rejected so holds no slot), the permits still held are released, then stores and connections.
 * The next call builds a fresh one. Not needed for the process to exit: nothing the facade
 * starts keeps an idle process alive.
 *
 * @since 0.1.0
 * @category config
 */
export const dispose = async (): Promise<void> => {
  const previous = current
  current = undefined
  if (previous !== undefined) await close(previous, "disposed")
}

// The Effect API's acquire for one id or several limits (the overloads, from a union).
const acquireEffect = (limits: string | RateLimiter.Limits, options: RateLimiter.AcquireOptions | undefined) =>
  isLimits(limits)
    ? Effect.map(RateLimiter.acquire(limits, options), (p): RateLimiter.Permit | RateLimiter.CompositePermit => p)
    : Effect.map(RateLimiter.acquire(limits, options), (p): RateLimiter.Permit | RateLimiter.CompositePermit => p)

const isLimits = (limits: string | RateLimiter.Limits): limits is RateLimiter.Limits => Array.isArray(limits)

async function acquireWith(id: string, options?: PromiseAcquireOptions): Promise<PromisePermit>
async function acquireWith(
  limits: RateLimiter.Limits,
  options?: PromiseAcquireOptions
): Promise<PromisePermit<RateLimiter.CompositePermit>>
async function acquireWith(
  limits: string | RateLimiter.Limits,
  options?: PromiseAcquireOptions
): Promise<PromisePermit<RateLimiter.Permit | RateLimiter.CompositePermit>> {
  const effectOptions = toEffectOptions(options)
  const gen = generation()
  // The scope is registered in `gen.permits` by the fiber itself, uninterruptibly once the permit
  // is in it, so that closing `gen` either interrupts the wait (the scope is closed here, nothing
  // held) or finds the scope and gives its slot back.
  const { permit, scope } = await runOn(
    gen,
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const exit = yield* Effect.exit(restore(Fx.scopeExtend(acquireEffect(limits, effectOptions), scope)))
        if (Exit.isFailure(exit)) {
          yield* Scope.close(scope, exit)
          return yield* Effect.failCause(exit.cause)
        }
        yield* Effect.sync(() => gen.permits.add(scope))
        return { permit: exit.value, scope }
      })
    )
  )
  // Acquired, but `gen` was closed before this continuation ran: `close` gives (or gave) the slot
  // back, so the caller must not believe it holds one.
  if (gen.closed !== undefined) throw new ConfigurationClosed({ reason: gen.closed })
  let released = false
  const release = async (): Promise<void> => {
    if (released) return
    released = true
    // When the scope is no longer tracked, `dispose` (or a configuration swap) has closed it and
    // there is nothing to do; otherwise `close` waits for this release before disposing the runtime.
    if (!gen.permits.delete(scope)) return
    const closing = gen.runtime.runPromiseExit(Scope.close(scope, Exit.void))
    gen.releases.add(closing)
    try {
      squash(await closing)
    } finally {
      gen.releases.delete(closing)
    }
  }
  return {
    permit,
    release,
    adjust: (delta) => runOn(gen, permit.adjust(delta)),
    refund: () => runOn(gen, permit.refund),
    [Symbol.asyncDispose]: release
  }
}

/**
 * Waits for a token and a concurrency slot (up to the timeout: a number is seconds, see the
 * module doc); resolves to a permit to release. Over several limits (an array of
 * `RateLimiter.Limits`, as the Effect API's `acquire` takes them), every limit is charged or
 * none is, and the permit is a `CompositePermit`.
 *
 * ```ts
 * const p = await acquire(["rpm", { limiter: "tpm", cost: 500 }], { key: userId })
 * try {
 *   const reply = await callModel()
 *   await p.adjust({ tpm: reply.usage.total_tokens - 500 })
 * } finally {
 *   await p.release()
 * }
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const acquire: {
  (id: string, options?: PromiseAcquireOptions): Promise<PromisePermit>
  (limits: RateLimiter.Limits, options?: PromiseAcquireOptions): Promise<PromisePermit<RateLimiter.CompositePermit>>
} = acquireWith

/**
 * `true` when admitted, `false` otherwise. Waits up to `options.timeout` (a number is seconds)
 * for a token or slot (rate-sync's `try_acquire(timeout)`); with no `timeout` it answers at once. The slot, if any, is
 * released at once since there is no scope to hold it; use `acquire` to hold one. Over several
 * limits: `true` when every limit was charged, `false` when none was.
 *
 * @since 0.1.0
 * @category accessors
 */
export const tryAcquire = (limits: string | RateLimiter.Limits, options?: PromiseAcquireOptions): Promise<boolean> =>
  run(Effect.scoped(RateLimiter.tryAcquire(limits, toEffectOptions(options))))

function checkWith(id: string, options?: PromiseAcquireOptions): Promise<RateLimiter.Decision>
function checkWith(limits: RateLimiter.Limits, options?: PromiseAcquireOptions): Promise<RateLimiter.CombinedDecision>
function checkWith(
  limits: string | RateLimiter.Limits,
  options?: PromiseAcquireOptions
): Promise<RateLimiter.Decision | RateLimiter.CombinedDecision> {
  if (isLimits(limits)) return run(RateLimiter.check(limits, toEffectOptions(options)))
  const opts = toEffectOptions(options)
  // a limiter on an in-process store decides in one synchronous step: no fiber (the HTTP
  // adapters' hot path); anything else, or an answer `check` must give itself, runs as a call
  const gen = generation()
  const now = gen.closed === undefined ? checkNowIn(gen) : undefined
  const decision = now?.check(limits, opts, now.clock)
  return decision === undefined ? runOn(gen, RateLimiter.check(limits, opts)) : Promise.resolve(decision)
}

/**
 * One decision that consumes when allowed. Over several limits, a `CombinedDecision` (a decision
 * per limit and the overall one; every limit charged or none).
 *
 * @since 0.1.0
 * @category accessors
 */
export const check: {
  (id: string, options?: PromiseAcquireOptions): Promise<RateLimiter.Decision>
  (limits: RateLimiter.Limits, options?: PromiseAcquireOptions): Promise<RateLimiter.CombinedDecision>
} = checkWith

/**
 * A limiter's state for `key`, read without spending anything (see `RateLimiter.status`):
 * `limit`, `remaining`, `resetAfterMs`, and whether (and in how long) a take of `cost` would be
 * admitted.
 *
 * @since 0.2.0
 * @category accessors
 */
export const status = (id: string, options?: RateLimiter.StatusOptions): Promise<RateLimiter.LimiterStatus> =>
  run(RateLimiter.status(id, options))

/**
 * The options of `rateLimited`: those of `acquire`, and `refundOn` (`"failure"`: a call whose
 * promise rejects gives its charge back; `"success"`: one that resolves does), as
 * `RateLimiter.withRateLimit`'s. A refund that fails is ignored: the call's own outcome stands.
 *
 * @since 0.2.0
 * @category models
 */
export interface RateLimitedOptions extends PromiseAcquireOptions {
  readonly refundOn?: "failure" | "success" | undefined
}

/**
 * Wraps an async function: acquire before, release after. The limiter id (or the limits, an
 * array) may depend on the arguments (multi-tenant). `refundOn` gives the charge back after a
 * failure or a success (see {@link RateLimitedOptions}).
 *
 * @since 0.1.0
 * @category accessors
 */
export const rateLimited: {
  <Args extends ReadonlyArray<unknown>>(
    id: (...args: Args) => string | RateLimiter.Limits,
    options?: RateLimitedOptions
  ): <R>(fn: (...args: Args) => Promise<R>) => (...args: Args) => Promise<R>
  (
    id: string | RateLimiter.Limits,
    options?: RateLimitedOptions
  ): <Args extends ReadonlyArray<unknown>, R>(fn: (...args: Args) => Promise<R>) => (...args: Args) => Promise<R>
} = <Args extends ReadonlyArray<unknown>>(
  id: string | RateLimiter.Limits | ((...args: Args) => string | RateLimiter.Limits),
  options?: RateLimitedOptions
) =>
<R>(fn: (...args: Args) => Promise<R>): (...args: Args) => Promise<R> =>
async (...args: Args) => {
  const refundOn = options?.refundOn
  if (refundOn !== undefined && refundOn !== "failure" && refundOn !== "success") {
    throw ConfigError.at("options.refundOn", `"failure" or "success"`, describeInput(refundOn))
  }
  const limits = typeof id === "function" ? id(...args) : id
  const permit: PromisePermit<RateLimiter.Permit | RateLimiter.CompositePermit> = isLimits(limits)
    ? await acquire(limits, options)
    : await acquire(limits, options)
  let failed = true
  try {
    const result = await fn(...args)
    failed = false
    return result
  } finally {
    if (refundOn !== undefined && failed === (refundOn === "failure")) await permit.refund().catch(() => [])
    await permit.release()
  }
}

/**
 * @since 0.1.0
 * @category config
 */
export const configureStore = (id: string, store: RateLimiter.StoreInput): Promise<void> =>
  run(RateLimiter.configureStore(id, store))

/**
 * @since 0.1.0
 * @category config
 */
export const configureLimiter = (id: string, definition: LimiterDefinition): Promise<void> =>
  run(RateLimiter.configureLimiter(id, definition))

/**
 * @since 0.1.0
 * @category config
 */
export const cloneLimiter = (sourceId: string, newId: string, overrides?: LimiterOverrides): Promise<void> =>
  run(RateLimiter.cloneLimiter(sourceId, newId, overrides))

/**
 * A limiter handle: its description and a synchronous `getMetrics()`. `getMetrics()` asks the
 * configuration current at the time of the call, and throws the tagged error (`LimiterNotFound`)
 * when it has no such limiter, or after `dispose()` until another call builds a configuration.
 *
 * @since 0.1.0
 * @category accessors
 */
export const getLimiter = async (id: string): Promise<
  RateLimiter.LimiterInfo & { readonly getMetrics: () => RateLimiter.RateLimiterMetrics }
> => {
  const info = await run(RateLimiter.get(id))
  // The configuration is looked up at each call, so the handle follows `loadConfig`, `useLayer`
  // and `dispose`. None after `dispose`: a runtime cannot be built synchronously, and the
  // limiter the handle describes is gone.
  const getMetrics = (): RateLimiter.RateLimiterMetrics => {
    if (current === undefined) throw new LimiterNotFound({ limiterId: id })
    return squash(current.runtime.runSyncExit(RateLimiter.metrics(id)))
  }
  return { ...info, getMetrics }
}

/**
 * @since 0.1.0
 * @category accessors
 */
export const listStores = async (): Promise<Record<string, RateLimiter.StoreInfo>> =>
  Object.fromEntries((await run(RateLimiter.listStores)).map((s) => [s.id, s]))

/**
 * @since 0.1.0
 * @category accessors
 */
export const listLimiters = async (): Promise<Record<string, RateLimiter.LimiterInfo>> =>
  Object.fromEntries((await run(RateLimiter.list)).map((l) => [l.id, l]))

/**
 * @since 0.1.0
 * @category accessors
 */
export const initializeLimiter = (id: string): Promise<void> => run(RateLimiter.initialize(id))

/**
 * @since 0.1.0
 * @category accessors
 */
export const initializeAllLimiters = (): Promise<void> => run(RateLimiter.initializeAll)

/**
 * @since 0.1.0
 * @category accessors
 */
export const reset = (id: string, key?: string): Promise<void> => run(RateLimiter.reset(id, key))
