/**
 * The NATS store's SPI operations: each is a key, a decide step (`core/nats/decide.ts`) and the
 * compare-and-set loop (`cas.ts`), traced as `RateLimitStore.nats.<operation>`.
 *
 * Keys: `<limiter>.<key>.<state>`, both parts spelled by `core/keyParts.ts` with the mark `/`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { randomBytes, randomUUID } from "node:crypto"
import { encodePart, limiterParts } from "../../core/keyParts.js"
import * as decide from "../../core/nats/decide.js"
import type { Stored } from "../../core/nats/stored.js"
import type {
  AdjustRequest,
  AdjustResult,
  PeekRequest,
  RateLimitStoreService,
  RateTake,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  StoreError,
  TokenBucketRequest,
  TypeId,
  WindowRequest
} from "../../RateLimitStore.js"
import { tracer } from "../store/telemetry.js"
import * as Cas from "./cas.js"
import * as Coalesce from "./coalesce.js"
import * as Composite from "./composite.js"
import type { Bucket } from "./connection.js"
import { ENGINE, inBatches } from "./connection.js"

type StateKind = "tb" | "sw" | "fw" | "cc"
const KINDS: ReadonlyArray<StateKind> = ["tb", "sw", "fw", "cc"]

const MARK = "/"

const traced = tracer(ENGINE)

const withRetries = <A extends StoreDecision | SlotDecision>([a, retries]: readonly [A, number]): A => ({ ...a, casRetries: retries })

/** The store's operations, the optional `takeAll` and `adjust` included. @internal */
export type Operations = Omit<RateLimitStoreService, "engine" | TypeId | "takeAll" | "adjust"> & {
  readonly takeAll: NonNullable<RateLimitStoreService["takeAll"]>
  readonly adjust: NonNullable<RateLimitStoreService["adjust"]>
}

/**
 * The operations over `bucket`. This instance gets an id, written as the owner of the instants
 * it stores. `hook`: a test's pause at each step of a composite take (see `composite.ts`).
 *
 * @internal
 */
export const make = (
  bucket: Bucket,
  options: { readonly hook?: Composite.Steps["hook"] } = {}
): Effect.Effect<Operations, never, Scope.Scope> =>
  Effect.gen(function*() {
    const cas = yield* Cas.make(bucket)
    // the takes of one key in this process: one read and one write per batch (see coalesce.ts)
    const coalesced = yield* Coalesce.make(bucket, cas)
    const storeClock = yield* Effect.clockWith(Effect.succeed)
    const storeScope = yield* Effect.scope
    const { timeoutMs } = bucket.settings
    const writer: decide.Writer = { self: randomUUID().slice(0, 8), marginMs: bucket.settings.marginMs }
    const limiterPart = limiterParts(MARK)
    const keyOf = (limiter: string, key: string, kind: StateKind) => `${limiterPart(limiter)}.${encodePart(key, MARK)}.${kind}`

    const tokenBucket = (req: TokenBucketRequest) =>
      traced("tokenBucket", req.limiter, coalesced.run({
        operation: "tokenBucket",
        key: keyOf(req.limiter, req.key, "tb"),
        decide: (stored, now) => decide.tokenBucket(stored, now, req, writer),
        refuse: (stored, now, retryAfterMs) => decide.contended(decide.tokenBucketPeek(stored, now, unitOf(req), writer), retryAfterMs)
      })).pipe(Effect.map(withRetries))

    const slidingWindow = (req: WindowRequest) =>
      traced("slidingWindow", req.limiter, coalesced.run({
        operation: "slidingWindow",
        key: keyOf(req.limiter, req.key, "sw"),
        decide: (stored, now) => decide.slidingWindow(stored, now, req, writer),
        refuse: (stored, now, retryAfterMs) => decide.contended(decide.slidingPeek(stored, now, unitOf(req), writer), retryAfterMs)
      })).pipe(Effect.map(withRetries))

    const fixedWindow = (req: WindowRequest) =>
      traced("fixedWindow", req.limiter, coalesced.run({
        operation: "fixedWindow",
        key: keyOf(req.limiter, req.key, "fw"),
        decide: (stored, now) => decide.fixedWindow(stored, now, req, writer),
        refuse: (stored, now, retryAfterMs) => decide.contended(decide.fixedPeek(stored, now, unitOf(req)), retryAfterMs)
      })).pipe(Effect.map(withRetries))

    const slotKey = (req: SlotRequest) => keyOf(req.limiter, req.key, "cc")

    /**
     * Best effort, in the background: removes `req.holder`'s lease if it still expires at
     * `expiresAt` (the one a timed-out acquire wrote; a later acquire or renew of the same holder
     * writes another expiry and is left alone). Tries now and up to 3 more times, `timeout / 2`
     * apart (the late write may land after the first look); errors are ignored.
     */
    const releaseLate = (req: SlotRequest, expiresAt: number): Effect.Effect<void> => {
      const once = cas.run({
        operation: "releaseSlot",
        key: slotKey(req),
        decide: (stored, now) => decide.releaseSlot(stored, now, req.holder, expiresAt)
      }).pipe(Effect.map(([released]) => released.found), Effect.orElseSucceed(() => false))
      const pause = storeClock.sleep(Duration.millis(Math.max(10, timeoutMs / 2)))
      const loop = (left: number): Effect.Effect<void> =>
        Effect.flatMap(once, (removed) => removed || left <= 0 ? Effect.void : Effect.andThen(pause, loop(left - 1)))
      return loop(3)
    }

    const acquireSlot = (req: SlotRequest) =>
      traced("acquireSlot", req.limiter, cas.run({
        operation: "acquireSlot",
        key: slotKey(req),
        decide: (stored, now) => decide.acquireSlot(stored, now, req),
        refuse: (stored, now, retryAfterMs) => decide.acquireRefusal(stored, now, req, retryAfterMs),
        // given up after the write timed out: it may still land, granting a lease its caller was
        // told it did not get (so nobody renews or releases it); remove that lease
        undoLate: (step) => step.grantedUntil === undefined ? undefined : releaseLate(req, step.grantedUntil)
      })).pipe(Effect.map(withRetries))

    const renewSlot = (req: SlotRequest) =>
      traced("renewSlot", req.limiter, cas.run({
        operation: "renewSlot",
        key: slotKey(req),
        decide: (stored, now) => decide.renewSlot(stored, now, req)
      })).pipe(Effect.map(([renewed]) => renewed))

    const releaseSlot = (req: SlotRequest) =>
      traced("releaseSlot", req.limiter, cas.run({
        operation: "releaseSlot",
        key: slotKey(req),
        decide: (stored, now) => decide.releaseSlot(stored, now, req.holder, undefined)
      })).pipe(Effect.map(([released]) => released.live))

    const peekOf = (req: PeekRequest) => {
      switch (req.algorithm) {
        case "token_bucket":
          return cas.read("peek", keyOf(req.limiter, req.key, "tb"), (stored, now) => decide.tokenBucketPeek(stored, now, req, writer))
        case "sliding_window":
          return cas.read("peek", keyOf(req.limiter, req.key, "sw"), (stored, now) => decide.slidingPeek(stored, now, req, writer))
        case "fixed_window":
          return cas.read("peek", keyOf(req.limiter, req.key, "fw"), (stored, now) => decide.fixedPeek(stored, now, req))
        case "concurrency":
          return cas.read("peek", keyOf(req.limiter, req.key, "cc"), (stored, now) => decide.slotPeek(stored, now, req.limit))
      }
    }

    const peek = (req: PeekRequest): Effect.Effect<StoreDecision, StoreError> => traced("peek", req.limiter, peekOf(req))

    // -------------------------------------------------------------------------------------------
    // adjust and composite takes

    const takeKey = (t: RateTake) =>
      keyOf(t.limiter, t.key, t.algorithm === "token_bucket" ? "tb" : t.algorithm === "sliding_window" ? "sw" : "fw")

    const takeStep = (t: RateTake, stored: Stored | undefined, now: number): decide.Step<StoreDecision> =>
      t.algorithm === "token_bucket"
        ? decide.tokenBucket(stored, now, t, writer)
        : t.algorithm === "sliding_window"
        ? decide.slidingWindow(stored, now, t, writer)
        : decide.fixedWindow(stored, now, t, writer)

    /** The peek of `t`'s state for `cost` (none: cost 1). */
    const peekStep = (t: RateTake, stored: Stored | undefined, now: number, cost: number | undefined): StoreDecision =>
      t.algorithm === "token_bucket"
        ? decide.tokenBucketPeek(stored, now, { ratePerSecond: t.ratePerSecond, burst: t.burst, cost }, writer)
        : t.algorithm === "sliding_window"
        ? decide.slidingPeek(stored, now, { limit: t.limit, windowMs: t.windowMs, cost }, writer)
        : decide.fixedPeek(stored, now, { limit: t.limit, windowMs: t.windowMs, cost })

    const adjustStep = (t: RateTake, delta: number, ref: string | undefined) =>
    (stored: Stored | undefined, now: number): decide.Step<AdjustResult> =>
      t.algorithm === "token_bucket"
        ? decide.tokenBucketAdjust(stored, now, t, delta, writer)
        : t.algorithm === "sliding_window"
        ? decide.slidingAdjust(stored, now, t, ref, delta, writer)
        : decide.fixedAdjust(stored, now, t, ref, delta, writer)

    const adjust = (req: AdjustRequest): Effect.Effect<AdjustResult, StoreError> =>
      traced(
        "adjust",
        req.take.limiter,
        cas.run({ operation: "adjust", key: takeKey(req.take), decide: adjustStep(req.take, req.delta, req.ref) })
      ).pipe(Effect.map(([result]) => result))

    /**
     * The inverse of what `decision` (an admission of `t`) charged, until it is done: at once,
     * again twice after a failure, then up to 3 times in the background (see `inBackground`);
     * never again after a write of it timed out (it may have landed: again would give back
     * twice). Answers the state after it, `undefined` when not done now.
     */
    const undo = (
      t: RateTake,
      decision: StoreDecision,
      beforeWrite: Effect.Effect<void, StoreError> | undefined
    ): Effect.Effect<AdjustResult | undefined> =>
      Effect.suspend(() => {
        let mayHaveLanded = false
        const once = cas.run({
          operation: "takeAll",
          key: takeKey(t),
          decide: adjustStep(t, -t.cost, decision.ref),
          beforeWrite,
          undoLate: () => {
            mayHaveLanded = true
            return undefined
          }
        }).pipe(Effect.map(([undone]) => undone))
        const attempt = (left: number): Effect.Effect<AdjustResult | undefined> =>
          Effect.matchEffect(once, {
            onSuccess: (undone) => Effect.succeed(undone),
            onFailure: () =>
              mayHaveLanded
                ? Effect.succeed(undefined)
                : left > 0
                ? attempt(left - 1)
                : Effect.as(inBackground(Effect.suspend(() => mayHaveLanded ? Effect.succeed(true) : Effect.as(once, true))), undefined)
          })
        return attempt(2)
      })

    /** Tries `once` now and up to 3 more times, `timeout / 2` apart, until it answers `true`; in the background, errors ignored. */
    const inBackground = (once: Effect.Effect<boolean, StoreError>): Effect.Effect<void> => {
      const pause = storeClock.sleep(Duration.millis(Math.max(10, timeoutMs / 2)))
      const loop = (left: number): Effect.Effect<void> =>
        Effect.flatMap(Effect.orElseSucceed(once, () => false), (done) =>
          done || left <= 0 ? Effect.void : Effect.andThen(pause, loop(left - 1)))
      return Effect.forkIn(Effect.interruptible(loop(3)), storeScope).pipe(Effect.asVoid)
    }

    /**
     * A composite take's write timed out: it may still land. Undoes it if it did and nothing was
     * written since (the value still carries the call's nonce); otherwise leaves it (a charge too
     * many, never one too few).
     */
    const undoMarked = (t: RateTake, decision: StoreDecision, nonce: string): Effect.Effect<void> => {
      const inverse = adjustStep(t, -t.cost, decision.ref)
      return Effect.suspend(() =>
        inBackground(
          cas.run({
            operation: "takeAll",
            key: takeKey(t),
            decide: (stored, now): decide.Step<boolean> =>
              stored?.n === nonce ? { result: true, write: inverse(stored, now).write } : { result: false }
          }).pipe(Effect.map(([undone]) => undone))
        )
      )
    }

    const steps: Composite.Steps = {
      take: (t, restore, beforeWrite, afterWrite) => {
        const nonce = randomBytes(8).toString("base64url")
        return cas.run<decide.Step<StoreDecision>>({
          operation: "takeAll",
          key: takeKey(t),
          decide: (stored, now) => {
            const step = takeStep(t, stored, now)
            return { result: step.result, write: decide.withNonce(step.write, nonce) }
          },
          refuse: (stored, now, retryAfterMs) => decide.contended(peekStep(t, stored, now, undefined), retryAfterMs),
          undoLate: (step) => step.result.allowed ? undoMarked(t, step.result, nonce) : undefined,
          restore,
          beforeWrite,
          afterWrite
        }).pipe(Effect.map(withRetries))
      },
      undo,
      look: (t) =>
        cas.read("takeAll", takeKey(t), (stored, now) => {
          const alone = takeStep(t, stored, now).result
          if (!alone.allowed) return alone
          const state = peekStep(t, stored, now, undefined)
          return Composite.uncharged(alone, state.remaining, state.resetAfterMs)
        }),
      hook: options.hook
    }

    const composite = Composite.takeAll(steps)
    const takeAll = (takes: ReadonlyArray<RateTake>) =>
      traced("takeAll", [...new Set(takes.map((t) => t.limiter))].join(","), composite(takes))

    const reset = (limiter: string, key?: string): Effect.Effect<void, StoreError> =>
      traced(
        "reset",
        limiter,
        key !== undefined
          ? bucket.call("reset", () => Promise.all(KINDS.map((kind) => bucket.kv.delete(keyOf(limiter, key, kind)))))
          : bucket.call(
            "reset",
            () => bucket.listKeys(`${limiterPart(limiter)}.>`).then((keys) => inBatches(keys, (k) => bucket.kv.delete(k))),
            longCallMs(timeoutMs)
          )
      ).pipe(Effect.asVoid)

    const initialize = bucket.call("initialize", () => bucket.kv.status()).pipe(Effect.asVoid)

    return { tokenBucket, slidingWindow, fixedWindow, acquireSlot, renewSlot, releaseSlot, peek, reset, initialize, takeAll, adjust }
  })

/** A request's parameters with no cost (a cost-1 peek). */
const unitOf = <R extends { readonly cost: number }>(req: R): Omit<R, "cost"> => {
  const { cost: _, ...rest } = req
  return rest
}

/** The bound on a call that lists the bucket (reset of a limiter, purge). @internal */
export const longCallMs = (timeoutMs: number): number => timeoutMs + 30_000
