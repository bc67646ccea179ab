/**
 * The SPI operations of the Redis store, each one script call (see `core/redis/scripts.ts` for
 * the arguments and replies), plus `reset` (`DEL`, or `SCAN` + `UNLINK` for a whole limiter) and
 * `initialize` (`SCRIPT LOAD` on every node).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import { Cluster } from "ioredis"
import type { Redis } from "ioredis"
import type {
  AdjustRequest,
  AdjustResult,
  CompositeDecision,
  PeekRequest,
  RateTake,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  TokenBucketRequest,
  WindowRequest
} from "../../core/spi.js"
import { messageOf } from "../../core/secrets.js"
import type { StoreError } from "../../RateLimitStore.js"
import { ATTR_DB_SYSTEM_NAME, ATTR_LIMITER } from "../store/telemetry.js"
import type { Runner } from "./batch.js"
import type { Pool } from "./client.js"
import { type Keys, STATES } from "./keys.js"
import {
  adjustResultOf,
  compositeOf,
  decisionOf,
  isOne,
  slotDecisionOf,
  type TakeShape,
  windowDecisionOf
} from "./replies.js"
import { Scripts } from "./script.js"
import { ENGINE, type Settings } from "./settings.js"
import type { Channels } from "./slots.js"

/** Bound on a `maxWait` sent to Lua (µs), so `Infinity` stays a finite number. */
const MAX_WAIT_US = 1e15

const intervalUs = (ratePerSecond: number) => String(1e6 / ratePerSecond)
const maxWaitUs = (maxWaitMs: number) => Math.min(MAX_WAIT_US, Math.max(0, maxWaitMs) * 1000)
const leaseUs = (req: SlotRequest) => Math.max(1, Math.round(req.leaseMs * 1000))
const windowUs = (windowMs: number) => Math.round(windowMs * 1000)
const fixedWindowMs = (windowMs: number) => Math.max(1, Math.round(windowMs))

/** What the operations are built from. @internal */
export interface Deps {
  readonly settings: Settings
  readonly pool: Pool
  readonly keys: Keys
  readonly runner: Runner
  readonly channels: Channels
}

/** The rate operations: take, and peek without taking. @internal */
export const rateOperations = ({ keys: { keyOf }, runner: { evalScript }, settings }: Deps) => {
  const decision = decisionOf(settings.marginMs)
  const windowDecision = windowDecisionOf(settings.marginMs)
  const tokenBucket = (req: TokenBucketRequest): Effect.Effect<StoreDecision, StoreError> =>
    evalScript("tokenBucket", req.limiter, Scripts.tokenBucketTake, [keyOf(req.limiter, req.key, "tb")], [
      intervalUs(req.ratePerSecond),
      req.burst,
      req.cost,
      maxWaitUs(req.maxWaitMs)
    ], req.burst, decision)
  const slidingWindow = (req: WindowRequest): Effect.Effect<StoreDecision, StoreError> =>
    evalScript(
      "slidingWindow",
      req.limiter,
      Scripts.slidingWindowTake,
      [keyOf(req.limiter, req.key, "sw"), keyOf(req.limiter, req.key, "swm")],
      [windowUs(req.windowMs), req.limit, req.cost],
      req.limit,
      windowDecision
    )
  const fixedWindow = (req: WindowRequest): Effect.Effect<StoreDecision, StoreError> =>
    evalScript("fixedWindow", req.limiter, Scripts.fixedWindowTake, [keyOf(req.limiter, req.key, "fw")], [
      fixedWindowMs(req.windowMs),
      req.limit,
      req.cost
    ], req.limit, windowDecision)
  const peek = (req: PeekRequest): Effect.Effect<StoreDecision, StoreError> => {
    switch (req.algorithm) {
      case "token_bucket":
        return evalScript("peek", req.limiter, Scripts.tokenBucketPeek, [keyOf(req.limiter, req.key, "tb")], [
          intervalUs(req.ratePerSecond),
          req.burst,
          req.cost ?? 1
        ], req.burst, decision)
      case "sliding_window":
        return evalScript(
          "peek",
          req.limiter,
          Scripts.slidingWindowPeek,
          [keyOf(req.limiter, req.key, "sw"), keyOf(req.limiter, req.key, "swm")],
          [windowUs(req.windowMs), req.limit, req.cost ?? 1],
          req.limit,
          decision
        )
      case "fixed_window":
        return evalScript("peek", req.limiter, Scripts.fixedWindowPeek, [keyOf(req.limiter, req.key, "fw")], [
          fixedWindowMs(req.windowMs),
          req.limit,
          req.cost ?? 1
        ], req.limit, decision)
      case "concurrency":
        return evalScript("peek", req.limiter, Scripts.slotPeek, [keyOf(req.limiter, req.key, "cc")], [req.limit], req.limit, decision)
    }
  }
  return { tokenBucket, slidingWindow, fixedWindow, peek }
}

/** A take as the composite script reads it: its keys, its kind letter and its single script's arguments. */
interface EncodedTake {
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<string | number>
  readonly shape: TakeShape
}

const encodeTake = (keyOf: Keys["keyOf"], take: RateTake): EncodedTake => {
  switch (take.algorithm) {
    case "token_bucket":
      return {
        keys: [keyOf(take.limiter, take.key, "tb")],
        args: ["t", intervalUs(take.ratePerSecond), take.burst, take.cost, maxWaitUs(take.maxWaitMs)],
        shape: { window: false, limit: take.burst }
      }
    case "sliding_window":
      return {
        keys: [keyOf(take.limiter, take.key, "sw"), keyOf(take.limiter, take.key, "swm")],
        args: ["s", windowUs(take.windowMs), take.limit, take.cost],
        shape: { window: true, limit: take.limit }
      }
    case "fixed_window":
      return {
        keys: [keyOf(take.limiter, take.key, "fw")],
        args: ["f", fixedWindowMs(take.windowMs), take.limit, take.cost],
        shape: { window: true, limit: take.limit }
      }
  }
}

/**
 * Why a composite call cannot run as one script, or `undefined`. A sliding window taken twice in
 * one call with two window lengths (its entries would be judged against both at once). On a
 * cluster (`keys` given), takes whose keys carry different hash tags: they may live on different
 * masters, and one script runs on one slot. Limiters are named, keys never (they are often
 * personal data).
 */
const compositeProblem = (takes: ReadonlyArray<RateTake>, cluster: Keys | undefined): string | undefined => {
  const windows = new Map<string, number>()
  for (const take of takes) {
    if (take.algorithm !== "sliding_window") continue
    const id = JSON.stringify([take.limiter, take.key])
    const seen = windows.get(id)
    if (seen !== undefined && seen !== take.windowMs) {
      return `takeAll: the sliding window of limiter ${JSON.stringify(take.limiter)} is taken twice for one key ` +
        `with two window lengths (${seen} and ${take.windowMs} ms)`
    }
    windows.set(id, take.windowMs)
  }
  if (cluster === undefined) return undefined
  const first = takes[0]
  if (first === undefined) return undefined
  const tag = cluster.tagOf(first.limiter, first.key)
  const other = takes.find((t) => cluster.tagOf(t.limiter, t.key) !== tag)
  if (other === undefined) return undefined
  const limiters = [...new Set(takes.map((t) => JSON.stringify(t.limiter)))].join(", ")
  return `takeAll on a Redis Cluster runs one script on one slot, and the keys of this call (limiters ${limiters}) ` +
    `carry different hash tags. Tag the limiters of one call alike with the store option hashTags: ` +
    `"<limiter>=key" for limits of the same key (per-user limits of one user), "group:<name>" for a global and a ` +
    `per-key limit ("<limiter>=group:<name>" on both); or take them in separate calls`
}

/** Window counts are whole numbers in Redis (a fraction would make the next `HINCRBY` fail). */
const wholeDelta = (delta: number) => `adjust: a window's delta must be a whole number, received ${delta}`

/**
 * The composite operations: `takeAll` (one script for every take, see `core/redis/scripts.ts`
 * `takeAll`) and `adjust` (one script per algorithm). A request the scripts cannot serve is
 * refused before any round trip with a `rejected` `StoreError` (never a fail-open admission).
 *
 * @internal
 */
export const compositeOperations = ({ keys, runner: { evalScript }, settings }: Deps) => {
  const composite = compositeOf(settings.marginMs)
  const rejected = (operation: string, message: string) => Effect.fail(settings.fail(operation, message, "rejected"))
  const cluster = settings.clustered ? keys : undefined
  const takeAll = (takes: ReadonlyArray<RateTake>): Effect.Effect<CompositeDecision, StoreError> => {
    if (takes.length === 0) return Effect.succeed({ allowed: true, decisions: [], delayMs: 0 })
    const problem = compositeProblem(takes, cluster)
    if (problem !== undefined) return rejected("takeAll", problem)
    const redisKeys: Array<string> = []
    const args: Array<string | number> = [takes.length]
    const shapes: Array<TakeShape> = []
    for (const take of takes) {
      const encoded = encodeTake(keys.keyOf, take)
      for (const k of encoded.keys) redisKeys.push(k)
      for (const a of encoded.args) args.push(a)
      shapes.push(encoded.shape)
    }
    const limiters = [...new Set(takes.map((t) => t.limiter))].join(",")
    return evalScript("takeAll", limiters, Scripts.takeAll, redisKeys, args, 0, (reply) => composite(reply, shapes))
  }
  const adjust = (req: AdjustRequest): Effect.Effect<AdjustResult, StoreError> => {
    const { take } = req
    const { keyOf } = keys
    // a delta that is not a finite number, a missing ref or one naming nothing apply nothing (as
    // in `core/algorithm.ts`); the script still answers the state
    const delta = Number.isFinite(req.delta) ? req.delta : 0
    const ref = req.ref ?? ""
    switch (take.algorithm) {
      case "token_bucket":
        return evalScript("adjust", take.limiter, Scripts.tokenBucketAdjust, [keyOf(take.limiter, take.key, "tb")], [
          intervalUs(take.ratePerSecond),
          take.burst,
          delta
        ], take.burst, adjustResultOf)
      case "sliding_window":
        if (!Number.isSafeInteger(delta)) return rejected("adjust", wholeDelta(delta))
        return evalScript(
          "adjust",
          take.limiter,
          Scripts.slidingWindowAdjust,
          [keyOf(take.limiter, take.key, "sw"), keyOf(take.limiter, take.key, "swm")],
          [windowUs(take.windowMs), take.limit, delta, ref],
          take.limit,
          adjustResultOf
        )
      case "fixed_window":
        if (!Number.isSafeInteger(delta)) return rejected("adjust", wholeDelta(delta))
        return evalScript("adjust", take.limiter, Scripts.fixedWindowAdjust, [keyOf(take.limiter, take.key, "fw")], [
          fixedWindowMs(take.windowMs),
          take.limit,
          delta,
          ref
        ], take.limit, adjustResultOf)
    }
  }
  return { takeAll, adjust }
}

/** The slot operations; a release publishes on `channels.freed` when notifications are on. @internal */
export const slotOperations = ({ channels, keys: { keyOf }, runner: { evalScript }, settings }: Deps) => {
  const slotDecision = slotDecisionOf(settings.marginMs)
  const slotKey = (req: SlotRequest) => keyOf(req.limiter, req.key, "cc")
  const acquireSlot = (req: SlotRequest): Effect.Effect<SlotDecision, StoreError> =>
    evalScript(
      "acquireSlot",
      req.limiter,
      Scripts.slotAcquire,
      [slotKey(req)],
      [req.holder, req.limit, leaseUs(req)],
      req.limit,
      slotDecision
    )
  const renewSlot = (req: SlotRequest): Effect.Effect<boolean, StoreError> =>
    evalScript("renewSlot", req.limiter, Scripts.slotRenew, [slotKey(req)], [req.holder, leaseUs(req)], req.limit, isOne)
  const releaseSlot = (req: SlotRequest): Effect.Effect<boolean, StoreError> =>
    evalScript(
      "releaseSlot",
      req.limiter,
      Scripts.slotRelease,
      [slotKey(req)],
      settings.notifications ? [req.holder, channels.freed] : [req.holder],
      req.limit,
      isOne
    )
  return { acquireSlot, renewSlot, releaseSlot }
}

/**
 * `reset(limiter, key)`: one `DEL` of the pair's state keys (then the key's slot waiters are woken
 * everywhere, best effort); `reset(limiter)`: `SCAN` + `UNLINK` on every master, bounded by the
 * command timeout plus 30 seconds.
 *
 * @internal
 */
export const resetOperation = ({ channels, keys, pool, runner, settings }: Deps) => {
  const { first } = pool
  const resetKey = (limiter: string, key: string): Effect.Effect<void, StoreError> =>
    runner.call("reset", limiter, () =>
      first.del(...STATES.map((s) => keys.keyOf(limiter, key, s))).then(() => {
        // the key's slots are free: wake its waiters everywhere (best effort)
        if (settings.notifications) first.publish(channels.reset, keys.keyOf(limiter, key, "cc")).catch(() => undefined)
      }))
  // withSpan data-first: only that form takes `captureStackTrace` in its options on both majors
  // (Effect 4's data-last form moved it to a third argument)
  const resetLimiter = (limiter: string): Effect.Effect<void, StoreError> =>
    Effect.withSpan(
      Effect.tryPromise({
        try: () =>
          Promise.all(pool.nodes().map((node) => scanDelete(pool, node, keys.limiterPattern(limiter)))).then(() => undefined),
        catch: (e) => settings.fail("reset", messageOf(e))
      }).pipe(
        Fx.timeoutFail({
          duration: Duration.sum(Duration.millis(settings.timeoutMs), Duration.seconds(30)),
          onTimeout: () => settings.fail("reset", `reset did not finish in time`)
        })
      ),
      `RateLimitStore.${ENGINE}.reset`,
      {
        kind: "client",
        captureStackTrace: false,
        attributes: { [ATTR_DB_SYSTEM_NAME]: ENGINE, [ATTR_LIMITER]: limiter }
      }
    )
  return (limiter: string, key?: string): Effect.Effect<void, StoreError> =>
    key !== undefined ? resetKey(limiter, key) : resetLimiter(limiter)
}

const scanDelete = async (pool: Pool, node: Redis, pattern: string): Promise<void> => {
  let cursor = "0"
  do {
    const [nextCursor, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000)
    cursor = nextCursor
    // one key per command: keys of different (limiter, key) pairs live in different slots
    await Promise.all(keys.map((k) => pool.first.unlink(k)))
  } while (cursor !== "0")
}

/**
 * `SCRIPT LOAD` of every script on every connection (every master of a cluster), bounded by the
 * longer of the command and connect timeouts.
 *
 * @internal
 */
export const loadScripts = ({ pool, settings }: Deps): Effect.Effect<void, StoreError> => {
  const boundMs = Math.max(settings.timeoutMs, settings.connectTimeoutMs)
  return Effect.tryPromise({
    try: () =>
      Promise.all(
        pool.clients.flatMap((c) =>
          (c instanceof Cluster ? c.nodes("master") : [c]).flatMap((node) =>
            Object.values(Scripts).map((s) => node.script("LOAD", s.source))
          )
        )
      ).then(() => undefined),
    catch: (e) => settings.fail("initialize", messageOf(e))
  }).pipe(
    Fx.timeoutFail({
      duration: Duration.millis(boundMs),
      onTimeout: () => settings.fail("initialize", `scripts not loaded within ${boundMs} ms`)
    })
  )
}
