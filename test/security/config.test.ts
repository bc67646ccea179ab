/**
 * No input opens the gate, configuration side: a limiter id or a rate that every store could not
 * hold is a `ConfigError` naming it at configuration, in code and in TOML; what is accepted runs.
 */
import { assert, describe, it } from "#test/vitest"
import { Effect, Layer } from "effect"
import { type LimiterDefinition, MemoryStore, RateLimiter, RateSyncConfig } from "effect-rate-sync"
import * as T from "#test/effect"

const Limiters = RateLimiter.layer({}).pipe(Layer.provide(MemoryStore.layer()))

const configure = (id: string, definition: LimiterDefinition.LimiterDefinition) =>
  Effect.flip(RateLimiter.configureLimiter(id, definition)).pipe(Effect.provide(Limiters))

const parseError = (text: string) =>
  Effect.flip(RateSyncConfig.parse(text, "test.toml")).pipe(T.withConfigProvider(T.configProvider()))

describe("limiter ids every store can hold", () => {
  it.effect("an id with NUL, a control character, a lone surrogate or over 128 characters is a ConfigError", () =>
    Effect.gen(function*() {
      for (const [id, problem] of [
        ["a\0b", "a control character"],
        ["tab\tid", "a control character"],
        ["x\uD800", "an unpaired surrogate"],
        ["l".repeat(129), "129 characters long"],
        ["", "empty"]
      ] as const) {
        const e = yield* configure(id, { ratePerSecond: 1 })
        assert.strictEqual(e._tag, "ConfigError")
        if (e._tag !== "ConfigError") continue
        assert.include(e.expected, "a limiter id of 1 to 128 characters")
        assert.include(e.received, problem)
      }
    }))

  it.effect("the same in TOML, and in cloneLimiter", () =>
    Effect.gen(function*() {
      const e = yield* parseError(`[limiters."a\\u0000b"]\nrate_per_second = 1.0\n`)
      assert.strictEqual(e.path, "limiters.a\u0000b")
      assert.include(e.received, "a control character")
      const cloned = yield* Effect.gen(function*() {
        yield* RateLimiter.configureLimiter("src", { ratePerSecond: 1 })
        return yield* Effect.flip(RateLimiter.cloneLimiter("src", "x".repeat(200)))
      }).pipe(Effect.provide(Limiters))
      assert.strictEqual(cloned._tag, "ConfigError")
    }))

  it.effect("ordinary ids of up to 128 characters work", () =>
    Effect.gen(function*() {
      const id = "ü".repeat(128)
      yield* RateLimiter.configureLimiter(id, { ratePerSecond: 1 })
      assert.isTrue((yield* RateLimiter.check(id)).allowed)
    }).pipe(Effect.provide(Limiters)))
})

describe("a token bucket every store can compute", () => {
  it.effect("burst / rate beyond 10 years is a ConfigError at the rate (code and TOML)", () =>
    Effect.gen(function*() {
      const e = yield* configure("tiny", { rate: "1/99999999999d" })
      assert.strictEqual(e._tag, "ConfigError")
      if (e._tag === "ConfigError") {
        assert.strictEqual(e.path, "limiters.tiny.rate")
        assert.include(e.expected, "burst / rate at most 3650 days")
      }
      const perSecond = yield* configure("tiny", { ratePerSecond: 1e-15 })
      assert.strictEqual(perSecond._tag === "ConfigError" ? perSecond.path : "", "limiters.tiny.ratePerSecond")
      // a burst that takes over 10 years to refill
      const burst = yield* configure("slow", { rate: "1/d", burst: 4000 })
      assert.strictEqual(burst._tag === "ConfigError" ? burst.path : "", "limiters.slow.rate")
      const toml = yield* parseError(`[limiters.tiny]\nrate = "1/99999999999d"\n`)
      assert.strictEqual(toml.path, "limiters.tiny.rate")
    }))

  it.effect("a bucket that refills within 10 years is accepted and decides", () =>
    Effect.gen(function*() {
      yield* RateLimiter.configureLimiter("yearly", { rate: "1/3650d" })
      yield* RateLimiter.configureLimiter("daily", { rate: "1/d", burst: 3650 })
      assert.isTrue((yield* RateLimiter.check("yearly")).allowed)
      assert.isFalse((yield* RateLimiter.check("yearly")).allowed)
      assert.isTrue((yield* RateLimiter.check("daily", { cost: 3650 })).allowed)
    }).pipe(Effect.provide(Limiters)))
})
