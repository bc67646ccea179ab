/**
 * The registry of limiters and its accessors: `acquire`, `tryAcquire`, `check`, `withRateLimit`,
 * runtime registration, inspection and metrics.
 *
 * @since 0.1.0
 */
import * as Fx from "#fx/core"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/rateLimiter.js"
import type { LimiterDefinition, LimiterOverrides, LimiterSpec } from "./LimiterDefinition.js"
import type {
  AcquireError,
  CheckError,
  ConfigError,
  LimiterNotFound,
  MakeError,
  RegisterError,
  StoreUnavailable
} from "./RateLimitError.js"
import type { RateLimitStoreService } from "./RateLimitStore.js"
import { RateLimitStore } from "./RateLimitStore.js"
import type { StoreDefinition } from "./StoreDefinition.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: TypeId = internal.TypeId

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof internal.TypeId

/**
 * Per-call options. A bad option is a typed failure, never a defect: a `cost` that is not a whole
 * number in [1, capacity] is `InvalidCost`; a `timeout` that is not a duration of 0 or more (an
 * unparsable string, a negative or NaN number) and a `key` that is not a string are a
 * `ConfigError` at `options.timeout` / `options.key` (from `acquire`, `tryAcquire`,
 * `withRateLimit`; `check` takes no timeout and treats a non-string key as a defect, a bug of the
 * caller, since its errors have no `ConfigError`).
 *
 * @since 0.1.0
 * @category models
 */
export interface AcquireOptions {
  /**
   * Sub-identity inside the limiter (user id, IP, tenant). Default: the limiter's single state.
   * Any string is kept apart from every other one, lone surrogates and NUL included (see the
   * key encoding in docs/stores.md); errors, permits and decisions report it as given.
   */
  readonly key?: string | undefined
  /** Tokens (or window units) to take: a whole number in [1, capacity]. Default 1. */
  readonly cost?: number | undefined
  /**
   * How long `acquire` may wait (overrides the limiter's `timeout`), or how long `tryAcquire`
   * may wait before answering `false` (default 0). A duration of 0 or more; infinite: as long as
   * needed. Ignored by `check`, which never waits.
   */
  readonly timeout?: Fx.DurationInput | undefined
}

/**
 * What `acquire` hands back. Any concurrency slot it holds is released when its scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Permit {
  readonly limiterId: string
  readonly key: string
  readonly cost: number
  /** How long the acquire waited (rate reservation and slot wait), by the Effect clock. */
  readonly waitedMs: number
  /** `true` when the store failed and the fail-open policy let the call through. */
  readonly failedOpen: boolean
  /** Releases the concurrency slot now (idempotent; the scope would release it anyway). */
  readonly release: Effect.Effect<void>
}

/**
 * The answer of `check`: whether the call was admitted (and consumed), with the numbers an HTTP
 * response advertises. Times are the store's.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decision {
  readonly limiterId: string
  readonly key: string
  readonly allowed: boolean
  /** Capacity: burst (token bucket), limit (windows) or max concurrent (concurrency only). */
  readonly limit: number
  /** Whole units left, in [0, limit]. */
  readonly remaining: number
  /** Until the state is full again, in milliseconds (never NaN, never negative). */
  readonly resetAfterMs: number
  /** When refused, until the same call can first succeed, in milliseconds; 0 when allowed. */
  readonly retryAfterMs: number
  /** `true` when the store failed and the fail-open policy let the call through. */
  readonly failedOpen: boolean
  /** The limiter the decision was taken for. */
  readonly spec: LimiterSpec
}

/**
 * rate-sync's `RateLimiterMetrics`, per limiter, for this process.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiterMetrics {
  /**
   * Admissions: `acquire` / `tryAcquire` / `withRateLimit` calls that got through, and `check`
   * calls that consumed (allowed). A `check` on a concurrency-only limiter only peeks (it takes no
   * slot), so it never counts here.
   */
  readonly totalAcquisitions: number
  readonly totalWaitTimeMs: number
  readonly avgWaitTimeMs: number
  readonly maxWaitTimeMs: number
  /** Compare-and-set retries (NATS); 0 on the other stores. */
  readonly casFailures: number
  /**
   * `acquire` calls whose own timeout (set and greater than 0) ran out before a token or slot
   * came; a refusal with no timeout, an infinite one or `timeout: 0` (`tryAcquire`) is only a
   * refusal.
   */
  readonly timeouts: number
  /** Epoch milliseconds (Effect clock) of the last acquisition, if any. */
  readonly lastAcquisitionAt: number | undefined
  readonly currentConcurrent: number
  /** Times a caller found every concurrency slot taken. */
  readonly maxConcurrentReached: number
  readonly totalReleases: number
  /**
   * Calls refused: `acquire` (or `withRateLimit`) failing with `RateLimitExceeded`, `tryAcquire`
   * answering `false`, `check` answering `allowed: false` (a concurrency-only peek included).
   */
  readonly refusals: number
  /** Store round trips that failed. */
  readonly storeErrors: number
  /** Calls let through by the fail-open policy while the store failed. */
  readonly failOpenAdmits: number
  /**
   * Concurrency leases found expired on renewal (the holder lost its slot). A released slot is
   * never renewed again, so a release (early, or after the rate part failed) never counts here.
   */
  readonly leasesLost: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LimiterInfo {
  readonly id: string
  /** The store id the limiter runs on. */
  readonly store: string
  readonly engine: string
  readonly spec: LimiterSpec
  readonly initialized: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StoreInfo {
  readonly id: string
  readonly engine: string
  readonly initialized: boolean
  /** The limiter ids bound to it. */
  readonly limiters: ReadonlyArray<string>
}

/**
 * A store given to `configureStore`: a definition (built by the registry, in its scope) or a
 * ready store service.
 *
 * @since 0.1.0
 * @category models
 */
export type StoreInput = StoreDefinition | RateLimitStoreService

/**
 * The registry service.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiterService {
  readonly [TypeId]: TypeId
  readonly acquire: (
    id: string,
    options?: AcquireOptions
  ) => Effect.Effect<
    Permit,
    AcquireError,
    Scope.Scope
  >
  readonly tryAcquire: (
    id: string,
    options?: AcquireOptions
  ) => Effect.Effect<boolean, CheckError, Scope.Scope>
  readonly check: (
    id: string,
    options?: AcquireOptions
  ) => Effect.Effect<Decision, CheckError>
  readonly configureLimiter: (id: string, definition: LimiterDefinition) => Effect.Effect<void, RegisterError>
  readonly cloneLimiter: (
    sourceId: string,
    newId: string,
    overrides?: LimiterOverrides
  ) => Effect.Effect<void, LimiterNotFound | RegisterError>
  readonly configureStore: (id: string, store: StoreInput) => Effect.Effect<void, ConfigError | StoreUnavailable>
  readonly get: (id: string) => Effect.Effect<LimiterInfo, LimiterNotFound>
  readonly list: Effect.Effect<ReadonlyArray<LimiterInfo>>
  readonly listStores: Effect.Effect<ReadonlyArray<StoreInfo>>
  readonly metrics: (id: string) => Effect.Effect<RateLimiterMetrics, LimiterNotFound>
  readonly initialize: (id: string) => Effect.Effect<void, LimiterNotFound | StoreUnavailable>
  readonly initializeAll: Effect.Effect<void, StoreUnavailable>
  readonly reset: (id: string, key?: string) => Effect.Effect<void, LimiterNotFound | StoreUnavailable | ConfigError>
}

/**
 * The registry tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class RateLimiter extends Fx.Service<RateLimiter, RateLimiterService>()("effect-rate-sync/RateLimiter") {}

/**
 * What `make` takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions {
  /** Limiters to register at start. */
  readonly limiters?: Readonly<Record<string, LimiterDefinition>> | undefined
  /** Stores to register at start, by id. */
  readonly stores?: Readonly<Record<string, StoreInput>> | undefined
  /** The store a limiter without `store` runs on. Default: `"default"`. */
  readonly defaultStore?: string | undefined
}

/**
 * Builds a registry. Stores given as definitions are validated (see {@link configureStore}) and
 * built in child scopes of the surrounding scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: MakeOptions
) => Effect.Effect<RateLimiterService, MakeError, Scope.Scope> = internal.make

/**
 * A registry whose default store (id `"default"`) is the `RateLimitStore` in context.
 *
 * @example
 * ```ts
 * const Live = RateLimiter.layer({ api: { ratePerSecond: 100 } }).pipe(Layer.provide(MemoryStore.layer()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  limiters: Readonly<Record<string, LimiterDefinition>> = {}
): Layer.Layer<RateLimiter, MakeError, RateLimitStore> =>
  Fx.layerScoped(
    RateLimiter,
    Effect.flatMap(RateLimitStore, (store) => make({ limiters, stores: { default: store }, defaultStore: "default" }))
  )

/**
 * A registry built from `make` options (stores and limiters named explicitly).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMake = (
  options: MakeOptions
): Layer.Layer<RateLimiter, MakeError> => Fx.layerScoped(RateLimiter, make(options))

/**
 * Takes rate token(s) and a concurrency slot, waiting up to the timeout. The slot is released when
 * the surrounding scope closes. A bad option fails with `InvalidCost` (cost) or `ConfigError`
 * (`options.timeout`, `options.key`), see {@link AcquireOptions}.
 *
 * @since 0.1.0
 * @category accessors
 */
export const acquire = (
  id: string,
  options?: AcquireOptions
): Effect.Effect<
  Permit,
  AcquireError,
  RateLimiter | Scope.Scope
> => Effect.flatMap(RateLimiter, (r) => r.acquire(id, options))

/**
 * Like `acquire`, but answers a boolean: `true` when admitted (any slot stays held until the
 * scope closes), `false` otherwise. It waits up to `options.timeout` for a token or slot before
 * answering `false` (rate-sync's `try_acquire(timeout)`); with no `timeout` (default 0) it answers
 * at once. The limiter's own `timeout` is for `acquire` only.
 *
 * @since 0.1.0
 * @category accessors
 */
export const tryAcquire = (
  id: string,
  options?: AcquireOptions
): Effect.Effect<boolean, CheckError, RateLimiter | Scope.Scope> =>
  Effect.flatMap(RateLimiter, (r) => r.tryAcquire(id, options))

/**
 * One decision that consumes when allowed and never waits (`options.timeout` is ignored); what
 * HTTP middleware uses. A concurrency-only limiter is peeked: no slot is taken, since nothing
 * would release it, so an allowed peek is not an acquisition (`totalAcquisitions`, the
 * acquisitions metric and `lastAcquisitionAt` do not move) while a refused one counts as a
 * refusal.
 *
 * @since 0.1.0
 * @category accessors
 */
export const check = (
  id: string,
  options?: AcquireOptions
): Effect.Effect<Decision, CheckError, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.check(id, options))

/**
 * Runs an effect under a limiter: acquire before, release after (on success, failure or
 * interruption).
 *
 * @example
 * ```ts
 * const limited = callApi.pipe(RateLimiter.withRateLimit("api"))
 * const perUser = RateLimiter.withRateLimit(callApi, "api", { key: userId })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRateLimit: {
  (
    id: string,
    options?: AcquireOptions
  ): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<
    A,
    E | AcquireError,
    R | RateLimiter
  >
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    id: string,
    options?: AcquireOptions
  ): Effect.Effect<
    A,
    E | AcquireError,
    R | RateLimiter
  >
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(self: Effect.Effect<A, E, R>, id: string, options?: AcquireOptions) =>
    Effect.scoped(Effect.andThen(acquire(id, options), self))
)

/**
 * Registers (or replaces) a limiter. The definition is validated as `[limiters.<id>]` tables are:
 * a bad or unknown field (`ratePerSecnd`), a `store` that is not a non-empty string, or a
 * definition with no limit fails with a `ConfigError` at `limiters.<id>.<field>`; a `store` that
 * is not registered fails with `StoreNotFound`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const configureLimiter = (
  id: string,
  definition: LimiterDefinition
): Effect.Effect<void, RegisterError, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.configureLimiter(id, definition))

/**
 * Registers `newId` as a copy of `sourceId` with `overrides` applied: an override replaces the
 * source's field, an absent one keeps it. An `algorithm` override that moves between the token
 * bucket and the window algorithms drops the source's fields of the family it leaves
 * (`ratePerSecond`, `rate`, `burst` / `limit`, `window`), so the override supplies the new
 * algorithm's numbers. An override field a definition does not have is a `ConfigError`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const cloneLimiter = (
  sourceId: string,
  newId: string,
  overrides?: LimiterOverrides
): Effect.Effect<void, LimiterNotFound | RegisterError, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.cloneLimiter(sourceId, newId, overrides))

/**
 * Registers a store under `id`, or replaces the store registered under it (its limiters move to
 * the new one). A definition is validated before anything is opened, by the rules of the
 * `[stores.<id>]` tables (see `RateSyncConfig.decodeStoreDefinition`): a bad one fails with a
 * `ConfigError` at `stores.<id>.<field>`. Each store is built in its own child scope of the
 * registry's scope, closed when the build fails (nothing it opened is kept) and when the store is
 * replaced (the old store's connections are closed; callers waiting for a slot move to the new
 * store, but permits still held on the old one can neither renew nor release: each renewal logs a
 * warning until the permit is released, and the lease runs out on the server after `lease`). A
 * store service passed ready-made is not owned by the registry and is never closed.
 *
 * @since 0.1.0
 * @category accessors
 */
export const configureStore = (
  id: string,
  store: StoreInput
): Effect.Effect<void, ConfigError | StoreUnavailable, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.configureStore(id, store))

/**
 * @since 0.1.0
 * @category accessors
 */
export const get = (id: string): Effect.Effect<LimiterInfo, LimiterNotFound, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.get(id))

/**
 * @since 0.1.0
 * @category accessors
 */
export const list: Effect.Effect<ReadonlyArray<LimiterInfo>, never, RateLimiter> = Effect.flatMap(
  RateLimiter,
  (r) => r.list
)

/**
 * @since 0.1.0
 * @category accessors
 */
export const listStores: Effect.Effect<ReadonlyArray<StoreInfo>, never, RateLimiter> = Effect.flatMap(
  RateLimiter,
  (r) => r.listStores
)

/**
 * @since 0.1.0
 * @category accessors
 */
export const metrics = (id: string): Effect.Effect<RateLimiterMetrics, LimiterNotFound, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.metrics(id))

/**
 * @since 0.1.0
 * @category accessors
 */
export const initialize = (id: string): Effect.Effect<void, LimiterNotFound | StoreUnavailable, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.initialize(id))

/**
 * @since 0.1.0
 * @category accessors
 */
export const initializeAll: Effect.Effect<void, StoreUnavailable, RateLimiter> = Effect.flatMap(
  RateLimiter,
  (r) => r.initializeAll
)

/**
 * @since 0.1.0
 * @category accessors
 */
export const reset = (
  id: string,
  key?: string
): Effect.Effect<void, LimiterNotFound | StoreUnavailable | ConfigError, RateLimiter> =>
  Effect.flatMap(RateLimiter, (r) => r.reset(id, key))
