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
  PeekRequest,
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
import { decisionOf, isOne, slotDecisionOf } from "./replies.js"
import { Scripts } from "./script.js"
import { ENGINE, type Settings } from "./settings.js"
import type { Channels } from "./slots.js"

/** Bound on a `maxWait` sent to Lua (µs), so `Infinity` stays a finite number. */
const MAX_WAIT_US = 1e15

const intervalUs = (ratePerSecond: number) => String(1e6 / ratePerSecond)
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
  const tokenBucket = (req: TokenBucketRequest): Effect.Effect<StoreDecision, StoreError> =>
    evalScript("tokenBucket", req.limiter, Scripts.tokenBucketTake, [keyOf(req.limiter, req.key, "tb")], [
      intervalUs(req.ratePerSecond),
      req.burst,
      req.cost,
      Math.min(MAX_WAIT_US, Math.max(0, req.maxWaitMs) * 1000)
    ], req.burst, decision)
  const slidingWindow = (req: WindowRequest): Effect.Effect<StoreDecision, StoreError> =>
    evalScript(
      "slidingWindow",
      req.limiter,
      Scripts.slidingWindowTake,
      [keyOf(req.limiter, req.key, "sw"), keyOf(req.limiter, req.key, "swm")],
      [windowUs(req.windowMs), req.limit, req.cost],
      req.limit,
      decision
    )
  const fixedWindow = (req: WindowRequest): Effect.Effect<StoreDecision, StoreError> =>
    evalScript("fixedWindow", req.limiter, Scripts.fixedWindowTake, [keyOf(req.limiter, req.key, "fw")], [
      fixedWindowMs(req.windowMs),
      req.limit,
      req.cost
    ], req.limit, decision)
  const peek = (req: PeekRequest): Effect.Effect<StoreDecision, StoreError> => {
    switch (req.algorithm) {
      case "token_bucket":
        return evalScript("peek", req.limiter, Scripts.tokenBucketPeek, [keyOf(req.limiter, req.key, "tb")], [
          intervalUs(req.ratePerSecond),
          req.burst
        ], req.burst, decision)
      case "sliding_window":
        return evalScript(
          "peek",
          req.limiter,
          Scripts.slidingWindowPeek,
          [keyOf(req.limiter, req.key, "sw"), keyOf(req.limiter, req.key, "swm")],
          [windowUs(req.windowMs), req.limit],
          req.limit,
          decision
        )
      case "fixed_window":
        return evalScript("peek", req.limiter, Scripts.fixedWindowPeek, [keyOf(req.limiter, req.key, "fw")], [
          fixedWindowMs(req.windowMs),
          req.limit
        ], req.limit, decision)
      case "concurrency":
        return evalScript("peek", req.limiter, Scripts.slotPeek, [keyOf(req.limiter, req.key, "cc")], [req.limit], req.limit, decision)
    }
  }
  return { tokenBucket, slidingWindow, fixedWindow, peek }
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
