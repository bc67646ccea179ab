/**
 * The NATS JetStream KV store against the real nats-server (JetStream on) on 127.0.0.1:4222: what
 * is specific to NATS (compare-and-set under contention, key encoding, stored values, purge,
 * clock-skew margin, errors), then the conformance suite (live clock). Every block works in a
 * fresh bucket that its layer deletes when the block ends.
 */
import { assert, layer } from "#test/vitest"
import { connect } from "@nats-io/transport-node"
import { Clock, Duration, Effect, Layer, Redacted, Schedule } from "effect"
import { RateLimiter, RateLimitStore } from "effect-rate-sync"
import { NatsStore, NatsStoreLive } from "effect-rate-sync/nats"
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { runStoreSuite } from "../conformance/RateLimitStoreSuite.js"
import { dropBucket, rawBucket, URL } from "../utils/nats.js"
import { freePort } from "../utils/redisServer.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"

const available = await requireService("NATS", "127.0.0.1", 4222)

const BUCKET = `rs-test-${crypto.randomUUID()}`
const fresh = (name: string) => `${name}-${crypto.randomUUID()}`
/** The store's encoding of a key token (see NatsStore's module doc). */
const part = (s: string) => /^[A-Za-z0-9_-]+$/.test(s) ? `=${s}` : `/${Buffer.from(s, "utf8").toString("base64url")}`
const keyOf = (limiter: string, key: string, state: string) => `${part(limiter)}.${part(key)}.${state}`

const raw = rawBucket(BUCKET)
const DropBucket = dropBucket(BUCKET)

const options = { url: Redacted.make(URL), bucketName: BUCKET }
const StoreLive = NatsStore.layer(options).pipe(Layer.provide(DropBucket))

/** A clock `skewMs` ahead of the real one (another app server whose clock is off). */
const skewedClock = (skewMs: number): Clock.Clock => T.clockOf({ millis: () => Date.now() + skewMs })

/**
 * GCRA's bound on admissions known only up to an interval each (`[from, to]`: the clock read
 * before and after the call, plus the delay): for every `a` (some `from`) and `b` (some `to`),
 * the admissions whose whole interval lies in `[a, b]` number at most `burst + rate·(b − a)`.
 * (Counting only the ones surely inside keeps the check valid when calls take unequal times.)
 */
const assertGcraBound = (
  admitted: ReadonlyArray<{ readonly from: number; readonly to: number }>,
  burst: number,
  ratePerSecond: number
): void => {
  const byFrom = [...admitted].sort((x, y) => x.from - y.from)
  for (let i = 0; i < byFrom.length; i++) {
    const a = byFrom[i]?.from ?? 0
    const ends = byFrom.slice(i).map((x) => x.to).sort((x, y) => x - y)
    ends.forEach((b, m) => {
      const allowance = burst + ratePerSecond * (b - a) / 1000
      assert.isTrue(m + 1 <= allowance + 1e-9, `${m + 1} admissions within [${a}, ${b}] (${b - a} ms)`)
    })
  }
}

/** A nats-server of our own (to freeze with SIGSTOP), on a free port with a temporary store; killed with the scope. */
const ownServer = Effect.gen(function*() {
  // a port the kernel just handed out (not a random one, which another test's own server may hold)
  const port = yield* Effect.promise(freePort)
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "rs-nats-"))),
    (d) => Effect.sync(() => rmSync(d, { recursive: true, force: true }))
  )
  const server = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: "ignore" })
      child.on("error", (e) => console.error(`nats-server could not be started: ${e.message}`))
      return child
    }),
    (child) =>
      Effect.sync(() => {
        child.kill("SIGCONT")
        child.kill("SIGKILL")
      })
  )
  yield* Effect.retry(
    Effect.tryPromise(() => connect({ servers: `nats://127.0.0.1:${port}` }).then((nc) => nc.close())),
    Schedule.spaced("50 millis").pipe(T.upTo("5 seconds"))
  )
  // the connection above reached this child, not a server that held the port before it
  if (server.exitCode !== null || server.signalCode !== null) {
    return yield* Effect.die(new Error(`nats-server on ${port} exited (${server.exitCode ?? server.signalCode}): the port was taken`))
  }
  return { port, server }
})

/** Waits until process `pid` is stopped (state `T` in /proc/<pid>/stat, Linux), at most 1 s. */
const stopped = (pid: number | undefined) =>
  Effect.suspend(() =>
    pid === undefined || readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2] === "T" ? Effect.void : Effect.fail("running")
  ).pipe(Effect.retry(Schedule.spaced("1 millis").pipe(T.upTo("1 second"))), Effect.ignore)

/** {@link stopped}, synchronously (inside a clock callback): blocks the thread for at most 1 s. */
const stoppedNow = (pid: number | undefined): void => {
  const pause = new Int32Array(new SharedArrayBuffer(4))
  for (let i = 0; pid !== undefined && i < 1000; i++) {
    if (readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2] === "T") return
    Atomics.wait(pause, 0, 0, 1)
  }
}

describeWhenUp(available)("NatsStore on 127.0.0.1:4222", () => {
  layer(StoreLive, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.scoped("20 concurrent fibers on one key: the CAS loop keeps the token-bucket bound", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        // two app servers: one process's takes of a key are coalesced and never race each other
        const other = yield* NatsStore.make(options)
        // whether the two stores' writes overlap is up to the scheduler: rounds on fresh keys, each
        // checked whole, until one has seen a lost compare-and-set (see "retries are bounded")
        let retries = 0
        for (let round = 0; round < 30 && retries === 0; round++) {
          const req = { limiter: fresh("cas-tb"), key: "hot", ratePerSecond: 5, burst: 5, cost: 1, maxWaitMs: 0 }
          const started = yield* Clock.currentTimeMillis
          const decisions = yield* Effect.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : other).tokenBucket(req)), {
            concurrency: "unbounded"
          })
          const elapsed = (yield* Clock.currentTimeMillis) - started
          const admitted = decisions.filter((d) => d.allowed).length
          retries += decisions.reduce((n, d) => n + (d.casRetries ?? 0), 0)
          assert.isTrue(admitted >= 5, `admitted ${admitted}: the burst was available`)
          assert.isTrue(admitted <= 5 + Math.floor(5 * elapsed / 1000), `admitted ${admitted} in ${elapsed} ms`)
          assert.isTrue(decisions.every((d) => d.casRetries !== undefined), "every decision reports casRetries")
        }
        assert.isTrue(retries > 0, "the fibers raced: some compare-and-sets were lost and retried")

        // reservations: all 20 admitted, their instants never beyond burst + rate·t
        const reserve = { limiter: fresh("cas-tb"), key: "queue", ratePerSecond: 20, burst: 2, cost: 1, maxWaitMs: 5000 }
        const timed = yield* Effect.all(
          Array.from({ length: 20 }, () =>
            Effect.gen(function*() {
              const before = yield* Clock.currentTimeMillis
              const d = yield* store.tokenBucket(reserve)
              const after = yield* Clock.currentTimeMillis
              return { d, from: before + d.delayMs, to: after + d.delayMs }
            })),
          { concurrency: "unbounded" }
        )
        assert.isTrue(timed.every((x) => x.d.allowed), "every request reserved a slot within maxWait")
        assertGcraBound(timed, reserve.burst, reserve.ratePerSecond)
      }))

    it.scoped("20 concurrent fibers on one key: the CAS loop keeps the concurrency limit", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const slot = { limiter: fresh("cas-cc"), key: "hot", limit: 3, leaseMs: 10_000 }
        let holding = 0
        let most = 0
        const workers = 20
        let pending = workers
        let retries = 0
        const worker = (holder: string) =>
          Effect.gen(function*() {
            while (true) {
              const d = yield* store.acquireSlot({ ...slot, holder })
              retries += d.casRetries ?? 0
              assert.isTrue(d.active <= slot.limit, `active ${d.active}`)
              if (d.acquired) break
              yield* Effect.sleep(Duration.millis(5 + Math.random() * 10))
            }
            holding++
            pending--
            most = Math.max(most, holding)
            // held until the slots were all seen in use at once (or nobody is left to take one,
            // or 2 s): a slow host must not end the holds before the others got theirs
            const held = yield* Clock.currentTimeMillis
            yield* Effect.sleep("15 millis")
            while (most < slot.limit && pending > 0 && (yield* Clock.currentTimeMillis) - held < 2000) yield* Effect.sleep("5 millis")
            holding--
            assert.isTrue(yield* store.releaseSlot({ ...slot, holder }), "the lease was live")
          })
        yield* Effect.all(Array.from({ length: workers }, (_, i) => worker(`h${i}`)), { concurrency: "unbounded" })
        assert.isTrue(most <= slot.limit, `${most} holders at once`)
        assert.strictEqual(most, slot.limit, "the slots were all used")
        assert.isTrue(retries > 0, "some compare-and-sets were lost and retried")
        const peek = yield* store.peek({ algorithm: "concurrency", limiter: slot.limiter, key: "hot", limit: 3 })
        assert.strictEqual(peek.remaining, 3, "every slot is free again")
      }))

    it.scoped("two store instances (two app servers) share one bucket: the token-bucket bound holds", () =>
      Effect.gen(function*() {
        const a = yield* RateLimitStore.RateLimitStore
        const b = yield* NatsStore.make(options)
        const req = { limiter: fresh("shared"), key: "k", ratePerSecond: 50, burst: 10, cost: 1, maxWaitMs: 0 }
        const runMs = 2000
        const start = yield* Clock.currentTimeMillis
        let admitted = 0
        let retries = 0
        const worker = (store: RateLimitStore.RateLimitStoreService) =>
          Effect.gen(function*() {
            while ((yield* Clock.currentTimeMillis) - start < runMs) {
              const d = yield* store.tokenBucket(req)
              retries += d.casRetries ?? 0
              if (d.allowed) admitted++
              else yield* Effect.sleep(Duration.millis(Math.min(d.retryAfterMs, 50) * Math.random()))
            }
          })
        yield* Effect.all([...Array.from({ length: 10 }, () => worker(a)), ...Array.from({ length: 10 }, () => worker(b))], {
          concurrency: "unbounded"
        })
        const elapsed = (yield* Clock.currentTimeMillis) - start
        const bound = req.burst + req.ratePerSecond * elapsed / 1000
        console.log(`NATS two instances, 20 fibers, ${elapsed} ms: admitted ${admitted} of a bound of ${bound.toFixed(0)}, casRetries ${retries}`)
        assert.isTrue(admitted <= bound, `admitted ${admitted} > bound ${bound}`)
        assert.isTrue(admitted >= 0.8 * bound, `admitted ${admitted}: far below the bound ${bound}`)
      }))

    it.scoped("blockCache: false (option or RATE_SYNC_NATS_BLOCK_CACHE) is carried on the service; a non-boolean is a ConfigError", () =>
      Effect.gen(function*() {
        assert.strictEqual((yield* NatsStore.make(options)).blockCache, undefined, "on by default")
        assert.strictEqual((yield* NatsStore.make({ ...options, blockCache: false })).blockCache, false)
        const env = new Map([["RATE_SYNC_NATS_URL", URL], ["RATE_SYNC_NATS_BUCKET_NAME", BUCKET], ["RATE_SYNC_NATS_BLOCK_CACHE", "no"]])
        const viaEnv = yield* RateLimitStore.RateLimitStore.pipe(
          Effect.provide(NatsStoreLive),
          T.withConfigProvider(T.configProvider(env, { pathDelim: "_" }))
        )
        assert.strictEqual(viaEnv.blockCache, false)
        const untyped: Record<string, unknown> = { ...options, blockCache: 0 }
        const bad = yield* Effect.flip(NatsStore.make(untyped))
        assert.strictEqual(bad._tag, "ConfigError")
        if (bad._tag === "ConfigError") assert.deepStrictEqual([bad.path, bad.received], ["blockCache", "0"])
      }))

    it.scoped("retries are bounded: with maxRetries 0 a lost compare-and-set is a refusal, never a StoreError", () =>
      Effect.gen(function*() {
        const store = yield* NatsStore.make({ ...options, maxRetries: 0 })
        // two app servers: one process's takes of a key are coalesced and never race each other
        const other = yield* NatsStore.make({ ...options, maxRetries: 0 })
        // whether the two writes overlap is up to the scheduler: each round is checked whole, on a
        // fresh key, until one round has seen a lost race (the first almost always does; under the
        // whole suite's load a round can miss: CI, 2026-12-04)
        const rounds = 30
        let raced = 0
        let round = 0
        for (; round < rounds && raced === 0; round++) {
          const req = { limiter: fresh("cas-max"), key: "", limit: 100, windowMs: 60_000, cost: 1 }
          const results = yield* Effect.all(
            Array.from({ length: 10 }, (_, i) => T.result((i % 2 === 0 ? store : other).fixedWindow(req))),
            { concurrency: "unbounded" }
          )
          const decisions = results.flatMap((r) => T.isOk(r) ? [T.valueOf(r)] : [])
          assert.strictEqual(decisions.length, 10, "losing the race is not an outage: no StoreError")
          const refused = decisions.filter((d) => !d.allowed)
          for (const d of refused) {
            assert.strictEqual(d.casRetries, 1, "the one lost write is reported")
            assert.strictEqual(d.remaining, 0)
            assert.isTrue(d.retryAfterMs >= 1 && d.retryAfterMs <= 20, `a short retryAfter: ${d.retryAfterMs}`)
          }
          const admitted = decisions.length - refused.length
          const peek = yield* store.peek({ algorithm: "fixed_window", limiter: req.limiter, key: "", limit: 100, windowMs: 60_000 })
          assert.strictEqual(peek.remaining, 100 - admitted, "exactly the admissions were counted")
          raced += refused.length
        }
        assert.isTrue(raced > 0, `in ${rounds} rounds some writes lost the race and were not retried`)
        console.log(`NATS maxRetries 0: a fixed-window race lost in round ${round}`)

        // slots: a lost race is `acquired: false`, and the limit still holds
        let lostAll = 0
        round = 0
        for (; round < rounds && lostAll === 0; round++) {
          const slot = { limiter: fresh("cas-max-slots"), key: "slots", limit: 5, leaseMs: 10_000 }
          const slots = yield* Effect.all(
            Array.from({ length: 10 }, (_, i) => store.acquireSlot({ ...slot, holder: `h${i}` })),
            { concurrency: "unbounded" }
          )
          const lost = slots.filter((d) => !d.acquired && d.casRetries === 1)
          for (const d of lost) assert.isTrue(d.active < slot.limit && d.retryAfterMs >= 1 && d.retryAfterMs <= 20)
          const held = yield* store.peek({ algorithm: "concurrency", ...slot })
          assert.strictEqual(slot.limit - held.remaining, slots.filter((d) => d.acquired).length)
          lostAll += lost.length
        }
        assert.isTrue(lostAll > 0, `in ${rounds} rounds some acquires lost the race`)
        console.log(`NATS maxRetries 0: an acquire race lost in round ${round}`)
      }))

    it.scoped("keys are encoded into the KV charset and values are compact JSON with an expiry", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const kv = yield* raw
        const limiter = fresh("keys")
        const key = "user:{42} é.*>"
        const before = yield* Clock.currentTimeMillis
        yield* store.tokenBucket({ limiter, key, ratePerSecond: 1, burst: 10, cost: 4, maxWaitMs: 0 })
        yield* store.slidingWindow({ limiter, key, limit: 5, windowMs: 2000, cost: 1 })
        yield* store.fixedWindow({ limiter, key, limit: 5, windowMs: 60_000, cost: 1 })
        yield* store.acquireSlot({ limiter, key, holder: "h1", limit: 2, leaseMs: 3000 })
        const keys = yield* Effect.promise(async () => {
          const out: Array<string> = []
          for await (const k of await kv.keys(`${part(limiter)}.>`)) out.push(k)
          return out.sort()
        })
        assert.deepStrictEqual(keys, ["cc", "fw", "sw", "tb"].map((s) => keyOf(limiter, key, s)))
        for (const k of keys) assert.match(k, /^[-/_=.a-zA-Z0-9]+$/)
        const tb = yield* Effect.promise(() => kv.get(keyOf(limiter, key, "tb")))
        const value: unknown = tb?.json()
        assert.isTrue(typeof value === "object" && value !== null && "x" in value && typeof value.x === "number")
        if (typeof value === "object" && value !== null && "x" in value && typeof value.x === "number") {
          assert.isTrue(value.x > before + 3900 && value.x < before + 4500, `expiry ${value.x - before}`)
        }
        assert.isTrue((tb?.length ?? 1000) < 64, `value of ${tb?.length} bytes`)
      }))

    it.scoped("distinct (limiter, key) pairs never collide, whatever characters they hold", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const base = fresh("collide")
        const pairs: ReadonlyArray<readonly [string, string]> = [
          [`${base}.x`, ""],
          [base, "x"],
          [base, ".x"],
          [base, "=x"],
          [base, "/x"],
          [base, "PXg"],
          [base, ""],
          [base, "*"],
          [base, ">"],
          [base, "a.b"],
          [`${base}.a`, "b"]
        ]
        for (const [limiter, key] of pairs) {
          const d = yield* store.fixedWindow({ limiter, key, limit: 1, windowMs: 60_000, cost: 1 })
          assert.isTrue(d.allowed, `${limiter} / ${key}`)
        }
      }))

    it.scoped("reset(limiter) deletes that limiter's keys only", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("reset")
        const other = `${limiter}x`
        const take = (l: string, key: string) => store.fixedWindow({ limiter: l, key, limit: 1, windowMs: 60_000, cost: 1 })
        for (const key of ["a", "b", "c"]) yield* take(limiter, key)
        yield* take(other, "a")
        yield* store.reset(limiter)
        for (const key of ["a", "b", "c"]) assert.isTrue((yield* take(limiter, key)).allowed)
        assert.isFalse((yield* take(other, "a")).allowed, "a limiter whose id extends the other is untouched")
      }))

    it.scoped("timingMarginMs: another process's instants count that much later", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        // a second app server on the same bucket, with its own instance id
        const other = yield* NatsStore.make({ ...options, timingMarginMs: 100 })
        const careless = yield* NatsStore.make({ ...options, timingMarginMs: 0 })
        const req = { limiter: fresh("skew"), key: "", ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 }
        assert.isTrue((yield* store.tokenBucket(req)).allowed, "the burst, taken by this process")
        // 150 ms ahead: the token written 100 ms ahead looks refilled; with a 100 ms margin it is not
        const ahead = yield* other.tokenBucket(req).pipe(T.withClock(skewedClock(150)))
        assert.isFalse(ahead.allowed, "a clock ahead by less than the margin cannot admit early")
        assert.isTrue(ahead.retryAfterMs > 0 && ahead.retryAfterMs <= 100, `retryAfter ${ahead.retryAfterMs}`)
        const early = yield* careless.tokenBucket(req).pipe(T.withClock(skewedClock(150)))
        assert.isTrue(early.allowed, "without a margin, a clock 150 ms ahead admits 50 ms early")
      }))

    it.scoped("expired keys are purged by the store's scoped fiber", () =>
      Effect.gen(function*() {
        const kv = yield* raw
        const store = yield* NatsStore.make({ ...options, purgeInterval: "200 millis", timingMarginMs: 0 })
        const limiter = fresh("purge")
        yield* store.tokenBucket({ limiter, key: "", ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 0 })
        yield* store.acquireSlot({ limiter, key: "", holder: "h", limit: 1, leaseMs: 60_000 })
        const count = Effect.promise(async () => {
          let n = 0
          for await (const _ of await kv.keys(`${part(limiter)}.>`)) n++
          return n
        })
        assert.strictEqual(yield* count, 2)
        yield* Effect.sleep("700 millis")
        assert.strictEqual(yield* count, 1, "the refilled bucket's key is gone, the live lease stays")
      }))

    it.scoped("behind RateLimiter: rate and concurrency limits hold, permits release their slots", () =>
      Effect.gen(function*() {
        const id = fresh("limiter")
        const context = yield* Layer.build(
          RateLimiter.layer({ [id]: { ratePerSecond: 2, burst: 3, maxConcurrent: 2 } }).pipe(
            Layer.provide(Layer.succeed(RateLimitStore.RateLimitStore, yield* RateLimitStore.RateLimitStore))
          )
        )
        const outcomes = yield* Effect.gen(function*() {
          const held = [yield* RateLimiter.tryAcquire(id), yield* RateLimiter.tryAcquire(id)]
          const third = yield* Effect.scoped(RateLimiter.tryAcquire(id))
          return [...held, third]
        }).pipe(Effect.scoped, Effect.provide(context))
        assert.deepStrictEqual(outcomes, [true, true, false], "the third waits for a slot: two are held")
        const afterRelease = yield* Effect.scoped(RateLimiter.tryAcquire(id)).pipe(Effect.provide(context))
        assert.isTrue(afterRelease, "the slots came back when the scope closed; the third token was still there")
        const refused = yield* Effect.scoped(RateLimiter.tryAcquire(id)).pipe(Effect.provide(context))
        assert.isFalse(refused, "burst 3 spent")
      }))

    it.scoped("sequential latency (one get + one CAS per take)", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const req = { limiter: fresh("latency"), key: "", ratePerSecond: 1e6, burst: 1e6, cost: 1, maxWaitMs: 0 }
        yield* store.tokenBucket(req)
        const n = 300
        const start = performance.now()
        for (let i = 0; i < n; i++) assert.isTrue((yield* store.tokenBucket(req)).allowed)
        const ms = (performance.now() - start) / n
        console.log(`NATS KV tokenBucket, sequential: ${ms.toFixed(3)} ms per call (${n} calls)`)
        assert.isTrue(ms < 50, `${ms} ms per call`)
      }))
  })

  layer(DropBucket, { excludeTestServices: true })((it) => {
    it.scoped("errors are StoreError with engine nats and never carry the token", () =>
      Effect.gen(function*() {
        const secret = `tok-${crypto.randomUUID()}`
        const down = yield* Effect.flip(
          NatsStore.make({ url: Redacted.make("nats://127.0.0.1:1"), token: Redacted.make(secret), connectTimeout: "500 millis" })
        )
        assert.strictEqual(down._tag, "StoreError")
        assert.strictEqual(down._tag === "StoreError" ? down.engine : down._tag, "nats")
        assert.notInclude(down.message, secret)
        assert.notInclude(String(down), secret)
        const badName = yield* Effect.flip(NatsStore.make({ ...options, bucketName: "no.dots" }))
        assert.include(badName.message, "bucketName")
        const missing = yield* Effect.flip(
          NatsStore.make({ url: Redacted.make(URL), bucketName: fresh("missing"), autoCreate: false })
        )
        assert.strictEqual(missing._tag === "StoreError" ? missing.operation : missing._tag, "open")
        assert.include(missing.message, "autoCreate")
      }))

    it.scoped("every call is bounded by timeout: a frozen server fails calls with StoreError in time", () =>
      Effect.gen(function*() {
        const { port, server } = yield* ownServer
        const store = yield* NatsStore.make({ url: Redacted.make(`nats://127.0.0.1:${port}`), timeout: "300 millis" })
        const req = { limiter: fresh("frozen"), key: "", ratePerSecond: 10, burst: 10, cost: 1, maxWaitMs: 0 }
        assert.isTrue((yield* store.tokenBucket(req)).allowed)
        server.kill("SIGSTOP")
        // stopped for sure before the next call (its one write, on the value the store knows, is a
        // single round trip that could otherwise still be answered)
        yield* stopped(server.pid)
        const start = performance.now()
        const error = yield* Effect.flip(store.tokenBucket(req))
        const waited = performance.now() - start
        assert.strictEqual(error.engine, "nats")
        assert.include(error.message, "300 ms")
        assert.isTrue(waited >= 250 && waited < 1000, `failed after ${waited} ms`)
        server.kill("SIGCONT")
        const back = yield* Effect.retry(store.tokenBucket(req), Schedule.spaced("50 millis").pipe(T.upTo("3 seconds")))
        assert.isTrue(back.allowed, "served again once the server runs")
      }))

    it.scoped("acquireSlot given up after its write timed out: the lease that write leaves is removed", () =>
      Effect.gen(function*() {
        const { port, server } = yield* ownServer
        const store = yield* NatsStore.make({ url: Redacted.make(`nats://127.0.0.1:${port}`), timeout: "300 millis" })
        const slot = { limiter: fresh("late-lease"), key: "", holder: "h1", limit: 1, leaseMs: 60_000 }
        const peek = store.peek({ algorithm: "concurrency", limiter: slot.limiter, key: "", limit: 1 })
        yield* peek // connected and the bucket open
        // the store reads the caller's clock between its read and its write: freeze the server
        // there, so the write is sent to a stopped server, times out, and lands once it resumes
        let frozen = false
        const freezing = T.clockOf({
          millis: () => Date.now(),
          effectfulMillis: () => {
            if (!frozen) {
              frozen = true
              server.kill("SIGSTOP")
              stoppedNow(server.pid)
            }
            return Date.now()
          }
        })
        const error = yield* Effect.flip(store.acquireSlot(slot).pipe(T.withClock(freezing)))
        assert.include(error.message, "300 ms", "the first round's timed-out write is a StoreError")
        server.kill("SIGCONT")
        // the late write granted h1 a 60 s lease nobody holds; the clean-up removes it
        const freed = yield* peek.pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (d) => d.remaining === 1 }),
          Effect.timeoutOption("3 seconds")
        )
        assert.isTrue(freed._tag === "Some", "the slot is free again well before the 60 s lease ends")
        assert.isTrue((yield* store.acquireSlot({ ...slot, holder: "h2" })).acquired)
      }))

    it.scoped("layerConfig reads RATE_SYNC_NATS_*; fromDefinition builds the TOML engine", () =>
      Effect.gen(function*() {
        const env = new Map([
          ["RATE_SYNC_NATS_URL", URL],
          ["RATE_SYNC_NATS_BUCKET_NAME", BUCKET],
          ["RATE_SYNC_NATS_RETRY_INTERVAL", "0.02"],
          ["RATE_SYNC_NATS_TIMEOUT", "1 second"]
        ])
        const limiter = fresh("env")
        const decision = yield* Effect.flatMap(
          RateLimitStore.RateLimitStore,
          (store) => store.fixedWindow({ limiter, key: "", limit: 1, windowMs: 60_000, cost: 1 })
        ).pipe(
          Effect.provide(NatsStoreLive),
          T.withConfigProvider(T.configProvider(env, { pathDelim: "_" }))
        )
        assert.isTrue(decision.allowed)
        const store = yield* NatsStore.fromDefinition({
          engine: "nats",
          url: Redacted.make(URL),
          bucketName: BUCKET,
          retryInterval: "50 millis",
          maxRetries: 10,
          timingMarginMs: 10
        })
        assert.strictEqual(store.engine, "nats")
        const again = yield* store.fixedWindow({ limiter, key: "", limit: 1, windowMs: 60_000, cost: 1 })
        assert.isFalse(again.allowed, "both stores share the bucket named in the config")
      }))
  })

  runStoreSuite("conformance (nats, live clock)", StoreLive, { clock: "live" })
})
