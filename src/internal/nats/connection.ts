/**
 * The NATS store's connection: its settings read from the options, the credentials and the
 * redactor, connecting, the KV bucket and its bounded requests.
 *
 * @internal
 */
import { Kvm } from "@nats-io/kv"
import type { KV, KvEntry } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import type * as Scope from "effect/Scope"
import { type ErrorKind, natsErrorKind } from "../../core/errorKind.js"
import { parseServers, redactorOf } from "../../core/nats/servers.js"
import type { UrlCredentials } from "../../core/nats/servers.js"
import { parseStored } from "../../core/nats/stored.js"
import type { Stored } from "../../core/nats/stored.js"
import { messageOf } from "../../core/secrets.js"
import type { NatsStoreOptions } from "../../NatsStore.js"
import * as RateLimitError from "../../RateLimitError.js"
import { StoreError } from "../../RateLimitStore.js"
import * as Deadlines from "../store/deadlines.js"
import { secretText, secretTexts, toMillis } from "../store/options.js"

/** @internal */
export const ENGINE = "nats"
const DEFAULT_URL = "nats://127.0.0.1:4222"
const DEFAULT_BUCKET = "rate_limits"
const BUCKET_RE = /^[-\w]+$/

/** The options, validated and with their defaults. @internal */
export interface Settings {
  readonly servers: ReadonlyArray<string>
  readonly credentials: UrlCredentials
  /** An explicit `token` wins over a token given as the URL user. */
  readonly token: string | undefined
  readonly sanitize: (message: string) => string
  readonly bucketName: string
  readonly timeoutMs: number
  readonly connectTimeoutMs: number
  readonly retryIntervalMs: number
  readonly maxRetries: number
  readonly marginMs: number
  readonly maxAgeMs: number
  readonly purgeIntervalMs: number
  readonly autoCreate: boolean
}

/** A sanitized `StoreError` of this engine. @internal */
export const failWith = (sanitize: (message: string) => string) =>
(operation: string, message: string, kind: ErrorKind = "unavailable"): StoreError =>
  new StoreError({ engine: ENGINE, operation, message: sanitize(message), kind })

/** The server texts the options give (`servers`, else `url` split at commas), and how to name each. */
const givenServers = (options: NatsStoreOptions) => {
  if (options.servers !== undefined) {
    const given = secretTexts(options.servers, "servers")
    if (given instanceof RateLimitError.ConfigError) return given
    if (given.length > 0) return { given, field: (i: number) => `servers[${i}]` }
  }
  const url = options.url !== undefined ? secretText(options.url, "url") : DEFAULT_URL
  if (url instanceof RateLimitError.ConfigError) return url
  const given = url.split(",").map((s) => s.trim()).filter((s) => s !== "")
  return { given, field: (i: number) => given.length > 1 ? `url (server ${i + 1} of ${given.length})` : "url" }
}

/**
 * The settings `options` describe: a `ConfigError` for a server URL that cannot be read, a
 * `StoreError` for a bad bucket name.
 *
 * @internal
 */
export const settingsOf = (options: NatsStoreOptions): Effect.Effect<Settings, StoreError | RateLimitError.ConfigError> =>
  Effect.suspend((): Effect.Effect<Settings, StoreError | RateLimitError.ConfigError> => {
    const servers = givenServers(options)
    if (servers instanceof RateLimitError.ConfigError) return Effect.fail(servers)
    const { field, given } = servers
    const parsed = parseServers(given, field)
    if (!parsed.ok) return Effect.fail(RateLimitError.ConfigError.at(parsed.path, parsed.expected, parsed.received))
    const token = options.token !== undefined ? secretText(options.token, "token") : parsed.credentials.token
    if (token instanceof RateLimitError.ConfigError) return Effect.fail(token)
    const sanitize = redactorOf(given, token)
    const bucketName = options.bucketName ?? DEFAULT_BUCKET
    if (!BUCKET_RE.test(bucketName)) {
      return Effect.fail(failWith(sanitize)("configure", `bucketName must match [-_A-Za-z0-9]+`))
    }
    return Effect.succeed({
      servers: parsed.servers,
      credentials: parsed.credentials,
      token,
      sanitize,
      bucketName,
      timeoutMs: Math.max(1, toMillis(options.timeout, 2000)),
      connectTimeoutMs: Math.max(1, toMillis(options.connectTimeout, 5000)),
      retryIntervalMs: Math.max(0, toMillis(options.retryInterval, 10)),
      maxRetries: Math.max(0, Math.floor(options.maxRetries ?? 100)),
      marginMs: Math.max(0, options.timingMarginMs ?? 10),
      maxAgeMs: Math.max(1000, toMillis(options.maxAge, 86_400_000)),
      purgeIntervalMs: Math.max(10, toMillis(options.purgeInterval, 60_000)),
      autoCreate: options.autoCreate ?? true
    })
  })

/** The open bucket and its bounded requests. @internal */
export interface Bucket {
  readonly kv: KV
  readonly settings: Settings
  readonly deadlines: Deadlines.Deadlines
  readonly fail: (operation: string, message: string, kind?: ErrorKind) => StoreError
  /** One KV request that settles within `ms` (default `timeout`; see `internal/store/deadlines.ts`). */
  readonly call: <A>(operation: string, f: () => Promise<A>, ms?: number) => Effect.Effect<A, StoreError>
  /** Every key under `filter` (`keys()` opens a short-lived ordered consumer). */
  readonly listKeys: (filter: string) => Promise<Array<string>>
}

/** The value an entry holds (`undefined` when absent, deleted or unreadable). @internal */
export const storedOf = (entry: KvEntry | null): Stored | undefined =>
  entry === null || entry.operation !== "PUT" ? undefined : parseStored(entry.string())

/** Runs `f` over `items`, 32 at a time. @internal */
export const inBatches = async <A>(items: ReadonlyArray<A>, f: (a: A) => Promise<unknown>): Promise<void> => {
  for (let i = 0; i < items.length; i += 32) await Promise.all(items.slice(i, i + 32).map(f))
}

/** A start-up promise as an Effect: failures become sanitized `StoreError`s, bounded by `ms`. */
const startup = <A>(fail: Bucket["fail"], operation: string, f: () => Promise<A>, ms: number): Effect.Effect<A, StoreError> =>
  Effect.tryPromise({ try: f, catch: (e) => fail(operation, messageOf(e)) }).pipe(
    Fx.timeoutFail({ duration: Duration.millis(ms), onTimeout: () => fail(operation, `no answer within ${ms} ms`) })
  )

/** Connects (bounded by `connectTimeout`); the connection closes with the scope. */
const connection = (s: Settings, fail: Bucket["fail"]) =>
  Effect.acquireRelease(
    startup(fail, "connect", () =>
      connect({
        servers: [...s.servers],
        timeout: s.connectTimeoutMs,
        name: "effect-rate-sync",
        // keep reconnecting through an outage: calls fail with StoreError (bounded by `timeout`) meanwhile
        maxReconnectAttempts: -1,
        ...(s.token !== undefined ? { token: s.token } : {}),
        ...(s.credentials.user !== undefined ? { user: s.credentials.user, pass: s.credentials.pass ?? "" } : {})
      }), s.connectTimeoutMs),
    (nc) => Effect.promise(() => nc.close()).pipe(Effect.timeoutOption(1000), Effect.ignore)
  )

/** Creates the bucket (`autoCreate`) or opens the one that must exist. */
const openKv = (kvm: Kvm, s: Settings): Promise<KV> =>
  s.autoCreate
    ? kvm.create(s.bucketName, { history: 1, ttl: s.maxAgeMs, timeout: s.timeoutMs })
    : kvm.open(s.bucketName).then((kv) =>
      kv.status().then(() => kv, (e: unknown) =>
        Promise.reject(new Error(`bucket "${s.bucketName}" is not available (autoCreate is false): ${messageOf(e)}`)))
    )

/**
 * Connects, creates or opens the bucket, and starts the deadline sweeper, all in the scope.
 *
 * @internal
 */
export const open = (settings: Settings): Effect.Effect<Bucket, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const fail = failWith(settings.sanitize)
    const nc = yield* connection(settings, fail)
    const kv = yield* startup(fail, "open", () => openKv(new Kvm(nc), settings), settings.connectTimeoutMs)
    const deadlines = yield* Deadlines.make(settings.timeoutMs)
    const call = <A>(operation: string, f: () => Promise<A>, ms = settings.timeoutMs): Effect.Effect<A, StoreError> =>
      deadlines.settle<A, StoreError>(
        f,
        (e) => fail(operation, messageOf(e), natsErrorKind(e)),
        () => fail(operation, `no answer within ${ms} ms`),
        ms
      )
    const listKeys = (filter: string): Promise<Array<string>> =>
      kv.keys(filter).then(async (iterator) => {
        const out: Array<string> = []
        for await (const k of iterator) out.push(k)
        return out
      })
    return { kv, settings, deadlines, fail, call, listKeys }
  })
