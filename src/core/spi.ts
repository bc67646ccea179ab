/**
 * The plain data of the store SPI: what each operation is asked and answers. No Effect import:
 * shared by every build, re-exported by `RateLimitStore`.
 *
 * @since 0.1.0
 */

/**
 * What a rate operation answers.
 *
 * - `allowed`: the request is admitted (after `delayMs`, for a token-bucket reservation).
 * - `limit`: the capacity the decision was taken against (burst for the token bucket, `limit` for
 *   the windows, `maxConcurrent` for slots).
 * - `remaining`: whole units still available right after this decision, in `[0, limit]`.
 * - `resetAfterMs`: milliseconds until the state is back to full capacity if nothing else arrives.
 * - `retryAfterMs`: when refused, milliseconds until the same request can first be admitted
 *   (`Infinity` when it never can, e.g. a cost above the capacity); `0` when allowed.
 * - `delayMs`: when allowed by a reservation, how long the caller must wait before it proceeds
 *   (only the token bucket reserves; `0` otherwise).
 * - `casRetries`: optional, for stores that decide by compare-and-set (NATS KV): how many writes
 *   lost a race and were retried for this decision. The limiter adds it to `casFailures`.
 * - `contended`: optional, on a refusal: the store refused only because other writers kept winning
 *   the race for this key (not because the limit is reached), so waiting `retryAfterMs` and asking
 *   again may succeed. `acquire` then waits and retries within its timeout.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreDecision {
  readonly allowed: boolean
  readonly limit: number
  readonly remaining: number
  readonly resetAfterMs: number
  readonly retryAfterMs: number
  readonly delayMs: number
  readonly casRetries?: number | undefined
  readonly contended?: boolean | undefined
  /**
   * Optional, on an admitted window take: the store's id of what it charged, for `adjust`: the
   * fixed window's start (store ms, as a decimal string), the sliding window's entry id. Token
   * buckets need none.
   */
  readonly ref?: string | undefined
}

/**
 * Token bucket, as GCRA. The state of a `(limiter, key)` is one number: its theoretical arrival
 * time (TAT), in store milliseconds.
 *
 * With `T = 1000 / ratePerSecond` and `now` the store's clock:
 * `tat0 = max(tat, now)`, `next = tat0 + cost·T`, `allowAt = next − burst·T`.
 * - `allowAt ≤ now`: admit, store `next`, `delayMs = 0`.
 * - `0 < allowAt − now ≤ maxWaitMs`: reserve: store `next`, admit with `delayMs = allowAt − now`;
 *   the caller sleeps that long and then proceeds.
 * - otherwise refuse with `retryAfterMs = allowAt − now`, state unchanged.
 * A cost above `burst` is refused with `retryAfterMs = Infinity`, state unchanged.
 *
 * `remaining = floor((now + burst·T − next) / T)` clamped to `[0, burst]` (on refusal, computed
 * from `tat0` with no cost), `resetAfterMs = max(0, next − now)`. The state expires once
 * `next ≤ now` (a full bucket needs no state): TTL `ceil(next − now)` ms.
 *
 * Guarantee: never more than `burst + ratePerSecond·t` costs admitted (at their `delayMs`
 * instants) in any interval of length `t`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenBucketRequest {
  readonly limiter: string
  readonly key: string
  readonly ratePerSecond: number
  readonly burst: number
  readonly cost: number
  readonly maxWaitMs: number
}

/**
 * A window take, for both window algorithms.
 *
 * Sliding window (exact): the store keeps every admitted `(time, cost)` of the last `windowMs`.
 * An entry stamped `t` counts while `now < t + windowMs`. Admit when the counted total plus `cost`
 * is at most `limit`, then record `(now, cost)`. When refused, `retryAfterMs` is the time until
 * enough entries leave the window for this cost to fit. `resetAfterMs`: until the newest entry
 * leaves. Guarantee: no half-open interval `[a, a + windowMs)` holds more than `limit` admitted.
 *
 * Fixed window: one counter per aligned window `[floor(now / windowMs)·windowMs, … + windowMs)`.
 * Admit when `count + cost ≤ limit`. `resetAfterMs` and, when refused, `retryAfterMs` are the
 * time to the window's end. A refusal does not count.
 *
 * State expires when it can no longer matter (the window has passed); a hit never extends the
 * expiry beyond that.
 *
 * @since 0.1.0
 * @category models
 */
export interface WindowRequest {
  readonly limiter: string
  readonly key: string
  readonly limit: number
  readonly windowMs: number
  readonly cost: number
}

/**
 * Concurrency slots: a distributed semaphore of `limit` leases for `(limiter, key)`. Each lease
 * belongs to a `holder` id (unique per permit) and expires at `now + leaseMs` unless renewed.
 *
 * @since 0.1.0
 * @category models
 */
export interface SlotRequest {
  readonly limiter: string
  readonly key: string
  readonly holder: string
  readonly limit: number
  readonly leaseMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SlotDecision {
  /** The holder now owns a slot (also when it owned one already: acquiring is idempotent). */
  readonly acquired: boolean
  readonly limit: number
  /** Live leases after this operation. */
  readonly active: number
  /** When refused: milliseconds until the earliest live lease expires (an upper bound on the wait). */
  readonly retryAfterMs: number
  /** Compare-and-set stores: writes retried for this decision (see `StoreDecision.casRetries`). */
  readonly casRetries?: number | undefined
}

/**
 * Which state `peek` and `reset` address.
 *
 * @since 0.1.0
 * @category models
 */
export type Algorithm = "token_bucket" | "sliding_window" | "fixed_window" | "concurrency"

/**
 * `cost` (default 1): `peek` answers whether that cost would be admitted now, and `retryAfterMs`
 * is the time until it would be (`Infinity` when it never can).
 *
 * @since 0.1.0
 * @category models
 */
export type PeekRequest =
  | { readonly algorithm: "token_bucket"; readonly limiter: string; readonly key: string; readonly ratePerSecond: number; readonly burst: number; readonly cost?: number | undefined }
  | { readonly algorithm: "sliding_window" | "fixed_window"; readonly limiter: string; readonly key: string; readonly limit: number; readonly windowMs: number; readonly cost?: number | undefined }
  | { readonly algorithm: "concurrency"; readonly limiter: string; readonly key: string; readonly limit: number }

/**
 * One rate limit of a composite call (`RateLimitStoreService.takeAll`): a token-bucket or window
 * take, with the fields of {@link TokenBucketRequest} or {@link WindowRequest}.
 *
 * @since 0.2.0
 * @category models
 */
export type RateTake =
  | ({ readonly algorithm: "token_bucket" } & TokenBucketRequest)
  | ({ readonly algorithm: "sliding_window" | "fixed_window" } & WindowRequest)

/**
 * What `takeAll` answers: all-or-nothing over its takes.
 *
 * - `allowed`: every take was charged (after `delayMs`). When `false`, **none** was: the state of
 *   every `(limiter, key)` is as it was before the call.
 * - `decisions`: one per take, in the order given. On admission each is that take's decision (its
 *   `remaining` after the charge). On refusal each says what that take alone would have answered
 *   at the same instant: `allowed: false` with its own `retryAfterMs` for every take that refused
 *   (the violations), `allowed: true` with its `remaining` unchanged for the others.
 * - `delayMs`: the reservation every token bucket took, the largest of their waits `D` (`0` when
 *   the call holds a window take: windows cannot reserve, so such a call is admitted now or
 *   refused; the limiter then waits `retryAfterMs` and asks again within its timeout).
 *
 * Waiting: with only token buckets, the call is admitted when the largest wait `D` (over the
 * buckets, each computed as for a single take) is at most the smallest `maxWaitMs`; otherwise
 * refused. The caller proceeds at `now + D` on every bucket, so every bucket is booked at that
 * instant: each take, in order, stores `next = max(tat, now + D) + cost·T` (a bucket named twice:
 * the second from the first's `next`; a take of cost 0 books nothing), and its decision has
 * `delayMs = D` and its `remaining` and `resetAfterMs` from that `next`. For the slowest bucket
 * this is its own `tat0 + cost·T`; a faster one is moved up to `now + D` as well, so no later
 * take shares the slot its caller uses (takes on it before `now + D` are judged as if queued
 * behind the call: a wait too many, never an admission too many). A bucket named several
 * times is charged the sum of their costs at that one instant: the take that brings the sum above
 * its burst never fits (a violation with `retryAfterMs = Infinity`). Calls holding a window take
 * never reserve.
 *
 * @since 0.2.0
 * @category models
 */
export interface CompositeDecision {
  readonly allowed: boolean
  readonly decisions: ReadonlyArray<StoreDecision>
  readonly delayMs: number
  /** Compare-and-set stores: writes retried for this call (see `StoreDecision.casRetries`). */
  readonly casRetries?: number | undefined
  /** See `StoreDecision.contended`. */
  readonly contended?: boolean | undefined
}

/**
 * Charge more, or give back, after the fact (`RateLimitStoreService.adjust`): `delta` units on
 * the state `take` charged (same limiter, key and parameters), identified by the `ref` its
 * decision carried (`StoreDecision.ref`).
 *
 * - token bucket (no `ref` needed): `delta > 0` moves the TAT forward by `delta·T` from
 *   `max(tat, now)`; it may go past the burst (debt: later calls wait until it is paid back).
 *   `delta < 0` moves it back by `|delta|·T`, never below `now` (a full bucket), and only when no
 *   reservation is outstanding: `tat0 − burst·T ≤ now` (`tat0 = max(tat, now)`). Past that, a
 *   caller admitted with a delay holds a slot that ends at the TAT, and one TAT cannot hold a hole
 *   before it (the next caller would be placed among the reserved ones), so the give-back applies
 *   nothing (`applied` 0: a refusal or a wait too many, never an admission too many); debt past
 *   the burst is such a state too.
 * - fixed window: applies only while the window that took (`ref` = its start, in store ms) is the
 *   current one: `count = max(0, count + delta)` (may go past `limit`: debt until the window ends).
 *   After the window ended it applies nothing.
 * - sliding window: applies to the take's own entry (`ref` = the entry's id) while it is in the
 *   window: its cost becomes `max(0, cost + delta)`; a window gives back only what it took.
 *   Once the entry left the window it applies nothing.
 * - concurrency slots are not adjustable.
 *
 * @since 0.2.0
 * @category models
 */
export interface AdjustRequest {
  readonly take: RateTake
  readonly delta: number
  readonly ref?: string | undefined
}

/**
 * What `adjust` answers: `applied` is the change actually made (`0` when the window has passed;
 * a give-back clipped to what the take holds); `remaining` and `resetAfterMs` are the state's
 * after it (as in {@link StoreDecision}).
 *
 * @since 0.2.0
 * @category models
 */
export interface AdjustResult {
  readonly applied: number
  readonly remaining: number
  readonly resetAfterMs: number
}
