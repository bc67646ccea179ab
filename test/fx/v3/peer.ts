/**
 * The Effect 3 half of `#test/peer`: Effect's own rate limiter on this major, the peer the
 * benchmarks run beside this library (`@effect/experimental`'s RateLimiter, memory store).
 */
import { RateLimiter } from "@effect/experimental"
import { Layer } from "effect"

export const peerName = "@effect/experimental RateLimiter (layerStoreMemory)"
export const PeerRateLimiter = RateLimiter.RateLimiter
export const peerMemoryLayer = Layer.effect(RateLimiter.RateLimiter, RateLimiter.make).pipe(
  Layer.provide(RateLimiter.layerStoreMemory)
)
