/**
 * The Effect 4 half of `#test/peer`: Effect's own rate limiter on this major
 * (`effect/persistence/RateLimiter`), on its memory store and on its Redis store
 * (`layerStoreRedis` over `@effect/platform-node`'s NodeRedis, a node-redis client).
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"

export const peerName = "effect/persistence RateLimiter (layerStoreMemory)"
export const PeerRateLimiter = RateLimiter.RateLimiter
export const peerMemoryLayer = RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory))

export const peerRedisName = "effect/persistence RateLimiter (layerStoreRedis, NodeRedis)"
/**
 * The peer on a Redis server: `url` is `redis://host:port`, `prefix` the key prefix (the caller
 * deletes `prefix*` afterwards).
 */
export const peerRedisLayer = (options: { readonly url: string; readonly prefix: string }) =>
  RateLimiter.layer.pipe(
    Layer.provide(RateLimiter.layerStoreRedis({ prefix: options.prefix })),
    Layer.provide(NodeRedis.layer({ url: options.url }))
  )
