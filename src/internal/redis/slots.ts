/**
 * Slot notifications (standalone only): a release publishes the slot's key on
 * `<keyPrefix>:slot-freed`, a key reset on `<keyPrefix>:slot-reset`, and the waiters of this
 * process wake up instead of sleeping out their backoff. One subscriber connection per store,
 * opened by the first wait.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { Waiters } from "../store/waiters.js"
import type { Pool } from "./client.js"
import type { Keys } from "./keys.js"

/** The channels of a store's notifications. @internal */
export interface Channels {
  /** A release frees one slot: the message wakes one waiter per process. */
  readonly freed: string
  /** A key reset frees every slot of the key: all its waiters wake, not one per message. */
  readonly reset: string
}

/** @internal */
export const channelsOf = (prefix: string): Channels => ({ freed: `${prefix}:slot-freed`, reset: `${prefix}:slot-reset` })

/**
 * `awaitSlot` of the SPI: waits for a notification about `(limiter, key)`'s slots, at most
 * `maxWaitMs`. The subscriber disconnects with the scope.
 *
 * @internal
 */
export const make = (
  pool: Pool,
  keys: Keys,
  channels: Channels
): Effect.Effect<(limiter: string, key: string, maxWaitMs: number) => Effect.Effect<void>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const waiters = new Waiters()
    let subscriber: Redis | undefined
    const ensureSubscriber = (): void => {
      if (subscriber === undefined) subscriber = subscribe(pool, waiters, channels)
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => subscriber?.disconnect()))
    return (limiter, key, maxWaitMs) =>
      Effect.suspend(() => {
        ensureSubscriber()
        return waiters.wait(keys.keyOf(limiter, key, "cc"), maxWaitMs)
      })
  })

/**
 * The subscriber connection, or `undefined` on a cluster. Its own connection (a subscribed
 * connection runs no other command); commands wait for the connection instead of failing, and
 * ioredis subscribes again after a reconnect. A failing subscriber only makes waiters fall back to
 * their backoff.
 */
const subscribe = (pool: Pool, waiters: Waiters, channels: Channels): Redis | undefined => {
  const first = pool.first
  if (!(first instanceof Redis)) return undefined
  const sub = first.duplicate({ lazyConnect: false, enableOfflineQueue: true })
  sub.on("error", () => undefined)
  sub.on("message", (channel: string, slot: string) => {
    if (channel === channels.reset) return waiters.wakeAll(slot)
    // One release frees one slot: wake this process's oldest waiter only. Every process wakes
    // one, so a release costs one attempt per process, not one per waiting fiber; the others keep
    // waiting for the next message (or their backoff).
    waiters.wakeOne(slot)
  })
  sub.subscribe(channels.freed, channels.reset).catch(() => undefined)
  return sub
}
