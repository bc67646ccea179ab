/**
 * Shared pieces of the HTTP tests: limiter layers on the memory store, a store that always fails
 * (a real implementation of the SPI whose every operation fails with `StoreError`), and a web
 * handler runner.
 */
import { HttpApp, HttpServerRequest } from "@effect/platform"
import { Effect, Layer } from "effect"
import type { Scope } from "effect"
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

/**
 * The socket peer for a web request. `HttpApp.toWebHandler` has no socket, so the tests put the
 * peer in a header and this shim (outside the middleware under test) moves it to
 * `remoteAddress`, as a server would.
 */
export const PEER_HEADER = "x-test-peer"

const withPeer = <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.updateService(app, HttpServerRequest.HttpServerRequest, (request) => {
    const peer = request.headers[PEER_HEADER]
    return peer === undefined ? request : request.modify({ remoteAddress: peer })
  })

export interface WebResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/**
 * Runs `app` as a web handler on the current runtime (so the limiter in context and the
 * TestClock are the test's) and answers a function that sends one request.
 */
export const webHandler = <E, R = RateLimiter.RateLimiter>(
  app: HttpApp.Default<E, R | Scope.Scope>
): Effect.Effect<
  (path: string, init?: { readonly headers?: Record<string, string>; readonly method?: string }) => Effect.Effect<WebResponse>,
  never,
  R
> =>
  Effect.map(Effect.runtime<R>(), (runtime) => {
    const handler = HttpApp.toWebHandlerRuntime(runtime)(withPeer(app))
    return (path, init) =>
      Effect.promise(async () => {
        const response = await handler(
          new Request(`http://localhost${path}`, {
            method: init?.method ?? "GET",
            headers: { [PEER_HEADER]: "198.51.100.1", ...init?.headers }
          })
        )
        const headers: Record<string, string> = {}
        response.headers.forEach((value, name) => {
          headers[name] = value
        })
        return { status: response.status, headers, body: await response.text() }
      })
  })

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

