/**
 * The Redis store's composite operations (issue 12) against the real Redis on 127.0.0.1:6379:
 * the shared composite conformance suite (live clock), then what is specific to Redis: `takeAll` all-or-nothing (a refused call leaves every key as it was, read with `peek` and with
 * the raw keys), violations, bucket reservations, duplicates of one key, 200 concurrent composite
 * callers, `adjust` per algorithm, `peek` with a cost, the refs of single and composite takes, the
 * `hashTags` layout; and, on a redis-server of the test's own, one `EVALSHA` per `takeAll`
 * (`INFO commandstats`).
 */
import { assert, layer } from "#test/vitest"
import { Effect, Layer, Redacted } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { RedisStore } from "effect-rate-sync/redis"
import { Redis } from "ioredis"
import { liveTime, runCompositeSuite } from "../conformance/CompositeSuite.js"
import { redisBinariesAvailable, redisServer } from "../utils/redisServer.js"
import { describeWhenUp, requireService } from "../utils/services.js"

const available = await requireService("Redis", "127.0.0.1", 6379)

type Store = RateLimitStore.RateLimitStoreService
type RateTake = RateLimitStore.RateTake

const PREFIX = `rs-composite-${crypto.randomUUID()}`
const fresh = (name: string) => `${name}-${crypto.randomUUID()}`
/** The store's encoding of a key part (see RedisStore's module doc). */
const part = (s: string) => /^[A-Za-z0-9_-]+$/.test(s) ? `=${s}` : Buffer.from(s, "utf8").toString("base64url")
const keyOf = (limiter: string, key: string, state: string) => `${PREFIX}:{${part(limiter)}.${part(key)}}:${state}`

/** A day-long fixed window: no window boundary falls inside a test (but once a day). */
const DAY = 86_400_000

const raw = (port = 6379) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis({ host: "127.0.0.1", port, lazyConnect: false })),
    (client) => Effect.promise(() => client.quit()).pipe(Effect.ignore)
  )

const takeAllOf = (store: Store) => {
  const takeAll = store.takeAll
  if (takeAll === undefined) throw new Error("the Redis store offers takeAll")
  return takeAll
}
const adjustOf = (store: Store) => {
  const adjust = store.adjust
  if (adjust === undefined) throw new Error("the Redis store offers adjust")
  return adjust
}

/** Everything Redis holds for one state key: its type, its content, its TTL. */
const snapshotKey = (client: Redis, key: string) =>
  Effect.promise(async () => {
    const type = await client.type(key)
    const pttl = await client.pttl(key)
    const content = type === "string"
      ? await client.get(key)
      : type === "zset"
      ? await client.zrange(key, 0, -1, "WITHSCORES")
      : type === "hash"
      ? Object.entries(await client.hgetall(key)).sort()
      : null
    return { key, type, content, pttl }
  })

const snapshot = (client: Redis, keys: ReadonlyArray<string>) => Effect.all(keys.map((k) => snapshotKey(client, k)))

/** Same types and contents; every TTL kept or running down, never pushed. */
const assertUnchanged = (
  before: ReadonlyArray<{ key: string; type: string; content: unknown; pttl: number }>,
  after: ReadonlyArray<{ key: string; type: string; content: unknown; pttl: number }>
) => {
  assert.deepStrictEqual(
    after.map(({ content, key, type }) => ({ key, type, content })),
    before.map(({ content, key, type }) => ({ key, type, content }))
  )
  for (const [i, b] of before.entries()) {
    const a = after[i]
    if (a === undefined) return assert.fail("a key is missing")
    assert.isTrue(a.pttl <= b.pttl, `${b.key}: TTL ${b.pttl} -> ${a.pttl} (pushed)`)
  }
}

const approx = (actual: number, expected: number, tolerance: number, label: string) =>
  assert.isTrue(Math.abs(actual - expected) <= tolerance, `${label}: ${actual}, expected ${expected} ± ${tolerance}`)

const StoreLive = RedisStore.layer({ url: Redacted.make("redis://127.0.0.1:6379"), keyPrefix: PREFIX })

describeWhenUp(available)("RedisStore composite operations on 127.0.0.1:6379", () => {
  runCompositeSuite("composite conformance (redis, live clock)", StoreLive, liveTime)

  layer(StoreLive, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("takeAll admits every take in one script: each decision as its single take's, refs included", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const [a, b, c] = [fresh("all-tb"), fresh("all-sw"), fresh("all-fw")]
        const takes: ReadonlyArray<RateTake> = [
          { algorithm: "token_bucket", limiter: a, key: "u", ratePerSecond: 0.001, burst: 5, cost: 2, maxWaitMs: 0 },
          { algorithm: "sliding_window", limiter: b, key: "u", limit: 4, windowMs: 60_000, cost: 3 },
          { algorithm: "fixed_window", limiter: c, key: "u", limit: 10, windowMs: DAY, cost: 4 }
        ]
        const [s, us] = yield* Effect.promise(() => client.time())
        const serverMs = Number(s) * 1000 + Math.floor(Number(us) / 1000)
        const d = yield* takeAllOf(store)(takes)
        assert.isTrue(d.allowed)
        assert.strictEqual(d.delayMs, 0)
        assert.deepStrictEqual(d.decisions.map((x) => [x.allowed, x.remaining, x.limit]), [[true, 3, 5], [true, 1, 4], [true, 6, 10]])
        const [tb, sw, fw] = d.decisions
        assert.strictEqual(tb?.ref, undefined)
        // sliding: the entry's id, the member without its cost
        const members = yield* Effect.promise(() => client.zrange(keyOf(b, "u", "sw"), 0, -1))
        assert.deepStrictEqual(members, [`${sw?.ref}:3`])
        assert.match(sw?.ref ?? "", /^\d+:\d+$/)
        // fixed: the window's start, store milliseconds
        const start = Number(fw?.ref)
        assert.strictEqual(start % DAY, 0)
        assert.isTrue(start <= serverMs + 5 && serverMs < start + DAY, `start ${start}, server ${serverMs}`)
        // the state is what the three single takes would have left
        const peeks = yield* Effect.all([
          store.peek({ algorithm: "token_bucket", limiter: a, key: "u", ratePerSecond: 0.001, burst: 5 }),
          store.peek({ algorithm: "sliding_window", limiter: b, key: "u", limit: 4, windowMs: 60_000 }),
          store.peek({ algorithm: "fixed_window", limiter: c, key: "u", limit: 10, windowMs: DAY })
        ])
        assert.deepStrictEqual(peeks.map((p) => p.remaining), [3, 1, 6])
      }))

    it.scoped("a refused takeAll writes nothing: every key (content and TTL) and every peek as before", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const [a, b, c] = [fresh("no-tb"), fresh("no-sw"), fresh("no-fw")]
        const tb = { limiter: a, key: "u", ratePerSecond: 0.001, burst: 5 }
        const sw = { limiter: b, key: "u", limit: 5, windowMs: 400 }
        const fw = { limiter: c, key: "u", limit: 2, windowMs: DAY }
        // state: 2 of the bucket spent; a sliding entry that has left the window (still stored,
        // a newer one keeps the key) and a live one; a full fixed window
        assert.isTrue((yield* store.tokenBucket({ ...tb, cost: 2, maxWaitMs: 0 })).allowed)
        assert.isTrue((yield* store.slidingWindow({ ...sw, cost: 2 })).allowed)
        yield* Effect.sleep("250 millis")
        assert.isTrue((yield* store.slidingWindow({ ...sw, cost: 1 })).allowed)
        yield* Effect.sleep("200 millis")
        assert.isTrue((yield* store.fixedWindow({ ...fw, cost: 2 })).allowed)
        const stateKeys = [keyOf(a, "u", "tb"), keyOf(b, "u", "sw"), keyOf(b, "u", "swm"), keyOf(c, "u", "fw")]
        const peekAll = Effect.all([
          store.peek({ algorithm: "token_bucket", ...tb }),
          store.peek({ algorithm: "sliding_window", ...sw }),
          store.peek({ algorithm: "fixed_window", ...fw })
        ])
        const before = yield* snapshot(client, stateKeys)
        const peeksBefore = yield* peekAll
        const entries = yield* Effect.promise(() => client.zrange(keyOf(b, "u", "sw"), 0, -1))
        assert.strictEqual(entries.length, 2, "two entries stored, one of them expired")
        const refused = yield* takeAllOf(store)([
          { algorithm: "token_bucket", ...tb, cost: 2, maxWaitMs: 0 },
          { algorithm: "sliding_window", ...sw, cost: 1 },
          { algorithm: "fixed_window", ...fw, cost: 1 }
        ])
        const after = yield* snapshot(client, stateKeys)
        const peeksAfter = yield* peekAll
        assert.isFalse(refused.allowed)
        assert.strictEqual(refused.delayMs, 0)
        // the takes that fit: allowed, remaining unchanged; the violation with its own retry
        const [dTb, dSw, dFw] = refused.decisions
        assert.deepStrictEqual([dTb?.allowed, dTb?.remaining, dSw?.allowed, dSw?.remaining], [true, 3, true, 4])
        assert.strictEqual(dFw?.allowed, false)
        assert.strictEqual(dFw?.remaining, 0)
        assert.isTrue((dFw?.retryAfterMs ?? 0) > 0 && (dFw?.retryAfterMs ?? 0) <= DAY)
        assert.isUndefined(dSw?.ref)
        assertUnchanged(before, after)
        assert.deepStrictEqual(peeksAfter.map((p) => [p.allowed, p.remaining]), peeksBefore.map((p) => [p.allowed, p.remaining]))
        console.log("refused takeAll: keys before", JSON.stringify(before), "after", JSON.stringify(after))
      }))

    it.scoped("every violation is listed with its own retry; a cost above a capacity never fits", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const [a, b, c] = [fresh("v-tb"), fresh("v-fw"), fresh("v-sw")]
        const tb = { algorithm: "token_bucket" as const, limiter: a, key: "", ratePerSecond: 10, burst: 2, cost: 2, maxWaitMs: 0 }
        const fw = { algorithm: "fixed_window" as const, limiter: b, key: "", limit: 1, windowMs: DAY, cost: 1 }
        const sw = { algorithm: "sliding_window" as const, limiter: c, key: "", limit: 3, windowMs: 10_000, cost: 1 }
        assert.isTrue((yield* takeAllOf(store)([tb, fw, sw])).allowed)
        const d = yield* takeAllOf(store)([tb, fw, sw])
        assert.isFalse(d.allowed)
        const [dTb, dFw, dSw] = d.decisions
        assert.isFalse(dTb?.allowed)
        assert.isTrue((dTb?.retryAfterMs ?? 0) > 100 && (dTb?.retryAfterMs ?? 0) <= 200, `tb retry ${dTb?.retryAfterMs}`)
        assert.isFalse(dFw?.allowed)
        assert.isTrue((dFw?.retryAfterMs ?? 0) > 200, `fw retry ${dFw?.retryAfterMs}`)
        assert.isTrue(dSw?.allowed)
        assert.strictEqual(dSw?.remaining, 2, "the sliding window kept its one entry")
        const never = yield* takeAllOf(store)([{ ...sw, cost: 4 }, { ...tb, limiter: fresh("v-tb2") }])
        assert.isFalse(never.allowed)
        assert.strictEqual(never.decisions[0]?.retryAfterMs, Infinity)
        assert.isTrue(never.decisions[1]?.allowed)
      }))

    it.scoped("buckets only: every bucket reserves, the call waits for the slowest; beyond the smallest max wait, refused", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const [a, b] = [fresh("r-a"), fresh("r-b")]
        const ta = { algorithm: "token_bucket" as const, limiter: a, key: "", ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 1000 }
        const tbb = { algorithm: "token_bucket" as const, limiter: b, key: "", ratePerSecond: 5, burst: 1, cost: 1, maxWaitMs: 1000 }
        // a: empty (next token in 100 ms), b: empty (next in 200 ms)
        assert.isTrue((yield* store.tokenBucket(ta)).allowed)
        assert.isTrue((yield* store.tokenBucket(tbb)).allowed)
        const d = yield* takeAllOf(store)([ta, tbb])
        assert.isTrue(d.allowed)
        const [da, db] = d.decisions
        // the caller proceeds in ≈ 200 ms (b's wait) on both: each decision has the call's delay
        approx(d.delayMs, 200, 15, "the slowest wait")
        assert.strictEqual(da?.delayMs, d.delayMs, "a waits with the call")
        assert.strictEqual(db?.delayMs, d.delayMs, "b's own wait")
        // both booked at now + D: next = max(tat, now + D) + cost·T (a: 200 + 100, not its own 100 + 100)
        const [s, us] = yield* Effect.promise(() => client.time())
        const nowUs = Number(s) * 1e6 + Number(us)
        const tatA = Number(yield* Effect.promise(() => client.get(keyOf(a, "", "tb"))))
        const tatB = Number(yield* Effect.promise(() => client.get(keyOf(b, "", "tb"))))
        approx((tatA - nowUs) / 1000, 300, 20, "a's TAT")
        approx((tatB - nowUs) / 1000, 400, 20, "b's TAT")
        approx(da?.resetAfterMs ?? -1, 300, 15, "a's reset from its booked next")
        // b would wait ≈ 400 ms, more than the smallest max wait (100): refused, nothing reserved
        const before = yield* snapshot(client, [keyOf(a, "", "tb"), keyOf(b, "", "tb")])
        const refused = yield* takeAllOf(store)([ta, { ...tbb, maxWaitMs: 100 }])
        assert.isFalse(refused.allowed)
        assert.isTrue(refused.decisions.every((x) => !x.allowed), "each waits more than the call's 100 ms")
        approx(refused.decisions[1]?.retryAfterMs ?? -1, 400, 20, "b's retry")
        assertUnchanged(before, yield* snapshot(client, [keyOf(a, "", "tb"), keyOf(b, "", "tb")]))
      }))

    it.scoped("a call holding a window admits now or refuses: its buckets do not reserve", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const [a, b] = [fresh("m-tb"), fresh("m-fw")]
        const tb = { algorithm: "token_bucket" as const, limiter: a, key: "", ratePerSecond: 10, burst: 1, cost: 1, maxWaitMs: 10_000 }
        const fw = { algorithm: "fixed_window" as const, limiter: b, key: "", limit: 5, windowMs: DAY, cost: 1 }
        assert.isTrue((yield* store.tokenBucket(tb)).allowed)
        const before = yield* snapshot(client, [keyOf(a, "", "tb"), keyOf(b, "", "fw")])
        const d = yield* takeAllOf(store)([tb, fw])
        assert.isFalse(d.allowed)
        assert.isFalse(d.decisions[0]?.allowed)
        assert.isTrue((d.decisions[0]?.retryAfterMs ?? 0) > 50 && (d.decisions[0]?.retryAfterMs ?? 0) <= 100)
        assert.isTrue(d.decisions[1]?.allowed)
        assertUnchanged(before, yield* snapshot(client, [keyOf(a, "", "tb"), keyOf(b, "", "fw")]))
      }))

    it.scoped("one key taken twice in a call: the second sees the first's charge", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const fw = { algorithm: "fixed_window" as const, limiter: fresh("d-fw"), key: "k", limit: 3, windowMs: DAY, cost: 2 }
        const sw = { algorithm: "sliding_window" as const, limiter: fresh("d-sw"), key: "k", limit: 3, windowMs: 60_000, cost: 2 }
        const tb = { algorithm: "token_bucket" as const, limiter: fresh("d-tb"), key: "k", ratePerSecond: 0.001, burst: 3, cost: 2, maxWaitMs: 0 }
        for (const take of [fw, sw, tb]) {
          const refused = yield* takeAllOf(store)([take, take])
          assert.isFalse(refused.allowed, take.algorithm)
          assert.deepStrictEqual(refused.decisions.map((x) => x.allowed), [true, false], take.algorithm)
          const admitted = yield* takeAllOf(store)([{ ...take, cost: 1 }, take])
          assert.isTrue(admitted.allowed, take.algorithm)
          assert.deepStrictEqual(admitted.decisions.map((x) => x.remaining), [2, 0], take.algorithm)
        }
        assert.strictEqual(yield* Effect.promise(() => client.zcard(keyOf(sw.limiter, "k", "sw"))), 2)
        // two window lengths of one sliding window in one call cannot be judged at once
        const error = yield* Effect.flip(takeAllOf(store)([sw, { ...sw, windowMs: 30_000 }]))
        assert.strictEqual(error.kind, "rejected")
      }))

    it.scoped("200 concurrent composite callers: on every limit the sum charged is the sum admitted", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const [a, b, c] = [fresh("c-fw"), fresh("c-sw"), fresh("c-tb")]
        const fw = { algorithm: "fixed_window" as const, limiter: a, key: "", limit: 50, windowMs: DAY, cost: 1 }
        const sw = { algorithm: "sliding_window" as const, limiter: b, key: "", limit: 60, windowMs: 60_000, cost: 1 }
        const tb = { algorithm: "token_bucket" as const, limiter: c, key: "", ratePerSecond: 0.001, burst: 70, cost: 1, maxWaitMs: 0 }
        const calls = Array.from({ length: 200 }, (_, i) => i % 2 === 0 ? [fw, sw, tb] : [sw, tb])
        const results = yield* Effect.all(calls.map((takes) => takeAllOf(store)(takes)), { concurrency: "unbounded" })
        const withFw = results.filter((r, i) => r.allowed && i % 2 === 0).length
        const admitted = results.filter((r) => r.allowed).length
        const fwCount = Number(yield* Effect.promise(() => client.hget(keyOf(a, "", "fw"), `n${DAY}`)))
        const swCount = yield* Effect.promise(() => client.zcard(keyOf(b, "", "sw")))
        const swTotal = Number(yield* Effect.promise(() => client.hget(keyOf(b, "", "swm"), "t")))
        const tbPeek = yield* store.peek({ algorithm: "token_bucket", limiter: c, key: "", ratePerSecond: 0.001, burst: 70 })
        assert.strictEqual(admitted, 60, "the sliding window (60) binds")
        assert.strictEqual(fwCount, withFw)
        assert.isTrue(withFw <= 50)
        assert.strictEqual(swCount, admitted)
        assert.strictEqual(swTotal, admitted)
        assert.strictEqual(70 - tbPeek.remaining, admitted)
        console.log(`200 composite callers: admitted ${admitted} (${withFw} with the fixed window); fw ${fwCount}, sw ${swCount}, tb ${70 - tbPeek.remaining}`)
      }))

    it.scoped("adjust, token bucket: debt past the burst, a give-back never below a full bucket", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const take = { algorithm: "token_bucket" as const, limiter: fresh("a-tb"), key: "", ratePerSecond: 10, burst: 5, cost: 1, maxWaitMs: 0 }
        assert.isTrue((yield* store.tokenBucket(take)).allowed)
        const debt = yield* adjustOf(store)({ take, delta: 10 })
        assert.strictEqual(debt.applied, 10)
        assert.strictEqual(debt.remaining, 0)
        approx(debt.resetAfterMs, 1100, 20, "resetAfter in debt")
        const peek = yield* store.peek({ algorithm: "token_bucket", limiter: take.limiter, key: "", ratePerSecond: 10, burst: 5 })
        assert.isFalse(peek.allowed)
        approx(peek.retryAfterMs, 700, 25, "the debt is paid back first")
        // in debt past the burst (as behind a reservation): a give-back applies nothing
        const owed = yield* adjustOf(store)({ take, delta: -20 })
        assert.strictEqual(owed.applied, 0, "debt past the burst is not given back")
        approx(owed.resetAfterMs, 1100, 40, "resetAfter still in debt")
        // within the burst: given back, never below a full bucket
        const within = { ...take, limiter: fresh("a-tb-back"), cost: 3 }
        assert.isTrue((yield* store.tokenBucket(within)).allowed)
        const back = yield* adjustOf(store)({ take: within, delta: -20 })
        assert.isTrue(back.applied < -2.5 && back.applied > -3.01, `applied ${back.applied}: what the state held`)
        assert.strictEqual(back.remaining, 5)
        assert.strictEqual(back.resetAfterMs, 0)
        assert.strictEqual(yield* Effect.promise(() => client.exists(keyOf(within.limiter, "", "tb"))), 0, "a full bucket has no state")
        const none = yield* adjustOf(store)({ take: within, delta: -1 })
        assert.strictEqual(none.applied, 0)
      }))

    it.scoped("adjust, fixed window: only in the window that took (ref), count clipped at 0", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const take = { algorithm: "fixed_window" as const, limiter: fresh("a-fw"), key: "k", limit: 5, windowMs: DAY, cost: 2 }
        const d = yield* store.fixedWindow(take)
        assert.isTrue(d.allowed)
        const ref = d.ref
        assert.isDefined(ref)
        const more = yield* adjustOf(store)({ take, delta: 4, ref })
        assert.deepStrictEqual([more.applied, more.remaining], [4, 0])
        const peek = yield* store.peek({ algorithm: "fixed_window", limiter: take.limiter, key: "k", limit: 5, windowMs: DAY })
        assert.isFalse(peek.allowed, "count 6 of 5: debt until the window ends")
        const back = yield* adjustOf(store)({ take, delta: -10, ref })
        assert.deepStrictEqual([back.applied, back.remaining], [-6, 5])
        const past = yield* adjustOf(store)({ take, delta: 3, ref: String(Number(ref) - DAY) })
        assert.deepStrictEqual([past.applied, past.remaining], [0, 5])
        // a window that has ended takes nothing back
        const short = { ...take, limiter: fresh("a-fw-short"), windowMs: 300 }
        const s = yield* store.fixedWindow(short)
        yield* Effect.sleep("350 millis")
        const late = yield* adjustOf(store)({ take: short, delta: -2, ref: s.ref })
        assert.strictEqual(late.applied, 0)
        assert.strictEqual((yield* adjustOf(store)({ take, delta: 1 })).applied, 0, "no ref: nothing known taken here")
        const fraction = yield* Effect.flip(adjustOf(store)({ take, delta: 0.5, ref }))
        assert.strictEqual(fraction.kind, "rejected", "window counts are whole")
      }))

    it.scoped("adjust, sliding window: the take's own entry, while it is in the window", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const limiter = fresh("a-sw")
        const take = { algorithm: "sliding_window" as const, limiter, key: "k", limit: 5, windowMs: 500, cost: 3 }
        const first = yield* store.slidingWindow(take)
        const second = yield* store.slidingWindow({ ...take, cost: 1 })
        assert.isTrue(first.allowed && second.allowed)
        const ttlBefore = yield* Effect.promise(() => client.pttl(keyOf(limiter, "k", "sw")))
        const back = yield* adjustOf(store)({ take, delta: -5, ref: first.ref })
        assert.deepStrictEqual([back.applied, back.remaining], [-3, 4], "only what it took")
        const more = yield* adjustOf(store)({ take, delta: 2, ref: first.ref })
        assert.deepStrictEqual([more.applied, more.remaining], [2, 2])
        const members = yield* Effect.promise(() => client.zrange(keyOf(limiter, "k", "sw"), 0, -1))
        assert.sameMembers([...members], [`${first.ref}:2`, `${second.ref}:1`])
        assert.strictEqual(yield* Effect.promise(() => client.hget(keyOf(limiter, "k", "swm"), "t")), "3")
        const ttlAfter = yield* Effect.promise(() => client.pttl(keyOf(limiter, "k", "sw")))
        assert.isTrue(ttlAfter > 0 && ttlAfter <= ttlBefore, `ttl ${ttlBefore} -> ${ttlAfter}`)
        // the take and the peek agree with the adjusted total
        const peek = yield* store.peek({ algorithm: "sliding_window", limiter, key: "k", limit: 5, windowMs: 500, cost: 2 })
        assert.isTrue(peek.allowed)
        assert.strictEqual(peek.remaining, 2)
        yield* Effect.sleep("550 millis")
        const late = yield* adjustOf(store)({ take, delta: -2, ref: first.ref })
        assert.deepStrictEqual([late.applied, late.remaining], [0, 5])
        const third = yield* store.slidingWindow({ ...take, cost: 1 })
        assert.deepStrictEqual(
          [(yield* adjustOf(store)({ take, delta: -1, ref: "nope" })).applied, (yield* adjustOf(store)({ take, delta: -1 })).applied],
          [0, 0],
          "a ref naming no entry, or none, applies nothing"
        )
        assert.strictEqual((yield* adjustOf(store)({ take, delta: -1, ref: third.ref })).applied, -1)
      }))

    it.scoped("peek honours cost on every algorithm", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        // a token every 10 s: nothing refills while the case runs on a busy machine
        const tb = { limiter: fresh("p-tb"), key: "", ratePerSecond: 0.1, burst: 5 }
        const fw = { limiter: fresh("p-fw"), key: "", limit: 5, windowMs: DAY }
        const sw = { limiter: fresh("p-sw"), key: "", limit: 5, windowMs: 60_000 }
        yield* store.tokenBucket({ ...tb, cost: 3, maxWaitMs: 0 })
        yield* store.fixedWindow({ ...fw, cost: 3 })
        yield* store.slidingWindow({ ...sw, cost: 3 })
        for (const [request, label] of [
          [{ algorithm: "token_bucket" as const, ...tb }, "tb"],
          [{ algorithm: "fixed_window" as const, ...fw }, "fw"],
          [{ algorithm: "sliding_window" as const, ...sw }, "sw"]
        ] as const) {
          const fits = yield* store.peek({ ...request, cost: 2 })
          assert.isTrue(fits.allowed, label)
          assert.strictEqual(fits.remaining, 2, label)
          const over = yield* store.peek({ ...request, cost: 3 })
          assert.isFalse(over.allowed, label)
          assert.isTrue(over.retryAfterMs > 0 && Number.isFinite(over.retryAfterMs), `${label} retry ${over.retryAfterMs}`)
          const never = yield* store.peek({ ...request, cost: 6 })
          assert.strictEqual(never.retryAfterMs, Infinity, label)
          const one = yield* store.peek(request)
          assert.isTrue(one.allowed, `${label}: cost 1 by default`)
        }
        const tbOver = yield* store.peek({ algorithm: "token_bucket", ...tb, cost: 3 })
        approx(tbOver.retryAfterMs, 10_000 - 250, 250, "one token short: one interval")
      }))

    it.scoped("single window takes carry their ref; a refusal and a bucket carry none", () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        const client = yield* raw()
        const fw = { limiter: fresh("ref-fw"), key: "", limit: 1, windowMs: 60_000, cost: 1 }
        const sw = { limiter: fresh("ref-sw"), key: "", limit: 1, windowMs: 60_000, cost: 1 }
        const f = yield* store.fixedWindow(fw)
        assert.strictEqual(Number(f.ref) % 60_000, 0)
        assert.isUndefined((yield* store.fixedWindow(fw)).ref)
        const s = yield* store.slidingWindow(sw)
        assert.deepStrictEqual(yield* Effect.promise(() => client.zrange(keyOf(sw.limiter, "", "sw"), 0, -1)), [`${s.ref}:1`])
        assert.isUndefined((yield* store.slidingWindow(sw)).ref)
        const t = yield* store.tokenBucket({ limiter: fresh("ref-tb"), key: "", ratePerSecond: 1, burst: 1, cost: 1, maxWaitMs: 0 })
        assert.isUndefined(t.ref)
      }))

    it.scoped("hashTags: tagged limiters move to {~k<key>} / {~g<group>}, the others keep their layout; reset finds both", () =>
      Effect.gen(function*() {
        const client = yield* raw()
        const prefix = `rs-tags-${crypto.randomUUID()}`
        const [rpm, tpm, ip, global, plain] = ["rpm", "tpm", "login-ip", "login:global", "plain"]
        const store = yield* RedisStore.make({
          keyPrefix: prefix,
          hashTags: [`${rpm}=key`, `${tpm}=key`, `${ip}=group:login`, `${global}=group:login`]
        })
        const d = yield* takeAllOf(store)([
          { algorithm: "token_bucket", limiter: rpm, key: "u1", ratePerSecond: 1, burst: 10, cost: 1, maxWaitMs: 0 },
          { algorithm: "fixed_window", limiter: tpm, key: "u1", limit: 1000, windowMs: 60_000, cost: 300 },
          { algorithm: "sliding_window", limiter: ip, key: "10.0.0.1", limit: 5, windowMs: 60_000, cost: 1 },
          { algorithm: "fixed_window", limiter: global, key: "", limit: 100, windowMs: 60_000, cost: 1 },
          { algorithm: "fixed_window", limiter: plain, key: "u1", limit: 100, windowMs: 60_000, cost: 1 }
        ])
        assert.isTrue(d.allowed)
        const keys = [...(yield* Effect.promise(() => client.keys(`${prefix}:*`)))].sort()
        assert.deepStrictEqual(keys, [
          `${prefix}:{=plain.=u1}:fw`,
          `${prefix}:{~g=login}:${part(global)}.:fw`,
          `${prefix}:{~g=login}:=login-ip.${part("10.0.0.1")}:sw`,
          `${prefix}:{~g=login}:=login-ip.${part("10.0.0.1")}:swm`,
          `${prefix}:{~k=u1}:=rpm.=u1:tb`,
          `${prefix}:{~k=u1}:=tpm.=u1:fw`
        ].sort())
        yield* store.reset(rpm, "u1")
        yield* store.reset(ip)
        const left = [...(yield* Effect.promise(() => client.keys(`${prefix}:*`)))].sort()
        assert.deepStrictEqual(left, [
          `${prefix}:{=plain.=u1}:fw`,
          `${prefix}:{~g=login}:${part(global)}.:fw`,
          `${prefix}:{~k=u1}:=tpm.=u1:fw`
        ].sort())
        yield* store.reset(tpm)
        yield* store.reset(plain)
        const last = yield* Effect.promise(() => client.keys(`${prefix}:*`))
        assert.deepStrictEqual([...last], [`${prefix}:{~g=login}:${part(global)}.:fw`])
        yield* store.reset(global, "")
      }))
  })

  layer(Layer.empty, { excludeTestServices: true })((it) => {
    it.scoped("hashTags entries that do not parse are a ConfigError naming the entry", () =>
      Effect.gen(function*() {
        for (const entries of [["rpm"], ["=key"], ["rpm=group:"], ["rpm=shard"], ["rpm=key", "rpm=group:a"]]) {
          const error = yield* Effect.flip(RedisStore.make({ hashTags: entries }))
          assert.strictEqual(error._tag, "ConfigError", JSON.stringify(entries))
          assert.include(error.message, "hashTags[")
        }
        // a limiter id may hold "=": the entry splits at its last one
        const store = yield* RedisStore.make({ keyPrefix: `rs-tags-${crypto.randomUUID()}`, hashTags: ["a=b=key"] })
        assert.isTrue((yield* store.fixedWindow({ limiter: "a=b", key: "k", limit: 1, windowMs: 1000, cost: 1 })).allowed)
        yield* store.reset("a=b")
      }))
  })
})

const binaries = available && redisBinariesAvailable()

describeWhenUp(binaries)("RedisStore composite round trips (a redis-server of this test's own)", () => {
  layer(Layer.empty, { timeout: "60 seconds", excludeTestServices: true })((it) => {
    it.scoped("one EVALSHA per takeAll and per adjust, whatever the number of takes (INFO commandstats)", () =>
      Effect.gen(function*() {
        const server = yield* redisServer()
        const client = yield* raw(server.port)
        const store = yield* RedisStore.make({ url: Redacted.make(server.url), keyPrefix: "rt" })
        const stats = Effect.promise(() => client.info("commandstats")).pipe(
          Effect.map((text) => {
            const calls = new Map<string, { calls: number; usecPerCall: number }>()
            for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/gm)) {
              calls.set(m[1] ?? "", { calls: Number(m[2]), usecPerCall: Number(m[3]) })
            }
            return calls
          })
        )
        const fw = { algorithm: "fixed_window" as const, limiter: "c", key: "u", limit: 1000, windowMs: 60_000, cost: 1 }
        const takes: ReadonlyArray<RateTake> = [
          { algorithm: "token_bucket", limiter: "a", key: "u", ratePerSecond: 100, burst: 1000, cost: 1, maxWaitMs: 0 },
          { algorithm: "sliding_window", limiter: "b", key: "u", limit: 1000, windowMs: 60_000, cost: 1 },
          fw,
          { ...fw, limiter: "d", key: "" }
        ]
        yield* takeAllOf(store)(takes) // warm
        // server time per call, with nothing else running
        yield* Effect.promise(() => client.config("RESETSTAT"))
        for (let i = 0; i < 50; i++) yield* takeAllOf(store)(takes)
        const timed = (yield* stats).get("evalsha")?.usecPerCall
        let singles = 0
        for (const take of takes) {
          yield* Effect.promise(() => client.config("RESETSTAT"))
          for (let i = 0; i < 50; i++) {
            if (take.algorithm === "token_bucket") yield* store.tokenBucket(take)
            else if (take.algorithm === "sliding_window") yield* store.slidingWindow(take)
            else yield* store.fixedWindow(take)
          }
          singles += (yield* stats).get("evalsha")?.usecPerCall ?? NaN
        }
        // MONITOR shows every command a client sent, and those scripts ran (source "lua")
        const sent: Array<string> = []
        const monitor = yield* Effect.acquireRelease(
          Effect.promise(() => client.monitor()),
          (m) => Effect.sync(() => m.disconnect())
        )
        monitor.on("monitor", (_time: string, args: ReadonlyArray<string>, source: string) => {
          if (source !== "lua") sent.push(String(args[0]).toLowerCase())
        })
        yield* Effect.promise(() => client.config("RESETSTAT"))
        for (let i = 0; i < 20; i++) assert.isTrue((yield* takeAllOf(store)(takes)).allowed)
        const refused = yield* takeAllOf(store)([...takes, { ...fw, limiter: "e", limit: 0 }])
        assert.isFalse(refused.allowed)
        const afterTakes = yield* stats
        const d = yield* store.fixedWindow(fw)
        yield* adjustOf(store)({ take: fw, delta: -1, ref: d.ref })
        const afterAdjust = yield* stats
        // commandstats also counts what the scripts ran inside: EVALSHA is the only top-level one
        assert.strictEqual(afterTakes.get("evalsha")?.calls, 21, "21 takeAll calls of 4-5 takes: 21 round trips")
        assert.isFalse(afterTakes.has("eval"), "no NOSCRIPT fallback")
        assert.strictEqual(afterAdjust.get("evalsha")?.calls, 23, "a take, then an adjust: one each")
        // MONITOR reports asynchronously: wait for the last EVALSHA to show up
        for (let i = 0; i < 100 && sent.filter((c) => c === "evalsha").length < 23; i++) yield* Effect.sleep("10 millis")
        const byStore = sent.filter((c) => c !== "config" && c !== "info")
        assert.deepStrictEqual(byStore, Array.from({ length: 23 }, () => "evalsha"), "nothing but EVALSHA left the store")
        console.log(`server time per call (50 calls each): takeAll of 4 takes ${timed} µs; its 4 takes as single scripts ${singles.toFixed(2)} µs together`)
      }))
  })
})
