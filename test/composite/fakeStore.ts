/**
 * A small store for the composite tests, built with `RateLimitStore.make`: the rate algorithms,
 * `takeAll` and `adjust` over plain maps, by the SPI's doc comments (src/core/spi.ts), on the
 * Effect Clock; concurrency slots delegated to a memory store. `takeAll` / `adjust` can be left
 * out, to test what the limiter does with a store that has none.
 */
import { Clock, Effect } from "effect"
import { MemoryStore, RateLimitStore } from "effect-rate-sync"

type AdjustRequest = RateLimitStore.AdjustRequest
type AdjustResult = RateLimitStore.AdjustResult
type CompositeDecision = RateLimitStore.CompositeDecision
type PeekRequest = RateLimitStore.PeekRequest
type RateTake = RateLimitStore.RateTake
type StoreDecision = RateLimitStore.StoreDecision
type TokenBucketRequest = RateLimitStore.TokenBucketRequest
type WindowRequest = RateLimitStore.WindowRequest

export interface FakeOptions {
  readonly engine?: string
  readonly takeAll?: boolean
  readonly adjust?: boolean
}

interface Entry {
  readonly id: number
  readonly t: number
  cost: number
}

const clamp = (n: number, limit: number) => Math.max(0, Math.min(limit, Math.floor(n)))

export const makeFakeStore = (options: FakeOptions = {}) =>
  Effect.gen(function*() {
    const slots = yield* MemoryStore.make()
    const tats = new Map<string, number>()
    const fixed = new Map<string, { start: number; count: number }>()
    const sliding = new Map<string, Array<Entry>>()
    let nextId = 1
    const id = (limiter: string, key: string) => `${limiter}\u0000${key}`

    // token bucket ---------------------------------------------------------------------------
    const bucketJudge = (r: Omit<TokenBucketRequest, "maxWaitMs">, maxWaitMs: number, now: number) => {
      const T = 1000 / r.ratePerSecond
      const tat0 = Math.max(tats.get(id(r.limiter, r.key)) ?? now, now)
      const next = tat0 + r.cost * T
      const wait = next - r.burst * T - now
      const ok = r.cost <= r.burst && wait <= maxWaitMs
      const d: StoreDecision = ok
        ? {
          allowed: true,
          limit: r.burst,
          remaining: clamp((now + r.burst * T - next) / T, r.burst),
          resetAfterMs: Math.max(0, next - now),
          retryAfterMs: 0,
          delayMs: Math.max(0, wait)
        }
        : {
          allowed: false,
          limit: r.burst,
          remaining: clamp((now + r.burst * T - tat0) / T, r.burst),
          resetAfterMs: Math.max(0, tat0 - now),
          retryAfterMs: r.cost > r.burst ? Infinity : wait,
          delayMs: 0
        }
      return { d, next }
    }

    // fixed window ---------------------------------------------------------------------------
    const fixedJudge = (r: WindowRequest, now: number) => {
      const start = Math.floor(now / r.windowMs) * r.windowMs
      const s = fixed.get(id(r.limiter, r.key))
      const count = s !== undefined && s.start === start ? s.count : 0
      const end = start + r.windowMs - now
      const ok = count + r.cost <= r.limit
      const d: StoreDecision = {
        allowed: ok,
        limit: r.limit,
        remaining: clamp(r.limit - count - (ok ? r.cost : 0), r.limit),
        resetAfterMs: end,
        retryAfterMs: ok ? 0 : r.cost > r.limit ? Infinity : end,
        delayMs: 0,
        ref: ok ? String(start) : undefined
      }
      return { d, start, count }
    }

    // sliding window -------------------------------------------------------------------------
    const live = (r: WindowRequest, now: number) =>
      (sliding.get(id(r.limiter, r.key)) ?? []).filter((e) => now < e.t + r.windowMs)
    const slidingJudge = (r: WindowRequest, now: number) => {
      const entries = live(r, now)
      const total = entries.reduce((n, e) => n + e.cost, 0)
      const ok = total + r.cost <= r.limit
      let retryAfterMs = 0
      if (!ok) {
        if (r.cost > r.limit) retryAfterMs = Infinity
        else {
          let freed = 0
          for (const e of entries) {
            freed += e.cost
            if (total - freed + r.cost <= r.limit) {
              retryAfterMs = e.t + r.windowMs - now
              break
            }
          }
        }
      }
      const newest = ok ? now : entries.at(-1)?.t
      const d: StoreDecision = {
        allowed: ok,
        limit: r.limit,
        remaining: clamp(r.limit - total - (ok ? r.cost : 0), r.limit),
        resetAfterMs: newest === undefined ? 0 : newest + r.windowMs - now,
        retryAfterMs,
        delayMs: 0
      }
      return { d, entries }
    }

    const judge = (t: RateTake, maxWaitMs: number, now: number): { d: StoreDecision; apply: () => StoreDecision } => {
      switch (t.algorithm) {
        case "token_bucket": {
          const { d, next } = bucketJudge(t, maxWaitMs, now)
          return { d, apply: () => (tats.set(id(t.limiter, t.key), next), d) }
        }
        case "fixed_window": {
          const { d, start, count } = fixedJudge(t, now)
          return { d, apply: () => (fixed.set(id(t.limiter, t.key), { start, count: count + t.cost }), d) }
        }
        case "sliding_window": {
          const { d, entries } = slidingJudge(t, now)
          return {
            d,
            apply: () => {
              const entry = { id: nextId++, t: now, cost: t.cost }
              sliding.set(id(t.limiter, t.key), [...entries, entry])
              return { ...d, ref: String(entry.id) }
            }
          }
        }
      }
    }

    const single = (t: RateTake, maxWaitMs: number, now: number) => {
      const j = judge(t, maxWaitMs, now)
      return j.d.allowed ? j.apply() : j.d
    }

    const takeAll = (takes: ReadonlyArray<RateTake>, now: number): CompositeDecision => {
      const onlyBuckets = takes.every((t) => t.algorithm === "token_bucket")
      const maxWait = onlyBuckets ? Math.min(...takes.map((t) => (t.algorithm === "token_bucket" ? t.maxWaitMs : 0))) : 0
      const tatsBefore = new Map(tats)
      const judged = takes.map((t) => judge(t, maxWait, now))
      if (judged.every((j) => j.d.allowed)) {
        const delayMs = Math.max(0, ...judged.map((j) => j.d.delayMs))
        const decisions = judged.map((j) => j.apply())
        // The caller proceeds at now + D on every bucket: each books that instant (src/core/spi.ts).
        takes.forEach((t) => {
          if (t.algorithm !== "token_bucket") return
          const k = id(t.limiter, t.key)
          const before = tatsBefore.get(k) ?? now
          tats.set(k, Math.max(before, now + delayMs) + (t.cost * 1000) / t.ratePerSecond)
        })
        return { allowed: true, decisions, delayMs }
      }
      // refused: the takes that would pass say so with their state unchanged (judged at cost 0)
      const decisions = takes.map((t, i) => {
        const d = judged[i]?.d
        return d === undefined || !d.allowed ? d : { ...judge({ ...t, cost: 0 }, Infinity, now).d, delayMs: 0 }
      }).filter((d) => d !== undefined)
      return { allowed: false, decisions, delayMs: 0 }
    }

    const peek = (r: PeekRequest, now: number): Effect.Effect<StoreDecision, RateLimitStore.StoreError> => {
      switch (r.algorithm) {
        case "concurrency":
          return slots.peek(r)
        case "token_bucket": {
          const { d } = bucketJudge({ ...r, cost: r.cost ?? 1 }, 0, now)
          const T = 1000 / r.ratePerSecond
          const tat0 = Math.max(tats.get(id(r.limiter, r.key)) ?? now, now)
          return Effect.succeed({
            ...d,
            remaining: clamp((now + r.burst * T - tat0) / T, r.burst),
            resetAfterMs: tat0 - now
          })
        }
        case "fixed_window": {
          const { d } = fixedJudge({ ...r, cost: r.cost ?? 1 }, now)
          return Effect.succeed({ ...d, remaining: d.allowed ? d.remaining + (r.cost ?? 1) : d.remaining, ref: undefined })
        }
        case "sliding_window": {
          const { d, entries } = slidingJudge({ ...r, cost: r.cost ?? 1 }, now)
          const newest = entries.at(-1)?.t
          return Effect.succeed({
            ...d,
            remaining: d.allowed ? d.remaining + (r.cost ?? 1) : d.remaining,
            resetAfterMs: newest === undefined ? 0 : newest + r.windowMs - now
          })
        }
      }
    }

    const adjust = (r: AdjustRequest, now: number): AdjustResult => {
      const t = r.take
      switch (t.algorithm) {
        case "token_bucket": {
          const T = 1000 / t.ratePerSecond
          const k = id(t.limiter, t.key)
          const tat0 = Math.max(tats.get(k) ?? now, now)
          const next = Math.max(now, tat0 + r.delta * T)
          tats.set(k, next)
          return {
            applied: next === tat0 + r.delta * T ? r.delta : (next - tat0) / T,
            remaining: clamp((now + t.burst * T - next) / T, t.burst),
            resetAfterMs: next - now
          }
        }
        case "fixed_window": {
          const start = Math.floor(now / t.windowMs) * t.windowMs
          const s = fixed.get(id(t.limiter, t.key))
          if (r.ref !== String(start) || s === undefined || s.start !== start) {
            const count = s !== undefined && s.start === start ? s.count : 0
            return { applied: 0, remaining: clamp(t.limit - count, t.limit), resetAfterMs: start + t.windowMs - now }
          }
          const count = Math.max(0, s.count + r.delta)
          const applied = count - s.count
          s.count = count
          return { applied, remaining: clamp(t.limit - count, t.limit), resetAfterMs: start + t.windowMs - now }
        }
        case "sliding_window": {
          const entries = live(t, now)
          const e = entries.find((x) => String(x.id) === r.ref)
          const total = () => entries.reduce((n, x) => n + x.cost, 0)
          const newest = entries.at(-1)?.t
          const resetAfterMs = newest === undefined ? 0 : newest + t.windowMs - now
          if (e === undefined) return { applied: 0, remaining: clamp(t.limit - total(), t.limit), resetAfterMs }
          const cost = Math.max(0, e.cost + r.delta)
          const applied = cost - e.cost
          e.cost = cost
          sliding.set(id(t.limiter, t.key), entries)
          return { applied, remaining: clamp(t.limit - total(), t.limit), resetAfterMs }
        }
      }
    }

    const now = Clock.currentTimeMillis
    return RateLimitStore.make({
      engine: options.engine ?? "fake",
      tokenBucket: (r) => Effect.map(now, (n) => single({ algorithm: "token_bucket", ...r }, r.maxWaitMs, n)),
      slidingWindow: (r) => Effect.map(now, (n) => single({ algorithm: "sliding_window", ...r }, 0, n)),
      fixedWindow: (r) => Effect.map(now, (n) => single({ algorithm: "fixed_window", ...r }, 0, n)),
      acquireSlot: slots.acquireSlot,
      renewSlot: slots.renewSlot,
      releaseSlot: slots.releaseSlot,
      awaitSlot: slots.awaitSlot,
      peek: (r) => Effect.flatMap(now, (n) => peek(r, n)),
      reset: (limiter, key) =>
        Effect.sync(() => {
          for (const m of [tats, fixed, sliding]) {
            for (const k of m.keys()) {
              if (key === undefined ? k.startsWith(`${limiter}\u0000`) : k === id(limiter, key)) m.delete(k)
            }
          }
        }).pipe(Effect.andThen(slots.reset(limiter, key))),
      initialize: Effect.void,
      takeAll: options.takeAll === false ? undefined : (takes) => Effect.map(now, (n) => takeAll(takes, n)),
      adjust: options.adjust === false ? undefined : (r) => Effect.map(now, (n) => adjust(r, n))
    })
  })
