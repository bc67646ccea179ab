/**
 * Shared pieces of the HTTP tests: limiter layers on the memory store, a store that always fails
 * (a real implementation of the SPI whose every operation fails with `StoreError`), and the web
 * handler runner of `#test/http`.
 */
import { Effect, Layer } from "effect"
import { type LimiterDefinition, MemoryStore, RateLimitStore, RateLimiter } from "effect-rate-sync"
import { HttpRateLimit } from "effect-rate-sync/http"
import * as T from "#test/effect"

/** The error text a broken store would carry: a URL with credentials and a key layout. */
export const SECRET_STORE_MESSAGE =
  "connect ECONNREFUSED redis://admin:hunter2@10.9.8.7:6379/0 while running EVALSHA on rate_limit:{api}:203.0.113.9"

const fail = (operation: string) =>
  Effect.fail(new RateLimitStore.StoreError({ engine: "redis", operation, message: SECRET_STORE_MESSAGE }))

/** A store whose every round trip fails. */
export const failingStore: RateLimitStore.RateLimitStoreService = RateLimitStore.make({
  engine: "failing",
  tokenBucket: () => fail("tokenBucket"),
  slidingWindow: () => fail("slidingWindow"),
  fixedWindow: () => fail("fixedWindow"),
  acquireSlot: () => fail("acquireSlot"),
  renewSlot: () => fail("renewSlot"),
  releaseSlot: () => fail("releaseSlot"),
  peek: () => fail("peek"),
  reset: () => fail("reset"),
  initialize: fail("initialize")
})

export const failingStoreLayer: Layer.Layer<RateLimitStore.RateLimitStore> = Layer.succeed(
  RateLimitStore.RateLimitStore,
  failingStore
)

export const limitersOn = (
  limiters: Readonly<Record<string, LimiterDefinition.LimiterDefinition>>,
  store: Layer.Layer<RateLimitStore.RateLimitStore> = MemoryStore.layer()
): Layer.Layer<RateLimiter.RateLimiter> => RateLimiter.layer(limiters).pipe(Layer.provide(store), Layer.orDie)

export const freshId = (prefix: string): string => `${prefix}-${crypto.randomUUID()}`

/** The web handler runner (per major: `#test/http`). */
export { PEER_HEADER, type Send, webHandler, type WebResponse } from "#test/http"

/** The rate-limit headers of a response (everything the middleware may set). */
export const rateHeadersOf = (headers: Record<string, string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const name of ["ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after"]) {
    const value = headers[name]
    if (value !== undefined) out[name] = value
  }
  return out
}

/** Current value of the HTTP request counter for one limiter and outcome. */
export const requestCount = (limiter: string, outcome: string): Effect.Effect<number> =>
  T.counterCount(HttpRateLimit.requests, { limiter, outcome })

