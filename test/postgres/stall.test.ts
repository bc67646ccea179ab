/**
 * The PostgreSQL store over a stalled link: a loopback proxy (test/utils/tcpProxy.ts) between the
 * pool and the real server on 127.0.0.1:5432 stops forwarding bytes (a dead route, a frozen
 * middlebox: no error, no FIN, nothing). Every store call must still settle within the store's
 * `statementTimeout` (500 ms here), also when the calling fiber is uninterruptible, as the
 * limiter's slot acquire and release are. Then the link comes back and the store works again.
 *
 * Each test has its own proxy, pool, store and fresh table (dropped at the end through a direct
 * pool). Bounds are generous wall-clock ones: on a loaded 2-core box a call answers in about
 * 500-700 ms; before the store had its own deadline, the uninterruptible ones waited for the link.
 */
import { assert, describe, it, layer } from "#test/vitest"
import * as net from "node:net"
import { Clock, Effect, Exit, Fiber, Layer, Option, Redacted, Schedule, Scope } from "effect"
import { RateLimiter, type RateLimitStore } from "effect-rate-sync"
import { PostgresStore } from "effect-rate-sync/postgres"
import { freshTable, FUNCTIONS, URL } from "../utils/postgres.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import { startTcpProxy, tcpProxy } from "../utils/tcpProxy.js"
import * as T from "#test/effect"
import { SqlClient } from "#fx/sql"
import * as Sql from "#fx/sql"

const available = await requireService("PostgreSQL", "127.0.0.1", 5432)

const STATEMENT_TIMEOUT_MS = 500
/** Far above any bound below: what the test waits before it calls a call hung. */
const HUNG_MS = 6000

/** The administration pool (direct, never through a proxy): drops the tables. */
const Admin = Sql.pgLayer({ url: Redacted.make(URL), maxConnections: 2 })

const dropAtEnd = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.addFinalizer(() =>
      Sql.script(sql,
        [
          `DROP TABLE IF EXISTS "public"."${table}"`,
          ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${table}_${f}"`)
        ].join(";\n")
      ).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
    ))

/**
 * A proxy to the server, a pool of 4 through it and the store on a fresh table. The link is
 * resumed before the pool closes (a pool does not close while a statement is stuck on it).
 */
const stalledSetup = Effect.gen(function*() {
  const table = freshTable()
  yield* dropAtEnd(table)
  const proxy = yield* tcpProxy(5432)
  const context = yield* Layer.build(
    Sql.pgLayer({ url: Redacted.make(`postgres://postgres@127.0.0.1:${proxy.port}/test`), maxConnections: 4 })
  )
  yield* Effect.addFinalizer(() => Effect.sync(() => proxy.resume()))
  const store = yield* Effect.provide(
    PostgresStore.make({ tableName: table, statementTimeout: `${STATEMENT_TIMEOUT_MS} millis` }),
    context
  )
  return { proxy, store }
})

/**
 * Runs `effect` in a fiber of its own and waits for it at most {@link HUNG_MS}: a call that ignores
 * interruption cannot hold up the test (`exit` is `None` when it had not settled by then).
 */
const settle = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* T.forkDetach(effect)
    const exit = yield* Effect.timeoutOption(Fiber.await(fiber), HUNG_MS)
    const elapsed = (yield* Clock.currentTimeMillis) - start
    return { exit, elapsed }
  })

const settledWithin = <A, E>(
  what: string,
  result: { readonly exit: Option.Option<Exit.Exit<A, E>>; readonly elapsed: number },
  boundMs: number
): Exit.Exit<A, E> => {
  if (Option.isNone(result.exit)) return assert.fail(`${what}: had not settled after ${result.elapsed} ms`)
  assert.isBelow(result.elapsed, boundMs, `${what}: settled in ${result.elapsed} ms`)
  return result.exit.value
}

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(T.causeFailure(exit.cause)) : undefined

const take = (store: RateLimitStore.RateLimitStoreService, key: string) =>
  store.tokenBucket({ limiter: "stall", key, ratePerSecond: 1000, burst: 1000, cost: 1, maxWaitMs: 0 })

const tagOf = (u: unknown): unknown => (typeof u === "object" && u !== null ? Reflect.get(u, "_tag") : undefined)
const kindOf = (u: unknown): unknown => (typeof u === "object" && u !== null ? Reflect.get(u, "kind") : undefined)

describeWhenUp(available)("PostgresStore over a stalled link (statementTimeout 500 ms)", () => {
  it.live("the tcp proxy: pause holds bytes, resume delivers them, slow delays, reset and close destroy", () =>
    Effect.gen(function*() {
      const echo = net.createServer((socket) => socket.pipe(socket))
      yield* Effect.acquireRelease(
        T.callback<void>((resume) => {
          echo.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () =>
          T.callback<void>((resume) => {
            echo.close(() => resume(Effect.void))
          })
      )
      const address = echo.address()
      if (address === null || typeof address === "string") return assert.fail("no echo address")
      const proxy = yield* Effect.promise(() => startTcpProxy(address.port))
      const client = net.connect({ host: "127.0.0.1", port: proxy.port })
      const received: Array<string> = []
      let closed = false
      client.on("data", (chunk: Buffer) => received.push(chunk.toString()))
      client.on("close", () => {
        closed = true
      })
      client.on("error", () => {})
      const until = (what: string, ok: () => boolean) =>
        Effect.suspend(() => (ok() ? Effect.void : Effect.fail(what))).pipe(
          Effect.retry(Schedule.spaced("10 millis").pipe(T.upTo("3 seconds")))
        )
      yield* T.callback<void>((resume) => {
        client.once("connect", () => resume(Effect.void))
      })
      client.write("a")
      yield* until("echo of a", () => received.join("") === "a")
      proxy.pause()
      client.write("b")
      // a round trip through the healthy proxy takes well under 100 ms; paused, nothing comes back
      yield* Effect.sleep("150 millis")
      assert.strictEqual(received.join(""), "a")
      proxy.resume()
      yield* until("echo of b after resume", () => received.join("") === "ab")
      proxy.slow(100)
      const start = yield* Clock.currentTimeMillis
      client.write("c")
      yield* until("echo of c", () => received.join("") === "abc")
      // delayed twice (there and back)
      assert.isAtLeast((yield* Clock.currentTimeMillis) - start, 190)
      proxy.slow(0)
      assert.strictEqual(proxy.connections(), 1)
      proxy.reset()
      yield* until("client closed by reset", () => closed)
      assert.strictEqual(proxy.connections(), 0)
      const second = net.connect({ host: "127.0.0.1", port: proxy.port })
      second.on("error", () => {})
      yield* T.callback<void>((resume) => {
        second.once("connect", () => resume(Effect.void))
      })
      yield* until("second connection open", () => proxy.connections() === 1)
      yield* Effect.promise(() => proxy.close())
      yield* until("second connection closed by close", () => second.destroyed || second.readyState === "closed")
      assert.strictEqual(proxy.connections(), 0)
      second.destroy()
      client.destroy()
    }).pipe(Effect.scoped))

  describe("calls settle within statementTimeout", () => {
    layer(Admin, { timeout: "60 seconds", excludeTestServices: true })((it) => {
      it.scoped("a token-bucket take, interruptible or not, fails with StoreError (unavailable) in < 1.5 s; the store works after resume", () =>
        Effect.gen(function*() {
          const { proxy, store } = yield* stalledSetup
          yield* take(store, "warm")
          proxy.pause()
          const interruptible = settledWithin("interruptible take", yield* settle(take(store, "a")), 1500)
          const uninterruptible = settledWithin(
            "uninterruptible take",
            yield* settle(Effect.uninterruptible(take(store, "b"))),
            1500
          )
          for (const exit of [interruptible, uninterruptible]) {
            const e = failureOf(exit)
            assert.strictEqual(tagOf(e), "StoreError")
            assert.strictEqual(kindOf(e), "unavailable")
          }
          proxy.resume()
          const after = settledWithin("take after resume", yield* settle(take(store, "c")), HUNG_MS)
          assert.isTrue(Exit.isSuccess(after) && after.value.allowed, "the store answers again")
        }))

      it.scoped("RateLimiter on a concurrency limiter (timeout 1 s): fail-closed fails, fail-open admits, both in < 3 s; release of a held permit in < 3 s", () =>
        Effect.gen(function*() {
          const { proxy, store } = yield* stalledSetup
          const registry = yield* RateLimiter.make({
            stores: { default: store },
            limiters: {
              closed: { maxConcurrent: 2, timeout: "1 second", failClosed: true },
              open: { maxConcurrent: 2, timeout: "1 second", failClosed: false },
              rate: { ratePerSecond: 1000 }
            }
          })
          const run = <A, E>(effect: Effect.Effect<A, E, RateLimiter.RateLimiter>) =>
            Effect.provideService(effect, RateLimiter.RateLimiter, registry)

          // healthy: permits taken (and one kept across the stall)
          const held = yield* Scope.make()
          const permit = yield* run(T.scopeExtend(RateLimiter.acquire("open"), held))
          assert.isFalse(permit.failedOpen)
          yield* run(Effect.scoped(RateLimiter.acquire("closed")))

          proxy.pause()
          const closed = settledWithin(
            "fail-closed acquire",
            yield* settle(run(Effect.scoped(RateLimiter.acquire("closed")))),
            3000
          )
          assert.strictEqual(tagOf(failureOf(closed)), "StoreUnavailable")
          const open = settledWithin(
            "fail-open acquire",
            yield* settle(run(Effect.scoped(Effect.map(RateLimiter.acquire("open"), (p) => p.failedOpen)))),
            3000
          )
          assert.deepStrictEqual(open, Exit.succeed(true))
          const check = settledWithin("fail-open rate check", yield* settle(run(RateLimiter.check("rate"))), 1500)
          assert.isTrue(Exit.isSuccess(check) && check.value.failedOpen, "the check failed open")
          const released = settledWithin("release of the held permit", yield* settle(Scope.close(held, Exit.void)), 3000)
          assert.isTrue(Exit.isSuccess(released))

          proxy.resume()
          const again = settledWithin(
            "acquire after resume",
            yield* settle(run(Effect.scoped(Effect.map(RateLimiter.acquire("closed"), (p) => p.failedOpen)))),
            HUNG_MS
          )
          assert.deepStrictEqual(again, Exit.succeed(false))
        }))

      it.scoped("an acquireSlot that timed out and lands late with acquired=true is released", () =>
        Effect.gen(function*() {
          const { proxy, store } = yield* stalledSetup
          const slot = { limiter: "late", key: "k", limit: 1, leaseMs: 60_000 }
          yield* store.peek({ algorithm: "concurrency", limiter: "late", key: "k", limit: 1 })
          proxy.pause()
          const timedOut = settledWithin(
            "acquireSlot",
            yield* settle(Effect.uninterruptible(store.acquireSlot({ ...slot, holder: "late-holder" }))),
            1500
          )
          assert.strictEqual(tagOf(failureOf(timedOut)), "StoreError")
          // the statement the proxy held now reaches the server: the lease is granted there...
          proxy.resume()
          // ...and undone by the store, long before the lease (60 s) would expire: another holder
          // gets the one slot (a peek may read 0 before the held grant lands, so the slot is what
          // is asked for; the store releases a cancelled acquire again until it finds the lease)
          const other = yield* store.acquireSlot({ ...slot, holder: "other" }).pipe(
            Effect.flatMap((d) => (d.acquired ? Effect.succeed(d) : Effect.fail(`${d.active} live lease(s)`))),
            Effect.retry(Schedule.spaced("50 millis").pipe(T.upTo("5 seconds"))),
            T.result
          )
          assert.isTrue(T.isOk(other), `the late lease is released: ${JSON.stringify(other)}`)
          const peek = yield* store.peek({ algorithm: "concurrency", limiter: "late", key: "k", limit: 1 })
          assert.strictEqual(peek.remaining, 0, "the one slot is the other holder's")
        }))
    })
  })
})
