/**
 * What the composite tests share: registries over the memory store (or, for a store without
 * `takeAll` / `adjust`, the fake store of `fakeStore.ts`), fresh limiter ids, and reads of a
 * limiter's state and counters.
 */
import { Effect, Layer } from "effect"
import { type LimiterDefinition, MemoryStore, RateLimiter, RateLimitMetrics, RateLimitStore } from "effect-rate-sync"
import * as T from "#test/effect"
import { type FakeOptions, makeFakeStore } from "./fakeStore.js"

/** A limiter id of its own per test: the metric series are global to the process. */
export const fresh = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`

/** The store the composite tests run on: the memory store. */
export const makeStore = MemoryStore.make()

/** {@link makeStore} as the layer of `RateLimitStore`. */
export const storeLayer: Layer.Layer<RateLimitStore.RateLimitStore> = MemoryStore.layer()

/**
 * The test store with its `acquireSlot` calls recorded (the limiter of each, in order) in `log`.
 */
export const recordingSlots = (log: Array<string>): Layer.Layer<RateLimitStore.RateLimitStore> =>
  T.layerScoped(
    RateLimitStore.RateLimitStore,
    Effect.map(makeStore, (store) =>
      RateLimitStore.make({
        ...store,
        acquireSlot: (r) => Effect.andThen(Effect.sync(() => log.push(r.limiter)), store.acquireSlot(r))
      }))
  )

/** A registry of `limiters` on the default store. */
export const withLimiters = (limiters: Record<string, LimiterDefinition.LimiterDefinition>) =>
  RateLimiter.layer(limiters).pipe(Layer.provide(storeLayer))

/** A registry of `limiters` on the fake store (`fakeStore.ts`), e.g. one without `takeAll` / `adjust`. */
export const withFake = (limiters: Record<string, LimiterDefinition.LimiterDefinition>, options: FakeOptions = {}) =>
  RateLimiter.layer(limiters).pipe(Layer.provide(T.layerScoped(RateLimitStore.RateLimitStore, makeFakeStore(options))))

/** What a limiter's state is for `key`: (remaining, retryAfterMs) of a cost-1 look. */
export const state = (id: string, key = "", cost = 1) =>
  Effect.map(RateLimiter.status(id, { key, cost }), (s) => ({ remaining: s.remaining, retryAfterMs: s.retryAfterMs }))

/** The counters of a limiter: statistics and the Effect metrics, side by side. */
export const counters = (id: string) =>
  Effect.gen(function*() {
    const m = yield* RateLimiter.metrics(id)
    return {
      acquisitions: m.totalAcquisitions,
      refusals: m.refusals,
      timeouts: m.timeouts,
      metricAcquisitions: yield* T.counterCount(RateLimitMetrics.acquisitions, { limiter: id }),
      metricRefusals: yield* T.counterCount(RateLimitMetrics.refusals, { limiter: id })
    }
  })
