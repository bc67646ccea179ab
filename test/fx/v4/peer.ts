/**
 * The Effect 4 half of `#test/peer`: Effect's own rate limiter on this major
 * (`effect/persistence/RateLimiter`, memory store).
 */
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"

export const peerName = "effect/persistence RateLimiter (layerStoreMemory)"
export const PeerRateLimiter = RateLimiter.RateLimiter
export const peerMemoryLayer = RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory))
