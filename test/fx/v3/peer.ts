/**
 * The Effect 3 half of `#test/peer`: Effect's own rate limiter on this major, the peer the
 * benchmarks run beside this library (`@effect/experimental`'s RateLimiter), on its memory store
 * and on its Redis store (ioredis, the client `@effect/experimental/RateLimiter/Redis` builds).
 */
import { RateLimiter } from "@effect/experimental"
import * as RedisStore from "@effect/experimental/RateLimiter/Redis"
import { Layer } from "effect"

export const peerName = "@effect/experimental RateLimiter (layerStoreMemory)"
export const PeerRateLimiter = RateLimiter.RateLimiter
export const peerMemoryLayer = Layer.effect(RateLimiter.RateLimiter, RateLimiter.make).pipe(
  Layer.provide(RateLimiter.layerStoreMemory)
)

export const peerRedisName = "@effect/experimental RateLimiter (Redis store, ioredis)"
/**
 * The peer on a Redis server: `url` is `redis://host:port`, `prefix` the key prefix (the caller
 * deletes `prefix*` afterwards).
 */
export const peerRedisLayer = (options: { readonly url: string; readonly prefix: string }) => {
  const url = new globalThis.URL(options.url)
  return Layer.effect(RateLimiter.RateLimiter, RateLimiter.make).pipe(
    Layer.provide(RedisStore.layerStore({
      host: url.hostname === "" ? "127.0.0.1" : url.hostname,
      port: url.port === "" ? 6379 : Number(url.port),
      prefix: options.prefix
    }))
  )
}
