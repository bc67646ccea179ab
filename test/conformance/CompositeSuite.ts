/**
 * The composite conformance suite (issue 12): what every store owes for several limits as one
 * unit (`takeAll`), charges adjusted after the fact (`adjust`), the refs of window charges and
 * `peek` with a cost. Each store's test file runs it beside `runStoreSuite`:
 *
 * ```ts
 * runCompositeSuite("memory", MemoryStore.layer(), testTime)   // store reads Effect's Clock
 * runCompositeSuite("redis", RedisStore.layer(...), liveTime)  // store has its own clock
 * ```
 *
 * - `testTime` (`exact`): the store reads Effect's `Clock`; cases move time with `TestClock.adjust`
 *   and assert exact numbers.
 * - `liveTime`: the store decides with its own clock; cases run on real time (the block excludes
 *   the test services), sleep real milliseconds only where a window must pass, and assert only the
 *   promised behaviour with generous bounds. Rates are slow and windows long where no time has to
 *   pass, so that the milliseconds a round trip takes change no count.
 *
 * Every case uses fresh limiter ids, so cases can share one store.
 *
 * The semantics asserted (the reference is `src/core/algorithm.ts`, "Composite calls"):
 * - all-or-nothing: a refused call leaves every state as it was (`peek` before = `peek` after);
 * - `decisions[i]` on a refused call: the takes that refused (violations) with their own
 *   `retryAfterMs`; the others `allowed` with their state's `remaining` as it is (uncharged), no
 *   delay, no ref; takes are judged in order, so a state named twice is charged twice;
 * - only token buckets: the call is judged with the smallest `maxWaitMs`; it reserves on every
 *   bucket (each stores its own `next = tat0 + cost·T`, its decision has its own wait as `delayMs`)
 *   and `delayMs` is the largest wait; with a window take, admitted now (`delayMs` 0) or refused;
 * - admitted window takes carry a `ref` (single and composite): the fixed window's start (store ms,
 *   decimal string, a multiple of `windowMs`), the sliding entry's id (distinct per take);
 * - `adjust`: bucket debt and give-back clipped at a full bucket; fixed window only in the window
 *   that took (`count = max(0, count + delta)`), a passed window applies 0; sliding only the
 *   take's own entry while it is in the window;
 * - `peek` with a cost: `allowed` for that cost, `retryAfterMs` until it would be admitted;
 * - 200 concurrent composite callers on shared keys: on every limit the charge read back equals
 *   the sum admitted, never above capacity.
 */
import { assert, layer } from "#test/vitest"
import { Clock, Effect, type Layer } from "effect"
import { RateLimitStore } from "effect-rate-sync"
import { checkDecision, fresh, liveTime, type SuiteTime, testTime } from "./RateLimitStoreSuite.js"

export { liveTime, type SuiteTime, testTime }

type Store = RateLimitStore.RateLimitStoreService
type Decision = RateLimitStore.StoreDecision
type Composite = RateLimitStore.CompositeDecision
type Take = RateLimitStore.RateTake
type AdjustResult = RateLimitStore.AdjustResult
/** A token-bucket take. */
export type BucketTake = Extract<Take, { readonly algorithm: "token_bucket" }>
/** A window take. */
export type WindowTake = Extract<Take, { readonly algorithm: "sliding_window" | "fixed_window" }>

const EPS = 1e-6
// Live: real time between two store calls of one case stays far below this.
const MARGIN = 30
// Live: the most a case's steps take on a slow server, for bounds on values that time wears down.
const SLACK = 5_000

// ---------------------------------------------------------------------------------------------
// Takes
// ---------------------------------------------------------------------------------------------

interface TbParams {
  readonly rate: number
  readonly burst: number
  readonly cost?: number
  readonly maxWaitMs?: number
}
interface WindowParams {
  readonly limit: number
  readonly windowMs: number
  readonly cost?: number
}

/** A token-bucket take. */
export const tb = (limiter: string, key: string, p: TbParams): BucketTake => ({
  algorithm: "token_bucket",
  limiter,
  key,
  ratePerSecond: p.rate,
  burst: p.burst,
  cost: p.cost ?? 1,
  maxWaitMs: p.maxWaitMs ?? 0
})
/** A sliding-window take. */
export const sw = (limiter: string, key: string, p: WindowParams): WindowTake => ({
  algorithm: "sliding_window",
  limiter,
  key,
  limit: p.limit,
  windowMs: p.windowMs,
  cost: p.cost ?? 1
})
/** A fixed-window take. */
export const fw = (limiter: string, key: string, p: WindowParams): WindowTake => ({
  algorithm: "fixed_window",
  limiter,
  key,
  limit: p.limit,
  windowMs: p.windowMs,
  cost: p.cost ?? 1
})

const capacityOf = (t: Take): number => (t.algorithm === "token_bucket" ? t.burst : t.limit)

// ---------------------------------------------------------------------------------------------
// Checked store calls
// ---------------------------------------------------------------------------------------------

const withStore = <A, E>(f: (store: Store) => Effect.Effect<A, E>) => Effect.flatMap(RateLimitStore.RateLimitStore, f)

/** A decimal string naming a window start: a whole multiple of `windowMs`. */
const assertFixedRef = (ref: string | undefined, windowMs: number, label: string): void => {
  assert.isString(ref, `${label}: an admitted fixed-window take carries a ref`)
  const start = Number(ref)
  assert.isTrue(Number.isFinite(start) && String(ref).trim() === ref && ref !== "", `${label}: ref ${ref} is a number`)
  assert.isTrue(Math.abs(start / windowMs - Math.round(start / windowMs)) < 1e-9, `${label}: ref ${ref} is a window start`)
}

/** The invariants of every `CompositeDecision`. */
export const checkComposite = (d: Composite, takes: ReadonlyArray<Take>, label: string): Composite => {
  assert.strictEqual(d.decisions.length, takes.length, `${label}: one decision per take`)
  d.decisions.forEach((x, i) => checkDecision(x, `${label} #${i}`))
  assert.strictEqual(d.allowed, d.decisions.every((x) => x.allowed), `${label}: allowed iff every take is`)
  assert.isTrue(d.delayMs >= 0 && Number.isFinite(d.delayMs), `${label}: delayMs ${d.delayMs}`)
  const windows = takes.some((t) => t.algorithm !== "token_bucket")
  takes.forEach((t, i) => {
    const x = d.decisions[i]
    if (x === undefined) return
    assert.strictEqual(x.limit, capacityOf(t), `${label} #${i}: limit`)
    if (!d.allowed) {
      assert.strictEqual(x.delayMs, 0, `${label} #${i}: nothing reserved on a refused call`)
      assert.isUndefined(x.ref, `${label} #${i}: no ref on a refused call`)
    } else if (t.algorithm === "fixed_window") {
      assertFixedRef(x.ref, t.windowMs, `${label} #${i}`)
    } else if (t.algorithm === "sliding_window") {
      assert.isTrue(typeof x.ref === "string" && x.ref.length > 0, `${label} #${i}: an admitted sliding take carries a ref`)
    }
  })
  if (!d.allowed) {
    assert.strictEqual(d.delayMs, 0, `${label}: a refused call has no delay`)
    assert.isTrue(d.decisions.some((x) => !x.allowed), `${label}: a refused call names a violation`)
  } else if (windows) {
    assert.strictEqual(d.delayMs, 0, `${label}: a call with a window take is admitted now`)
    d.decisions.forEach((x, i) => assert.strictEqual(x.delayMs, 0, `${label} #${i}: no delay with a window take`))
  } else {
    const largest = d.decisions.reduce((m, x) => Math.max(m, x.delayMs), 0)
    assert.isTrue(Math.abs(d.delayMs - largest) <= EPS, `${label}: delayMs ${d.delayMs} is the largest wait ${largest}`)
  }
  return d
}

/** `takeAll`, checked. */
export const takeAll = (takes: ReadonlyArray<Take>, label = "takeAll") =>
  withStore((s) =>
    s.takeAll === undefined ? Effect.die(new Error(`the ${s.engine} store has no takeAll`)) : s.takeAll(takes)
  ).pipe(Effect.map((d) => checkComposite(d, takes, label)))

/** The invariants of every `AdjustResult`. */
export const checkAdjust = (r: AdjustResult, limit: number, label: string): AdjustResult => {
  assert.isTrue(Number.isFinite(r.applied), `${label}: applied ${r.applied}`)
  assert.isTrue(Number.isInteger(r.remaining), `${label}: remaining ${r.remaining} is not a whole number`)
  assert.isTrue(r.remaining >= 0 && r.remaining <= limit, `${label}: remaining ${r.remaining} outside [0, ${limit}]`)
  assert.isTrue(r.resetAfterMs >= 0 && Number.isFinite(r.resetAfterMs), `${label}: resetAfterMs ${r.resetAfterMs}`)
  return r
}

/** `adjust`, checked. */
export const adjust = (take: Take, delta: number, ref?: string) =>
  withStore((s) =>
    s.adjust === undefined
      ? Effect.die(new Error(`the ${s.engine} store has no adjust`))
      : s.adjust(ref === undefined ? { take, delta } : { take, delta, ref })
  ).pipe(Effect.map((r) => checkAdjust(r, capacityOf(take), `adjust ${take.algorithm} ${take.limiter}/${take.key} ${delta}`)))

/** The state a take addresses, read by `peek` (with `cost`, default 1), checked. */
export const peekOf = (t: Take, cost?: number) =>
  withStore((s) =>
    s.peek(
      t.algorithm === "token_bucket"
        ? { algorithm: t.algorithm, limiter: t.limiter, key: t.key, ratePerSecond: t.ratePerSecond, burst: t.burst, cost }
        : { algorithm: t.algorithm, limiter: t.limiter, key: t.key, limit: t.limit, windowMs: t.windowMs, cost }
    )
  ).pipe(Effect.map((d) => checkDecision(d, `peek ${t.algorithm} ${t.limiter}/${t.key}${cost === undefined ? "" : ` cost ${cost}`}`)))

/** Every take's state. */
const snapshot = (takes: ReadonlyArray<Take>) => Effect.forEach(takes, (t) => peekOf(t))

/** Single takes, checked. */
const single = (t: Take) =>
  withStore((s) =>
    t.algorithm === "token_bucket"
      ? s.tokenBucket(t)
      : t.algorithm === "sliding_window"
      ? s.slidingWindow(t)
      : s.fixedWindow(t)
  ).pipe(Effect.map((d) => checkDecision(d, `${t.algorithm} ${t.limiter}/${t.key}`)))

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/** Exact (test clock: equal to within float noise) or bounded (live: in `(min, max]`). */
const assertMs = (time: SuiteTime, actual: number, exact: number, label: string, min = exact - SLACK, max = exact): void => {
  if (time.exact || !Number.isFinite(exact)) {
    assert.isTrue(actual === exact || Math.abs(actual - exact) <= EPS, `${label}: expected ${exact} ms, got ${actual}`)
  } else {
    assert.isTrue(actual > min - EPS && actual <= max + EPS, `${label}: expected (${min}, ${max}] ms, got ${actual}`)
  }
}

/** The states are as they were: exactly (test clock), or up to the time that has passed (live). */
const assertUnchanged = (time: SuiteTime, before: ReadonlyArray<Decision>, after: ReadonlyArray<Decision>, label: string) => {
  if (time.exact) {
    assert.deepStrictEqual(after, before, `${label}: every state is unchanged`)
    return
  }
  before.forEach((b, i) => {
    const a = after[i]
    assert.isDefined(a)
    if (a === undefined) return
    assert.strictEqual(a.remaining, b.remaining, `${label} #${i}: remaining unchanged`)
    assert.strictEqual(a.allowed, b.allowed, `${label} #${i}: allowed unchanged`)
    for (const field of ["resetAfterMs", "retryAfterMs"] as const) {
      if (!Number.isFinite(b[field])) assert.strictEqual(a[field], b[field], `${label} #${i}: ${field}`)
      else assert.isTrue(a[field] <= b[field] + EPS && a[field] >= b[field] - SLACK, `${label} #${i}: ${field} ${b[field]} -> ${a[field]}`)
    }
  })
}

/**
 * Makes sure the current fixed window of length `windowMs` has at least `needMs` left: under the
 * test clock, moves to the start of the next window; live, reads the store's window end (a peek)
 * and sleeps past it when it is too close.
 */
const fixedRoom = (time: SuiteTime, windowMs: number, needMs: number) =>
  Effect.gen(function*() {
    if (time.exact) {
      const now = yield* Clock.currentTimeMillis
      const into = now % windowMs
      if (into !== 0) yield* time.advance(windowMs - into)
      return
    }
    const probe = yield* peekOf(fw(fresh("probe"), "", { limit: 1, windowMs }))
    if (probe.resetAfterMs < needMs) yield* time.advance(probe.resetAfterMs + MARGIN)
  })

// Slow limits (nothing refills while a case runs, live included).
const HOUR = 3_600_000
const slowBucket = { rate: 1 / 60, burst: 3 } // T = 60 s
const T_SLOW = 60_000

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/** One composite conformance case. */
export interface CompositeCase {
  readonly name: string
  readonly run: (time: SuiteTime) => Effect.Effect<void, unknown, RateLimitStore.RateLimitStore>
}

/** Every composite conformance case. */
export const compositeCases: ReadonlyArray<CompositeCase> = [
  {
    name: "takeAll and adjust are provided",
    run: () =>
      Effect.gen(function*() {
        const store = yield* RateLimitStore.RateLimitStore
        assert.isFunction(store.takeAll, `${store.engine}: takeAll`)
        assert.isFunction(store.adjust, `${store.engine}: adjust`)
        const empty = yield* takeAll([], "empty call")
        assert.deepStrictEqual([empty.allowed, empty.decisions.length, empty.delayMs], [true, 0, 0])
      })
  },

  {
    name: "an admitted call charges every limit, decisions in order, refs on its window takes",
    run: (time) =>
      Effect.gen(function*() {
        yield* fixedRoom(time, HOUR, 15_000)
        const b = tb(fresh("all-tb"), "k", { ...slowBucket, cost: 2 })
        const s = sw(fresh("all-sw"), "k", { limit: 6, windowMs: HOUR, cost: 3 })
        const f = fw(fresh("all-fw"), "k", { limit: 4, windowMs: HOUR, cost: 1 })
        const d = yield* takeAll([b, s, f])
        assert.isTrue(d.allowed)
        assert.strictEqual(d.delayMs, 0)
        assert.deepStrictEqual(d.decisions.map((x) => [x.limit, x.remaining]), [[3, 1], [6, 3], [4, 3]])
        assert.isUndefined(d.decisions[0]?.ref, "a token bucket needs no ref")
        if (time.exact) {
          const now = yield* Clock.currentTimeMillis
          assert.strictEqual(d.decisions[2]?.ref, String(Math.floor(now / HOUR) * HOUR), "fixed ref: the window start")
        }
        const after = yield* snapshot([b, s, f])
        assert.deepStrictEqual(after.map((x) => x.remaining), [1, 3, 3], "every limit is charged")
        // The same again: the bucket has 1 left for a cost of 2, so nothing is charged.
        const again = yield* takeAll([b, s, f])
        assert.isFalse(again.allowed)
        assert.deepStrictEqual(again.decisions.map((x) => x.allowed), [false, true, true])
        assertUnchanged(time, after, yield* snapshot([b, s, f]), "refused")
      })
  },

  {
    name: "all-or-nothing: a refused call leaves every state unchanged (each algorithm mixed)",
    run: (time) =>
      Effect.gen(function*() {
        yield* fixedRoom(time, HOUR, 15_000)
        // Each mix, made fresh for each side that refuses.
        const mixes: ReadonlyArray<readonly [string, () => readonly [Take, Take]]> = [
          ["bucket+sliding", () => [tb(fresh("aon-tb"), "k", slowBucket), sw(fresh("aon-sw"), "k", { limit: 2, windowMs: HOUR })]],
          ["bucket+fixed", () => [tb(fresh("aon-tb"), "k", slowBucket), fw(fresh("aon-fw"), "k", { limit: 2, windowMs: HOUR })]],
          ["sliding+fixed", () => [
            sw(fresh("aon-sw"), "k", { limit: 2, windowMs: HOUR }),
            fw(fresh("aon-fw"), "k", { limit: 2, windowMs: HOUR })
          ]],
          ["bucket+bucket (per-user and global)", () => [
            tb(fresh("aon-user"), "alice", slowBucket),
            tb(fresh("aon-global"), "", { ...slowBucket, burst: 2 })
          ]]
        ]
        for (const [mix, make] of mixes) {
          for (const index of [0, 1] as const) {
            const label = `${mix}, #${index} refuses`
            const takes = make()
            // One unit on each, then the refusing side drained alone.
            assert.isTrue((yield* takeAll(takes, label)).allowed, `${label}: first call`)
            const full = takes[index]
            while ((yield* single(full)).allowed) {
              // drain
            }
            const before = yield* snapshot(takes)
            const d = yield* takeAll(takes, label)
            assert.deepStrictEqual(d.decisions.map((x) => x.allowed), index === 0 ? [false, true] : [true, false], label)
            assertUnchanged(time, before, yield* snapshot(takes), label)
            const other = 1 - index
            assert.strictEqual(d.decisions[other]?.remaining, before[other]?.remaining, `${label}: the other's remaining, uncharged`)
            const kept = takes[other]
            if (kept !== undefined) {
              assert.strictEqual(d.decisions[other]?.remaining, capacityOf(kept) - 1, `${label}: the other lost only its first unit`)
            }
          }
        }
      })
  },

  {
    name: "per-user and global limits in one call: a user's refusal charges nothing globally",
    run: (time) =>
      Effect.gen(function*() {
        const user = fresh("user")
        const global = fresh("global")
        const perUser = { ...slowBucket, burst: 2 }
        const total = { ...slowBucket, burst: 3 }
        const call = (who: string) => [tb(user, who, perUser), tb(global, "", total)] as const
        assert.isTrue((yield* takeAll(call("alice"))).allowed)
        assert.isTrue((yield* takeAll(call("alice"))).allowed)
        const before = yield* snapshot([...call("alice"), tb(user, "bob", perUser)])
        const refused = yield* takeAll(call("alice"))
        assert.deepStrictEqual(refused.decisions.map((x) => x.allowed), [false, true], "alice's own limit refuses")
        assert.strictEqual(refused.decisions[1]?.remaining, 1, "the global limit, uncharged")
        assertMs(time, refused.decisions[0]?.retryAfterMs ?? 0, T_SLOW, "alice retryAfter")
        assertUnchanged(time, before, yield* snapshot([...call("alice"), tb(user, "bob", perUser)]), "alice refused")
        const bob = yield* takeAll(call("bob"))
        assert.isTrue(bob.allowed, "bob is admitted: the global limit kept its unit")
        assert.deepStrictEqual(bob.decisions.map((x) => x.remaining), [1, 0])
        const bob2 = yield* takeAll(call("bob"))
        assert.deepStrictEqual(bob2.decisions.map((x) => x.allowed), [true, false], "now the global limit refuses")
        assert.strictEqual(bob2.decisions[0]?.remaining, 1, "bob's own limit, uncharged")
        assert.strictEqual((yield* peekOf(tb(user, "bob", perUser))).remaining, 1)
      })
  },

  {
    name: "violations: every take that refuses is listed with its own retryAfter",
    run: (time) =>
      Effect.gen(function*() {
        yield* fixedRoom(time, HOUR, 15_000)
        const b = tb(fresh("v-tb"), "k", { rate: 1 / 60, burst: 1 })
        const s = sw(fresh("v-sw"), "k", { limit: 1, windowMs: 30_000 })
        const f = fw(fresh("v-fw"), "k", { limit: 1, windowMs: HOUR })
        const ok = sw(fresh("v-ok"), "k", { limit: 5, windowMs: HOUR })
        assert.isTrue((yield* takeAll([b, s, f])).allowed)
        const huge = tb(fresh("v-huge"), "k", { rate: 1, burst: 2, cost: 3 })
        const d = yield* takeAll([b, ok, s, f, huge])
        assert.deepStrictEqual(d.decisions.map((x) => x.allowed), [false, true, false, false, false])
        assertMs(time, d.decisions[0]?.retryAfterMs ?? 0, 60_000, "bucket: until its next token")
        assert.strictEqual(d.decisions[1]?.remaining, 5, "the take with room: its remaining, uncharged")
        assertMs(time, d.decisions[2]?.retryAfterMs ?? 0, 30_000, "sliding: until its entry leaves")
        if (time.exact) assertMs(time, d.decisions[3]?.retryAfterMs ?? 0, HOUR, "fixed: until the window ends")
        else assert.isTrue((d.decisions[3]?.retryAfterMs ?? 0) > 0 && (d.decisions[3]?.retryAfterMs ?? 0) <= HOUR)
        assert.strictEqual(d.decisions[4]?.retryAfterMs, Infinity, "a cost above the capacity never fits")
        assert.isTrue((yield* peekOf(ok)).remaining === 5, "nothing charged on the take with room")
      })
  },

  {
    name: "takes are judged in order: a limit named twice is charged twice",
    run: (time) =>
      Effect.gen(function*() {
        const b = tb(fresh("twice-tb"), "k", slowBucket)
        assert.isTrue((yield* single(b)).allowed)
        assert.isTrue((yield* single(b)).allowed)
        const before = yield* snapshot([b])
        const d = yield* takeAll([b, b])
        assert.deepStrictEqual(d.decisions.map((x) => x.allowed), [true, false], "one unit left: the second refuses")
        assertUnchanged(time, before, yield* snapshot([b]), "refused")
        const s = sw(fresh("twice-sw"), "k", { limit: 3, windowMs: HOUR })
        assert.isTrue((yield* single(s)).allowed)
        const both = yield* takeAll([s, s])
        assert.isTrue(both.allowed)
        assert.deepStrictEqual(both.decisions.map((x) => x.remaining), [1, 0])
        assert.notStrictEqual(both.decisions[0]?.ref, both.decisions[1]?.ref, "each take its own entry")
        assert.strictEqual((yield* peekOf(s)).remaining, 0)
        assert.isFalse((yield* takeAll([s])).allowed)
      })
  },

  {
    name: "token buckets only: the call reserves on every bucket and waits for the slowest",
    run: (time) =>
      Effect.gen(function*() {
        const fast = { rate: 2, burst: 1 } // T = 500 ms
        const slow = { rate: 1, burst: 1 } // T = 1000 ms
        const a = fresh("res-a")
        const b = fresh("res-b")
        assert.isTrue((yield* takeAll([tb(a, "", fast), tb(b, "", slow)])).allowed)
        // Waits now: a 500 ms, b 1000 ms.
        const refusedOne = yield* takeAll([tb(a, "", { ...fast, maxWaitMs: 2000 }), tb(b, "", { ...slow, maxWaitMs: 800 })])
        assert.deepStrictEqual(refusedOne.decisions.map((x) => x.allowed), [true, false], "judged with the smallest maxWait")
        assertMs(time, refusedOne.decisions[1]?.retryAfterMs ?? 0, 1000, "b's wait", 1000 - 3 * MARGIN, 1000)
        const refusedBoth = yield* takeAll([tb(a, "", { ...fast, maxWaitMs: 400 }), tb(b, "", { ...slow, maxWaitMs: 2000 })])
        assert.deepStrictEqual(refusedBoth.decisions.map((x) => x.allowed), [false, false])
        assertMs(time, refusedBoth.decisions[0]?.retryAfterMs ?? 0, 500, "a's wait", 500 - 3 * MARGIN, 500)
        assertMs(time, refusedBoth.decisions[1]?.retryAfterMs ?? 0, 1000, "b's wait", 1000 - 3 * MARGIN, 1000)
        // Nothing was reserved by the refusals.
        assertMs(time, (yield* peekOf(tb(a, "", fast))).retryAfterMs, 500, "a unchanged", 500 - 4 * MARGIN, 500)
        const d = yield* takeAll([tb(a, "", { ...fast, maxWaitMs: 2000 }), tb(b, "", { ...slow, maxWaitMs: 2000 })])
        assert.isTrue(d.allowed, "the largest wait is within the smallest maxWait")
        assertMs(time, d.delayMs, 1000, "delayMs: the largest wait", 1000 - 5 * MARGIN, 1000)
        assertMs(time, d.decisions[0]?.delayMs ?? 0, 500, "a's own wait", 500 - 5 * MARGIN, 500)
        assertMs(time, d.decisions[1]?.delayMs ?? 0, 1000, "b's own wait", 1000 - 5 * MARGIN, 1000)
        assert.deepStrictEqual(d.decisions.map((x) => x.remaining), [0, 0])
        // Every bucket stored its own next = tat0 + cost·T.
        assertMs(time, (yield* peekOf(tb(a, "", fast))).retryAfterMs, 1000, "a charged", 1000 - 6 * MARGIN, 1000)
        assertMs(time, (yield* peekOf(tb(b, "", slow))).retryAfterMs, 2000, "b charged", 2000 - 6 * MARGIN, 2000)
        // A bucket with room reserves nothing of its own but is charged all the same.
        const c = fresh("res-c")
        const roomy = { rate: 2, burst: 2 }
        const e = yield* takeAll([tb(c, "", { ...roomy, maxWaitMs: 5000 }), tb(b, "", { ...slow, maxWaitMs: 5000 })])
        assert.isTrue(e.allowed)
        assert.strictEqual(e.decisions[0]?.delayMs, 0)
        assert.strictEqual(e.decisions[0]?.remaining, 1)
        assertMs(time, e.delayMs, 2000, "behind b's reservation", 2000 - 7 * MARGIN, 2000)
        assert.strictEqual((yield* peekOf(tb(c, "", roomy))).remaining, 1, "c is charged")
      })
  },

  {
    name: "a call with a window take is admitted now or refused: no reservation",
    run: (time) =>
      Effect.gen(function*() {
        const b = tb(fresh("nores-tb"), "", { rate: 2, burst: 1, maxWaitMs: 5000 })
        const s = sw(fresh("nores-sw"), "", { limit: 5, windowMs: HOUR })
        assert.isTrue((yield* takeAll([b, s])).allowed)
        const before = yield* snapshot([b, s])
        const d = yield* takeAll([b, s])
        assert.isFalse(d.allowed, "the bucket would have to wait")
        assert.deepStrictEqual(d.decisions.map((x) => x.allowed), [false, true])
        assertMs(time, d.decisions[0]?.retryAfterMs ?? 0, 500, "bucket wait", 500 - 3 * MARGIN, 500)
        assertUnchanged(time, before, yield* snapshot([b, s]), "refused")
        assert.strictEqual((yield* takeAll([b])).delayMs > 0, true, "alone, the bucket reserves")
      })
  },

  {
    name: "refs: admitted window takes name their charge (single and composite)",
    run: (time) =>
      Effect.gen(function*() {
        yield* fixedRoom(time, HOUR, 15_000)
        const s = sw(fresh("ref-sw"), "k", { limit: 3, windowMs: HOUR })
        const f = fw(fresh("ref-fw"), "k", { limit: 3, windowMs: HOUR })
        const s1 = yield* single(s)
        const s2 = yield* single(s)
        assert.isTrue(typeof s1.ref === "string" && typeof s2.ref === "string", "single sliding takes carry refs")
        assert.notStrictEqual(s1.ref, s2.ref, "one entry per take")
        const f1 = yield* single(f)
        const f2 = yield* single(f)
        assertFixedRef(f1.ref, HOUR, "single fixed")
        assert.strictEqual(f2.ref, f1.ref, "the same window, the same ref")
        if (time.exact) {
          const now = yield* Clock.currentTimeMillis
          assert.strictEqual(f1.ref, String(Math.floor(now / HOUR) * HOUR))
        }
        const c = yield* takeAll([s, f])
        assert.isTrue(c.allowed)
        assert.notInclude([s1.ref, s2.ref], c.decisions[0]?.ref, "a new entry")
        assert.strictEqual(c.decisions[1]?.ref, f1.ref)
        const refused = yield* single(s)
        assert.isFalse(refused.allowed)
        assert.isUndefined(refused.ref, "a refusal charged nothing")
        assert.isUndefined((yield* single(f)).ref)
      })
  },

  {
    name: "adjust, token bucket: debt makes later takes wait; a give-back stops at a full bucket",
    run: (time) =>
      Effect.gen(function*() {
        const b = tb(fresh("adj-tb"), "k", slowBucket) // burst 3, T = 60 s
        assert.isTrue((yield* single(b)).allowed)
        const debt = yield* adjust(b, 5)
        assert.strictEqual(debt.applied, 5)
        assert.strictEqual(debt.remaining, 0)
        assertMs(time, debt.resetAfterMs, 6 * T_SLOW, "6 tokens owed")
        const refused = yield* single(b)
        assert.isFalse(refused.allowed, "in debt past the burst")
        assertMs(time, refused.retryAfterMs, 4 * T_SLOW, "until the debt is paid back to one free token")
        const reserved = yield* single({ ...b, maxWaitMs: 10 * T_SLOW })
        assert.isTrue(reserved.allowed)
        assertMs(time, reserved.delayMs, 4 * T_SLOW, "a take waits behind the debt")
        const back = yield* adjust(b, -3)
        assert.strictEqual(back.applied, -3)
        assertMs(time, back.resetAfterMs, 4 * T_SLOW, "7 - 3 tokens owed")
        const clipped = yield* adjust(b, -10)
        if (time.exact) assert.strictEqual(clipped.applied, -4, "clipped at a full bucket")
        else assert.isTrue(clipped.applied <= -3.9 && clipped.applied >= -4 - EPS, `clipped: ${clipped.applied}`)
        assert.deepStrictEqual([clipped.remaining, clipped.resetAfterMs], [3, 0])
        assert.strictEqual((yield* adjust(b, -1)).applied, 0, "nothing left to give back")
        assert.strictEqual((yield* peekOf(b)).remaining, 3)
        // Debt on a key with no state yet.
        const other = tb(fresh("adj-tb-new"), "k", slowBucket)
        assert.strictEqual((yield* adjust(other, 4)).applied, 4)
        assertMs(time, (yield* peekOf(other)).retryAfterMs, 2 * T_SLOW, "4 owed: 2 periods until a token")
      })
  },

  {
    name: "adjust, fixed window: only in the window that took, clipped at 0; a passed window applies 0",
    run: (time) =>
      Effect.gen(function*() {
        const W = time.exact ? 60_000 : 1_000
        yield* fixedRoom(time, W, 700)
        const f = fw(fresh("adj-fw"), "k", { limit: 5, windowMs: W, cost: 2 })
        const first = yield* single(f)
        const ref = first.ref
        assertFixedRef(ref, W, "fixed take")
        assert.isTrue((yield* single({ ...f, cost: 1 })).allowed)
        const less = yield* adjust(f, -1, ref)
        assert.deepStrictEqual([less.applied, less.remaining], [-1, 3])
        const clipped = yield* adjust(f, -10, ref)
        assert.deepStrictEqual([clipped.applied, clipped.remaining], [-2, 5], "count = max(0, count + delta)")
        const debt = yield* adjust(f, 7, ref)
        assert.deepStrictEqual([debt.applied, debt.remaining], [7, 0], "past the limit: debt until the window ends")
        const refused = yield* single({ ...f, cost: 1 })
        assert.isFalse(refused.allowed)
        const previous = String(Number(ref) - W)
        assert.strictEqual((yield* adjust(f, 1, previous)).applied, 0, "another window's ref applies nothing")
        assert.strictEqual((yield* adjust(f, -1)).applied, 0, "no ref: nothing is known to have been taken here")
        yield* time.advance(time.exact ? W : refused.retryAfterMs + MARGIN)
        const late = yield* adjust(f, -3, ref)
        assert.strictEqual(late.applied, 0, "the window has passed")
        assert.strictEqual(late.remaining, 5, "the current window is untouched")
        assert.strictEqual((yield* adjust(f, 3, ref)).applied, 0)
        assert.strictEqual((yield* peekOf(f)).remaining, 5)
      })
  },

  {
    name: "adjust, sliding window: only the take's own entry, while it is in the window",
    run: (time) =>
      Effect.gen(function*() {
        const W = time.exact ? 60_000 : 1_000
        const s = sw(fresh("adj-sw"), "k", { limit: 5, windowMs: W })
        const a = yield* single({ ...s, cost: 3 })
        const b = yield* single({ ...s, cost: 2 })
        assert.isTrue(a.allowed && b.allowed)
        const back = yield* adjust(s, -5, a.ref)
        assert.deepStrictEqual([back.applied, back.remaining], [-3, 3], "gives back what a took, not b's")
        const more = yield* adjust(s, 1, b.ref)
        assert.deepStrictEqual([more.applied, more.remaining], [1, 2])
        const again = yield* adjust(s, 4, a.ref)
        assert.deepStrictEqual([again.applied, again.remaining], [4, 0], "charged again on its own entry: debt")
        assert.isFalse((yield* single(s)).allowed)
        const undo = yield* adjust(s, -4, a.ref)
        assert.deepStrictEqual([undo.applied, undo.remaining], [-4, 2])
        assert.strictEqual((yield* adjust(s, -1, "no-such-entry")).applied, 0, "a ref naming no entry")
        assert.strictEqual((yield* adjust(s, -1)).applied, 0, "no ref")
        // c enters half a window later; once a and b have left, only c can change.
        yield* time.advance(W / 2)
        const c = yield* single({ ...s, cost: 2 })
        assert.isTrue(c.allowed)
        yield* time.advance(time.exact ? W / 2 : W / 2 + 3 * MARGIN)
        assert.strictEqual((yield* adjust(s, -1, b.ref)).applied, 0, "b has left the window")
        assert.strictEqual((yield* adjust(s, 1, a.ref)).applied, 0, "a has left the window")
        const own = yield* adjust(s, -1, c.ref)
        assert.deepStrictEqual([own.applied, own.remaining], [-1, 4])
        assert.strictEqual((yield* peekOf(s)).remaining, 4)
      })
  },

  {
    name: "adjust a composite charge with the refs of its decisions",
    run: (time) =>
      Effect.gen(function*() {
        yield* fixedRoom(time, HOUR, 15_000)
        const b = tb(fresh("adjc-tb"), "k", { ...slowBucket, burst: 5 })
        const s = sw(fresh("adjc-sw"), "k", { limit: 5, windowMs: HOUR, cost: 3 })
        const f = fw(fresh("adjc-fw"), "k", { limit: 5, windowMs: HOUR, cost: 3 })
        const d = yield* takeAll([b, s, f])
        assert.isTrue(d.allowed)
        // The real cost is known afterwards: 3 tokens more on the bucket, 1 back on each window.
        assert.strictEqual((yield* adjust(b, 3)).applied, 3)
        assert.strictEqual((yield* adjust(s, -1, d.decisions[1]?.ref)).applied, -1)
        assert.strictEqual((yield* adjust(f, -1, d.decisions[2]?.ref)).applied, -1)
        const after = yield* snapshot([b, s, f])
        assert.deepStrictEqual(after.map((x) => x.remaining), [1, 3, 3])
        assertMs(time, after[0]?.resetAfterMs ?? 0, 4 * T_SLOW, "4 tokens owed")
      })
  },

  {
    name: "peek with a cost: whether that cost fits now, and when it would",
    run: (time) =>
      Effect.gen(function*() {
        yield* fixedRoom(time, HOUR, 15_000)
        const b = tb(fresh("pk-tb"), "k", { ...slowBucket, burst: 5, cost: 2 })
        assert.isTrue((yield* single(b)).allowed)
        const fits = yield* peekOf(b, 3)
        assert.deepStrictEqual([fits.allowed, fits.remaining, fits.retryAfterMs], [true, 3, 0])
        const wait = yield* peekOf(b, 4)
        assert.isFalse(wait.allowed)
        assertMs(time, wait.retryAfterMs, T_SLOW, "one token short")
        assert.strictEqual((yield* peekOf(b, 6)).retryAfterMs, Infinity, "above the burst")
        assert.isTrue((yield* peekOf(b)).allowed, "default cost 1")
        assert.strictEqual((yield* peekOf(b, 5)).remaining, 3, "a peek charges nothing")

        const f = fw(fresh("pk-fw"), "k", { limit: 5, windowMs: HOUR, cost: 3 })
        assert.isTrue((yield* single(f)).allowed)
        assert.isTrue((yield* peekOf(f, 2)).allowed)
        const over = yield* peekOf(f, 3)
        assert.isFalse(over.allowed)
        assert.isTrue(over.retryAfterMs > 0 && over.retryAfterMs <= HOUR)
        assert.strictEqual(over.retryAfterMs, over.resetAfterMs, "until the window ends")
        if (time.exact) assert.strictEqual(over.retryAfterMs, HOUR)
        assert.strictEqual((yield* peekOf(f, 6)).retryAfterMs, Infinity)
        assert.strictEqual((yield* peekOf(f)).remaining, 2)

        const s = sw(fresh("pk-sw"), "k", { limit: 5, windowMs: 30_000 })
        assert.isTrue((yield* single({ ...s, cost: 2 })).allowed)
        yield* time.advance(time.exact ? 10_000 : MARGIN)
        assert.isTrue((yield* single({ ...s, cost: 1 })).allowed)
        assert.isTrue((yield* peekOf(s, 2)).allowed)
        const three = yield* peekOf(s, 3)
        assert.isFalse(three.allowed)
        assertMs(time, three.retryAfterMs, 20_000, "until the first entry leaves", 20_000 - SLACK, 30_000)
        const five = yield* peekOf(s, 5)
        assertMs(time, five.retryAfterMs, 30_000, "until both entries leave", 20_000 - SLACK, 30_000)
        assert.isTrue(five.retryAfterMs > three.retryAfterMs, "a larger cost waits longer")
        assert.strictEqual((yield* peekOf(s, 6)).retryAfterMs, Infinity)
        assert.strictEqual((yield* peekOf(s)).remaining, 2)

      })
  },

  {
    name: "200 concurrent composite callers: on every limit the charge equals the sum admitted",
    run: (time) =>
      Effect.gen(function*() {
        yield* fixedRoom(time, HOUR, 15_000)
        const bucket = { rate: 1 / 3600, burst: 60 } // nothing refills during the case
        const sliding = { limit: 80, windowMs: HOUR }
        const fixed = { limit: 12, windowMs: HOUR }
        const users = ["u0", "u1", "u2", "u3", "u4"]
        const g = fresh("cc-global")
        const sl = fresh("cc-sliding")
        const u = fresh("cc-user")
        const takesOf = (i: number): ReadonlyArray<Take> => {
          const own = fw(u, users[i % users.length] ?? "u0", { ...fixed, cost: 1 + (i % 2) })
          const global = tb(g, "", { ...bucket, cost: 1 + (i % 3) })
          return i % 4 === 0 ? [own, global] : [global, sw(sl, "", { ...sliding, cost: 1 + (i % 2) }), own]
        }
        const calls = Array.from({ length: 200 }, (_, i) => i)
        const results = yield* Effect.forEach(calls, (i) => takeAll(takesOf(i), `caller ${i}`), { concurrency: "unbounded" })
        const admitted = new Map<string, number>()
        const add = (t: Take) => {
          const id = `${t.algorithm}/${t.limiter}/${t.key}`
          admitted.set(id, (admitted.get(id) ?? 0) + t.cost)
        }
        let allowedCalls = 0
        results.forEach((d, i) => {
          if (!d.allowed) return
          allowedCalls++
          takesOf(i).forEach(add)
        })
        assert.isTrue(allowedCalls > 0 && allowedCalls < 200, `some admitted, some refused: ${allowedCalls}`)
        const limits: ReadonlyArray<Take> = [
          tb(g, "", bucket),
          sw(sl, "", sliding),
          ...users.map((user) => fw(u, user, fixed))
        ]
        for (const t of limits) {
          const id = `${t.algorithm}/${t.limiter}/${t.key}`
          const capacity = capacityOf(t)
          const charged = capacity - (yield* peekOf(t)).remaining
          const sum = admitted.get(id) ?? 0
          assert.strictEqual(charged, sum, `${id}: charged ${charged}, admitted ${sum}`)
          assert.isTrue(sum <= capacity, `${id}: ${sum} admitted over a capacity of ${capacity}`)
        }
      })
  }
]

/**
 * Runs every composite case against `store`, in one `describe` block named `name` that builds the
 * layer once: `testTime` (TestClock) or `liveTime` (real time, no test services).
 */
export const runCompositeSuite = (
  name: string,
  store: Layer.Layer<RateLimitStore.RateLimitStore, unknown>,
  time: SuiteTime
): void => {
  type Register = (name: string, self: () => Effect.Effect<void, unknown, RateLimitStore.RateLimitStore>) => void
  const register = (test: Register) => {
    for (const c of compositeCases) test(c.name, () => c.run(time))
  }
  if (time.exact) {
    layer(store, { timeout: "60 seconds" })(name, (it) => register((n, self) => it.effect(n, self)))
  } else {
    // No test services: the block runs on the live clock, like `it.live`.
    layer(store, { timeout: "60 seconds", excludeTestServices: true })(name, (it) => register((n, self) => it.effect(n, self)))
  }
}
