/**
 * A Promise facade with rate-sync's surface, for code that does not run on Effect.
 *
 * Everything runs on one `ManagedRuntime` built lazily from `RateSync.layer` (`./rate-sync.toml`
 * or `$RATE_SYNC_CONFIG`, with environment overrides), or from the file given to `loadConfig`.
 * Failures reject with the library's tagged errors themselves (`RateLimitExceeded`,
 * `LimiterNotFound`, ...), so `instanceof` and `_tag` work.
 *
 * ```ts
 * import { acquire, rateLimited } from "effect-rate-sync/promise"
 *
 * await using _permit = await acquire("api")          // released when the block exits
 * const fetchData = rateLimited("api")(async (url: string) => fetch(url))
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import type { LimiterDefinition, LimiterOverrides } from "./LimiterDefinition.js"
import type { ConfigError, StoreNotFound, StoreUnavailable } from "./RateLimitError.js"
import * as RateLimiter from "./RateLimiter.js"
import * as RateSync from "./RateSync.js"

type Runtime = ManagedRuntime.ManagedRuntime<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable>

let current: Runtime | undefined

const runtime = (): Runtime => {
  if (current === undefined) current = ManagedRuntime.make(RateSync.layer)
  return current
}

/** Rejects with the failure itself (a tagged error such as `RateLimitExceeded`), not a wrapper. */
const run = async <A, E>(effect: Effect.Effect<A, E, RateLimiter.RateLimiter>): Promise<A> => {
  const exit = await runtime().runPromiseExit(effect)
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/**
 * A held permit. `release()` gives the concurrency slot back (idempotent); `await using` does it
 * for you.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromisePermit extends AsyncDisposable {
  readonly permit: RateLimiter.Permit
  readonly release: () => Promise<void>
}

/**
 * Replaces the configuration with the given file (closing the previous runtime and its stores).
 *
 * @since 0.1.0
 * @category configuration
 */
export const loadConfig = async (path: string): Promise<void> => {
  await dispose()
  current = ManagedRuntime.make(RateSync.layerFrom(path))
  await current.runPromise(Effect.void)
}

/**
 * Uses a layer of your own (for example `RateLimiter.layer(...)` over a store) instead of the
 * TOML configuration.
 *
 * @since 0.1.0
 * @category configuration
 */
export const useLayer = async (
  layer: Layer.Layer<RateLimiter.RateLimiter, ConfigError | StoreNotFound | StoreUnavailable>
): Promise<void> => {
  await dispose()
  current = ManagedRuntime.make(layer)
  await current.runPromise(Effect.void)
}

/**
 * Closes the runtime: releases stores and connections. The next call builds a fresh one.
 *
 * @since 0.1.0
 * @category configuration
 */
export const dispose = async (): Promise<void> => {
  const previous = current
  current = undefined
  if (previous !== undefined) await previous.dispose()
}

/**
 * Waits for a token and a concurrency slot (up to the timeout); resolves to a permit to release.
 *
 * @since 0.1.0
 * @category usage
 */
export const acquire = async (id: string, options?: RateLimiter.AcquireOptions): Promise<PromisePermit> => {
  const scope = await run(Scope.make())
  try {
    const permit = await run(Scope.extend(RateLimiter.acquire(id, options), scope))
    let released = false
    const release = async () => {
      if (released) return
      released = true
      await run(Scope.close(scope, Exit.void))
    }
    return { permit, release, [Symbol.asyncDispose]: release }
  } catch (error) {
    await run(Scope.close(scope, Exit.void))
    throw error
  }
}

/**
 * Never waits: `true` when admitted (the slot, if any, is released at once since there is no
 * scope to hold it; use `acquire` to hold one).
 *
 * @since 0.1.0
 * @category usage
 */
export const tryAcquire = (id: string, options?: RateLimiter.AcquireOptions): Promise<boolean> =>
  run(Effect.scoped(RateLimiter.tryAcquire(id, options)))

/**
 * One decision that consumes when allowed.
 *
 * @since 0.1.0
 * @category usage
 */
export const check = (id: string, options?: RateLimiter.AcquireOptions): Promise<RateLimiter.Decision> =>
  run(RateLimiter.check(id, options))

/**
 * Wraps an async function: acquire before, release after. The limiter id may depend on the
 * arguments (multi-tenant).
 *
 * @since 0.1.0
 * @category usage
 */
export const rateLimited = <Args extends ReadonlyArray<unknown>>(
  id: string | ((...args: Args) => string),
  options?: RateLimiter.AcquireOptions
) =>
<R>(fn: (...args: Args) => Promise<R>): (...args: Args) => Promise<R> =>
async (...args: Args) => {
  const permit = await acquire(typeof id === "string" ? id : id(...args), options)
  try {
    return await fn(...args)
  } finally {
    await permit.release()
  }
}

/**
 * @since 0.1.0
 * @category configuration
 */
export const configureStore = (id: string, store: RateLimiter.StoreInput): Promise<void> =>
  run(RateLimiter.configureStore(id, store))

/**
 * @since 0.1.0
 * @category configuration
 */
export const configureLimiter = (id: string, definition: LimiterDefinition): Promise<void> =>
  run(RateLimiter.configureLimiter(id, definition))

/**
 * @since 0.1.0
 * @category configuration
 */
export const cloneLimiter = (sourceId: string, newId: string, overrides?: LimiterOverrides): Promise<void> =>
  run(RateLimiter.cloneLimiter(sourceId, newId, overrides))

/**
 * A limiter handle: its description and a synchronous `getMetrics()`.
 *
 * @since 0.1.0
 * @category inspection
 */
export const getLimiter = async (id: string): Promise<
  RateLimiter.LimiterInfo & { readonly getMetrics: () => RateLimiter.RateLimiterMetrics }
> => {
  const info = await run(RateLimiter.get(id))
  const rt = runtime()
  return { ...info, getMetrics: () => rt.runSync(RateLimiter.metrics(id)) }
}

/**
 * @since 0.1.0
 * @category inspection
 */
export const listStores = async (): Promise<Record<string, RateLimiter.StoreInfo>> =>
  Object.fromEntries((await run(RateLimiter.listStores)).map((s) => [s.id, s]))

/**
 * @since 0.1.0
 * @category inspection
 */
export const listLimiters = async (): Promise<Record<string, RateLimiter.LimiterInfo>> =>
  Object.fromEntries((await run(RateLimiter.list)).map((l) => [l.id, l]))

/**
 * @since 0.1.0
 * @category initialization
 */
export const initializeLimiter = (id: string): Promise<void> => run(RateLimiter.initialize(id))

/**
 * @since 0.1.0
 * @category initialization
 */
export const initializeAllLimiters = (): Promise<void> => run(RateLimiter.initializeAll)

/**
 * @since 0.1.0
 * @category usage
 */
export const reset = (id: string, key?: string): Promise<void> => run(RateLimiter.reset(id, key))
