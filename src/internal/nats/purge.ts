/**
 * The NATS store's purge of expired keys: the installed servers (2.9/2.10) have no per-message
 * TTL, so a scoped fiber deletes, every `purgeInterval`, the keys whose value stopped mattering.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { StoreError } from "../../RateLimitStore.js"
import type { Bucket } from "./connection.js"
import { inBatches, storedOf } from "./connection.js"
import { longCallMs } from "./ops.js"

/**
 * Deletes (on their revision) the keys whose value stopped mattering more than `timingMarginMs`
 * ago, and those holding no value this store can read; answers how many.
 *
 * @internal
 */
export const purgeExpired = (bucket: Bucket): Effect.Effect<number, StoreError> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    bucket.call("purge", async () => {
      let purged = 0
      const purgeOne = async (k: string) => {
        const entry = await bucket.kv.get(k)
        const stored = storedOf(entry)
        if (entry !== null && entry.operation === "PUT" && (stored === undefined || stored.x + bucket.settings.marginMs <= now)) {
          // on the revision read: a key written meanwhile is live again and stays (the delete fails)
          await bucket.kv.delete(k, { previousSeq: entry.revision }).then(() => purged++, () => undefined)
        }
      }
      await inBatches(await bucket.listKeys(">"), purgeOne)
      return purged
    }, longCallMs(bucket.settings.timeoutMs)))

/**
 * Forks the purge in the scope, every `purgeInterval` (the first after one interval); none when
 * the interval is infinite. A failed purge is logged at debug level and tried again next time.
 *
 * @internal
 */
export const fork = (bucket: Bucket): Effect.Effect<void, never, Scope.Scope> => {
  const everyMs = bucket.settings.purgeIntervalMs
  if (!Number.isFinite(everyMs)) return Effect.void
  return purgeExpired(bucket).pipe(
    Fx.catchAll((e) => Effect.logDebug(`effect-rate-sync nats purge failed: ${e.message}`)),
    Effect.repeat(Schedule.spaced(Duration.millis(everyMs))),
    Effect.delay(Duration.millis(everyMs)),
    Effect.interruptible,
    Effect.forkScoped,
    Effect.asVoid
  )
}
