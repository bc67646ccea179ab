/**
 * The NATS JetStream KV store: every SPI operation is one read (`get`, which answers the value and
 * its revision) and at most one compare-and-set write (`create` when the key is absent, `update` on
 * the revision read otherwise), decided in this process with the pure math of
 * `internal/algorithm.ts`. A write that loses the race (another process wrote the key since the
 * read) is retried from the read, after a jittered pause, at most `maxRetries` times; the number of
 * lost writes is reported on every decision as `casRetries`.
 *
 * NATS KV has no server clock a compare-and-set can use, so decisions read Effect's `Clock`, and
 * `timingMarginMs` absorbs clock skew between processes (see docs/engines/nats.md).
 *
 * Keys: `<limiter>.<key>.<state>` where `<limiter>` and `<key>` are encoded into the KV key charset
 * (`=` + the text when it is only `[A-Za-z0-9_-]`, else `/` + base64url of its UTF-8): neither
 * encoding produces `.`, each decodes to exactly one string, and no token is empty, so distinct
 * pairs never share a key and `reset(limiter)` lists `<limiter>.>` without wildcards in the id.
 *
 * Expiry: the installed servers (2.9/2.10) have no per-message TTL, so each value carries the
 * instant it stops mattering (`x`); the ops treat state past it as absent, a scoped fiber deletes
 * such keys periodically (compare-and-set on their revision), and the bucket's `max_age` bounds
 * the life of anything left behind.
 *
 * @since 0.1.0
 */
import { Kvm } from "@nats-io/kv"
import type { KV, KvEntry } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import type { NatsConnection } from "@nats-io/transport-node"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Schedule from "effect/Schedule"
import * as Tracer from "effect/Tracer"
import { randomUUID } from "node:crypto"
import * as algorithm from "./internal/algorithm.js"
import * as Deadlines from "./internal/deadlines.js"
import type {
  PeekRequest,
  RateLimitStoreService,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  TokenBucketRequest,
  WindowRequest
} from "./RateLimitStore.js"
import { make as makeStore, RateLimitStore, StoreError } from "./RateLimitStore.js"
import type { NatsStoreDefinition } from "./StoreDefinition.js"

/**
 * Options of the NATS store (rate-sync's NATS engine options, camelCased, plus timeouts and expiry).
 *
 * @since 0.1.0
 * @category models
 */
export interface NatsStoreOptions {
  /**
   * Server URL (`nats://[user:pass@]host:4222`), or several separated by commas.
   * Default `nats://127.0.0.1:4222`.
   */
  readonly url?: Redacted.Redacted | undefined
  /** Server URLs; when set, used instead of `url`. */
  readonly servers?: ReadonlyArray<Redacted.Redacted> | undefined
  /** Authentication token. */
  readonly token?: Redacted.Redacted | undefined
  /** KV bucket holding the state (`[-_A-Za-z0-9]+`). Default `"rate_limits"`. */
  readonly bucketName?: string | undefined
  /** Create the bucket when it does not exist. Default `true`; when `false` a missing bucket fails `make`. */
  readonly autoCreate?: boolean | undefined
  /**
   * `max_age` of a bucket this store creates: how long a key that is never written again may stay.
   * Must exceed the longest window and lease you use. Default 1 day.
   */
  readonly maxAge?: Duration.DurationInput | undefined
  /** Mean pause before retrying a lost compare-and-set (the pause is jittered in `[0, 2·retryInterval)`). Default 10 ms. */
  readonly retryInterval?: Duration.DurationInput | undefined
  /** Lost compare-and-sets retried per operation before it fails with `StoreError`. Default 100. */
  readonly maxRetries?: number | undefined
  /**
   * Clock-skew allowance, in milliseconds: instants written by another process (a token-bucket
   * arrival time, sliding-window entries) are judged as if they were this much later, so a process
   * whose clock runs ahead by up to this much cannot admit early. Default 10.
   */
  readonly timingMarginMs?: number | undefined
  /** Every KV request settles (answers or fails with `StoreError`) within this. Default 2 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Bound on connecting (and on opening the bucket) at start-up. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * How often keys past their expiry are deleted (every instance lists the whole bucket).
   * Default 1 minute; `Duration.infinity` turns the purge off and leaves expiry to `maxAge`.
   */
  readonly purgeInterval?: Duration.DurationInput | undefined
}

const ENGINE = "nats"
const DEFAULT_URL = "nats://127.0.0.1:4222"
const DEFAULT_BUCKET = "rate_limits"
const BUCKET_RE = /^[-\w]+$/
/** JetStream API codes of a publish whose expected last sequence did not match (a lost CAS). */
const WRONG_LAST_SEQUENCE = new Set([10071, 10164])

// ---------------------------------------------------------------------------------------------
// secrets and errors

const messageOf = (u: unknown): string => {
  if (u instanceof Error) return u.message
  if (typeof u === "string") return u
  return "unknown error"
}

/** Removes the known secrets and any URL userinfo from a driver message. */
const sanitizeWith = (secrets: ReadonlyArray<string>) => (message: string): string => {
  let out = message
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join("***")
  }
  return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@\s/]*@/gi, "$1***@")
}

const secretsOf = (servers: ReadonlyArray<string>, token: string | undefined): ReadonlyArray<string> => {
  const out: Array<string> = []
  if (token !== undefined) out.push(token)
  for (const server of servers) {
    try {
      const parsed = new URL(server)
      if (parsed.password !== "") out.push(parsed.password, decodeURIComponent(parsed.password))
      // `nats://<token>@host` puts a token where the user name goes
      if (parsed.username !== "") out.push(parsed.username, decodeURIComponent(parsed.username))
    } catch {
      // not a URL: nothing to pick out of it
    }
  }
  return out.sort((a, b) => b.length - a.length)
}

const isConflict = (e: unknown): boolean =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "number" && WRONG_LAST_SEQUENCE.has(e.code)

// ---------------------------------------------------------------------------------------------
// keys

const SAFE = /^[A-Za-z0-9_-]+$/

/**
 * Encodes a limiter id or key into one non-empty KV key token without `.`: `=` + the text when it
 * is only `[A-Za-z0-9_-]`, else `/` + base64url (UTF-8). The first character tells the two apart.
 */
const encodePart = (s: string): string => SAFE.test(s) ? `=${s}` : `/${Buffer.from(s, "utf8").toString("base64url")}`

type StateKind = "tb" | "sw" | "fw" | "cc"
const KINDS: ReadonlyArray<StateKind> = ["tb", "sw", "fw", "cc"]

// ---------------------------------------------------------------------------------------------
// stored values (compact JSON; `x` is the instant the value stops mattering, in writer ms)

interface Stored {
  readonly x: number
  /** Owner: the id of the store instance whose clock the instants are on ("" when mixed). */
  readonly o?: string | undefined
  /** Sliding window: entry times and costs, oldest first. */
  readonly t?: ReadonlyArray<number> | undefined
  readonly c?: ReadonlyArray<number> | undefined
  /** Fixed window: start, length, count, limit. */
  readonly s?: number | undefined
  readonly w?: number | undefined
  readonly n?: number | undefined
  readonly l?: number | undefined
  /** Leases: `[holder, expiry]` pairs. */
  readonly h?: ReadonlyArray<readonly [string, number]> | undefined
}

const isNumber = (u: unknown): u is number => typeof u === "number" && !Number.isNaN(u)
const isNumbers = (u: unknown): u is ReadonlyArray<number> => Array.isArray(u) && u.every(isNumber)

const parseStored = (entry: KvEntry | null): Stored | undefined => {
  if (entry === null || entry.operation !== "PUT") return undefined
  let u: unknown
  try {
    u = JSON.parse(entry.string())
  } catch {
    return undefined
  }
  if (typeof u !== "object" || u === null || !("x" in u) || !isNumber(u.x)) return undefined
  const out: {
    x: number
    o?: string
    t?: ReadonlyArray<number>
    c?: ReadonlyArray<number>
    s?: number
    w?: number
    n?: number
    l?: number
    h?: ReadonlyArray<readonly [string, number]>
  } = { x: u.x }
  if ("o" in u && typeof u.o === "string") out.o = u.o
  if ("t" in u && "c" in u && isNumbers(u.t) && isNumbers(u.c) && u.t.length === u.c.length) {
    out.t = u.t
    out.c = u.c
  }
  if ("s" in u && isNumber(u.s)) out.s = u.s
  if ("w" in u && isNumber(u.w)) out.w = u.w
  if ("n" in u && isNumber(u.n)) out.n = u.n
  if ("l" in u && isNumber(u.l)) out.l = u.l
  if ("h" in u && Array.isArray(u.h)) {
    const h: Array<readonly [string, number]> = []
    for (const pair of u.h) {
      if (Array.isArray(pair) && typeof pair[0] === "string" && isNumber(pair[1])) h.push([pair[0], pair[1]])
    }
    out.h = h
  }
  return out
}

/** What one attempt decides: the answer, and the write that makes it true (none, a value, or a delete). */
interface Step<A> {
  readonly result: A
  readonly write?: string | null | undefined
}

/** Runs `f` over `items`, 32 at a time. */
const inBatches = async <A>(items: ReadonlyArray<A>, f: (a: A) => Promise<unknown>): Promise<void> => {
  for (let i = 0; i < items.length; i += 32) await Promise.all(items.slice(i, i + 32).map(f))
}

const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

// ---------------------------------------------------------------------------------------------
// make

/**
 * Builds the store: connects (bounded by `connectTimeout`), creates or opens the bucket, and forks
 * the purge of expired keys. Fails with `StoreError` when NATS cannot be reached, JetStream is
 * off, or the bucket is missing and `autoCreate` is `false`; the message never holds a secret.
 * The connection closes with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: NatsStoreOptions = {}): Effect.Effect<RateLimitStoreService, StoreError, Scope.Scope> =>
  Effect.suspend(() => {
    const servers = options.servers !== undefined && options.servers.length > 0
      ? options.servers.map(Redacted.value)
      : (options.url !== undefined ? Redacted.value(options.url) : DEFAULT_URL).split(",").map((s) => s.trim()).filter((
        s
      ) => s !== "")
    const token = options.token !== undefined ? Redacted.value(options.token) : undefined
    const sanitize = sanitizeWith(secretsOf(servers, token))
    const fail = (operation: string, message: string) =>
      new StoreError({ engine: ENGINE, operation, message: sanitize(message) })
    const bucketName = options.bucketName ?? DEFAULT_BUCKET
    if (!BUCKET_RE.test(bucketName)) {
      return Effect.fail(fail("configure", `bucketName must match [-_A-Za-z0-9]+`))
    }
    const timeoutMs = Math.max(1, toMillis(options.timeout, 2000))
    const connectTimeoutMs = Math.max(1, toMillis(options.connectTimeout, 5000))
    const retryIntervalMs = Math.max(0, toMillis(options.retryInterval, 10))
    const maxRetries = Math.max(0, Math.floor(options.maxRetries ?? 100))
    const marginMs = Math.max(0, options.timingMarginMs ?? 10)
    const maxAgeMs = Math.max(1000, toMillis(options.maxAge, 86_400_000))
    const purgeIntervalMs = Math.max(10, toMillis(options.purgeInterval, 60_000))
    const autoCreate = options.autoCreate ?? true
    /** This instance's id, written as the owner of the instants it stores. */
    const self = randomUUID().slice(0, 8)

    /** A start-up promise as an Effect: failures become sanitized `StoreError`s, bounded by `ms`. */
    const startup = <A>(operation: string, f: () => Promise<A>, ms: number): Effect.Effect<A, StoreError> =>
      Effect.tryPromise({ try: f, catch: (e) => fail(operation, messageOf(e)) }).pipe(
        Effect.timeoutFail({ duration: Duration.millis(ms), onTimeout: () => fail(operation, `no answer within ${ms} ms`) })
      )

    return Effect.gen(function*() {
      const nc: NatsConnection = yield* Effect.acquireRelease(
        startup("connect", () =>
          connect({
            servers: [...servers],
            timeout: connectTimeoutMs,
            name: "effect-rate-sync",
            // keep reconnecting through an outage: calls fail with StoreError (bounded by `timeout`) meanwhile
            maxReconnectAttempts: -1,
            ...(token !== undefined ? { token } : {})
          }), connectTimeoutMs),
        (nc) => Effect.promise(() => nc.close()).pipe(Effect.timeoutOption(1000), Effect.ignore)
      )
      const kvm = new Kvm(nc)
      const kv: KV = yield* startup(
        "open",
        () =>
          autoCreate
            ? kvm.create(bucketName, { history: 1, ttl: maxAgeMs, timeout: timeoutMs })
            : kvm.open(bucketName).then((kv) =>
              kv.status().then(() => kv, (e: unknown) =>
                Promise.reject(
                  new Error(`bucket "${bucketName}" is not available (autoCreate is false): ${messageOf(e)}`)
                ))
            ),
        connectTimeoutMs
      )

      // -------------------------------------------------------------------------------------------
      // bounded round trips

      const deadlines = yield* Deadlines.make(timeoutMs)

      /** One KV request that settles within `ms` (default `timeout`; see `internal/deadlines.ts`). */
      const settle = <A, E>(
        operation: string,
        f: () => Promise<A>,
        onError: (e: unknown) => E,
        ms = timeoutMs
      ): Effect.Effect<A, E | StoreError> =>
        deadlines.settle<A, E | StoreError>(f, onError, () => fail(operation, `no answer within ${ms} ms`), ms)

      const call = <A>(operation: string, f: () => Promise<A>, ms = timeoutMs): Effect.Effect<A, StoreError> =>
        settle(operation, f, (e) => fail(operation, messageOf(e)), ms)

      const initialize = call("initialize", () => kv.status()).pipe(Effect.asVoid)
      yield* initialize

      // -------------------------------------------------------------------------------------------
      // the compare-and-set loop

      const conflict = Symbol("conflict")
      type Conflict = typeof conflict

      /** Writes `step.write` on the revision read (create when absent); `conflict` when another writer won. */
      const write = (operation: string, k: string, entry: KvEntry | null, value: string | null) =>
        settle(
          operation,
          (): Promise<unknown> => {
            if (value === null) {
              return entry === null ? Promise.resolve(undefined) : kv.delete(k, { previousSeq: entry.revision })
            }
            return entry === null ? kv.create(k, value) : kv.update(k, value, entry.revision, timeoutMs)
          },
          (e): StoreError | Conflict => isConflict(e) ? conflict : fail(operation, messageOf(e))
        )

      const pause = Effect.flatMap(Random.next, (r) => Effect.sleep(Duration.millis(r * 2 * retryIntervalMs)))

      /**
       * One SPI operation on key `k`: read the value and its revision, decide at the current
       * `Clock` time, write with compare-and-set; on a lost race pause (jittered) and start again,
       * at most `maxRetries` times. Answers the result with the number of lost writes.
       */
      const cas = <A>(
        operation: string,
        k: string,
        decide: (stored: Stored | undefined, now: number) => Step<A>
      ): Effect.Effect<readonly [A, number], StoreError> => {
        const attempt = (retries: number): Effect.Effect<readonly [A, number], StoreError> =>
          Effect.flatMap(call(operation, () => kv.get(k)), (entry) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              const step = decide(parseStored(entry), now)
              if (step.write === undefined) return Effect.succeed([step.result, retries] as const)
              return write(operation, k, entry, step.write).pipe(
                Effect.as([step.result, retries] as const),
                Effect.catchIf((e): e is Conflict => e === conflict, () =>
                  retries >= maxRetries
                    ? Effect.fail(fail(operation, `compare-and-set lost ${retries + 1} times in a row (maxRetries ${maxRetries})`))
                    : Effect.zipRight(pause, attempt(retries + 1)))
              )
            }))
        return attempt(0)
      }

      /** A read with no write. */
      const read = <A>(operation: string, k: string, decide: (stored: Stored | undefined, now: number) => A) =>
        Effect.flatMap(
          call(operation, () => kv.get(k)),
          (entry) => Effect.map(Clock.currentTimeMillis, (now) => decide(parseStored(entry), now))
        )

      /**
       * A store operation, traced as a child of the caller's span when there is one (no span is
       * started for an untraced caller: it is not free on the hot path).
       */
      const traced = <A, E>(operation: string, limiter: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
        Effect.contextWithEffect((context: Context.Context<never>) =>
          Context.getOption(context, Tracer.ParentSpan)._tag === "None"
            ? effect
            : Effect.withSpan(effect, `RateLimitStore.nats.${operation}`, {
              kind: "client",
              captureStackTrace: false,
              attributes: { "db.system.name": "nats", "rate_sync.limiter": limiter }
            })
        )

      // limiter ids are few (registered limiters): their encoding is memoized
      const limiterParts = new Map<string, string>()
      const limiterPart = (limiter: string): string => {
        let part = limiterParts.get(limiter)
        if (part === undefined) {
          part = encodePart(limiter)
          if (limiterParts.size < 10_000) limiterParts.set(limiter, part)
        }
        return part
      }
      const keyOf = (limiter: string, key: string, kind: StateKind) => `${limiterPart(limiter)}.${encodePart(key)}.${kind}`

      const withRetries = <A extends StoreDecision | SlotDecision>([a, retries]: readonly [A, number]): A =>
        ({ ...a, casRetries: retries })

      // -------------------------------------------------------------------------------------------
      // token bucket

      /** The stored arrival time, pushed `marginMs` later when another instance's clock wrote it. */
      const judgedTat = (stored: Stored | undefined): number =>
        stored === undefined ? -Infinity : stored.o === self ? stored.x : stored.x + marginMs

      const tokenBucket = (req: TokenBucketRequest) =>
        traced(
          "tokenBucket",
          req.limiter,
          cas("tokenBucket", keyOf(req.limiter, req.key, "tb"), (stored, now): Step<StoreDecision> => {
            const state: algorithm.GcraState = { tat: judgedTat(stored), tbInterval: 0, tbBurst: 0 }
            const decision = algorithm.gcraTake(state, now, req.ratePerSecond, req.burst, req.cost, req.maxWaitMs)
            if (!decision.allowed) return { result: decision }
            // store the arrival time on the writers' clocks (not the judged one), so the margin never accumulates
            const raw = stored === undefined ? -Infinity : stored.x
            const next = Math.max(raw, now) + req.cost * (1000 / req.ratePerSecond)
            if (!(next > now)) return { result: decision }
            const owner = raw > now && stored !== undefined ? (stored.o ?? "") : self
            return { result: decision, write: JSON.stringify({ x: next, o: owner }) }
          })
        ).pipe(Effect.map(withRetries))

      // -------------------------------------------------------------------------------------------
      // sliding window

      const slidingState = (stored: Stored | undefined, limit: number, windowMs: number) => {
        const shift = stored === undefined || stored.o === self ? 0 : marginMs
        const times = stored?.t !== undefined ? stored.t.map((t) => t + shift) : []
        const costs = stored?.c !== undefined ? [...stored.c] : []
        let total = 0
        for (const c of costs) total += c
        const state: algorithm.SlidingState = { times, costs, head: 0, total, limit, windowMs }
        return { state, shift }
      }

      const slidingWindow = (req: WindowRequest) =>
        traced(
          "slidingWindow",
          req.limiter,
          cas("slidingWindow", keyOf(req.limiter, req.key, "sw"), (stored, now): Step<StoreDecision> => {
            const { shift, state } = slidingState(stored, req.limit, req.windowMs)
            const decision = algorithm.slidingTake(state, now, req.limit, req.windowMs, req.cost)
            if (!decision.allowed || !(req.cost > 0)) return { result: decision }
            // the entries that still count (judged with the margin), kept on their writers' clocks
            const times: Array<number> = []
            const costs: Array<number> = []
            const rawTimes = stored?.t ?? []
            const rawCosts = stored?.c ?? []
            for (let i = 0; i < rawTimes.length; i++) {
              const t = rawTimes[i] ?? 0
              if (t + shift + req.windowMs > now) {
                times.push(t)
                costs.push(rawCosts[i] ?? 0)
              }
            }
            const last = times.length - 1
            if (last >= 0 && shift === 0 && (times[last] ?? 0) >= now) costs[last] = (costs[last] ?? 0) + req.cost
            else {
              times.push(Math.max(now, times[last] ?? -Infinity))
              costs.push(req.cost)
            }
            const owner = last < 0 || shift === 0 ? self : ""
            const newest = times[times.length - 1] ?? now
            return {
              result: decision,
              write: JSON.stringify({ x: newest + req.windowMs, o: owner, t: times, c: costs })
            }
          })
        ).pipe(Effect.map(withRetries))

      // -------------------------------------------------------------------------------------------
      // fixed window

      const fixedState = (stored: Stored | undefined): algorithm.FixedState => ({
        fwStart: stored?.s ?? -Infinity,
        fwCount: stored?.n ?? 0,
        fwLimit: stored?.l ?? 0,
        fwWindow: stored?.w ?? 0
      })

      const fixedWindow = (req: WindowRequest) =>
        traced(
          "fixedWindow",
          req.limiter,
          cas("fixedWindow", keyOf(req.limiter, req.key, "fw"), (stored, now): Step<StoreDecision> => {
            const state = fixedState(stored)
            const decision = algorithm.fixedTake(state, now, req.limit, req.windowMs, req.cost)
            if (!decision.allowed || !(req.cost > 0)) return { result: decision }
            return {
              result: decision,
              write: JSON.stringify({
                x: state.fwStart + state.fwWindow,
                s: state.fwStart,
                w: state.fwWindow,
                n: state.fwCount,
                l: state.fwLimit
              })
            }
          })
        ).pipe(Effect.map(withRetries))

      // -------------------------------------------------------------------------------------------
      // leases

      const leasesOf = (stored: Stored | undefined): algorithm.Leases => new Map(stored?.h ?? [])

      const writeLeases = (leases: algorithm.Leases): string | null =>
        leases.size === 0 ? null : JSON.stringify({ x: algorithm.leasesExpireAt(leases), h: [...leases] })

      const slotKey = (req: SlotRequest) => keyOf(req.limiter, req.key, "cc")

      const acquireSlot = (req: SlotRequest) =>
        traced(
          "acquireSlot",
          req.limiter,
          cas("acquireSlot", slotKey(req), (stored, now): Step<SlotDecision> => {
            const leases = leasesOf(stored)
            const decision = algorithm.leaseAcquire(leases, now, req.holder, req.limit, req.leaseMs)
            return decision.acquired ? { result: decision, write: writeLeases(leases) } : { result: decision }
          })
        ).pipe(Effect.map(withRetries))

      const renewSlot = (req: SlotRequest) =>
        traced(
          "renewSlot",
          req.limiter,
          cas("renewSlot", slotKey(req), (stored, now): Step<boolean> => {
            const leases = leasesOf(stored)
            return algorithm.leaseRenew(leases, now, req.holder, req.leaseMs)
              ? { result: true, write: writeLeases(leases) }
              : { result: false }
          })
        ).pipe(Effect.map(([renewed]) => renewed))

      const releaseSlot = (req: SlotRequest) =>
        traced(
          "releaseSlot",
          req.limiter,
          cas("releaseSlot", slotKey(req), (stored, now): Step<boolean> => {
            const leases = leasesOf(stored)
            if (!leases.has(req.holder)) return { result: false }
            const live = algorithm.leaseRelease(leases, now, req.holder)
            for (const [h, expiresAt] of leases) if (expiresAt <= now) leases.delete(h)
            return { result: live, write: writeLeases(leases) }
          })
        ).pipe(Effect.map(([released]) => released))

      // -------------------------------------------------------------------------------------------
      // peek, reset

      const peek = (req: PeekRequest): Effect.Effect<StoreDecision, StoreError> => {
        switch (req.algorithm) {
          case "token_bucket":
            return traced(
              "peek",
              req.limiter,
              read("peek", keyOf(req.limiter, req.key, "tb"), (stored, now) =>
                algorithm.gcraPeek(judgedTat(stored), now, req.ratePerSecond, req.burst))
            )
          case "sliding_window":
            return traced(
              "peek",
              req.limiter,
              read("peek", keyOf(req.limiter, req.key, "sw"), (stored, now) =>
                algorithm.slidingPeek(slidingState(stored, req.limit, req.windowMs).state, now, req.limit, req.windowMs))
            )
          case "fixed_window":
            return traced(
              "peek",
              req.limiter,
              read("peek", keyOf(req.limiter, req.key, "fw"), (stored, now) =>
                algorithm.fixedPeek(fixedState(stored), now, req.limit, req.windowMs))
            )
          case "concurrency":
            return traced(
              "peek",
              req.limiter,
              read("peek", keyOf(req.limiter, req.key, "cc"), (stored, now) =>
                algorithm.leasePeek(leasesOf(stored), now, req.limit))
            )
        }
      }

      /** Every key under `filter` (`keys()` opens a short-lived ordered consumer). */
      const listKeys = (filter: string): Promise<Array<string>> =>
        kv.keys(filter).then(async (iterator) => {
          const out: Array<string> = []
          for await (const k of iterator) out.push(k)
          return out
        })

      const RESET_TIMEOUT_MS = timeoutMs + 30_000

      const reset = (limiter: string, key?: string): Effect.Effect<void, StoreError> =>
        traced(
          "reset",
          limiter,
          key !== undefined
            ? call("reset", () => Promise.all(KINDS.map((kind) => kv.delete(keyOf(limiter, key, kind)))))
            : call(
              "reset",
              () => listKeys(`${limiterPart(limiter)}.>`).then((keys) => inBatches(keys, (k) => kv.delete(k))),
              RESET_TIMEOUT_MS
            )
        ).pipe(Effect.asVoid)

      // -------------------------------------------------------------------------------------------
      // purge of expired keys

      /** Deletes (on their revision) the keys whose value stopped mattering more than `marginMs` ago. */
      const purgeExpired = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        call("purge", async () => {
          let purged = 0
          const purgeOne = async (k: string) => {
            const entry = await kv.get(k)
            const stored = parseStored(entry)
            if (entry !== null && entry.operation === "PUT" && (stored === undefined || stored.x + marginMs <= now)) {
              // on the revision read: a key written meanwhile is live again and stays (the delete fails)
              await kv.delete(k, { previousSeq: entry.revision }).then(() => purged++, () => undefined)
            }
          }
          await inBatches(await listKeys(">"), purgeOne)
          return purged
        }, RESET_TIMEOUT_MS))

      if (Number.isFinite(purgeIntervalMs)) {
        yield* purgeExpired.pipe(
          Effect.catchAll((e) => Effect.logDebug(`effect-rate-sync nats purge failed: ${e.message}`)),
          Effect.repeat(Schedule.spaced(Duration.millis(purgeIntervalMs))),
          Effect.delay(Duration.millis(purgeIntervalMs)),
          Effect.interruptible,
          Effect.forkScoped
        )
      }

      return makeStore({
        engine: ENGINE,
        tokenBucket,
        slidingWindow,
        fixedWindow,
        acquireSlot,
        renewSlot,
        releaseSlot,
        peek,
        reset,
        initialize
      })
    })
  })

// ---------------------------------------------------------------------------------------------
// layers and config

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: NatsStoreOptions = {}): Layer.Layer<RateLimitStore, StoreError> =>
  Layer.scoped(RateLimitStore, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<NatsStoreOptions>
): Layer.Layer<RateLimitStore, StoreError | ConfigError.ConfigError> =>
  Layer.scoped(RateLimitStore, Effect.flatMap(Config.unwrap(options), make))

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/** Seconds (rate-sync's unit) or a duration string (`"50 millis"`). */
const durationConfig = (name: string): Config.Config<Duration.Duration> =>
  Config.orElse(
    Config.map(Config.number(name), (seconds) => Duration.millis(seconds * 1000)),
    () => Config.duration(name)
  )

/**
 * The options read from configuration: `URL`, `TOKEN`, `BUCKET_NAME`, `AUTO_CREATE`, `MAX_AGE`,
 * `RETRY_INTERVAL`, `MAX_RETRIES`, `TIMING_MARGIN_MS`, `TIMEOUT`, `CONNECT_TIMEOUT`,
 * `PURGE_INTERVAL` (durations in seconds or as a duration string), under `RATE_SYNC_NATS_` in the
 * environment.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<NatsStoreOptions> = Config.all({
  url: optional(Config.redacted("URL")),
  token: optional(Config.redacted("TOKEN")),
  bucketName: optional(Config.string("BUCKET_NAME")),
  autoCreate: optional(Config.boolean("AUTO_CREATE")),
  maxAge: optional(durationConfig("MAX_AGE")),
  retryInterval: optional(durationConfig("RETRY_INTERVAL")),
  maxRetries: optional(Config.integer("MAX_RETRIES")),
  timingMarginMs: optional(Config.number("TIMING_MARGIN_MS")),
  timeout: optional(durationConfig("TIMEOUT")),
  connectTimeout: optional(durationConfig("CONNECT_TIMEOUT")),
  purgeInterval: optional(durationConfig("PURGE_INTERVAL"))
}).pipe(Config.nested("NATS"), Config.nested("RATE_SYNC"))

/**
 * The store configured from the environment (`RATE_SYNC_NATS_URL`, ...; see {@link config}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLive: Layer.Layer<RateLimitStore, StoreError | ConfigError.ConfigError> = layerConfig(config)

/**
 * Alias of {@link layerLive}: `Effect.provide(NatsStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const NatsStoreLive: Layer.Layer<RateLimitStore, StoreError | ConfigError.ConfigError> = layerLive

/**
 * The options a `NatsStoreDefinition` (TOML `engine = "nats"`, `configureStore`) describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromDefinition = (definition: NatsStoreDefinition): NatsStoreOptions => {
  const { engine: _, ...rest } = definition
  return rest
}

/**
 * Builds the store a `NatsStoreDefinition` (TOML `engine = "nats"`, `configureStore`) describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDefinition = (
  definition: NatsStoreDefinition
): Effect.Effect<RateLimitStoreService, StoreError, Scope.Scope> => make(optionsFromDefinition(definition))
