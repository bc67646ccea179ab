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
import { randomUUID } from "node:crypto"
import { encodePart, limiterParts } from "../../core/keyParts.js"
import * as decide from "../../core/nats/decide.js"
import type {
  PeekRequest,
  RateLimitStoreService,
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
import type { Bucket } from "./connection.js"
import { ENGINE, inBatches } from "./connection.js"

type StateKind = "tb" | "sw" | "fw" | "cc"
const KINDS: ReadonlyArray<StateKind> = ["tb", "sw", "fw", "cc"]

const MARK = "/"

const traced = tracer(ENGINE)

const withRetries = <A extends StoreDecision | SlotDecision>([a, retries]: readonly [A, number]): A => ({ ...a, casRetries: retries })

/**
 * The operations over `bucket`. This instance gets an id, written as the owner of the instants
 * it stores.
 *
 * @internal
 */
export const make = (
  bucket: Bucket
): Effect.Effect<Omit<RateLimitStoreService, "engine" | TypeId>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const cas = yield* Cas.make(bucket)
    const storeClock = yield* Effect.clockWith(Effect.succeed)
    const { timeoutMs } = bucket.settings
    const writer: decide.Writer = { self: randomUUID().slice(0, 8), marginMs: bucket.settings.marginMs }
    const limiterPart = limiterParts(MARK)
    const keyOf = (limiter: string, key: string, kind: StateKind) => `${limiterPart(limiter)}.${encodePart(key, MARK)}.${kind}`

    const tokenBucket = (req: TokenBucketRequest) =>
      traced("tokenBucket", req.limiter, cas.run({
        operation: "tokenBucket",
        key: keyOf(req.limiter, req.key, "tb"),
        decide: (stored, now) => decide.tokenBucket(stored, now, req, writer),
        refuse: (stored, now, retryAfterMs) => decide.contended(decide.tokenBucketPeek(stored, now, req, writer), retryAfterMs)
      })).pipe(Effect.map(withRetries))

    const slidingWindow = (req: WindowRequest) =>
      traced("slidingWindow", req.limiter, cas.run({
        operation: "slidingWindow",
        key: keyOf(req.limiter, req.key, "sw"),
        decide: (stored, now) => decide.slidingWindow(stored, now, req, writer),
        refuse: (stored, now, retryAfterMs) => decide.contended(decide.slidingPeek(stored, now, req, writer), retryAfterMs)
      })).pipe(Effect.map(withRetries))

    const fixedWindow = (req: WindowRequest) =>
      traced("fixedWindow", req.limiter, cas.run({
        operation: "fixedWindow",
        key: keyOf(req.limiter, req.key, "fw"),
        decide: (stored, now) => decide.fixedWindow(stored, now, req, writer),
        refuse: (stored, now, retryAfterMs) => decide.contended(decide.fixedPeek(stored, now, req), retryAfterMs)
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

    return { tokenBucket, slidingWindow, fixedWindow, acquireSlot, renewSlot, releaseSlot, peek, reset, initialize }
  })

/** The bound on a call that lists the bucket (reset of a limiter, purge). @internal */
export const longCallMs = (timeoutMs: number): number => timeoutMs + 30_000
