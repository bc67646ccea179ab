/**
 * Hot keys coalesced (internal/nats/coalesce.ts), against the real nats-server on 127.0.0.1:4222:
 * concurrent takes of one process on one key reach the server as a few writes, not one each;
 * every caller gets its own decision, admitted in arrival order, the bounds unchanged; a queued
 * caller that is interrupted is not charged; two app servers still race each other (lost writes
 * are reported to every caller of a batch, and a refusal after `maxRetries` goes to all of it).
 */
import { assert, layer } from "#test/vitest"
import { Effect, Fiber, Layer, Redacted } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { NatsStore } from "effect-rate-sync/nats"
import { dropBucket, rawBucket, URL } from "../utils/nats.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"

const available = await requireService("NATS", "127.0.0.1", 4222)

const BUCKET = `rs-test-${crypto.randomUUID()}`
const fresh = (name: string) => `${name}-${crypto.randomUUID()}`
const part = (s: string) => /^[A-Za-z0-9_-]+$/.test(s) ? `=${s}` : `/${Buffer.from(s, "utf8").toString("base64url")}`
const keyOf = (limiter: string, key: string, state: string) => `${part(limiter)}.${part(key)}.${state}`

const options = { url: Redacted.make(URL), bucketName: BUCKET }
const StoreLive = NatsStore.layer(options).pipe(Layer.provide(dropBucket(BUCKET)))

/** How many writes the key has had (its revision: the bucket's stream sequence of its last write). */
const revisionOf = (key: string) =>
  Effect.scoped(Effect.flatMap(rawBucket(BUCKET), (kv) => Effect.promise(() => kv.get(key)))).pipe(
    Effect.map((entry) => entry?.revision ?? 0)
  )

describeWhenUp(available)("NatsStore: hot keys coalesced", () => {
  layer(StoreLive, { timeout: "30 seconds", excludeTestServices: true })((it) => {
    it.scoped("100 concurrent takes on one key: a few writes, each caller its own decision, the bound exact", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("hot")
        const req = { limiter, key: "k", ratePerSecond: 1, burst: 40, cost: 1, maxWaitMs: 0 }
        const before = yield* revisionOf(keyOf(limiter, "k", "tb"))
        const decisions = yield* Effect.all(Array.from({ length: 100 }, () => store.tokenBucket(req)), { concurrency: "unbounded" })
        const admitted = decisions.filter((d) => d.allowed)
        assert.strictEqual(admitted.length, 40, "exactly the burst (1/s: at most one more slot in the run)")
        // arrival order: the first 40 callers are the admitted ones, each told what is left after it
        assert.deepStrictEqual(decisions.slice(0, 40).map((d) => d.allowed), Array.from({ length: 40 }, () => true))
        assert.deepStrictEqual(admitted.map((d) => d.remaining), Array.from({ length: 40 }, (_, i) => 39 - i))
        assert.isTrue(decisions.every((d) => d.casRetries === 0), "one process does not race itself")
        const writes = Number((yield* revisionOf(keyOf(limiter, "k", "tb"))) - before)
        assert.isTrue(writes >= 1 && writes <= 10, `${writes} writes for 40 admissions`)
      }))

    it.scoped("sliding and fixed windows: one entry per take, the limit exact, in arrival order", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("windows")
        const sw = { limiter, key: "s", limit: 7, windowMs: 60_000, cost: 1 }
        const fw = { limiter, key: "f", limit: 7, windowMs: 60_000, cost: 1 }
        const slides = yield* Effect.all(Array.from({ length: 20 }, () => store.slidingWindow(sw)), { concurrency: "unbounded" })
        const fixes = yield* Effect.all(Array.from({ length: 20 }, () => store.fixedWindow(fw)), { concurrency: "unbounded" })
        for (const ds of [slides, fixes]) {
          assert.deepStrictEqual(ds.map((d) => d.allowed), Array.from({ length: 20 }, (_, i) => i < 7))
        }
        const refs = slides.filter((d) => d.allowed).map((d) => d.ref)
        assert.strictEqual(new Set(refs).size, 7, "every sliding take has an entry (and a ref) of its own")
        // each take's entry can be given back on its own
        const adjust = store.adjust
        if (adjust === undefined) return assert.fail("the NATS store adjusts")
        const adjusted = yield* adjust({
          take: { algorithm: "sliding_window", ...sw },
          delta: -1,
          ref: refs[3]
        })
        assert.strictEqual(adjusted.applied, -1)
        assert.strictEqual(adjusted.remaining, 1)
      }))

    it.scoped("a queued caller interrupted before its batch is sent is not charged", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const limiter = fresh("interrupt")
        const req = { limiter, key: "k", limit: 100, windowMs: 60_000, cost: 1 }
        const leader = yield* T.fork(store.fixedWindow(req))
        // queued behind the leader's read (in flight: it answers only after a round trip)
        const queued = yield* Effect.all(Array.from({ length: 10 }, () => T.fork(store.fixedWindow(req))))
        yield* T.yieldNow
        const interrupted = queued.filter((_, i) => i % 2 === 0)
        for (const f of interrupted) yield* Fiber.interrupt(f)
        assert.isTrue((yield* Fiber.join(leader)).allowed)
        for (const f of queued.filter((_, i) => i % 2 === 1)) assert.isTrue((yield* Fiber.join(f)).allowed)
        const peek = yield* store.peek({ algorithm: "fixed_window", limiter, key: "k", limit: 100, windowMs: 60_000 })
        assert.strictEqual(peek.remaining, 100 - 6, "the leader and the 5 callers left waiting, no more")
      }))

    it.scoped("known values: a write or a reset by another app server is never missed", () =>
      Effect.gen(function*() {
        const a = yield* RateLimitStore.RateLimitStore
        const b = yield* NatsStore.make(options)
        const limiter = fresh("known")
        const req = { limiter, key: "k", ratePerSecond: 0.001, burst: 4, cost: 1, maxWaitMs: 0 }
        // a writes twice (the second on the value it knows), b takes one on top: a's known value is stale
        assert.strictEqual((yield* a.tokenBucket(req)).remaining, 3)
        assert.strictEqual((yield* a.tokenBucket(req)).remaining, 2)
        assert.isTrue((yield* b.tokenBucket(req)).allowed)
        const third = yield* a.tokenBucket(req)
        assert.isTrue(third.allowed)
        assert.strictEqual(third.casRetries, 0, "a stale known value is not a lost race")
        // had a written over b's take, one slot would be left
        assert.isFalse((yield* a.tokenBucket(req)).allowed, "a saw b's take: the bucket is empty")
        assert.isFalse((yield* b.tokenBucket(req)).allowed)
        // b resets the key: a's refusal is never decided on the value it knows
        yield* b.reset(limiter, "k")
        const after = yield* a.tokenBucket(req)
        assert.isTrue(after.allowed, "a read the reset")
        assert.strictEqual(after.remaining, 3)
      }))

    it.scoped("two app servers race: lost writes reach every caller of a batch; maxRetries 0 refuses the batch, never a StoreError", () =>
      Effect.gen(function*() {
        const a = yield* NatsStore.make({ ...options, maxRetries: 0 })
        const b = yield* NatsStore.make({ ...options, maxRetries: 0 })
        const limiter = fresh("race")
        const req = { limiter, key: "", limit: 1000, windowMs: 60_000, cost: 1 }
        let refused = 0
        let admitted = 0
        for (let round = 0; round < 20 && refused === 0; round++) {
          const results = yield* Effect.all(
            [a, b].flatMap((store) => Array.from({ length: 5 }, () => T.result(store.fixedWindow(req)))),
            { concurrency: "unbounded" }
          )
          const decisions = results.flatMap((r) => T.isOk(r) ? [T.valueOf(r)] : [])
          assert.strictEqual(decisions.length, 10, "losing the race is not an outage: no StoreError")
          for (const d of decisions) {
            if (d.allowed) admitted++
            else {
              refused++
              assert.strictEqual(d.casRetries, 1, "the one lost write is reported")
              assert.strictEqual(d.remaining, 0)
              assert.isTrue(d.retryAfterMs >= 1 && d.retryAfterMs <= 20, `a short retryAfter: ${d.retryAfterMs}`)
            }
          }
        }
        assert.isTrue(refused > 0, "the two stores raced")
        const peek = yield* a.peek({ algorithm: "fixed_window", limiter, key: "", limit: 1000, windowMs: 60_000 })
        assert.strictEqual(peek.remaining, 1000 - admitted, "exactly the admissions were counted")
      }))
  })
})
