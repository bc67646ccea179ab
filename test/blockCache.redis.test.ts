/**
 * The local block cache against a real redis-server this file starts on its own port, so that the
 * server's own command counters (`INFO commandstats`) are this file's alone: while a key is
 * blocked, a flood of 64 callers sends the server no command at all; with the cache off the same
 * flood sends one per call.
 */
import { assert, layer } from "#test/vitest"
import { Effect, Layer, Redacted } from "effect"
import { RateLimiter, RateLimitStore } from "effect-rate-sync"
import { RedisStore, RedisStoreLive } from "effect-rate-sync/redis"
import { redisBinariesAvailable, redisServer, type RedisServer } from "./utils/redisServer.js"
import { describeWhenUp } from "./utils/services.js"
import * as T from "#test/effect"

const available = redisBinariesAvailable()

class Server extends T.Service<Server, RedisServer>()("test/BlockCacheRedisServer") {}

/** Calls of every command the server has run so far (failed and rejected ones too), but `INFO`. */
const commandCalls = (server: RedisServer) =>
  Effect.promise(() => server.cli("INFO", "commandstats")).pipe(
    Effect.map((info) => {
      const calls = new Map<string, number>()
      for (const line of info.split("\n")) {
        const m = /^cmdstat_([^:]+):(.*)$/.exec(line.trim())
        if (m === null) continue
        const [, command = "", fields = ""] = m
        if (command === "info") continue
        const field = (name: string) => Number(new RegExp(`(?:^|,)${name}=(\\d+)`).exec(fields)?.[1] ?? 0)
        calls.set(command, field("calls") + field("rejected_calls") + field("failed_calls"))
      }
      return calls
    })
  )

const diff = (before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>) => {
  const changed: Record<string, number> = {}
  for (const [command, n] of after) {
    const d = n - (before.get(command) ?? 0)
    if (d !== 0) changed[command] = d
  }
  return changed
}

const total = (changed: Record<string, number>) => Object.values(changed).reduce((a, b) => a + b, 0)

const CALLERS = 64
const PER_CALLER = 20

/** 64 callers, each making 20 calls (check, tryAcquire, acquire with a short timeout in turn). */
const flood = (rl: RateLimiter.RateLimiterService, id: string) =>
  Effect.forEach(
    Array.from({ length: CALLERS }),
    () =>
      Effect.gen(function*() {
        let refused = 0
        for (let i = 0; i < PER_CALLER; i++) {
          if (i % 3 === 0) {
            if (!(yield* rl.check(id, { key: "hot" })).allowed) refused++
          } else if (i % 3 === 1) {
            if (!(yield* rl.tryAcquire(id, { key: "hot" }))) refused++
          } else {
            const r = yield* T.result(Effect.scoped(rl.acquire(id, { key: "hot", timeout: "10 millis" })))
            if (!T.isOk(r)) refused++
          }
        }
        return refused
      }),
    { concurrency: "unbounded" }
  ).pipe(Effect.map((counts) => counts.reduce((a, b) => a + b, 0)))

const registry = (server: RedisServer, blockCache: boolean) =>
  Effect.flatMap(RedisStore.make({ url: Redacted.make(server.url), keyPrefix: `bc-${crypto.randomUUID()}` }), (store) =>
  RateLimiter.make({
    stores: { main: store },
    defaultStore: "main",
    blockCache,
    limiters: {
      tb: { ratePerSecond: 1 / 60, burst: 1 },
      fw: { algorithm: "fixed_window", limit: 1, window: "1 minute" },
      sw: { algorithm: "sliding_window", limit: 1, window: "1 minute" }
    }
  }))

describeWhenUp(available)("block cache on Redis (own redis-server, INFO commandstats)", () => {
  layer(T.layerScoped(Server, redisServer()), { timeout: "60 seconds", excludeTestServices: true })((it) => {
    for (const id of ["tb", "fw", "sw"]) {
      it.scoped(`${id}: a blocked key flooded by 64 callers sends the server no command; with the cache off, one per call`, () =>
        Effect.gen(function*() {
          const server = yield* Server
          const on = yield* registry(server, true)
          assert.isTrue((yield* on.check(id, { key: "hot" })).allowed)
          const first = yield* on.check(id, { key: "hot" })
          assert.isFalse(first.allowed)
          const before = yield* commandCalls(server)
          const refused = yield* flood(on, id)
          const after = yield* commandCalls(server)
          assert.strictEqual(refused, CALLERS * PER_CALLER)
          assert.deepStrictEqual(diff(before, after), {}, "no command while blocked")
          const m = yield* on.metrics(id)
          assert.deepStrictEqual([m.cachedRefusals, m.refusals], [CALLERS * PER_CALLER, CALLERS * PER_CALLER + 1])

          // the same flood with the cache off reaches the server on every call
          const off = yield* registry(server, false)
          assert.isTrue((yield* off.check(id, { key: "hot" })).allowed)
          const before2 = yield* commandCalls(server)
          assert.strictEqual(yield* flood(off, id), CALLERS * PER_CALLER)
          const sent = total(diff(before2, yield* commandCalls(server)))
          assert.isTrue(sent >= CALLERS * PER_CALLER / 16, `commands with the cache off: ${sent}`)
          assert.strictEqual((yield* off.metrics(id)).cachedRefusals, 0)

          // a reset of this process clears the block: the next call goes to the server again
          yield* on.reset(id, "hot")
          const before3 = yield* commandCalls(server)
          assert.isTrue((yield* on.check(id, { key: "hot" })).allowed)
          assert.isAbove(total(diff(before3, yield* commandCalls(server))), 0)
        }))
    }

    it.scoped("a store definition's blockCache: false turns the cache off for the limiters on it; a replacement takes its own", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const url = Redacted.make(server.url)
        const prefix = `bcs-${crypto.randomUUID()}`
        const rl = yield* RateLimiter.make({
          stores: {
            on: { engine: "redis", url, keyPrefix: `${prefix}-on` },
            off: { engine: "redis", url, keyPrefix: `${prefix}-off`, blockCache: false }
          },
          limiters: { a: { store: "on", ratePerSecond: 1 / 60, burst: 1 }, b: { store: "off", ratePerSecond: 1 / 60, burst: 1 } }
        })
        /** 5 checks of a limiter: the decisions sent to the server (scripts), and its cached refusals after them. */
        const five = (id: string) =>
          Effect.gen(function*() {
            const before = yield* commandCalls(server)
            for (let i = 0; i < 5; i++) yield* rl.check(id)
            const sent = diff(before, yield* commandCalls(server))
            return { sent: (sent["evalsha"] ?? 0) + (sent["eval"] ?? 0), cached: (yield* rl.metrics(id)).cachedRefusals }
          })
        // on: the admission and the first refusal reach the server, the other three are answered here
        assert.deepStrictEqual(yield* five("a"), { sent: 2, cached: 3 })
        // off: every call reaches the server
        assert.deepStrictEqual(yield* five("b"), { sent: 5, cached: 0 })
        // the store replaced under its id by a definition without the switch: its limiters cache again
        yield* rl.configureStore("off", { engine: "redis", url, keyPrefix: `${prefix}-off` })
        const { cached, sent } = yield* five("b")
        assert.deepStrictEqual([sent <= 2, cached >= 4], [true, true], `after the replacement: ${sent} commands, ${cached} cached`)
      }))

    it.scoped("a store its driver made with blockCache: false (option or RATE_SYNC_REDIS_BLOCK_CACHE) keeps it when handed to RateLimiter.layer; a non-boolean is a ConfigError", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const url = Redacted.make(server.url)
        const limiters = { a: { ratePerSecond: 1 / 60, burst: 1 } }
        /** 5 checks of limiter `a` on the store `layer` gives: scripts sent, refusals cached. */
        const five = <E>(store: Layer.Layer<RateLimitStore.RateLimitStore, E>) =>
          Effect.gen(function*() {
            const rl = yield* RateLimiter.RateLimiter
            const before = yield* commandCalls(server)
            for (let i = 0; i < 5; i++) yield* rl.check("a")
            const sent = diff(before, yield* commandCalls(server))
            return { sent: (sent["evalsha"] ?? 0) + (sent["eval"] ?? 0), cached: (yield* rl.metrics("a")).cachedRefusals }
          }).pipe(Effect.provide(Layer.provide(RateLimiter.layer(limiters), store)))
        const prefix = () => `bcd-${crypto.randomUUID()}`
        // the default: the admission and the first refusal reach the server, three are answered here
        assert.deepStrictEqual(yield* five(RedisStore.layer({ url, keyPrefix: prefix() })), { sent: 2, cached: 3 })
        // the driver's option
        assert.deepStrictEqual(yield* five(RedisStore.layer({ url, keyPrefix: prefix(), blockCache: false })), { sent: 5, cached: 0 })
        // the environment, through RedisStoreLive
        const env = (vars: Record<string, string>) =>
          T.configProvider(new Map([["RATE_SYNC_REDIS_URL", server.url], ["RATE_SYNC_REDIS_KEY_PREFIX", prefix()], ...Object.entries(vars)]), {
            pathDelim: "_"
          })
        const live = (vars: Record<string, string>) => five(RedisStoreLive).pipe(T.withConfigProvider(env(vars)))
        assert.deepStrictEqual(yield* live({ RATE_SYNC_REDIS_BLOCK_CACHE: "off" }), { sent: 5, cached: 0 })
        assert.deepStrictEqual(yield* live({ RATE_SYNC_REDIS_BLOCK_CACHE: "true" }), { sent: 2, cached: 3 })
        // what an untyped caller may pass
        const options: Record<string, unknown> = { url, keyPrefix: prefix(), blockCache: "no" }
        const bad = yield* Effect.flip(Effect.scoped(RedisStore.make(options)))
        assert.strictEqual(bad._tag, "ConfigError")
        if (bad._tag === "ConfigError") assert.deepStrictEqual([bad.path, bad.expected, bad.received], ["blockCache", "true or false", '"no"'])
      }))
  })
})
