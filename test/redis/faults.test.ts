/**
 * Store failures against a redis-server this file starts on its own port: killed mid-run and
 * restarted, frozen (SIGSTOP), SCRIPT FLUSH under load, wrong password.
 */
import { assert, layer } from "#test/vitest"
import { Clock, Effect, Exit, Layer, Redacted } from "effect"
import { RateLimiter, RateLimitMetrics } from "effect-rate-sync"
import { RedisStore } from "effect-rate-sync/redis"
import { describeWhenUp } from "../utils/services.js"
import { redisBinariesAvailable, redisServer, type RedisServer } from "../utils/redisServer.js"
import * as T from "#test/effect"

const available = redisBinariesAvailable()

const TIMEOUT_MS = 250
/** Scheduling slack on a loaded 2-core CI box. */
const SLACK_MS = 150

class Server extends T.Service<Server, RedisServer>()("test/RedisFaultServer") {}

const OPEN = `open-${crypto.randomUUID()}`
const CLOSED = `closed-${crypto.randomUUID()}`
const window = { algorithm: "fixed_window", limit: 5, window: "1 minute" } as const

const ServerLive = T.layerScoped(Server, redisServer())
const StoreLive = T.layerUnwrap(
  Effect.gen(function*() {
    const server = yield* Server
    return RedisStore.layer({
      url: Redacted.make(server.url),
      commandTimeout: `${TIMEOUT_MS} millis`,
      socketConnectTimeout: "1 second"
    })
  })
)
const Live = RateLimiter.layer({ [OPEN]: window, [CLOSED]: { ...window, failClosed: true } }).pipe(
  Layer.provideMerge(StoreLive),
  Layer.provideMerge(ServerLive)
)

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(effect)
    const elapsed = (yield* Clock.currentTimeMillis) - start
    return { exit, elapsed }
  })

/** Both policies while the store is failing: answers within the timeout, open admits, closed fails. */
const assertPolicies = (key: string) =>
  Effect.gen(function*() {
    const open = yield* timed(RateLimiter.check(OPEN, { key }))
    assert.isTrue(open.elapsed <= TIMEOUT_MS + SLACK_MS, `fail-open answered in ${open.elapsed} ms`)
    assert.isTrue(Exit.isSuccess(open.exit) && open.exit.value.allowed && open.exit.value.failedOpen)
    const closed = yield* timed(RateLimiter.check(CLOSED, { key }))
    assert.isTrue(closed.elapsed <= TIMEOUT_MS + SLACK_MS, `fail-closed answered in ${closed.elapsed} ms`)
    assert.isTrue(Exit.isFailure(closed.exit))
    if (Exit.isFailure(closed.exit)) {
      const error = yield* Effect.flip(closed.exit)
      assert.strictEqual(error._tag, "StoreUnavailable")
    }
  })

/** Polls until the store answers again; resolves with the time it took. */
const untilEnforced = (key: string, since?: number) =>
  Effect.gen(function*() {
    const start = since ?? (yield* Clock.currentTimeMillis)
    while (true) {
      const d = yield* RateLimiter.check(OPEN, { key })
      if (!d.failedOpen) return { elapsed: (yield* Clock.currentTimeMillis) - start, first: d }
      yield* Effect.sleep("10 millis")
    }
  })

describeWhenUp(available)("RedisStore faults (own redis-server)", () => {
  layer(Live, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.scoped("killed mid-run and restarted: policies apply, enforcement is back within 1 s, nothing replayed", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const key = crypto.randomUUID()
        for (let i = 0; i < 5; i++) assert.isTrue((yield* RateLimiter.check(OPEN, { key })).allowed)
        assert.isFalse((yield* RateLimiter.check(OPEN, { key })).allowed)
        const before = yield* RateLimiter.metrics(OPEN)

        yield* Effect.promise(() => server.kill())
        const fresh = crypto.randomUUID()
        for (let i = 0; i < 10; i++) yield* assertPolicies(fresh)

        const after = yield* RateLimiter.metrics(OPEN)
        assert.isTrue(after.failOpenAdmits - before.failOpenAdmits >= 10)
        assert.isTrue(after.storeErrors - before.storeErrors >= 10)
        const failOpenCount = yield* T.counterCount(RateLimitMetrics.failOpen, { limiter: OPEN })
        assert.isTrue(failOpenCount >= 10, "the Effect metric counts fail-open admits")
        assert.isTrue((yield* RateLimiter.metrics(CLOSED)).storeErrors >= 10)

        const restartedAt = yield* Clock.currentTimeMillis
        yield* Effect.promise(() => server.start())
        const back = yield* untilEnforced(fresh, restartedAt)
        assert.isTrue(back.elapsed <= 1000, `enforcement back ${back.elapsed} ms after the restart`)
        console.log(`enforcement back ${back.elapsed} ms after the restart`)
        // the ten takes made during the outage were not queued and replayed: exactly one counted
        assert.strictEqual(back.first.remaining, 4)
        for (let i = 0; i < 4; i++) assert.isTrue((yield* RateLimiter.check(OPEN, { key: fresh })).allowed)
        const refused = yield* RateLimiter.check(OPEN, { key: fresh })
        assert.isFalse(refused.allowed)
        assert.isFalse(refused.failedOpen)
      }))

    it.scoped("a frozen server (SIGSTOP): every call still settles within the command timeout", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const key = crypto.randomUUID()
        assert.isFalse((yield* RateLimiter.check(OPEN, { key })).failedOpen)
        server.pause()
        yield* Effect.addFinalizer(() => Effect.sync(() => server.resume()))
        for (let i = 0; i < 3; i++) yield* assertPolicies(key)
        // a permit under fail-open: acquire answers too
        const permit = yield* timed(RateLimiter.acquire(OPEN, { key: crypto.randomUUID() }))
        assert.isTrue(permit.elapsed <= TIMEOUT_MS + SLACK_MS)
        assert.isTrue(Exit.isSuccess(permit.exit) && permit.exit.value.failedOpen)
        server.resume()
        const back = yield* untilEnforced(crypto.randomUUID())
        assert.isTrue(back.elapsed <= 1000, `answers again ${back.elapsed} ms after SIGCONT`)
      }))

    it.scoped("SCRIPT FLUSH mid-run: every decision still comes from the store", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const key = crypto.randomUUID()
        const results = yield* Effect.all(
          [
            Effect.forEach(Array.from({ length: 40 }), () => RateLimiter.check(OPEN, { key: `${key}-${Math.random()}` }), {
              concurrency: 8
            }),
            Effect.promise(() => server.cli("SCRIPT", "FLUSH"))
          ],
          { concurrency: "unbounded" }
        )
        const [decisions] = results
        assert.isTrue(decisions.every((d) => d.allowed && !d.failedOpen))
        const again = yield* Effect.promise(() => server.cli("SCRIPT", "FLUSH"))
        assert.include(again, "OK")
        for (let i = 0; i < 5; i++) assert.isFalse((yield* RateLimiter.check(OPEN, { key })).failedOpen)
        assert.isFalse((yield* RateLimiter.check(OPEN, { key })).allowed)
      }))
  })

  const PASSWORD = `pw-${crypto.randomUUID()}`
  const WRONG = `wrong-${crypto.randomUUID()}`
  const AuthServer = T.layerScoped(Server, redisServer({ password: PASSWORD }))

  layer(AuthServer, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    const assertNoSecret = (text: string) => {
      assert.notInclude(text, WRONG)
      assert.notInclude(text, PASSWORD)
      assert.notInclude(text, "user:")
      assert.notInclude(text, "@127.0.0.1")
    }

    it.scoped("wrong password (option): a clear StoreError at build, with no secret in it", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const start = yield* Clock.currentTimeMillis
        const error = yield* Effect.flip(
          RedisStore.make({ url: Redacted.make(server.url), password: Redacted.make(WRONG), socketConnectTimeout: "3 seconds" })
        )
        assert.isTrue((yield* Clock.currentTimeMillis) - start < 2000, "an auth refusal fails fast")
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual(error._tag === "StoreError" ? error.operation : error._tag, "connect")
        assert.match(error.message, /WRONGPASS|invalid username-password|AUTH/i)
        assertNoSecret(error.message)
        assertNoSecret(JSON.stringify(error))
        assertNoSecret(String(error))
        console.log(`wrong password -> ${error.message}`)
      }))

    it.scoped("wrong password in the URL userinfo, through the registry: StoreUnavailable without the URL", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const url = `redis://user:${WRONG}@127.0.0.1:${server.port}`
        const error = yield* Effect.flip(
          RateLimiter.make({ stores: { main: { engine: "redis", url: Redacted.make(url), socketConnectTimeout: "3 seconds" } } })
        )
        assert.strictEqual(error._tag, "StoreUnavailable")
        const text = `${String(error)} ${JSON.stringify(error)}`
        console.log(`wrong password in URL -> ${String(error)}`)
        assertNoSecret(text)
        assert.notInclude(text, url)
      }))

    it.scoped("the right password works, and an unreachable server fails within the connect timeout", () =>
      Effect.gen(function*() {
        const server = yield* Server
        const store = yield* RedisStore.make({ url: Redacted.make(server.url), password: Redacted.make(PASSWORD) })
        const d = yield* store.fixedWindow({ limiter: crypto.randomUUID(), key: "", limit: 1, windowMs: 1000, cost: 1 })
        assert.isTrue(d.allowed)
        const start = yield* Clock.currentTimeMillis
        const error = yield* Effect.flip(
          RedisStore.make({ url: Redacted.make(`redis://:${WRONG}@127.0.0.1:1`), socketConnectTimeout: "300 millis" })
        )
        const elapsed = (yield* Clock.currentTimeMillis) - start
        assert.isTrue(elapsed < 300 + SLACK_MS * 3, `settled in ${elapsed} ms`)
        assertNoSecret(error.message)
      }))
  })
})

