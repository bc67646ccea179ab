/**
 * Secret options (URLs, passwords, tokens) that are not `Redacted` strings, as an untyped
 * (JavaScript) caller may pass them: each store refuses them with a `ConfigError` naming the
 * option, saying what it received and never showing it, before anything is opened (no defect, no
 * connection attempt).
 */
import { assert, describe, it } from "#test/vitest"
import { Effect, Layer, Redacted } from "effect"
import type { RateLimitError } from "effect-rate-sync"
import { NatsStore } from "effect-rate-sync/nats"
import { PostgresStore } from "effect-rate-sync/postgres"
import { RedisStore } from "effect-rate-sync/redis"

/** The secret that must never be shown. */
const SECRET = "hunter2-secret"

/** What an untyped caller passes where the types ask for a `Redacted`. */
// a typed boundary: the value is deliberately of the wrong type, as from JavaScript
const untyped = <A>(value: unknown): A => value as A

const assertRefused = (e: unknown, path: string, received: string) => {
  assert.isTrue(typeof e === "object" && e !== null && Reflect.get(e, "_tag") === "ConfigError", String(e))
  const error = e as RateLimitError.ConfigError // a typed boundary: checked by the tag just above
  assert.strictEqual(error.path, path)
  assert.include(error.received, received)
  assert.notInclude(error.message, SECRET)
  assert.notInclude(JSON.stringify(error), SECRET)
}

describe("secret options that are not Redacted strings", () => {
  it.effect("NATS: a plain-string url, servers as a string, a server or token that is not a Redacted string", () =>
    Effect.gen(function*() {
      const make = (options: object) => Effect.flip(Effect.scoped(NatsStore.make(untyped(options))))
      assertRefused(yield* make({ url: `nats://u:${SECRET}@127.0.0.1:4222` }), "url", "a plain string")
      assertRefused(yield* make({ servers: `nats://u:${SECRET}@127.0.0.1:4222` }), "servers", "a plain string")
      assertRefused(
        yield* make({ servers: [Redacted.make("nats://127.0.0.1:4222"), `nats://u:${SECRET}@127.0.0.1:4223`] }),
        "servers[1]",
        "a plain string"
      )
      assertRefused(yield* make({ servers: [Redacted.make(42)] }), "servers[0]", "a Redacted number")
      assertRefused(yield* make({ token: SECRET }), "token", "a plain string")
    }))

  it.effect("Redis: a plain-string url or password", () =>
    Effect.gen(function*() {
      const make = (options: object) => Effect.flip(Effect.scoped(RedisStore.make(untyped(options))))
      assertRefused(yield* make({ url: `redis://u:${SECRET}@127.0.0.1:6379` }), "url", "a plain string")
      assertRefused(yield* make({ password: SECRET }), "password", "a plain string")
      assertRefused(yield* make({ url: untyped({ value: SECRET }) }), "url", "an object that is not a Redacted")
    }))

  it.effect("PostgreSQL: a plain-string url of the store's own pool", () =>
    Effect.gen(function*() {
      const layer = PostgresStore.layerWithPgClient(untyped({ url: `postgres://u:${SECRET}@127.0.0.1:5432/test` }))
      assertRefused(yield* Effect.flip(Effect.scoped(Layer.build(layer))), "url", "a plain string")
    }))
})
