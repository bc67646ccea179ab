/**
 * The local block cache: the refusals a store answered, kept in-process so that further calls of
 * the same `(limiter, key)` are answered without a round trip until the refusal's retry-after
 * (rate-limiter-flexible's `inMemoryBlockOnConsumed`, upstash's `ephemeralCache`).
 *
 * One entry per key: the instant (the caller's clock, ms) until which the key is blocked, the cost
 * that was refused, and the numbers the refusal reported. A call is answered from its entry only
 * when its cost is at least the refused cost: a smaller cost may fit earlier, so it goes to the
 * store. Why the answer is exact, per algorithm (the store's SPI, `core/spi.ts`):
 *
 * - token bucket (GCRA): a refusal leaves the TAT as it was; until it moves back (a reset, a
 *   refund or a negative adjust) a cost `c' ≥ c` needs `tat + c'·T − burst·T ≥ allowAt`, and
 *   `allowAt` is the refusal's `now + retryAfterMs`. Calls of this or another process that are
 *   admitted meanwhile only move the TAT forward (a later admission, never an earlier one).
 * - fixed window: the window's count only grows until it ends, which is the retry-after.
 * - sliding window: entries leave the window no earlier than the retry-after computed from them;
 *   admissions meanwhile only add entries.
 *
 * Concurrency slots come back at any time (a release): they are never cached.
 *
 * Memory is bounded by `maxEntries`: a `Map` kept in insertion order (a re-block moves the key to
 * the end), so its head is the oldest block. An insertion into a full cache first drops expired
 * entries from the head, then the oldest. No timer: an expired entry is dropped when a lookup
 * meets it or when it reaches the head of a full cache.
 *
 * Plain TypeScript, no Effect import: the caller passes the time (Effect's Clock).
 *
 * @internal
 */

/**
 * One blocked key.
 *
 * @internal
 */
export interface BlockEntry {
  /** Blocked while `now < until` (ms of the caller's clock). */
  readonly until: number
  /** The refused cost: only calls of at least this cost are answered from the entry. */
  readonly cost: number
  /** What the refusal reported left (0 for a refused cost of 1). */
  readonly remaining: number
  /** When the state is back to full capacity, as the refusal reported it (ms of the caller's clock). */
  readonly resetAt: number
}

/**
 * The default cap on entries, per limiter.
 *
 * @internal
 */
export const DEFAULT_MAX_ENTRIES = 10_000

/** How many head entries an insertion into a full cache looks at for expired ones. */
const SWEEP = 8

/**
 * The blocked keys of one limiter.
 *
 * @internal
 */
export class BlockCache {
  private readonly entries = new Map<string, BlockEntry>()

  constructor(readonly maxEntries: number = DEFAULT_MAX_ENTRIES) {}

  /** Keys held (expired ones not yet dropped included). */
  get size(): number {
    return this.entries.size
  }

  /**
   * The entry that answers a call of `cost` on `key` at `now`, or `undefined` when the call must
   * go to the store (no entry, an expired one, which is dropped, or a smaller cost).
   */
  lookup(key: string, cost: number, now: number): BlockEntry | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (now >= entry.until) {
      this.entries.delete(key)
      return undefined
    }
    return cost >= entry.cost ? entry : undefined
  }

  /**
   * Records a refusal of `cost` on `key`, taken at `at` (the caller's clock when it asked the
   * store: no later than the store's own instant), with the store's `retryAfterMs`,
   * `resetAfterMs` and `remaining`. A refusal with nothing to wait (or an infinite wait, which a
   * cost above the capacity answers and a call never reaches the store with) is not recorded.
   * Replaces the key's entry: a refusal of a smaller cost blocks more calls, for no longer than
   * the entry it replaces could have (a larger cost needs at least as long).
   */
  block(key: string, cost: number, at: number, retryAfterMs: number, resetAfterMs: number, remaining: number): void {
    if (!(retryAfterMs > 0) || !Number.isFinite(retryAfterMs)) return
    const until = at + retryAfterMs
    const resetAt = at + (Number.isFinite(resetAfterMs) && resetAfterMs > retryAfterMs ? resetAfterMs : retryAfterMs)
    if (this.entries.has(key)) this.entries.delete(key)
    else if (this.entries.size >= this.maxEntries) this.evict(at)
    this.entries.set(key, { until, cost, remaining, resetAt })
  }

  /** Drops `key`'s entry (this process reset, refunded or gave back on it). */
  clear(key: string): void {
    this.entries.delete(key)
  }

  /** Drops every entry (a reset of the whole limiter, a store replaced). */
  clearAll(): void {
    this.entries.clear()
  }

  /** Makes room for one entry: expired entries at the head first, else the oldest. */
  private evict(now: number): void {
    let looked = 0
    for (const [key, entry] of this.entries) {
      if (looked++ >= SWEEP) break
      if (now >= entry.until) this.entries.delete(key)
    }
    if (this.entries.size < this.maxEntries) return
    // the oldest block: the head of the insertion order
    for (const key of this.entries.keys()) {
      this.entries.delete(key)
      if (this.entries.size < this.maxEntries) return
    }
  }
}
