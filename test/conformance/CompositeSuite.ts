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
 * - only token buckets: the call is judged with the smallest `maxWaitMs`; `delayMs` is the
 *   largest wait `D`, and the caller proceeds at `now + D` on every bucket: each bucket stores
 *   `next = max(tat, now + D) + cost·T` and its decision has `delayMs = D` and its `remaining`
 *   from that `next`, so later takes on a faster bucket keep its rate (no two admitted takes on a
 *   1/s, burst-1 bucket less than 1 s apart, at the instants their callers proceed); a bucket
 *   named twice is charged the sum at that one instant (a sum above its burst never fits:
 *   `retryAfterMs` Infinity); a take of cost 0 books nothing; with a window take, admitted now
 *   (`delayMs` 0) or refused;
 * - admitted window takes carry a `ref` (single and composite): the fixed window's start (store ms,
 *   decimal string, a multiple of `windowMs`), the sliding entry's id (distinct per take);
 * - `adjust`: bucket debt and give-back clipped at a full bucket, a give-back applying nothing
 *   while a reservation (or debt) is outstanding (`tat − burst·T > now`); fixed window only in the window
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
    // Every bucket is booked at the instant the caller proceeds: each decision's delay is the call's.
    d.decisions.forEach((x, i) =>
      assert.isTrue(Math.abs(x.delayMs - d.delayMs) <= EPS, `${label} #${i}: delayMs ${x.delayMs}, the call's is ${d.delayMs}`)
    )
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

/** What an effect answered, with the test's clock read just before and just after it. */
interface Timed<A> {
  readonly value: A
  readonly before: number
  readonly after: number
}

const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const before = yield* Clock.currentTimeMillis
    const value = yield* self
    const after = yield* Clock.currentTimeMillis
    return { value, before, after } satisfies Timed<A>
  })

/**
 * The instant an admitted caller proceeds (the store decided at some instant of
 * `[before, after]`, test clock; then `delayMs` later), as an interval of the test's clock.
 */
interface Arrival {
  readonly earliest: number
  readonly latest: number
}

const arrival = (t: Timed<unknown>, delayMs: number): Arrival => ({ earliest: t.before + delayMs, latest: t.after + delayMs })

/**
 * No two arrivals less than `gapMs` apart. Live, each is known only to within its call's round
 * trip (and the store's clock is offset from the test's by a constant): a pair fails only when
 * even the most favourable reading of both puts them closer than `gapMs`, so a correct store
 * never fails, and two takes sharing a slot (0 ms apart) are caught while round trips stay short.
 */
const assertSpaced = (time: SuiteTime, arrivals: ReadonlyArray<Arrival>, gapMs: number, label: string): void => {
  // Live: the test's clock reads whole milliseconds.
  const tick = time.exact ? 0 : 1
  for (let i = 0; i < arrivals.length; i++) {
    for (let j = i + 1; j < arrivals.length; j++) {
      const a = arrivals[i]
      const b = arrivals[j]
      if (a === undefined || b === undefined) continue
      const widest = Math.max(b.latest + tick - a.earliest, a.latest + tick - b.earliest)
      assert.isTrue(
        widest >= gapMs - EPS,
        `${label}: arrivals #${i} and #${j} proceed at most ${widest} ms apart, less than ${gapMs} ms`
      )
    }
  }
}

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
        // The caller proceeds at now + 1000 on both: each decision has the call's delay.
        assertMs(time, d.decisions[0]?.delayMs ?? 0, d.delayMs, "a waits with the call", d.delayMs, d.delayMs)
        assertMs(time, d.decisions[1]?.delayMs ?? 0, d.delayMs, "b's own wait is the call's", d.delayMs, d.delayMs)
        assert.deepStrictEqual(d.decisions.map((x) => x.remaining), [0, 0])
        // Every bucket is booked where the caller proceeds: next = max(tat, now + D) + cost·T, so
        // a (free again at now + 500) is next free at now + 1000 + 500; b at its own tat0 + T.
        assertMs(time, (yield* peekOf(tb(a, "", fast))).retryAfterMs, 1500, "a booked at now + D", 1500 - 6 * MARGIN, 1500)
        assertMs(time, (yield* peekOf(tb(b, "", slow))).retryAfterMs, 2000, "b charged", 2000 - 6 * MARGIN, 2000)
        // A bucket with room waits with the call too, and is booked at the same instant.
        const c = fresh("res-c")
        const roomy = { rate: 2, burst: 2 } // T = 500 ms
        const e = yield* takeAll([tb(c, "", { ...roomy, maxWaitMs: 5000 }), tb(b, "", { ...slow, maxWaitMs: 5000 })])
        assert.isTrue(e.allowed)
        assertMs(time, e.delayMs, 2000, "behind b's reservation", 2000 - 7 * MARGIN, 2000)
        assertMs(time, e.decisions[0]?.delayMs ?? 0, e.delayMs, "c proceeds with the call", e.delayMs, e.delayMs)
        // c stores now + D + 500: from now, floor(2 - (D + 500) / 500) = 0 left, full at now + D + 500.
        assert.strictEqual(e.decisions[0]?.remaining, 0, "remaining from the booked next")
        assertMs(time, e.decisions[0]?.resetAfterMs ?? 0, 2500, "c full again half a period after the call proceeds", 2500 - 7 * MARGIN, 2500)
        const cAfter = yield* peekOf(tb(c, "", roomy))
        assert.strictEqual(cAfter.remaining, 0, "c is charged")
        assertMs(time, cAfter.retryAfterMs, 2000, "a single take on c proceeds when the call does, no earlier", 2000 - 8 * MARGIN, 2000)
        assertMs(time, (yield* peekOf(tb(c, "", roomy), 2)).retryAfterMs, 2500, "a cost of 2 waits for c's booked token", 2500 - 8 * MARGIN, 2500)
      })
  },

  {
    name: "token buckets only: a faster bucket booked with the call keeps its rate for later single takes",
    run: (time) =>
      Effect.gen(function*() {
        // X: 1/s, burst 1, so no two takes admitted on it may proceed less than 1 s apart. Y: a
        // slower bucket, busy, that the composite call waits for.
        const x = { rate: 1, burst: 1 } // T = 1 s
        const y = { rate: 1 / 2, burst: 1 } // T = 2 s
        const wait = 20_000
        // 1. Reserved single takes on X right after the call: each proceeds a second after the
        //    previous one, the first a second after the call (booking X at its own instant would
        //    have chained them at +1 s, +2 s: the second would share the call's slot).
        const x1 = fresh("book-x")
        const y1 = fresh("book-y")
        assert.isTrue((yield* single(tb(y1, "", y))).allowed, "Y busy for 2 s")
        const arrivals: Array<Arrival> = []
        const call = yield* timed(takeAll([tb(x1, "", { ...x, maxWaitMs: wait }), tb(y1, "", { ...y, maxWaitMs: wait })]))
        assert.isTrue(call.value.allowed)
        assertMs(time, call.value.delayMs, 2000, "the call waits for Y", 2000 - 3 * MARGIN, 2000)
        assertMs(time, call.value.decisions[0]?.delayMs ?? 0, call.value.delayMs, "X waits with the call", call.value.delayMs, call.value.delayMs)
        arrivals.push(arrival(call, call.value.delayMs))
        const peeked = yield* peekOf(tb(x1, "", x))
        assert.isFalse(peeked.allowed, "X's slot is the call's")
        assertMs(time, peeked.retryAfterMs, 3000, "X free 1 s after the call proceeds", 3000 - 4 * MARGIN, 3000)
        for (const k of [1, 2, 3]) {
          const s = yield* timed(single(tb(x1, "", { ...x, maxWaitMs: wait })))
          assert.isTrue(s.value.allowed, `single take ${k} reserves`)
          assertMs(time, s.value.delayMs, 2000 + k * 1000, `single take ${k}: ${k} s after the call`, 2000 + k * 1000 - (4 + k) * MARGIN, 2000 + k * 1000)
          arrivals.push(arrival(s, s.value.delayMs))
        }
        assertSpaced(time, arrivals, 1000, "X, reserved single takes after the call")

        // 2. The slot the call books is its own: when the call proceeds, a single take without a
        //    wait is refused until a second later.
        const x2 = fresh("book-x")
        const y2 = fresh("book-y")
        assert.isTrue((yield* single(tb(y2, "", y))).allowed, "Y busy for 2 s")
        const later: Array<Arrival> = []
        const call2 = yield* timed(takeAll([tb(x2, "", { ...x, maxWaitMs: wait }), tb(y2, "", { ...y, maxWaitMs: wait })]))
        assert.isTrue(call2.value.allowed)
        assertMs(time, call2.value.delayMs, 2000, "the call waits for Y", 2000 - 3 * MARGIN, 2000)
        later.push(arrival(call2, call2.value.delayMs))
        yield* time.advance(call2.value.delayMs)
        const now = yield* timed(single(tb(x2, "", x)))
        assert.isFalse(now.value.allowed, "a take when the call proceeds: X's token is the call's")
        // live: the booking instant is the store's `now + D` rounded up to its clock's unit (Redis:
        // 1 µs) and the caller wakes after `delayMs`, so up to a millisecond more is the same instant
        assertMs(time, now.value.retryAfterMs, 1000, "until a second after the call proceeds", 1000 - SLACK, 1001)
        const next = yield* timed(single(tb(x2, "", { ...x, maxWaitMs: 5000 })))
        assert.isTrue(next.value.allowed)
        assertMs(time, next.value.delayMs, 1000, "reserved a second after the call", 0, 1001)
        later.push(arrival(next, next.value.delayMs))
        assertSpaced(time, later, 1000, "X, a single take when the call proceeds")
      })
  },

  {
    name: "token buckets only: a bucket named twice is charged the sum at one instant; a take of cost 0 books nothing",
    run: (time) =>
      Effect.gen(function*() {
        const p = { rate: 1, burst: 2, maxWaitMs: 10_000 } // T = 1 s
        const b = tb(fresh("sum-b"), "", p)
        // 1. A sum above the burst never fits, whatever the wait: refused, nothing charged.
        const before = yield* snapshot([b])
        const over = yield* takeAll([{ ...b, cost: 2 }, { ...b, cost: 1 }])
        assert.deepStrictEqual(over.decisions.map((x) => x.allowed), [true, false])
        assert.strictEqual(over.decisions[1]?.retryAfterMs, Infinity, "2 + 1 above a burst of 2 never fits")
        assert.strictEqual(over.decisions[0]?.remaining, 2, "the first, uncharged")
        assertUnchanged(time, before, yield* snapshot([b]), "refused")
        // 2. Within the burst: the second unit waits a period, and both are booked at the instant
        //    the call proceeds (next = max(tat, now + D) + T, then + T); c (cost 0) is left as it is.
        assert.isTrue((yield* single(b)).allowed, "one token left")
        const c = tb(fresh("sum-c"), "", p)
        const d = yield* takeAll([b, { ...c, cost: 0 }, b])
        assert.isTrue(d.allowed)
        assertMs(time, d.delayMs, 1000, "the second unit waits a period", 1000 - 3 * MARGIN, 1000)
        assert.deepStrictEqual(d.decisions.map((x) => x.remaining), [0, 2, 0])
        const pb = yield* peekOf(b)
        assert.strictEqual(pb.remaining, 0)
        assertMs(time, pb.retryAfterMs, 2000, "b: a token again a period after the call proceeds", 2000 - 6 * MARGIN, 2000)
        const pc = yield* peekOf(c)
        assert.deepStrictEqual([pc.allowed, pc.remaining, pc.resetAfterMs], [true, 2, 0], "c: nothing booked")
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
        const behind = yield* adjust(b, -3)
        assert.strictEqual(behind.applied, 0, "a reservation (and debt) is outstanding: nothing is given back")
        assertMs(time, behind.resetAfterMs, 7 * T_SLOW, "still 7 tokens owed")
        // A give-back with nothing reserved: 2 of 3 tokens taken.
        const g = tb(fresh("adj-tb-back"), "k", { ...slowBucket, cost: 2 })
        assert.isTrue((yield* single(g)).allowed)
        const back = yield* adjust(g, -1)
        assert.strictEqual(back.applied, -1)
        assertMs(time, back.resetAfterMs, T_SLOW, "2 - 1 tokens taken")
        const clipped = yield* adjust(g, -10)
        if (time.exact) assert.strictEqual(clipped.applied, -1, "clipped at a full bucket")
        else assert.isTrue(clipped.applied <= -0.9 && clipped.applied >= -1 - EPS, `clipped: ${clipped.applied}`)
        assert.deepStrictEqual([clipped.remaining, clipped.resetAfterMs], [3, 0])
        assert.strictEqual((yield* adjust(g, -1)).applied, 0, "nothing left to give back")
        assert.strictEqual((yield* peekOf(g)).remaining, 3)
        // Debt on a key with no state yet.
        const other = tb(fresh("adj-tb-new"), "k", slowBucket)
        assert.strictEqual((yield* adjust(other, 4)).applied, 4)
        assertMs(time, (yield* peekOf(other)).retryAfterMs, 2 * T_SLOW, "4 owed: 2 periods until a token")
      })
  },

  {
    name: "adjust, token bucket: a give-back behind a reservation applies nothing (the next caller is not placed among the reserved)",
    run: (time) =>
      Effect.gen(function*() {
        // Burst 10, T = 60 s, all at t0: A takes 5, B reserves 10 (proceeds at t0 + 5T), A gives
        // its 5 back. Moving the TAT back would place C at t0 + 10T: 20 tokens admitted in
        // [t0 + 5T, t0 + 10T], more than burst + 5 = 15. C proceeds at t0 + 15T, as without it.
        const p = { rate: 1 / 60, burst: 10, maxWaitMs: 20 * T_SLOW }
        const key = fresh("adj-tb-res")
        const a = yield* single(tb(key, "k", { ...p, cost: 5, maxWaitMs: 0 }))
        assert.deepStrictEqual([a.allowed, a.delayMs], [true, 0])
        const b = yield* single(tb(key, "k", { ...p, cost: 10 }))
        assert.isTrue(b.allowed)
        assertMs(time, b.delayMs, 5 * T_SLOW, "B reserved behind A")
        const back = yield* adjust(tb(key, "k", { ...p, cost: 5 }), -5)
        assert.strictEqual(back.applied, 0, "B's reservation is outstanding: A's give-back applies nothing")
        assert.strictEqual(back.remaining, 0)
        assertMs(time, back.resetAfterMs, 15 * T_SLOW, "the TAT is still B's")
        const c = yield* single(tb(key, "k", { ...p, cost: 10 }))
        assert.isTrue(c.allowed)
        assertMs(time, c.delayMs, 15 * T_SLOW, "C proceeds no earlier than without the give-back")
        // Burst 1: B and C would proceed at the same instant.
        const q = { rate: 1 / 60, burst: 1, maxWaitMs: 5 * T_SLOW }
        const one = fresh("adj-tb-res1")
        assert.strictEqual((yield* single(tb(one, "k", { ...q, maxWaitMs: 0 }))).delayMs, 0)
        assertMs(time, (yield* single(tb(one, "k", q))).delayMs, T_SLOW, "B reserved")
        assert.strictEqual((yield* adjust(tb(one, "k", q), -1)).applied, 0)
        assertMs(time, (yield* single(tb(one, "k", q))).delayMs, 2 * T_SLOW, "C one period after B")
        // No reservation outstanding: a give-back applies as before.
        const free = fresh("adj-tb-free")
        assert.isTrue((yield* single(tb(free, "k", { ...p, cost: 5, maxWaitMs: 0 }))).allowed)
        const given = yield* adjust(tb(free, "k", p), -3)
        assert.strictEqual(given.applied, -3)
        assert.strictEqual(given.remaining, 8)
        assertMs(time, given.resetAfterMs, 2 * T_SLOW, "5 - 3 tokens taken")
        const next = yield* single(tb(free, "k", { ...p, cost: 8, maxWaitMs: 0 }))
        assert.deepStrictEqual([next.allowed, next.delayMs], [true, 0], "the tokens given back are taken at once")
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
