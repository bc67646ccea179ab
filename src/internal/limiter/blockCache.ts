/**
 * The local block cache on the limiter's side (`core/blockCache.ts` holds the pure logic): which
 * limiter uses one, filling it from the store's refusals, answering from it, and clearing it when
 * this process gives capacity back (a reset, a refund, a negative adjust).
 *
 * A limiter uses its cache only while its store is networked: an in-process store (`unsafeTake`,
 * the memory store) decides in one synchronous step, which the cache would not beat. The cache
 * remembers the store it was filled against and empties itself when `configureStore` put
 * another one in place.
 *
 * @internal
 */
import { BlockCache, type BlockEntry } from "../../core/blockCache.js"
import type { Decision } from "../../RateLimiter.js"
import type { RateLimitStoreService, StoreDecision } from "../../RateLimitStore.js"
import { clampRemaining, nonNegative } from "./decision.js"
import type { LimiterEntry } from "./entry.js"

/**
 * A limiter's cache and the store its entries came from.
 *
 * @internal
 */
export interface Blocks {
  readonly cache: BlockCache
  store: RateLimitStoreService | undefined
}

/** @internal */
export const makeBlocks = (maxEntries: number): Blocks => ({ cache: new BlockCache(maxEntries), store: undefined })

/**
 * The limiter's cache, when it has one and its current store is networked; emptied first when the
 * store is no longer the one its entries came from.
 *
 * @internal
 */
export const cacheOf = (entry: LimiterEntry): BlockCache | undefined => {
  const blocks = entry.blocks
  if (blocks === undefined || !entry.storeEntry.blockCache) return undefined
  const store = entry.storeEntry.store
  if (store.unsafeTake !== undefined) return undefined
  if (blocks.store !== store) {
    blocks.cache.clearAll()
    blocks.store = store
  }
  return blocks.cache
}

/**
 * Records the store's answer `d` to a take of `cost` on `key` (the store key) asked at `at`:
 * a refusal the limit made (not one the store calls contended: that one only lost races) blocks
 * the key until its retry-after.
 *
 * @internal
 */
export const noteAnswer = (cache: BlockCache, key: string, cost: number, at: number, d: StoreDecision): void => {
  if (d.allowed || d.contended === true) return
  cache.block(key, cost, at, d.retryAfterMs, d.resetAfterMs, d.remaining)
}

/**
 * What a `check` answered from `b` at `now` says: refused, the refusal's `remaining`, the time
 * left to its retry-after and to its reset.
 *
 * @internal
 */
export const cachedDecision = (entry: LimiterEntry, key: string, b: BlockEntry, now: number): Decision => ({
  limiterId: entry.id,
  key,
  allowed: false,
  limit: entry.limit,
  remaining: clampRemaining(b.remaining, entry.limit),
  resetAfterMs: nonNegative(b.resetAt - now),
  retryAfterMs: nonNegative(b.until - now),
  failedOpen: false,
  spec: entry.spec
})

/** A cache hit: a refusal as every other, and counted as answered by the cache. @internal */
export const recordCachedRefusal = (entry: LimiterEntry): void => {
  entry.stats.cachedRefusals++
}

/**
 * This process gave capacity back on `key` (the store key; all keys when `undefined`): the
 * entries no longer say what the store would answer.
 *
 * @internal
 */
export const clearBlocks = (entry: LimiterEntry, key: string | undefined): void => {
  const blocks = entry.blocks
  if (blocks === undefined) return
  if (key === undefined) blocks.cache.clearAll()
  else blocks.cache.clear(key)
}
