/**
 * The registry of limiters and its accessors: `acquire`, `tryAcquire`, `check`, `withRateLimit`,
 * runtime registration, inspection and metrics.
 *
 * @since 0.1.0
 */
import * as Fx from "#fx/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { describeInput } from "./internal/config/input.js"
import * as internal from "./internal/rateLimiter.js"
import type { LimiterDefinition, LimiterOverrides, LimiterSpec } from "./LimiterDefinition.js"
import { ConfigError } from "./RateLimitError.js"
import type {
  AcquireError,
  AdjustError,
  CheckError,
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
 * One limit of a call over several limits: the limiter, and optionally its own key and cost
 * (each defaults to the call's `options.key` / `options.cost`, then to `""` / 1). A plain string
 * is the limiter id with the call's key and cost.
 *
 * @example
 * ```ts
 * // the same key for both, a cost per limit
 * RateLimiter.acquire(["rpm", { limiter: "tpm", cost: 500 }], { key: userId })
 * // per-user and global in one call
 * RateLimiter.acquire([{ limiter: "tpm-user", key: userId, cost: 500 }, { limiter: "tpm-global", cost: 500 }])
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Limit {
  readonly limiter: string
  readonly key?: string | undefined
  readonly cost?: number | undefined
}

/**
 * The limits of one call over several limits: limiter ids or {@link Limit}s, each limiter at
 * most once, all on one store. All-or-nothing: either every limit is charged or none is.
 *
 * @since 0.2.0
 * @category models
 */
export type Limits = ReadonlyArray<string | Limit>

/**
 * A change to what a permit charged, for `permit.adjust`: a number applies to every rate or
 * window limit the permit holds; a record gives a delta per limiter id (each one a limiter of
 * the permit that is not concurrency-only). A delta is a whole number: positive charges more,
 * negative gives back.
 *
 * @since 0.2.0
 * @category models
 */
export type AdjustDelta = number | Readonly<Record<string, number>>

/**
 * What `permit.adjust` (or `permit.refund`) did on one limit.
 *
 * @since 0.2.0
 * @category models
 */
export interface Adjustment {
  readonly limiterId: string
  readonly key: string
  /** The change asked of the store: the delta, a give-back clipped to what the permit holds. */
  readonly requested: number
  /**
   * The change the store made: `requested`, or less where a window gives back only what it still
   * holds (`0` once the window that took has passed, see `RateLimitStore.AdjustRequest`).
   */
  readonly applied: number
  /** What the permit holds on this limit now: its cost plus every applied adjustment. */
  readonly charged: number
  /** Whole units left on the limit after the adjustment, in [0, limit] (0 while in debt). */
  readonly remaining: number
  /** Until the limit is full again, in milliseconds (a debt included). */
  readonly resetAfterMs: number
}

/**
 * What a permit can do once held: change its charge after the fact.
 *
 * - `adjust(delta)`: charge more (`delta > 0`) or give back (`delta < 0`) on its rate and window
 *   limits, one store round trip per limit (`store.adjust`). A token bucket may go into debt (the
 *   next calls wait until it is paid back); a window gives back only what this permit took, and
 *   only while the window it took in is current (a fixed window's give-back is also clipped to
 *   what the permit holds); concurrency slots are not adjustable (`ConfigError`). A give-back is
 *   never more than the permit holds (`Adjustment.charged` never goes below 0). A limit the call
 *   passed fail-open (nothing was charged) is not adjusted: it answers `applied: 0`. Answers one
 *   {@link Adjustment} per limit adjusted.
 * - `refund`: gives back everything the permit still holds (`adjust` of `-charged` per limit).
 *
 * Both work after the permit's scope closed too: they change the rate state, not the slot.
 *
 * @since 0.2.0
 * @category models
 */
export interface Adjustable {
  readonly adjust: (delta: AdjustDelta) => Effect.Effect<ReadonlyArray<Adjustment>, AdjustError>
  readonly refund: Effect.Effect<ReadonlyArray<Adjustment>, AdjustError>
}

/**
 * What `acquire` hands back. Any concurrency slot it holds is released when its scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Permit extends Adjustable {
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
 * One limit a {@link CompositePermit} holds.
 *
 * @since 0.2.0
 * @category models
 */
export interface PermitLimit {
  readonly limiterId: string
  readonly key: string
  readonly cost: number
}

/**
 * What `acquire` over several limits hands back: every limit charged (or, fail-open, none).
 * Its concurrency slots are released when its scope closes.
 *
 * @since 0.2.0
 * @category models
 */
export interface CompositePermit extends Adjustable {
  /** The limits of the call, in the order given. */
  readonly limits: ReadonlyArray<PermitLimit>
  /** How long the acquire waited (slots, then the slowest limit), by the Effect clock. */
  readonly waitedMs: number
  /** `true` when the store failed and the fail-open policy let the call through. */
  readonly failedOpen: boolean
  /** Releases every concurrency slot now (idempotent; the scope would release them anyway). */
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
 * The answer of `check` over several limits. All-or-nothing: when `allowed`, every limit was
 * charged; otherwise none was.
 *
 * - `decisions`: one per limit, in the order given. When the call was refused, each says what
 *   that limit alone would have answered at the same instant: `allowed: false` (with its own
 *   `retryAfterMs`) for the limits that refused, `allowed: true` with `remaining` unchanged for
 *   the others (nothing was charged on them).
 * - `violations`: the decisions that refused (empty when allowed).
 * - `binding`: the decision an HTTP response advertises first: when refused, the violation with
 *   the largest `retryAfterMs`; when allowed, the limit nearest to refusing (the smallest
 *   `remaining / limit`, the first of equals).
 * - `retryAfterMs`: the largest of the violations' (0 when allowed).
 *
 * @since 0.2.0
 * @category models
 */
export interface CombinedDecision {
  readonly allowed: boolean
  readonly decisions: ReadonlyArray<Decision>
  readonly violations: ReadonlyArray<Decision>
  readonly binding: Decision
  readonly retryAfterMs: number
  /** `true` when the store failed and the fail-open policy let the call through. */
  readonly failedOpen: boolean
}

/**
 * The options of `status`: the key, and the cost to ask about (a whole number in
 * [1, capacity], default 1).
 *
 * @since 0.2.0
 * @category models
 */
export interface StatusOptions {
  readonly key?: string | undefined
  readonly cost?: number | undefined
}

/**
 * What `status` answers: the state of `(limiter, key)` as a take would see it, read without
 * spending anything. Times are the store's.
 *
 * @since 0.2.0
 * @category models
 */
export interface LimiterStatus {
  readonly limiterId: string
  readonly key: string
  /** The cost asked about. */
  readonly cost: number
  /** Whether a take of `cost` would be admitted now (without waiting). */
  readonly allowed: boolean
  /** Capacity: burst (token bucket), limit (windows) or max concurrent (concurrency only). */
  readonly limit: number
  /** Whole units left now, in [0, limit]. */
  readonly remaining: number
  /** Until the state is full again, in milliseconds. */
  readonly resetAfterMs: number
  /** Until a take of `cost` would be admitted, in milliseconds: 0 when it would be now. */
  readonly retryAfterMs: number
  /** The limiter the status was read for. */
  readonly spec: LimiterSpec
}

/**
 * The options of `withRateLimit`: those of `acquire`, and `refundOn`, to give the charge back
 * once the wrapped effect has run (what express-rate-limit's `skipFailedRequests` /
 * `skipSuccessfulRequests` do for HTTP):
 *
 * - `"failure"`: when the effect failed (an error, a defect or an interruption), its charge is
 *   given back (`permit.refund`): failed work does not count against the limit.
 * - `"success"`: when it succeeded: only failures count (a login limit counting failed attempts).
 *
 * A refund that fails (the store is down) is logged as a warning and leaves the effect's own
 * outcome unchanged. Any other value of `refundOn` is a `ConfigError` at `options.refundOn`.
 *
 * @since 0.2.0
 * @category models
 */
export interface WithRateLimitOptions extends AcquireOptions {
  readonly refundOn?: "failure" | "success" | undefined
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
  /**
   * Refusals answered by the local block cache, without a store round trip (each also counts in
   * `refusals` and in the `refusals` metric); see `LimiterDefinition.blockCache`.
   */
  readonly cachedRefusals: number
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
  readonly acquire: {
    (id: string, options?: AcquireOptions): Effect.Effect<Permit, AcquireError, Scope.Scope>
    (limits: Limits, options?: AcquireOptions): Effect.Effect<CompositePermit, AcquireError, Scope.Scope>
  }
  readonly tryAcquire: (
    limits: string | Limits,
    options?: AcquireOptions
  ) => Effect.Effect<boolean, CheckError, Scope.Scope>
  readonly check: {
    (id: string, options?: AcquireOptions): Effect.Effect<Decision, CheckError>
    (limits: Limits, options?: AcquireOptions): Effect.Effect<CombinedDecision, CheckError>
  }
  readonly status: (id: string, options?: StatusOptions) => Effect.Effect<LimiterStatus, CheckError>
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
  /**
   * The local block cache of the registry's limiters (see {@link BlockCacheOptions}): `false`
   * turns it off for every limiter; absent or `true`: on, with the defaults.
   */
  readonly blockCache?: boolean | BlockCacheOptions | undefined
}

/**
 * The local block cache: once a networked store refuses a key, this process answers the key's
 * further calls of at least the refused cost itself, without a round trip, until the refusal's
 * retry-after (answers the store would give, as long as no other process resets or gives back on
 * the key: see docs/architecture.md). On by default; `LimiterDefinition.blockCache: false` turns
 * it off for one limiter.
 *
 * @since 0.2.0
 * @category models
 */
export interface BlockCacheOptions {
  /** `false`: off for every limiter of the registry. Default `true`. */
  readonly enabled?: boolean | undefined
  /** Most keys one limiter keeps blocked at once (the oldest block goes first). Default 10 000. */
  readonly maxEntries?: number | undefined
  /**
   * Store ids whose limiters run without the cache (`{ main: false }`); the others keep it. A
   * store definition's own `blockCache: false` (TOML `[stores.<id>] block_cache = false`) does the same.
   */
  readonly stores?: Readonly<Record<string, boolean>> | undefined
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
  limiters: Readonly<Record<string, LimiterDefinition>> = {},
  options?: Pick<MakeOptions, "blockCache">
): Layer.Layer<RateLimiter, MakeError, RateLimitStore> =>
  Fx.layerScoped(
    RateLimiter,
    Effect.flatMap(
      RateLimitStore,
      (store) => make({ limiters, stores: { default: store }, defaultStore: "default", blockCache: options?.blockCache })
    )
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

function acquireWith(id: string, options?: AcquireOptions): Effect.Effect<Permit, AcquireError, RateLimiter | Scope.Scope>
function acquireWith(
  limits: Limits,
  options?: AcquireOptions
): Effect.Effect<CompositePermit, AcquireError, RateLimiter | Scope.Scope>
function acquireWith(
  limits: string | Limits,
  options?: AcquireOptions
): Effect.Effect<Permit | CompositePermit, AcquireError, RateLimiter | Scope.Scope> {
  return Effect.flatMap(
    RateLimiter,
    (r): Effect.Effect<Permit | CompositePermit, AcquireError, Scope.Scope> =>
      isLimits(limits) ? r.acquire(limits, options) : r.acquire(limits, options)
  )
}

const isLimits = (limits: string | Limits): limits is Limits => Array.isArray(limits)

/**
 * Takes rate token(s) and a concurrency slot, waiting up to the timeout. The slot is released when
 * the surrounding scope closes. A bad option fails with `InvalidCost` (cost) or `ConfigError`
 * (`options.timeout`, `options.key`), see {@link AcquireOptions}.
 *
 * **Several limits** (an array of {@link Limits}): every limit is charged, or none is. Each limit
 * has its own key and cost (default: `options.key`, `options.cost`). The limiters must share one
 * store (else a `ConfigError` at `limits` names them and their stores), and a call with two rate
 * or window limits needs a store with `takeAll` (else a `ConfigError` at `stores.<id>` names its
 * engine); a limiter appears at most once. Concurrency slots are taken first, in a fixed order
 * (by limiter id, then key), and given back at once if the rate part refuses. The rate part
 * waits for the slowest limit: with only token buckets the store reserves on every bucket and
 * the call sleeps the largest wait; with a window among them the call is admitted now or sleeps
 * the largest `retryAfter` and asks again, within the timeout (`options.timeout`, else the
 * shortest `timeout` of the limiters). A refusal fails with one `RateLimitExceeded` listing
 * every limit that refused (`violations`). Metrics count per limiter: an admission on each
 * limiter of the call, a refusal (and a timeout) on each limiter that refused.
 *
 * @example
 * ```ts
 * // an LLM call: one request and an estimated 500 tokens, for this user
 * const permit = yield* RateLimiter.acquire(["rpm", { limiter: "tpm", cost: 500 }], { key: userId })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const acquire: {
  (id: string, options?: AcquireOptions): Effect.Effect<Permit, AcquireError, RateLimiter | Scope.Scope>
  (limits: Limits, options?: AcquireOptions): Effect.Effect<CompositePermit, AcquireError, RateLimiter | Scope.Scope>
} = acquireWith

/**
 * Like `acquire`, but answers a boolean: `true` when admitted (any slot stays held until the
 * scope closes), `false` otherwise. It waits up to `options.timeout` for a token or slot before
 * answering `false` (rate-sync's `try_acquire(timeout)`); with no `timeout` (default 0) it answers
 * at once. The limiter's own `timeout` is for `acquire` only. Over several limits (an array), as
 * `acquire` does: `true` when every limit was charged, `false` when none was.
 *
 * @since 0.1.0
 * @category accessors
 */
export const tryAcquire = (
  limits: string | Limits,
  options?: AcquireOptions
): Effect.Effect<boolean, CheckError, RateLimiter | Scope.Scope> =>
  Effect.flatMap(RateLimiter, (r) => r.tryAcquire(limits, options))

function checkWith(id: string, options?: AcquireOptions): Effect.Effect<Decision, CheckError, RateLimiter>
function checkWith(limits: Limits, options?: AcquireOptions): Effect.Effect<CombinedDecision, CheckError, RateLimiter>
function checkWith(
  limits: string | Limits,
  options?: AcquireOptions
): Effect.Effect<Decision | CombinedDecision, CheckError, RateLimiter> {
  return Effect.flatMap(
    RateLimiter,
    (r): Effect.Effect<Decision | CombinedDecision, CheckError> =>
      isLimits(limits) ? r.check(limits, options) : r.check(limits, options)
  )
}

/**
 * One decision that consumes when allowed and never waits (`options.timeout` is ignored); what
 * HTTP middleware uses. A concurrency-only limiter is peeked: no slot is taken, since nothing
 * would release it, so an allowed peek is not an acquisition (`totalAcquisitions`, the
 * acquisitions metric and `lastAcquisitionAt` do not move) while a refused one counts as a
 * refusal.
 *
 * Over several limits (an array of {@link Limits}, validated as `acquire` validates them) it
 * answers a {@link CombinedDecision}: a `Decision` per limit and the overall one, charging every
 * limit or none. Its concurrency-only limits are peeked; when one refuses, the rate limits are
 * peeked too (nothing is charged, each still answers). Metrics: an admission on each rate limiter
 * of an allowed call, a refusal on each limiter that refused.
 *
 * @since 0.1.0
 * @category accessors
 */
export const check: {
  (id: string, options?: AcquireOptions): Effect.Effect<Decision, CheckError, RateLimiter>
  (limits: Limits, options?: AcquireOptions): Effect.Effect<CombinedDecision, CheckError, RateLimiter>
} = checkWith

/**
 * Reads a limiter's state for `key` without spending anything: its `limit`, `remaining`,
 * `resetAfterMs`, and whether a take of `options.cost` (default 1) would be admitted now and, if
 * not, how long until it would be (`retryAfterMs`). One store round trip (`peek`); statistics and
 * metrics do not move. A limiter with a rate or window reports that; a concurrency-only one its
 * free slots (`remaining = maxConcurrent − active`). A bad key or cost fails as `check` does; a
 * store failure with `StoreUnavailable` (a look has no fail-open meaning).
 *
 * @example
 * ```ts
 * const s = yield* RateLimiter.status("tpm", { key: userId, cost: 2000 })
 * if (!s.allowed) yield* Effect.logInfo(`2000 tokens in ${s.retryAfterMs} ms`)
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const status = (
  id: string,
  options?: StatusOptions
): Effect.Effect<LimiterStatus, CheckError, RateLimiter> => Effect.flatMap(RateLimiter, (r) => r.status(id, options))

/** Gives a permit's charge back for `withRateLimit`'s `refundOn`; a failure is only logged. */
const refundQuietly = (permit: Adjustable): Effect.Effect<void> =>
  permit.refund.pipe(
    Effect.asVoid,
    Fx.catchAll((e) => Effect.logWarning(`effect-rate-sync: refunding a permit failed: ${e.message}`))
  )

/**
 * Runs an effect under a limiter (or several: an array of {@link Limits}, as `acquire` takes
 * them): acquire before, release after (on success, failure or interruption). `refundOn` gives
 * the charge back after a failure (`"failure"`) or a success (`"success"`), see
 * {@link WithRateLimitOptions}.
 *
 * @example
 * ```ts
 * const limited = callApi.pipe(RateLimiter.withRateLimit("api"))
 * const perUser = RateLimiter.withRateLimit(callApi, "api", { key: userId })
 * // only failed logins count
 * const login = attempt.pipe(RateLimiter.withRateLimit(["login-ip", "login-global"], { key: ip, refundOn: "success" }))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRateLimit: {
  (
    limits: string | Limits,
    options?: WithRateLimitOptions
  ): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<
    A,
    E | AcquireError,
    R | RateLimiter
  >
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    limits: string | Limits,
    options?: WithRateLimitOptions
  ): Effect.Effect<
    A,
    E | AcquireError,
    R | RateLimiter
  >
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(self: Effect.Effect<A, E, R>, limits: string | Limits, options?: WithRateLimitOptions) =>
    Effect.suspend((): Effect.Effect<A, E | AcquireError, R | RateLimiter> => {
      const refundOn = options?.refundOn
      if (refundOn !== undefined && refundOn !== "failure" && refundOn !== "success") {
        return Effect.fail(ConfigError.at("options.refundOn", `"failure" or "success"`, describeInput(refundOn)))
      }
      const permit: Effect.Effect<Adjustable, AcquireError, RateLimiter | Scope.Scope> = isLimits(limits)
        ? acquire(limits, options)
        : acquire(limits, options)
      return Effect.scoped(
        Effect.flatMap(permit, (p) =>
          refundOn === undefined
            ? self
            : Effect.onExit(self, (exit) => (Exit.isFailure(exit) === (refundOn === "failure") ? refundQuietly(p) : Effect.void)))
      )
    })
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
