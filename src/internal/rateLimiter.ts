/**
 * The registry of limiters and stores: registration, replacement and inspection. What a call
 * does lives beside it, in `limiter/`: the entry and its bookkeeping (`entry.ts`), the validation
 * and decisions shared by every operation (`decision.ts`), `check` (`check.ts`) and `acquire`
 * with its concurrency lease (`acquire.ts`).
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import * as Fx from "#fx/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { errOf, isErr, valueOf } from "./result.js"
import type { LimiterDefinition, LimiterOverrides } from "../LimiterDefinition.js"
import { resolve, toDefinition } from "../LimiterDefinition.js"
import { describeInput, unknownField } from "./config/input.js"
import {
  type AcquireError,
  type CheckError,
  ConfigError,
  LimiterNotFound,
  type MakeError,
  type RegisterError,
  StoreNotFound,
  type StoreUnavailable
} from "../RateLimitError.js"
import type {
  AcquireOptions,
  BlockCacheOptions,
  CombinedDecision,
  CompositePermit,
  Decision,
  Limits,
  MakeOptions,
  Permit,
  RateLimiterService,
  StoreInfo,
  StoreInput
} from "../RateLimiter.js"
import { DEFAULT_MAX_ENTRIES } from "../core/blockCache.js"
import { storeKey } from "../core/storeKey.js"
import { clearBlocks, makeBlocks } from "./limiter/blockCache.js"
import { makeAcquire } from "./limiter/acquire.js"
import { makeCheck, makeCheckNow, makeStatus, recordCheckNow } from "./limiter/check.js"
import { acquireAll, checkAll, resolveCall } from "./limiter/composite.js"
import type { LimiterEntry, StoreEntry } from "./limiter/entry.js"
import { info, makeEntry, metricsOf, unavailable } from "./limiter/entry.js"
import { buildStore, isStoreService } from "./storeFactory.js"
import { recordMetricContext } from "./limiter/metricContext.js"

/** The registry's type id, defined once (re-exported by `RateLimiter`). @internal */
export const TypeId = "~effect-rate-sync/RateLimiter" as const

/**
 * Builds the store `id` in its own child scope of the registry's scope: closed at once when the
 * build fails (a pool opened before a later step failed is not kept until the registry closes),
 * and when the store is replaced by a new one under the same id. Limiters hold the store entry,
 * so replacing its store rebinds them all; then the old store's resources are released.
 */
const configureStoreIn = (
  registryScope: Scope.Scope,
  stores: Map<string, StoreEntry>,
  offStores: ReadonlySet<string>,
  id: string,
  input: StoreInput
): Effect.Effect<void, ConfigError | StoreUnavailable> =>
  Effect.suspend(() => {
    if (typeof id !== "string" || id.length === 0) {
      return Effect.fail(ConfigError.at("stores", "a store id (a non-empty string)", describeInput(id)))
    }
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(Fx.forkSequential(registryScope), (child) =>
        restore(Fx.scopeExtend(buildStore(id, input), child)).pipe(
          Effect.onExit((exit) => (Exit.isFailure(exit) ? Scope.close(child, exit) : Effect.void)),
          Effect.flatMap((store) => {
            // the block cache of its limiters: off when the registry's `blockCache.stores`, the
            // store's own `blockCache: false` (its driver's option, from a definition too) or a
            // definition's `blockCache: false` that its builder did not carry says so
            const blockCache = !offStores.has(id) && store.blockCache !== false &&
              (isStoreService(input) || input.engine === "memory" || input.blockCache !== false)
            const existing = stores.get(id)
            if (existing === undefined) {
              stores.set(id, { id, store, scope: child, initialized: false, blockCache })
              return Effect.void
            }
            const previous = existing.scope
            existing.store = store
            existing.scope = child
            existing.initialized = false
            existing.blockCache = blockCache
            return Scope.close(previous, Exit.void)
          })
        ))
    )
  })

/**
 * Whether a call names several limits (an array) rather than one id. Anything else that arrives
 * from JavaScript takes the single-id path, which answers `LimiterNotFound` for it.
 */
const isLimits = (limits: string | Limits): limits is Limits => Array.isArray(limits)

/** Connects, loads scripts, creates tables: once per store until it is replaced. */
const initializeStore = (storeEntry: StoreEntry): Effect.Effect<void, StoreUnavailable> =>
  storeEntry.initialized
    ? Effect.void
    : storeEntry.store.initialize.pipe(
      Effect.mapError((e) => unavailable(storeEntry, e)),
      Effect.tap(() =>
        Effect.sync(() => {
          storeEntry.initialized = true
        })
      )
    )

/** The registry's block cache settings, validated: `undefined` when it is off. */
interface BlockCacheSettings {
  readonly maxEntries: number
  readonly offStores: ReadonlySet<string>
}

const blockCacheSettings = (
  u: boolean | BlockCacheOptions | undefined
): BlockCacheSettings | undefined | ConfigError => {
  if (u === undefined || u === true) return { maxEntries: DEFAULT_MAX_ENTRIES, offStores: new Set() }
  if (u === false) return undefined
  // From JavaScript anything can arrive.
  if (typeof u !== "object" || u === null || Array.isArray(u)) {
    return ConfigError.at("blockCache", "true, false or { enabled, maxEntries, stores }", describeInput(u))
  }
  for (const field of Object.keys(u)) {
    if (field !== "enabled" && field !== "maxEntries" && field !== "stores") {
      return ConfigError.at(`blockCache.${field}`, "one of the block cache fields: enabled, maxEntries, stores", "an unknown field")
    }
  }
  const enabled: unknown = u.enabled ?? true
  if (typeof enabled !== "boolean") return ConfigError.at("blockCache.enabled", "true or false", describeInput(enabled))
  const maxEntries: unknown = u.maxEntries ?? DEFAULT_MAX_ENTRIES
  if (typeof maxEntries !== "number" || !Number.isSafeInteger(maxEntries) || maxEntries <= 0) {
    return ConfigError.at("blockCache.maxEntries", "a whole number greater than 0", describeInput(maxEntries))
  }
  const stores: unknown = u.stores ?? {}
  if (typeof stores !== "object" || stores === null || Array.isArray(stores)) {
    return ConfigError.at("blockCache.stores", "a record of store ids to true or false", describeInput(stores))
  }
  const offStores = new Set<string>()
  for (const [id, on] of Object.entries(stores)) {
    if (typeof on !== "boolean") return ConfigError.at(`blockCache.stores.${id}`, "true or false", describeInput(on))
    if (!on) offStores.add(id)
  }
  return enabled ? { maxEntries, offStores } : undefined
}

/** @internal */
export const make = (
  options: MakeOptions
): Effect.Effect<RateLimiterService, MakeError, Scope.Scope> =>
  Effect.gen(function*() {
    const registryScope = yield* Effect.scope
    const stores = new Map<string, StoreEntry>()
    const limiters = new Map<string, LimiterEntry>()
    const defaultStore = options.defaultStore ?? "default"
    const blockCache = blockCacheSettings(options.blockCache)
    if (blockCache instanceof ConfigError) return yield* Effect.fail(blockCache)
    // where the limiters' metrics go (Effect 4: the `Metric.MetricRegistry` of this context)
    const metrics = yield* Fx.metricContext
    const processId = randomUUID()
    let holderSeq = 0

    const notFound = (id: string) => new LimiterNotFound({ limiterId: typeof id === "string" ? id : describeInput(id) })

    const lookup = (id: string): Effect.Effect<LimiterEntry, LimiterNotFound> => {
      const entry = limiters.get(id)
      return entry === undefined ? Effect.fail(notFound(id)) : Effect.succeed(entry)
    }

    const register = (id: string, definition: LimiterDefinition): Effect.Effect<void, RegisterError> =>
      Effect.suspend((): Effect.Effect<void, RegisterError> => {
        const resolved = resolve(id, definition)
        if (isErr(resolved)) return Effect.fail(errOf(resolved))
        const spec = valueOf(resolved)
        const storeId = spec.store ?? defaultStore
        const storeEntry = stores.get(storeId)
        if (storeEntry === undefined) return Effect.fail(new StoreNotFound({ storeId }))
        // the store's own switch is read at each call (`cacheOf`): it follows a replaced store
        const cached = blockCache !== undefined && spec.blockCache
        const blocks = cached ? makeBlocks(blockCache.maxEntries) : undefined
        limiters.set(id, makeEntry(spec, storeEntry, limiters.get(id), blocks, metrics))
        return Effect.void
      })

    const offStores = blockCache?.offStores ?? new Set<string>()
    const configureStore = (id: string, input: StoreInput) => configureStoreIn(registryScope, stores, offStores, id, input)

    const cloneLimiter = (sourceId: string, newId: string, overrides?: LimiterOverrides) =>
      Effect.flatMap(lookup(sourceId), (source): Effect.Effect<void, RegisterError> => {
        if (limiters.has(newId)) {
          return Effect.fail(ConfigError.at(`limiters.${newId}`, "an id that is not in use", `an existing limiter "${newId}"`))
        }
        if (overrides !== undefined) {
          // From JavaScript anything can arrive here; a misspelt override is refused, not dropped.
          if (typeof overrides !== "object" || overrides === null || Array.isArray(overrides)) {
            return Effect.fail(ConfigError.at(`limiters.${newId}`, "overrides (an object of limiter fields)", describeInput(overrides)))
          }
          const unknown = unknownField(overrides, `limiters.${newId}`)
          if (unknown !== undefined) return Effect.fail(unknown)
        }
        return register(newId, mergeDefinition(toDefinition(source.spec), overrides ?? {}))
      })

    const reset = (id: string, key?: string) =>
      Effect.flatMap(lookup(id), (entry): Effect.Effect<void, StoreUnavailable | ConfigError> => {
        // a key that is not a string (from JavaScript): a ConfigError, as for acquire and check
        if (key !== undefined && typeof key !== "string") {
          return Effect.fail(ConfigError.at("options.key", "a string", describeInput(key)))
        }
        const sk = key === undefined ? undefined : storeKey(key)
        // This process's entries no longer say what the store answers; cleared before and after
        // the reset (a refusal answered while it ran may be from before it).
        clearBlocks(entry, sk)
        return entry.storeEntry.store.reset(id, sk).pipe(
          Effect.mapError((e) => unavailable(entry.storeEntry, e)),
          Effect.ensuring(Effect.sync(() => clearBlocks(entry, sk)))
        )
      })

    // Stores first (limiters name them), then limiters.
    for (const [id, input] of Object.entries(options.stores ?? {})) {
      yield* configureStore(id, input)
    }
    for (const [id, definition] of Object.entries(options.limiters ?? {})) {
      yield* register(id, definition)
    }

    const nextHolder = () => `${processId}:${++holderSeq}`
    const single = makeAcquire(limiters, notFound, nextHolder)
    const checkOne = makeCheck(limiters, notFound)

    // One id: the single-limit path, unchanged. An array: several limits as one unit.
    function acquire(id: string, opts?: AcquireOptions): Effect.Effect<Permit, AcquireError, Scope.Scope>
    function acquire(limits: Limits, opts?: AcquireOptions): Effect.Effect<CompositePermit, AcquireError, Scope.Scope>
    function acquire(
      limits: string | Limits,
      opts?: AcquireOptions
    ): Effect.Effect<Permit | CompositePermit, AcquireError, Scope.Scope> {
      if (!isLimits(limits)) return single.acquire(limits, opts)
      return Effect.suspend(() => {
        const call = resolveCall(limiters, notFound, limits, opts)
        return call._tag === "CompositeCall" ? acquireAll(call, nextHolder) : Effect.fail(call)
      })
    }

    function check(id: string, opts?: AcquireOptions): Effect.Effect<Decision, CheckError>
    function check(limits: Limits, opts?: AcquireOptions): Effect.Effect<CombinedDecision, CheckError>
    function check(
      limits: string | Limits,
      opts?: AcquireOptions
    ): Effect.Effect<Decision | CombinedDecision, CheckError> {
      if (!isLimits(limits)) return checkOne(limits, opts)
      return Effect.suspend(() => {
        // `check` never waits: the timeout is not read
        const call = resolveCall(limiters, notFound, limits, { key: opts?.key, cost: opts?.cost })
        return call._tag === "CompositeCall" ? checkAll(call) : Effect.fail(call)
      })
    }

    // Waits up to the call's own `timeout` (rate-sync's `try_acquire(timeout)`); none: answers at
    // once. The limiters' default timeouts are for `acquire` only.
    const tryAcquire = (limits: string | Limits, opts?: AcquireOptions) =>
      isLimits(limits)
        ? acquire(limits, { key: opts?.key, cost: opts?.cost, timeout: opts?.timeout ?? 0 }).pipe(
          Effect.as(true),
          Effect.catchTag("RateLimitExceeded", () => Effect.succeed(false))
        )
        : single.tryAcquire(limits, opts)

    const service: RateLimiterService = {
      [TypeId]: TypeId,
      acquire,
      tryAcquire,
      check,
      status: makeStatus(limiters, notFound),
      configureLimiter: register,
      cloneLimiter,
      configureStore,
      get: (id) => Effect.map(lookup(id), info),
      list: Effect.sync(() => Array.from(limiters.values(), info)),
      listStores: Effect.sync(() =>
        Array.from(stores.values(), (s): StoreInfo => ({
          id: s.id,
          engine: s.store.engine,
          initialized: s.initialized,
          limiters: Array.from(limiters.values()).filter((l) => l.storeEntry === s).map((l) => l.id)
        }))
      ),
      metrics: (id) => Effect.map(lookup(id), metricsOf),
      initialize: (id) => Effect.flatMap(lookup(id), (entry) => initializeStore(entry.storeEntry)),
      initializeAll: Effect.suspend(() =>
        Effect.forEach(new Set(Array.from(limiters.values(), (l) => l.storeEntry)), initializeStore, { discard: true })
      ),
      reset
    }
    recordMetricContext(service, metrics)
    recordCheckNow(service, makeCheckNow(limiters))
    return service
  })

const isWindow = (algorithm: LimiterDefinition["algorithm"]): boolean =>
  algorithm === "sliding_window" || algorithm === "fixed_window"

/**
 * `cloneLimiter`: an override replaces the source's field; an absent one keeps it. An override
 * that moves to the other algorithm family (token bucket / windows) drops the source's fields of
 * the family it leaves (rate, burst / limit, window): only the override can set those.
 */
const mergeDefinition = (base: LimiterDefinition, o: LimiterOverrides): LimiterDefinition => {
  const algorithm = o.algorithm ?? base.algorithm
  const switched = isWindow(algorithm) !== isWindow(base.algorithm)
  const newRate = o.rate !== undefined || o.ratePerSecond !== undefined
  const keepRate = !newRate && !switched
  return {
    store: o.store ?? base.store,
    algorithm,
    ratePerSecond: keepRate ? base.ratePerSecond : o.ratePerSecond,
    rate: keepRate ? base.rate : o.rate,
    burst: o.burst ?? (keepRate ? base.burst : undefined),
    maxConcurrent: o.maxConcurrent ?? base.maxConcurrent,
    limit: o.limit ?? (switched ? undefined : base.limit),
    window: o.window ?? (switched ? undefined : base.window),
    timeout: o.timeout ?? base.timeout,
    failClosed: o.failClosed ?? base.failClosed,
    lease: o.lease ?? base.lease,
    blockCache: o.blockCache ?? base.blockCache
  }
}
