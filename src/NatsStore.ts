/**
 * The NATS JetStream KV store: every SPI operation is one read (`get`, which answers the value and
 * its revision) and at most one compare-and-set write (`create` when the key is absent, `update` on
 * the revision read otherwise), decided in this process with the pure math of
 * `core/algorithm.ts`. A write that loses the race (another process wrote the key since the
 * read) is retried from the read, after a jittered pause that grows with each loss, at most
 * `maxRetries` times and never past `timeout` from the start of the operation; the number of lost
 * writes is reported on every decision as `casRetries`. Losing the race is not an outage: when the
 * retries or the time run out, a take answers a refusal (`allowed: false` / `acquired: false`, a
 * short `retryAfterMs`), never a `StoreError`, so contention can never turn into a fail-open
 * admission.
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
import { type ErrorKind, natsErrorKind } from "./core/errorKind.js"
import { makeRedactor, messageOf, secretParamPattern, userinfoPattern } from "./core/secrets.js"
import { displayUrl, parseUrl, secretsOfUrl } from "./core/url.js"
import type { UrlRules } from "./core/url.js"
import * as algorithm from "./core/algorithm.js"
import * as Deadlines from "./internal/store/deadlines.js"
import type {
  PeekRequest,
  RateLimitStoreService,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  TokenBucketRequest,
  WindowRequest
} from "./RateLimitStore.js"
import * as RateLimitError from "./RateLimitError.js"
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
  /**
   * Mean pause before the first retry of a lost compare-and-set; the pause after the n-th loss is
   * uniform in `[0, 2·retryInterval·2^min(n − 1, 3))` (it doubles up to 8×). Default 10 ms.
   */
  readonly retryInterval?: Duration.DurationInput | undefined
  /**
   * Lost compare-and-sets retried per operation; one more loss answers a refusal (`allowed: false`,
   * `acquired: false`; `renewSlot` / `releaseSlot` fail with `StoreError`). Default 100.
   */
  readonly maxRetries?: number | undefined
  /**
   * Clock-skew allowance, in milliseconds: instants written by another process (a token-bucket
   * arrival time, sliding-window entries) are judged as if they were this much later, so a process
   * whose clock runs ahead by up to this much cannot admit early. Default 10.
   */
  readonly timingMarginMs?: number | undefined
  /**
   * Every operation settles within this, its compare-and-set retries included: a request with no
   * answer in time fails with `StoreError`, unless a write was already lost in this operation, when
   * the race is given up with a refusal. Default 2 seconds.
   */
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

/** A server without a scheme is `nats://…`; `nats://<token>@host` (no password) is a token. */
const URL_RULES: UrlRules = { defaultScheme: "nats:", tokenUser: true }

/**
 * Removes from a driver message every form (raw, decoded, encoded, JSON-escaped, as the
 * `CONNECT` line a server may echo holds it: see `core/secrets.ts`) of the token, the server URLs,
 * their passwords and a token given as the URL user, then any URL userinfo (`scheme://…@`) and
 * secret query value. A user name that comes with a password is not a secret: it is only removed
 * as part of the userinfo, never as a substring of other words (a user `u` must not turn
 * "connection refused" into "connection ref***sed"). Built once per store.
 */
const redactorOf = (servers: ReadonlyArray<string>, token: string | undefined): (message: string) => string =>
  makeRedactor(
    [...(token !== undefined ? [token] : []), ...servers.flatMap((server) => secretsOfUrl(server, URL_RULES))],
    [userinfoPattern, secretParamPattern]
  )

/** What the URLs' userinfo says: a user and password, or a token (`nats://<token>@host`). */
interface UrlCredentials {
  readonly user?: string
  readonly pass?: string
  readonly token?: string
}

const SERVER_EXPECTED = "a NATS server URL (nats://[user:pass@ | token@]host:port, or host:port) with valid % escapes"

/**
 * The servers as the driver gets them (`scheme://host:port`, no userinfo) and the credentials
 * their userinfo holds, or a `ConfigError` naming the option (`url`, `servers[1]`) with the URL
 * shown with its secrets as `***`. Every server that carries credentials must carry the same (the
 * driver sends one set).
 */
const serversOf = (
  servers: ReadonlyArray<string>,
  field: (i: number) => string
): { readonly servers: ReadonlyArray<string>; readonly credentials: UrlCredentials } | RateLimitError.ConfigError => {
  const out: Array<string> = []
  let credentials: UrlCredentials | undefined
  let first = -1
  for (let i = 0; i < servers.length; i++) {
    const text = servers[i] ?? ""
    const parsed = parseUrl(text, URL_RULES)
    if (!parsed.ok) {
      return RateLimitError.ConfigError.at(field(i), SERVER_EXPECTED, `${displayUrl(text, URL_RULES)} (${parsed.problem})`)
    }
    const url = parsed.url
    out.push(`${url.protocol}//${url.host}`)
    if (url.username === "" && url.password === "") continue
    const these: UrlCredentials = url.password === ""
      ? { token: url.username }
      : { user: url.username, pass: url.password }
    if (credentials === undefined) {
      credentials = these
      first = i
    } else if (credentials.user !== these.user || credentials.pass !== these.pass || credentials.token !== these.token) {
      return RateLimitError.ConfigError.at(
        field(i),
        `the credentials of ${field(first)} (the driver sends one set)`,
        `${displayUrl(text, URL_RULES)} (other credentials)`
      )
    }
  }
  return { servers: out, credentials: credentials ?? {} }
}

/** The driver's own request timer ran out (`TimeoutError`, possibly as the cause of another error). */
const isDriverTimeout = (e: unknown): boolean =>
  e instanceof Error && (e.name === "TimeoutError" || (e.cause instanceof Error && e.cause.name === "TimeoutError"))

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
  /** Fixed windows, one per window length: `[length, start, count, limit]`. */
  readonly f?: ReadonlyArray<FixedEntry> | undefined
  /** Leases: `[holder, expiry]` pairs. */
  readonly h?: ReadonlyArray<readonly [string, number]> | undefined
}

/** One fixed-window counter: `[length, start, count, limit]`. */
type FixedEntry = readonly [number, number, number, number]

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
    f?: ReadonlyArray<FixedEntry>
    h?: ReadonlyArray<readonly [string, number]>
  } = { x: u.x }
  if ("o" in u && typeof u.o === "string") out.o = u.o
  if ("t" in u && "c" in u && isNumbers(u.t) && isNumbers(u.c) && u.t.length === u.c.length) {
    out.t = u.t
    out.c = u.c
  }
  if ("f" in u && Array.isArray(u.f)) {
    const f: Array<FixedEntry> = []
    for (const e of u.f) {
      if (Array.isArray(e) && isNumber(e[0]) && isNumber(e[1]) && isNumber(e[2]) && isNumber(e[3])) {
        f.push([e[0], e[1], e[2], e[3]])
      }
    }
    out.f = f
  } else if ("s" in u && "w" in u && "n" in u && "l" in u && isNumber(u.s) && isNumber(u.w) && isNumber(u.n) && isNumber(u.l)) {
    // the earlier single-window layout (`s`, `w`, `n`, `l`): read as the counter of its length
    out.f = [[u.w, u.s, u.n, u.l]]
  }
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
  /**
   * Run (forked, best effort) when the operation gives up after this write timed out: the write
   * may still land, and this undoes what it would leave behind.
   */
  readonly undoLate?: Effect.Effect<void> | undefined
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
export const make = (
  options: NatsStoreOptions = {}
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  Effect.suspend<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope>(() => {
    const fromServers = options.servers !== undefined && options.servers.length > 0
    const given = fromServers && options.servers !== undefined
      ? options.servers.map(Redacted.value)
      : (options.url !== undefined ? Redacted.value(options.url) : DEFAULT_URL).split(",").map((s) => s.trim()).filter((
        s
      ) => s !== "")
    const parsedServers = serversOf(
      given,
      (i) => fromServers ? `servers[${i}]` : given.length > 1 ? `url (server ${i + 1} of ${given.length})` : "url"
    )
    if (parsedServers instanceof RateLimitError.ConfigError) return Effect.fail(parsedServers)
    const { credentials, servers } = parsedServers
    // an explicit `token` wins over a token given as the URL user
    const token = options.token !== undefined ? Redacted.value(options.token) : credentials.token
    const sanitize = redactorOf(given, token)
    const fail = (operation: string, message: string, kind: ErrorKind = "unavailable") =>
      new StoreError({ engine: ENGINE, operation, message: sanitize(message), kind })
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
            ...(token !== undefined ? { token } : {}),
            ...(credentials.user !== undefined ? { user: credentials.user, pass: credentials.pass ?? "" } : {})
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
      /** The store's own clock: the deadline of a compare-and-set loop and its pauses (the caller's decides). */
      const storeClock = yield* Effect.clock
      /** The store's scope: background clean-ups end with it. */
      const storeScope = yield* Effect.scope

      /** One KV request that settles within `ms` (default `timeout`; see `internal/deadlines.ts`). */
      const settle = <A, E>(
        operation: string,
        f: () => Promise<A>,
        onError: (e: unknown) => E,
        ms = timeoutMs
      ): Effect.Effect<A, E | StoreError> =>
        deadlines.settle<A, E | StoreError>(f, onError, () => fail(operation, `no answer within ${ms} ms`), ms)

      const call = <A>(operation: string, f: () => Promise<A>, ms = timeoutMs): Effect.Effect<A, StoreError> =>
        settle(operation, f, (e) => fail(operation, messageOf(e), natsErrorKind(e)), ms)

      const initialize = call("initialize", () => kv.status()).pipe(Effect.asVoid)
      yield* initialize

      // -------------------------------------------------------------------------------------------
      // the compare-and-set loop

      const conflict = Symbol("conflict")
      type Conflict = typeof conflict
      const timedOut = Symbol("timedOut")
      type TimedOut = typeof timedOut

      /**
       * One KV request of the compare-and-set loop, settled within `ms`: a lost compare-and-set
       * answers `conflict` and running out of time `timedOut`, so the loop can tell both from an
       * outage.
       */
      const request = <A>(operation: string, f: () => Promise<A>, ms: number) =>
        deadlines.settle<A, StoreError | Conflict | TimedOut>(
          f,
          (e) => isConflict(e) ? conflict : isDriverTimeout(e) ? timedOut : fail(operation, messageOf(e), natsErrorKind(e)),
          () => timedOut,
          ms
        )

      /** Writes `value` on the revision read (create when absent, delete for `null`). */
      const write = (operation: string, k: string, entry: KvEntry | null, value: string | null, ms: number) =>
        request(
          operation,
          (): Promise<unknown> => {
            if (value === null) {
              return entry === null ? Promise.resolve(undefined) : kv.delete(k, { previousSeq: entry.revision })
            }
            return entry === null ? kv.create(k, value) : kv.update(k, value, entry.revision, ms)
          },
          ms
        )

      /**
       * The pause before retrying after `lost` lost writes: uniform (Effect's `Random`) in
       * `[0, 2·retryInterval·2^min(lost − 1, 3))`, so the mean doubles with each loss up to 8×
       * `retryInterval`, and the losers of a round spread out instead of colliding again.
       */
      const backoff = (lost: number): Effect.Effect<number> =>
        Effect.map(Random.next, (r) => r * 2 * retryIntervalMs * 2 ** Math.min(Math.max(0, lost - 1), 3))

      /**
       * One SPI operation on key `k`: read the value and its revision, decide at the current
       * `Clock` time, write with compare-and-set; on a lost race pause (jittered, growing) and
       * start again. Answers the result with the number of lost writes.
       *
       * The whole loop, not only each request, is bounded by `timeout` (on the store's clock).
       * Losing the race is not an outage: when `maxRetries` writes were lost, or the deadline
       * comes first, the operation answers `refuse(stored, now, retryAfterMs)` (the last state
       * read, a short `retryAfterMs`), so contention can never become a fail-open admission.
       * Only the first round's requests (no write lost yet) time out as `StoreError`; an
       * operation with no refusal to give (`refuse` undefined: renew, release) fails with one.
       */
      const cas = <A>(
        operation: string,
        k: string,
        decide: (stored: Stored | undefined, now: number) => Step<A>,
        refuse: ((stored: Stored | undefined, now: number, retryAfterMs: number) => A) | undefined
      ): Effect.Effect<readonly [A, number], StoreError> =>
        Effect.suspend(() => {
          const deadline = storeClock.unsafeCurrentTimeMillis() + timeoutMs
          const timeoutError = () => fail(operation, `no answer within ${timeoutMs} ms`)
          const giveUp = (lost: number, stored: Stored | undefined, now: number, pause: number, why: string) =>
            refuse === undefined
              ? Effect.fail(fail(operation, why))
              : Effect.succeed([refuse(stored, now, Math.max(1, pause)), lost] as const)
          const attempt = (
            lost: number,
            last: Stored | undefined,
            lastNow: number
          ): Effect.Effect<readonly [A, number], StoreError> => {
            const left = lost === 0 ? timeoutMs : deadline - storeClock.unsafeCurrentTimeMillis()
            return Effect.matchEffect(request(operation, () => kv.get(k), Math.max(1, left)), {
              onFailure: (e) =>
                e !== timedOut
                  ? Effect.fail(e === conflict ? fail(operation, "unexpected conflict on a read") : e)
                  : lost === 0
                  ? Effect.fail(timeoutError())
                  : Effect.flatMap(backoff(lost), (pause) =>
                    giveUp(lost, last, lastNow, pause, `compare-and-set lost ${lost} times before the deadline`)),
              onSuccess: (entry) =>
                Effect.flatMap(Clock.currentTimeMillis, (now) => {
                  const stored = parseStored(entry)
                  const step = decide(stored, now)
                  if (step.write === undefined) return Effect.succeed([step.result, lost] as const)
                  const ms = Math.max(1, deadline - storeClock.unsafeCurrentTimeMillis())
                  return Effect.matchEffect(write(operation, k, entry, step.write, ms), {
                    onSuccess: () => Effect.succeed([step.result, lost] as const),
                    onFailure: (e) => {
                      if (e === timedOut) {
                        // a late write may still land: refusing counts it at most once, never twice;
                        // what it would leave behind (a lease) is undone in the background
                        const undo = step.undoLate === undefined
                          ? Effect.void
                          : Effect.asVoid(Effect.forkIn(step.undoLate, storeScope))
                        return Effect.zipRight(
                          undo,
                          lost === 0 ? Effect.fail(timeoutError()) : Effect.flatMap(backoff(lost), (pause) =>
                            giveUp(lost, stored, now, pause, `compare-and-set lost ${lost} times before the deadline`))
                        )
                      }
                      if (e !== conflict) return Effect.fail(e)
                      const lostNow = lost + 1
                      return Effect.flatMap(backoff(lostNow), (pause) => {
                        if (lostNow > maxRetries) {
                          return giveUp(
                            lostNow,
                            stored,
                            now,
                            pause,
                            `compare-and-set lost ${lostNow} times in a row (maxRetries ${maxRetries})`
                          )
                        }
                        if (storeClock.unsafeCurrentTimeMillis() + pause >= deadline) {
                          return giveUp(lostNow, stored, now, pause, `compare-and-set lost ${lostNow} times before the deadline`)
                        }
                        return Effect.zipRight(storeClock.sleep(Duration.millis(pause)), attempt(lostNow, stored, now))
                      })
                    }
                  })
                })
            })
          }
          return attempt(0, undefined, 0)
        })

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

      /**
       * The refusal answered when the compare-and-set race is given up: what a peek of the last
       * state read shows, refused, with nothing known to remain and at least `retryAfterMs`.
       */
      const contended = (peeked: StoreDecision, retryAfterMs: number): StoreDecision => ({
        ...peeked,
        allowed: false,
        remaining: 0,
        retryAfterMs: Number.isFinite(peeked.retryAfterMs) ? Math.max(peeked.retryAfterMs, retryAfterMs) : retryAfterMs,
        delayMs: 0,
        contended: true
      })

      // -------------------------------------------------------------------------------------------
      // token bucket

      /** The stored arrival time, pushed `marginMs` later unless this instance wrote it on its clock (mixed included). */
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
            // GCRA at the instant the caller proceeds (`now + delayMs`), so a reservation judged with
            // the margin counts its slot from when it proceeds, not from `now`
            const proceeds = now + decision.delayMs
            const slot = req.cost * (1000 / req.ratePerSecond)
            const raw = stored === undefined ? -Infinity : stored.x
            if (stored === undefined || stored.o === self) {
              // this instance's own clock: exact, no margin
              const next = Math.max(raw, proceeds) + slot
              return next > now ? { result: decision, write: JSON.stringify({ x: next, o: self }) } : { result: decision }
            }
            // Another writer's instant. `bound` is the latest the last slot can end on one clock (a
            // mixed value, owner "", is stored `marginMs` early: see below); `exact` is the slot
            // after this admission on one clock. What is written never includes the margin this
            // caller was judged with, so alternating writers pay it once, not once per hand-off.
            const bound = stored.o === "" ? raw + marginMs : raw
            const exact = Math.max(bound, proceeds) + slot
            if (!(exact > now)) return { result: decision }
            const write = stored.o !== undefined && stored.o !== "" && raw >= proceeds
              // the slot is still on the other writer's clock: it stays theirs (exact for them)
              ? { x: exact, o: stored.o }
              : decision.delayMs === 0 && now - marginMs >= bound
              // the stored slot had long passed: start again on this clock
              ? { x: exact, o: self }
              // mixed (owner ""): stored `marginMs` early, so every instance, this one included,
              // judges it at `exact`, and the next hand-off adds no margin on top
              : { x: exact - marginMs, o: "" }
            return { result: decision, write: JSON.stringify(write) }
          }, (stored, now, retryAfterMs) =>
            contended(algorithm.gcraPeek(judgedTat(stored), now, req.ratePerSecond, req.burst), retryAfterMs))
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
          }, (stored, now, retryAfterMs) =>
            contended(
              algorithm.slidingPeek(slidingState(stored, req.limit, req.windowMs).state, now, req.limit, req.windowMs),
              retryAfterMs
            ))
        ).pipe(Effect.map(withRetries))

      // -------------------------------------------------------------------------------------------
      // fixed window

      /**
       * The counter of window length `windowMs` (fresh when none). Each length keeps its own
       * counter, so processes configured with different lengths (a rolling deploy) never reset
       * each other's count: each enforces its own limit on its own windows.
       */
      const fixedState = (stored: Stored | undefined, windowMs: number): algorithm.FixedState => {
        for (const [w, s, n, l] of stored?.f ?? []) {
          if (w === windowMs) return { fwStart: s, fwCount: n, fwLimit: l, fwWindow: w }
        }
        return { fwStart: -Infinity, fwCount: 0, fwLimit: 0, fwWindow: 0 }
      }

      /** Counters of one key beyond this many lengths are dropped, the soonest to end first. */
      const MAX_WINDOW_LENGTHS = 16

      const fixedWindow = (req: WindowRequest) =>
        traced(
          "fixedWindow",
          req.limiter,
          cas("fixedWindow", keyOf(req.limiter, req.key, "fw"), (stored, now): Step<StoreDecision> => {
            const state = fixedState(stored, req.windowMs)
            // never move a stored window backwards (another process's clock may be ahead)
            const start = algorithm.fixedStartForward(state, now, req.windowMs)
            const decision = algorithm.fixedTakeIn(state, start, now, req.limit, req.windowMs, req.cost)
            if (!decision.allowed || !(req.cost > 0)) return { result: decision }
            // the other lengths' counters that may still count (their ends are on their writers' clocks)
            const others = (stored?.f ?? [])
              .filter(([w, s]) => w !== req.windowMs && s + w + marginMs > now)
              .sort((a, b) => (b[1] + b[0]) - (a[1] + a[0]))
              .slice(0, MAX_WINDOW_LENGTHS - 1)
            const windows: Array<FixedEntry> = [
              [state.fwWindow, state.fwStart, state.fwCount, state.fwLimit],
              ...others
            ]
            let x = -Infinity
            for (const [w, s] of windows) x = Math.max(x, s + w)
            return { result: decision, write: JSON.stringify({ x, f: windows }) }
          }, (stored, now, retryAfterMs) => contended(fixedPeek(stored, now, req.limit, req.windowMs), retryAfterMs))
        ).pipe(Effect.map(withRetries))

      const fixedPeek = (stored: Stored | undefined, now: number, limit: number, windowMs: number) => {
        const state = fixedState(stored, windowMs)
        return algorithm.fixedPeekIn(state, algorithm.fixedStartForward(state, now, windowMs), now, limit, windowMs)
      }

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
            if (!decision.acquired) return { result: decision }
            const expiresAt = leases.get(req.holder)
            return {
              result: decision,
              write: writeLeases(leases),
              // given up after this write timed out: it may still land, granting a lease its caller
              // was told it did not get (so nobody renews or releases it); remove that lease
              undoLate: expiresAt === undefined ? undefined : releaseLate(req, expiresAt)
            }
          }, (stored, now, retryAfterMs): SlotDecision => {
            // not granted: the live leases last read (this holder's excluded: it was not granted)
            let active = 0
            let earliest = Infinity
            for (const [h, expiresAt] of leasesOf(stored)) {
              if (expiresAt <= now || h === req.holder) continue
              active++
              earliest = Math.min(earliest, expiresAt)
            }
            const full = active >= req.limit && earliest < Infinity
            return {
              acquired: false,
              limit: req.limit,
              active,
              retryAfterMs: full ? Math.max(earliest - now, retryAfterMs) : retryAfterMs
            }
          })
        ).pipe(Effect.map(withRetries))

      /**
       * Best effort, in the background: removes `req.holder`'s lease if it still expires at
       * `expiresAt` (the one a timed-out acquire wrote; a later acquire or renew of the same holder
       * writes another expiry and is left alone). Tries now and up to 3 more times, `timeout / 2`
       * apart (the late write may land after the first look); errors are ignored.
       */
      const releaseLate = (req: SlotRequest, expiresAt: number): Effect.Effect<void> => {
        const once = cas("releaseSlot", slotKey(req), releaseStep(req.holder, expiresAt), undefined).pipe(
          Effect.map(([released]) => released.found),
          Effect.orElseSucceed(() => false)
        )
        const pause = storeClock.sleep(Duration.millis(Math.max(10, timeoutMs / 2)))
        const loop = (left: number): Effect.Effect<void> =>
          Effect.flatMap(once, (removed) => removed || left <= 0 ? Effect.void : Effect.zipRight(pause, loop(left - 1)))
        return loop(3)
      }

      const renewSlot = (req: SlotRequest) =>
        traced(
          "renewSlot",
          req.limiter,
          cas("renewSlot", slotKey(req), (stored, now): Step<boolean> => {
            const leases = leasesOf(stored)
            return algorithm.leaseRenew(leases, now, req.holder, req.leaseMs)
              ? { result: true, write: writeLeases(leases) }
              : { result: false }
          }, undefined)
        ).pipe(Effect.map(([renewed]) => renewed))

      /**
       * Removes `holder`'s lease (only the one expiring at `expiresAt` when given) and the expired
       * ones: `found` whether there was such a lease, `live` whether it still counted.
       */
      const releaseStep = (holder: string, expiresAt: number | undefined) =>
      (stored: Stored | undefined, now: number): Step<{ readonly found: boolean; readonly live: boolean }> => {
        const leases = leasesOf(stored)
        const held = leases.get(holder)
        if (held === undefined || (expiresAt !== undefined && held !== expiresAt)) {
          return { result: { found: false, live: false } }
        }
        const live = algorithm.leaseRelease(leases, now, holder)
        for (const [h, e] of leases) if (e <= now) leases.delete(h)
        return { result: { found: true, live }, write: writeLeases(leases) }
      }

      const releaseSlot = (req: SlotRequest) =>
        traced(
          "releaseSlot",
          req.limiter,
          cas("releaseSlot", slotKey(req), releaseStep(req.holder, undefined), undefined)
        ).pipe(Effect.map(([released]) => released.live))

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
                fixedPeek(stored, now, req.limit, req.windowMs))
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
export const layer = (options: NatsStoreOptions = {}): Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError> =>
  Layer.scoped(RateLimitStore, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<NatsStoreOptions>
): Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | ConfigError.ConfigError> =>
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
export const layerLive: Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | ConfigError.ConfigError> =
  layerConfig(config)

/**
 * Alias of {@link layerLive}: `Effect.provide(NatsStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const NatsStoreLive: Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | ConfigError.ConfigError> =
  layerLive

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
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  make(optionsFromDefinition(definition))
