/**
 * The decide steps of the NATS store's compare-and-set loop (src/core/nats/decide.ts): plain
 * functions of (stored value, now, request) → { result, write? }, no Effect, no server.
 */
import { assert, describe, it } from "#test/vitest"
import * as decide from "../../src/core/nats/decide.js"
import { parseStored } from "../../src/core/nats/stored.js"
import type { Stored } from "../../src/core/nats/stored.js"

const writer: decide.Writer = { self: "me", marginMs: 10 }
const NOW = 10_000

/** The value a step writes, parsed back. */
const written = (step: decide.Step<unknown>): unknown => typeof step.write === "string" ? JSON.parse(step.write) : step.write

describe("token bucket", () => {
  // 10/s: one token every 100 ms; burst 5
  const req = { limiter: "l", key: "k", ratePerSecond: 10, burst: 5, cost: 1, maxWaitMs: 0 }
  const take = (stored: Stored | undefined, r = req) => decide.tokenBucket(stored, NOW, r, writer)

  it("absent: admits and writes the next arrival time on this instance's clock", () => {
    const step = take(undefined)
    assert.isTrue(step.result.allowed)
    assert.deepStrictEqual(written(step), { x: NOW + 100, o: "me" })
  })

  it("this instance's value: exact, no margin", () => {
    const step = take({ x: NOW + 200, o: "me" })
    assert.isTrue(step.result.allowed)
    assert.deepStrictEqual(written(step), { x: NOW + 300, o: "me" })
    // full on its own clock: refused, nothing written
    const full = take({ x: NOW + 500, o: "me" })
    assert.isFalse(full.result.allowed)
    assert.strictEqual(full.result.retryAfterMs, 100)
    assert.isUndefined(full.write)
  })

  it("another writer's value is judged marginMs later", () => {
    // on its own clock this would fit exactly (wait 0); with the margin it waits 10 ms
    const step = take({ x: NOW + 400, o: "it" })
    assert.isFalse(step.result.allowed)
    assert.strictEqual(step.result.retryAfterMs, 10)
    assert.isUndefined(step.write)
    assert.isTrue(take({ x: NOW + 400, o: "me" }).result.allowed)
  })

  it("another writer's slot still ahead stays theirs, written without the margin", () => {
    assert.deepStrictEqual(written(take({ x: NOW + 200, o: "it" })), { x: NOW + 300, o: "it" })
  })

  it("another writer's slot long passed starts again on this clock", () => {
    assert.deepStrictEqual(written(take({ x: NOW - 1000, o: "it" })), { x: NOW + 100, o: "me" })
  })

  it("a hand-off within the margin is written mixed, marginMs early, so the next pays no margin on top", () => {
    assert.deepStrictEqual(written(take({ x: NOW - 5, o: "it" })), { x: NOW + 90, o: "" })
    // a mixed value is judged marginMs later by everyone, this instance included
    const mixed: Stored = { x: NOW, o: "" }
    assert.strictEqual(decide.judgedTat(mixed, writer), NOW + 10)
    assert.deepStrictEqual(written(take(mixed)), { x: NOW + 100, o: "" })
  })

  it("a reservation counts its slot from when the caller proceeds", () => {
    const step = take({ x: NOW + 500, o: "me" }, { ...req, maxWaitMs: 1000 })
    assert.isTrue(step.result.allowed)
    assert.strictEqual(step.result.delayMs, 100)
    assert.deepStrictEqual(written(step), { x: NOW + 600, o: "me" })
  })

  it("the refusal of a given-up race: the peek of the last state, refused, contended", () => {
    const peeked = decide.tokenBucketPeek(undefined, NOW, req, writer)
    const refused = decide.contended(peeked, 7)
    assert.isTrue(peeked.allowed)
    assert.isFalse(refused.allowed)
    assert.strictEqual(refused.remaining, 0)
    assert.strictEqual(refused.retryAfterMs, 7)
    assert.strictEqual(refused.delayMs, 0)
    assert.isTrue(refused.contended)
    // an infinite wait (cost over burst) is answered with the pause instead
    assert.strictEqual(decide.contended({ ...peeked, retryAfterMs: Infinity }, 7).retryAfterMs, 7)
    assert.strictEqual(decide.contended({ ...peeked, retryAfterMs: 40 }, 7).retryAfterMs, 40)
  })
})

describe("token bucket: a composite call's take and its booking", () => {
  const req = { limiter: "l", key: "k", ratePerSecond: 10, burst: 5, cost: 1, maxWaitMs: 0 }

  it("a composite take answers the value it wrote; a single take does not", () => {
    const step = decide.tokenBucket({ x: NOW + 200, o: "me" }, NOW, { ...req, composite: true }, writer)
    assert.deepStrictEqual(decide.writtenOf(step.result), { x: NOW + 300, o: "me" })
    assert.deepStrictEqual(decide.withoutWritten(step.result), decide.tokenBucket({ x: NOW + 200, o: "me" }, NOW, req, writer).result)
    assert.isUndefined(decide.writtenOf(decide.tokenBucket({ x: NOW + 200, o: "me" }, NOW, req, writer).result))
  })

  it("a booking applies only while the key holds the value its take wrote (with a composite nonce)", () => {
    const bookOn = { x: NOW + 300, o: "me" }
    const book = (stored: Stored | undefined) => decide.tokenBucketAdjust(stored, NOW, { ...req, bookOn }, 2, writer)
    const landed = book({ x: NOW + 300, o: "me", n: "nonce" })
    assert.strictEqual(landed.result.applied, 2)
    assert.deepStrictEqual(written(landed), { x: NOW + 500, o: "me" })
    // another write since: another value, or the same without the nonce (a later write drops it)
    for (const stored of [{ x: NOW + 400, o: "me", n: "nonce" }, { x: NOW + 300, o: "me" }, { x: NOW + 300, o: "it", n: "x" }, undefined]) {
      const lost = book(stored)
      assert.strictEqual(lost.result.applied, 0, JSON.stringify(stored))
      assert.isUndefined(lost.write)
    }
  })
})

describe("token bucket: a give-back behind a reservation", () => {
  // 10/s (T = 100 ms), burst 5: a TAT more than 500 ms ahead means a reservation (or debt)
  const req = { limiter: "l", key: "k", ratePerSecond: 10, burst: 5, cost: 1, maxWaitMs: 0 }
  const give = (stored: Stored | undefined, delta: number, r: Parameters<typeof decide.tokenBucketAdjust>[2] = req) =>
    decide.tokenBucketAdjust(stored, NOW, r, delta, writer)

  it("applies when no reservation is outstanding, nothing when one is", () => {
    const within = give({ x: NOW + 500, o: "me" }, -2)
    assert.strictEqual(within.result.applied, -2)
    assert.deepStrictEqual(written(within), { x: NOW + 300, o: "me" })
    const behind = give({ x: NOW + 700, o: "me" }, -2)
    assert.strictEqual(behind.result.applied, 0)
    assert.isUndefined(behind.write)
    // judged with the margin (another writer's value): 495 ms on its clock is 505 ms here
    assert.strictEqual(give({ x: NOW + 495, o: "it" }, -1).result.applied, 0)
  })

  it("a composite call's undo is exact while the key holds the value it wrote, its own reservation included", () => {
    // the call's take reserved (wrote NOW + 700), then booked 1 token more (NOW + 800)
    const decision = { allowed: true, limit: 5, remaining: 0, resetAfterMs: 700, retryAfterMs: 0, delayMs: 200, written: { x: NOW + 700, o: "me" } }
    const undo = decide.undoOf({ algorithm: "token_bucket", ...req, cost: 2 }, decision, 1)
    if (undo.algorithm !== "token_bucket") return assert.fail("a bucket take stays one")
    assert.strictEqual(undo.cost, 3)
    const own = give({ x: NOW + 800, o: "me", n: "nonce" }, -3, undo)
    assert.strictEqual(own.result.applied, -3)
    assert.deepStrictEqual(written(own), { x: NOW + 500, o: "me" })
    // another caller reserved behind it since: a give-back like any other, nothing
    const behind = give({ x: NOW + 900, o: "me" }, -3, undo)
    assert.strictEqual(behind.result.applied, 0)
    assert.isUndefined(behind.write)
  })
})

describe("sliding window", () => {
  const req = { limiter: "l", key: "k", limit: 3, windowMs: 1000, cost: 1 }
  const take = (stored: Stored | undefined, r = req) => decide.slidingWindow(stored, NOW, r, writer)

  it("absent: admits and records (now, cost)", () => {
    assert.deepStrictEqual(written(take(undefined)), { x: NOW + 1000, o: "me", t: [NOW], c: [1] })
  })

  it("a take of the same instant is an entry of its own (so adjust can name it); entries out of the window are dropped", () => {
    assert.deepStrictEqual(written(take({ x: NOW + 1000, o: "me", t: [NOW], c: [1] })), {
      x: NOW + 1000,
      o: "me",
      t: [NOW, NOW],
      c: [1, 1]
    })
    assert.deepStrictEqual(written(take({ x: NOW + 500, o: "me", t: [NOW - 2000, NOW - 500], c: [1, 1] })), {
      x: NOW + 1000,
      o: "me",
      t: [NOW - 500, NOW],
      c: [1, 1]
    })
  })

  it("another writer's entries count marginMs longer, stay on its clock, and the value becomes mixed", () => {
    // on this clock the entry left the window 5 ms ago; judged with the margin it still counts
    const full: Stored = { x: NOW - 5, o: "it", t: [NOW - 1005], c: [3] }
    assert.isFalse(take(full).result.allowed)
    assert.isTrue(take({ ...full, o: "me" }).result.allowed)
    assert.isTrue(take({ ...full, t: [NOW - 1010] }).result.allowed)
    assert.deepStrictEqual(written(take({ x: NOW + 995, o: "it", t: [NOW - 5], c: [1] })), {
      x: NOW + 1000,
      o: "",
      t: [NOW - 5, NOW],
      c: [1, 1]
    })
  })

  it("a refusal or a cost of 0 writes nothing", () => {
    const full: Stored = { x: NOW + 1000, o: "me", t: [NOW], c: [3] }
    const refused = take(full)
    assert.isFalse(refused.result.allowed)
    assert.isUndefined(refused.write)
    const free = take(undefined, { ...req, cost: 0 })
    assert.isTrue(free.result.allowed)
    assert.isUndefined(free.write)
  })
})

describe("fixed window", () => {
  const req = { limiter: "l", key: "k", limit: 5, windowMs: 1000, cost: 1 }
  const now = 5500
  const take = (stored: Stored | undefined, r = req) => decide.fixedWindow(stored, now, r, writer)

  it("absent: counts in the aligned window", () => {
    assert.deepStrictEqual(written(take(undefined)), { x: 6000, f: [[1000, 5000, 1, 5]] })
  })

  it("never moves back: a window another clock started ahead is kept", () => {
    assert.deepStrictEqual(written(take({ x: 7000, f: [[1000, 6000, 2, 5]] })), { x: 7000, f: [[1000, 6000, 3, 5]] })
    assert.strictEqual(decide.fixedPeek({ x: 7000, f: [[1000, 6000, 2, 5]] }, now, req).remaining, 3)
  })

  it("keeps the other lengths' counters that may still count, the latest-ending first, at most 16 lengths", () => {
    const stored: Stored = { x: 60_000, f: [[1000, 5000, 1, 5], [500, 4000, 1, 5], [60_000, 0, 7, 100]] }
    // the 500 ms window ended at 4500 (+ margin): dropped
    assert.deepStrictEqual(written(take(stored)), { x: 60_000, f: [[1000, 5000, 2, 5], [60_000, 0, 7, 100]] })
    const many: Stored = { x: 0, f: Array.from({ length: 20 }, (_, i) => [2000 + i, 5000, 1, 5] as const) }
    const f = parseStored(String(take(many).write))?.f ?? []
    assert.strictEqual(f.length, decide.MAX_WINDOW_LENGTHS)
    assert.deepStrictEqual(f.slice(1).map(([w]) => w), Array.from({ length: 15 }, (_, i) => 2019 - i))
  })

  it("a refusal writes nothing", () => {
    const step = take({ x: 6000, f: [[1000, 5000, 5, 5]] })
    assert.isFalse(step.result.allowed)
    assert.isUndefined(step.write)
  })
})

describe("slots", () => {
  const req = { limiter: "l", key: "k", holder: "a", limit: 2, leaseMs: 1000 }

  it("acquire grants, pruning expired leases, and says until when", () => {
    const step = decide.acquireSlot({ x: NOW + 500, h: [["old", NOW - 1000], ["b", NOW + 500]] }, NOW, req)
    assert.isTrue(step.result.acquired)
    assert.strictEqual(step.result.active, 2)
    assert.strictEqual(step.grantedUntil, NOW + 1000)
    assert.deepStrictEqual(written(step), { x: NOW + 1000, h: [["b", NOW + 500], ["a", NOW + 1000]] })
  })

  it("acquire when full writes nothing; the refusal of a given-up race leaves this holder out", () => {
    const full: Stored = { x: NOW + 700, h: [["b", NOW + 500], ["c", NOW + 700]] }
    const step = decide.acquireSlot(full, NOW, req)
    assert.isFalse(step.result.acquired)
    assert.strictEqual(step.result.retryAfterMs, 500)
    assert.isUndefined(step.write)
    assert.isUndefined(step.grantedUntil)
    const withHolder: Stored = { x: NOW + 900, h: [["a", NOW + 900], ["b", NOW + 500], ["c", NOW + 700]] }
    assert.deepStrictEqual(decide.acquireRefusal(withHolder, NOW, req, 3), { acquired: false, limit: 2, active: 2, retryAfterMs: 500 })
    assert.deepStrictEqual(decide.acquireRefusal(withHolder, NOW, { ...req, limit: 3 }, 3), {
      acquired: false,
      limit: 3,
      active: 2,
      retryAfterMs: 3
    })
  })

  it("renew pushes a live lease; an expired one is not renewed", () => {
    const step = decide.renewSlot({ x: NOW + 500, h: [["a", NOW + 500]] }, NOW, req)
    assert.isTrue(step.result)
    assert.deepStrictEqual(written(step), { x: NOW + 1000, h: [["a", NOW + 1000]] })
    const expired = decide.renewSlot({ x: NOW - 1, h: [["a", NOW - 1]] }, NOW, req)
    assert.isFalse(expired.result)
    assert.isUndefined(expired.write)
  })

  it("release drops the lease and the expired ones; the last one deletes the key", () => {
    const step = decide.releaseSlot({ x: NOW + 800, h: [["a", NOW + 500], ["old", NOW - 1], ["b", NOW + 800]] }, NOW, "a", undefined)
    assert.deepStrictEqual(step.result, { found: true, live: true })
    assert.deepStrictEqual(written(step), { x: NOW + 800, h: [["b", NOW + 800]] })
    const last = decide.releaseSlot({ x: NOW - 1, h: [["a", NOW - 1]] }, NOW, "a", undefined)
    assert.deepStrictEqual(last.result, { found: true, live: false })
    assert.isNull(last.write)
  })

  it("release of one expiry only: a later lease of the same holder is left alone", () => {
    const stored: Stored = { x: NOW + 500, h: [["a", NOW + 500]] }
    const other = decide.releaseSlot(stored, NOW, "a", NOW + 400)
    assert.deepStrictEqual(other.result, { found: false, live: false })
    assert.isUndefined(other.write)
    assert.deepStrictEqual(decide.releaseSlot(stored, NOW, "a", NOW + 500).result, { found: true, live: true })
    assert.deepStrictEqual(decide.releaseSlot(undefined, NOW, "a", undefined).result, { found: false, live: false })
  })

  it("peek counts the live leases", () => {
    const peek = decide.slotPeek({ x: NOW + 500, h: [["a", NOW + 500], ["old", NOW - 1]] }, NOW, 2)
    assert.isTrue(peek.allowed)
    assert.strictEqual(peek.remaining, 1)
  })
})

describe("stored values", () => {
  it("reads what the store writes, and nothing else", () => {
    assert.deepStrictEqual(parseStored(`{"x":1,"o":"me","t":[1,2],"c":[1,1]}`), { x: 1, o: "me", t: [1, 2], c: [1, 1] })
    assert.isUndefined(parseStored("not json"))
    assert.isUndefined(parseStored(`{"o":"me"}`))
    // times and costs that do not pair up are dropped
    assert.deepStrictEqual(parseStored(`{"x":1,"t":[1,2],"c":[1]}`), { x: 1 })
    assert.deepStrictEqual(parseStored(`{"x":1,"h":[["a",2],["b"],[3,4]]}`), { x: 1, h: [["a", 2]] })
  })

  it("reads the earlier single-window layout as the counter of its length", () => {
    assert.deepStrictEqual(parseStored(`{"x":2000,"s":1000,"w":1000,"n":3,"l":5}`), { x: 2000, f: [[1000, 1000, 3, 5]] })
  })
})
