/**
 * The Redis store: every SPI operation is one Lua script run by `EVALSHA` (reloaded by `EVAL` on
 * `NOSCRIPT`), decided with the server's clock (`TIME` inside the script), on a standalone server
 * or a Redis Cluster.
 *
 * Keys are `<keyPrefix>:{<limiter>.<key>}:<state>`, where `<limiter>` and `<key>` are encoded
 * (`=` + the text when it is only `[A-Za-z0-9_-]`, else base64url of its UTF-8): the braces are
 * the Redis Cluster hash tag, so the state of one `(limiter, key)` lives in one slot; user input
 * cannot inject braces to pick another tag, and two distinct pairs never share a key (neither
 * encoding produces `.`, `{` or `}`, and each decodes to exactly one string).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import { Cluster, Redis } from "ioredis"
import type { ClusterOptions, RedisOptions } from "ioredis"
import { createHash } from "node:crypto"
import { type ErrorKind, redisErrorKind } from "./core/errorKind.js"
import { makeRedactor, messageOf, secretParamPattern, userinfoPattern } from "./core/secrets.js"
import { displayUrl, parseUrl, secretsOfUrl } from "./core/url.js"
import type { StoreUrl } from "./core/url.js"
import * as Deadlines from "./internal/store/deadlines.js"
import * as scripts from "./internal/redisScripts.js"
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
import type { RedisStoreDefinition } from "./StoreDefinition.js"

/**
 * Options of the Redis store (rate-sync's Redis engine options, camelCased, plus what ioredis adds).
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` (TLS). Default `redis://127.0.0.1:6379`. */
  readonly url?: Redacted.Redacted | undefined
  /** Database index (standalone only); overrides the one in `url`. */
  readonly db?: number | undefined
  /** Password (`AUTH`); overrides the one in `url`. */
  readonly password?: Redacted.Redacted | undefined
  /** ACL user name; overrides the one in `url`. */
  readonly username?: string | undefined
  /** Prefix of every key. Default `"rate_limit"`. Must not contain `{` or `}`. */
  readonly keyPrefix?: string | undefined
  /**
   * Connections opened (standalone only). ioredis multiplexes and pipelines every command on one
   * connection, so the default is 1; more connections are used round-robin.
   */
  readonly poolMinSize?: number | undefined
  /** Upper bound on `poolMinSize` (rate-sync parity). */
  readonly poolMaxSize?: number | undefined
  /**
   * Added to every non-zero `delayMs` / `retryAfterMs` the store answers, to absorb the network
   * time between the server's decision and the caller's wake-up. Default 0.
   */
  readonly timingMarginMs?: number | undefined
  /**
   * While replies are awaited, a connection silent for this long is dropped and its commands
   * rejected (ioredis `socketTimeout`). Default: 5 × the command timeout, at least 1 second.
   */
  readonly socketTimeout?: Duration.DurationInput | undefined
  /** Connect timeout, also the bound on connecting at start-up. Default 5 seconds. */
  readonly socketConnectTimeout?: Duration.DurationInput | undefined
  /** Every call settles (answers or fails with `StoreError`) within this. Default 1 second. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Redis Cluster seed nodes (`host:port`). When set, a cluster client is used and `url` only gives credentials. */
  readonly clusterNodes?: ReadonlyArray<string> | undefined
  /**
   * ioredis auto-pipelining: commands issued in the same tick share one write. Default `false`:
   * measured slower for Effect callers (see docs/benchmarks.md), whose fibers resume across
   * several ticks.
   */
  readonly autoPipelining?: boolean | undefined
  /**
   * Most decisions sent as one batch script. Calls issued in the same tick (the fibers a reply
   * wakes up, a burst of requests) leave as one `EVALSHA` that runs each call's own script in
   * turn, atomically, at one server instant: one command and one reply for the lot. `1` sends
   * every call on its own. Default 16: smaller batches keep several in flight, so Redis runs one
   * while the process handles the replies of another (measured best at 64 callers). Not used on
   * a cluster (a batch's keys would span slots).
   */
  readonly maxBatchSize?: number | undefined
}

type Client = Redis | Cluster

interface Script {
  readonly source: string
  readonly sha: string
  /** Its opcode in the batch script (0: not batchable). */
  readonly opcode: number
}

const script = (source: string): Script => ({
  source,
  sha: createHash("sha1").update(source).digest("hex"),
  opcode: scripts.batchable.findIndex((s) => s === source) + 1
})

const Scripts = {
  tokenBucketTake: script(scripts.tokenBucketTake),
  tokenBucketPeek: script(scripts.tokenBucketPeek),
  slidingWindowTake: script(scripts.slidingWindowTake),
  slidingWindowPeek: script(scripts.slidingWindowPeek),
  fixedWindowTake: script(scripts.fixedWindowTake),
  fixedWindowPeek: script(scripts.fixedWindowPeek),
  slotAcquire: script(scripts.slotAcquire),
  slotRenew: script(scripts.slotRenew),
  slotRelease: script(scripts.slotRelease),
  slotPeek: script(scripts.slotPeek),
  batch: script(scripts.batch)
} as const

/** What an operation's calls share, built once per store. */
interface Operation {
  /** A failure of the call, its kind told from what the driver threw (see `core/errorKind.ts`). */
  readonly fail: (message: string, kind?: ErrorKind) => StoreError
  readonly timeout: () => StoreError
}

/** What the batcher needs of a call. */
interface Queued {
  readonly script: Script
  readonly keys: ReadonlyArray<string>
  readonly args: ReadonlyArray<string | number>
  reply(reply: unknown): void
  error(e: unknown): void
}

/**
 * A script call on its way: settled by its reply (through `map`) or by its command's error. A
 * class, so a call allocates one object and no closures.
 */
class Pending<A> implements Queued {
  constructor(
    readonly script: Script,
    readonly keys: ReadonlyArray<string>,
    readonly args: ReadonlyArray<string | number>,
    private readonly limit: number,
    private readonly map: (reply: unknown, limit: number) => A,
    private readonly operation: Operation,
    private readonly call: Deadlines.InFlight<A, StoreError>
  ) {}
  reply(reply: unknown): void {
    let a: A
    try {
      a = this.map(reply, this.limit)
    } catch (e) {
      return this.call.fail(this.operation.fail(messageOf(e)))
    }
    this.call.succeed(a)
  }
  error(e: unknown): void {
    this.call.fail(this.operation.fail(messageOf(e), redisErrorKind(e)))
  }
}

const ENGINE = "redis"
const ATTR_DB_SYSTEM_NAME = "db.system.name"
const ATTR_LIMITER = "rate_sync.limiter"
const DEFAULT_PREFIX = "rate_limit"
const DEFAULT_URL = "redis://127.0.0.1:6379"
const DEFAULT_MAX_BATCH = 16
/** Bound on a `maxWait` sent to Lua (µs), so `Infinity` stays a finite number. */
const MAX_WAIT_US = 1e15

// ---------------------------------------------------------------------------------------------
// secrets and errors

/** The arguments of `AUTH` / `HELLO` in a message (a server may echo the command). */
const authArgsPattern = { regex: /\b(AUTH|HELLO)\b(\s+\S+)+/gi, replacement: "$1 ***" }

/**
 * Removes from a driver message every form (raw, decoded, encoded, JSON-escaped: see
 * `core/secrets.ts`) of the password, the URL, its password and its `?password=`, then any URL
 * userinfo, secret query value and `AUTH`/`HELLO` arguments. Built once per store.
 */
const redactorOf = (options: RedisStoreOptions): (message: string) => string =>
  makeRedactor(
    [
      ...(options.password !== undefined ? [Redacted.value(options.password)] : []),
      ...(options.url !== undefined ? secretsOfUrl(Redacted.value(options.url)) : [])
    ],
    [userinfoPattern, secretParamPattern, authArgsPattern]
  )

const URL_EXPECTED = "a redis:// or rediss:// URL (redis://[user:password@]host:port[/db]) with valid % escapes"

/** `url` parsed, or a `ConfigError` naming the option (the URL shown with its secrets as `***`). */
const parseOptionUrl = (
  url: Redacted.Redacted | undefined
): StoreUrl | RateLimitError.ConfigError | undefined => {
  if (url === undefined) return undefined
  const text = Redacted.value(url)
  const parsed = parseUrl(text)
  return parsed.ok ? parsed.url : RateLimitError.ConfigError.at("url", URL_EXPECTED, `${displayUrl(text)} (${parsed.problem})`)
}

// ---------------------------------------------------------------------------------------------
// keys

const SAFE = /^[A-Za-z0-9_-]+$/

/**
 * Encodes a limiter id or key for the hash tag, unambiguously and without `.`, `{` or `}`: a
 * non-empty string of `[A-Za-z0-9_-]` is kept as is behind a `=` (which base64url never
 * produces), anything else is base64url-encoded (UTF-8). So `<limiter>.<key>` splits at its only
 * `.`, and each part decodes to exactly one string.
 */
const encodePart = (s: string): string => SAFE.test(s) ? `=${s}` : Buffer.from(s, "utf8").toString("base64url")

const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

// ---------------------------------------------------------------------------------------------
// replies

const at = (xs: ReadonlyArray<unknown>, i: number): number => {
  const x = xs[i]
  if (typeof x !== "number") throw new Error(`unexpected script reply`)
  return x
}

const replyArray = (reply: unknown): ReadonlyArray<unknown> => {
  if (!Array.isArray(reply)) throw new Error(`unexpected script reply`)
  return reply
}

const slotDecision = (reply: unknown, limit: number): SlotDecision => {
  const r = replyArray(reply)
  const retry = at(r, 2)
  return { acquired: at(r, 0) === 1, limit, active: at(r, 1), retryAfterMs: retry < 0 ? Infinity : retry / 1000 }
}

const isOne = (reply: unknown): boolean => reply === 1

/** Arguments the batch script can carry: no newline in a string (its field separator). */
const packable = (args: ReadonlyArray<string | number>): boolean => {
  for (const a of args) if (typeof a === "string" && a.includes("\n")) return false
  return true
}

const isNoScript = (e: unknown): boolean => e instanceof Error && e.message.startsWith("NOSCRIPT")

const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

// ---------------------------------------------------------------------------------------------
// make

/**
 * Builds the store: opens the connection(s), waits until Redis is ready (bounded by
 * `socketConnectTimeout`) and loads the scripts. Fails with `StoreError` when Redis cannot be
 * reached or refuses the credentials; the message never holds a secret. Connections close with the
 * scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RedisStoreOptions = {}
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  Effect.suspend<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope>(() => {
    const prefix = options.keyPrefix ?? DEFAULT_PREFIX
    const sanitize = redactorOf(options)
    const fail = (operation: string, message: string, kind: ErrorKind = "unavailable") =>
      new StoreError({ engine: ENGINE, operation, message: sanitize(message), kind })
    const parsedUrl = parseOptionUrl(options.url)
    if (parsedUrl instanceof RateLimitError.ConfigError) return Effect.fail(parsedUrl)
    if (prefix.includes("{") || prefix.includes("}")) {
      return Effect.fail(fail("configure", `keyPrefix must not contain "{" or "}" (it would choose the cluster slot)`))
    }
    const badUrl = urlProblem(options, parsedUrl)
    if (badUrl !== undefined) return Effect.fail(fail("configure", badUrl))
    const timeoutMs = toMillis(options.commandTimeout, 1000)
    const connectTimeoutMs = toMillis(options.socketConnectTimeout, 5000)
    // Commands of a hung server are cleared by the driver once the socket stays silent this long;
    // the caller was already answered by the deadline sweeper (see `settle`).
    const socketTimeoutMs = options.socketTimeout === undefined
      ? Math.max(1000, 5 * timeoutMs)
      : toMillis(options.socketTimeout, 0)
    const marginMs = options.timingMarginMs ?? 0
    const timeout = Duration.millis(timeoutMs)
    const poolSize = Math.max(1, Math.min(options.poolMaxSize ?? Infinity, options.poolMinSize ?? 1))
    const clustered = options.clusterNodes !== undefined && options.clusterNodes.length > 0
    const maxBatch = clustered ? 1 : Math.max(1, Math.floor(options.maxBatchSize ?? DEFAULT_MAX_BATCH))
    // Releases publish on this channel (standalone only: see the docs' Cluster section).
    const notifications = !clustered
    const freedChannel = `${prefix}:slot-freed`
    /** A key reset frees every slot of the key: all its waiters wake, not one per message. */
    const resetChannel = `${prefix}:slot-reset`

    const common: RedisOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: options.autoPipelining ?? false,
      // No per-command `commandTimeout`: ioredis arms and clears a timer per command for it, which
      // cost 10-15% of the throughput at 64 callers. The deadline sweeper bounds every call instead.
      connectTimeout: connectTimeoutMs,
      socketTimeout: socketTimeoutMs,
      ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {}),
      ...(options.username !== undefined ? { username: options.username } : {}),
      // reconnect quickly, so enforcement is back soon after the server is
      retryStrategy: (times: number) => Math.min(25 * times, 200)
    }

    const lastError: { message: string; fatal: boolean } = { message: "", fatal: false }
    const onError = (e: unknown) => {
      lastError.message = messageOf(e)
      // a reply error while connecting is a refusal (wrong password, unknown db), not a blip
      lastError.fatal = e instanceof Error && e.name === "ReplyError"
    }

    const newClient = (): Client => {
      if (clustered && options.clusterNodes !== undefined) {
        const { retryStrategy: _, ...redisOptions } = common
        const clusterOptions: ClusterOptions = {
          lazyConnect: true,
          enableOfflineQueue: false,
          enableAutoPipelining: options.autoPipelining ?? false,
          clusterRetryStrategy: (times: number) => Math.min(50 * times, 500),
          slotsRefreshTimeout: connectTimeoutMs,
          // explicit `password` / `username` win over the userinfo of `url`
          redisOptions: { ...credentialsFromUrl(parsedUrl), ...redisOptions }
        }
        const cluster = new Cluster(options.clusterNodes.map(parseNode), clusterOptions)
        cluster.on("error", onError)
        cluster.on("node error", onError)
        return cluster
      }
      const url = options.url !== undefined ? Redacted.value(options.url) : DEFAULT_URL
      const redis = new Redis(url, { ...common, ...(options.db !== undefined ? { db: options.db } : {}) })
      redis.on("error", onError)
      return redis
    }

    const connect = (client: Client) =>
      Effect.async<void, StoreError>((resume) => {
        let done = false
        const finish = (result: Effect.Effect<void, StoreError>) => {
          if (done) return
          done = true
          client.off("ready", onReady)
          client.off("error", onConnectError)
          resume(result)
        }
        const onReady = () => finish(Effect.void)
        const onConnectError = () => {
          if (lastError.fatal) finish(Effect.fail(fail("connect", lastError.message)))
        }
        client.on("ready", onReady)
        client.on("error", onConnectError)
        client.connect().catch(() => {
          // reported through the "error" event and retried by the retry strategy
        })
        return Effect.sync(() => {
          done = true
          client.off("ready", onReady)
          client.off("error", onConnectError)
        })
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(connectTimeoutMs),
          onTimeout: () =>
            fail(
              "connect",
              `could not connect within ${connectTimeoutMs} ms${lastError.message === "" ? "" : `: ${lastError.message}`}`
            )
        })
      )

    const closeClient = (client: Client) =>
      Effect.tryPromise(() => client.quit()).pipe(
        Effect.timeoutOption(1000),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )

    return Effect.gen(function*() {
      const deadlines = yield* Deadlines.make(timeoutMs)
      const clients: Array<Client> = []
      for (let i = 0; i < poolSize; i++) {
        const client = yield* Effect.acquireRelease(Effect.sync(newClient), closeClient)
        yield* connect(client)
        clients.push(client)
      }
      const first = clients[0]
      if (first === undefined) return yield* Effect.dieMessage("no Redis client")
      let next = 0
      const pick = (): Client => {
        if (clients.length === 1) return first
        next = (next + 1) % clients.length
        return clients[next] ?? first
      }


      const timeoutError = (operation: string) => fail(operation, `no answer within ${timeoutMs} ms`)

      /** One round trip that settles within the command timeout (see `internal/deadlines.ts`). */
      const settle = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, StoreError> =>
        deadlines.settle(f, (e) => fail(operation, messageOf(e)), () => timeoutError(operation), timeoutMs)

      /**
       * A store round trip, traced as a child of the caller's span when there is one (no span is
       * started for an untraced caller: on the hot path a span costs a third of the round trip).
       */
      const traced = <A>(operation: string, limiter: string, effect: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
        Effect.contextWithEffect((context: Context.Context<never>) =>
          Context.getOption(context, Tracer.ParentSpan)._tag === "None"
            ? effect
            : Effect.withSpan(effect, `RateLimitStore.redis.${operation}`, {
              kind: "client",
              captureStackTrace: false,
              attributes: { [ATTR_DB_SYSTEM_NAME]: "redis", [ATTR_LIMITER]: limiter }
            })
        )

      /** A round trip that is not a script (per-key reset). */
      const call = <A>(operation: string, limiter: string, f: () => Promise<A>): Effect.Effect<A, StoreError> =>
        traced(operation, limiter, settle(operation, f))

      /** Script commands sent and not answered yet. */
      let outstanding = 0

      /** `EVALSHA` of `args` (`[sha, numkeys, ...]`), and `EVAL` of `source` on `NOSCRIPT`. */
      const runScript = (
        client: Client,
        source: string,
        args: Array<string | number>,
        onReply: (reply: unknown) => void,
        onError: (e: unknown) => void
      ): void => {
        outstanding++
        const replied = (reply: unknown) => {
          outstanding--
          onReply(reply)
        }
        const failed = (e: unknown) => {
          outstanding--
          onError(e)
        }
        client.call("EVALSHA", args).then(replied, (e: unknown) => {
          if (!isNoScript(e)) return failed(e)
          args[0] = source
          client.call("EVAL", args).then(replied, failed)
        })
      }

      const runOne = (p: Queued): void =>
        runScript(
          pick(),
          p.script.source,
          [p.script.sha, p.keys.length, ...p.keys, ...p.args],
          (reply) => p.reply(reply),
          (e) => p.error(e)
        )

      /**
       * Calls issued in the same tick (the fibers one socket read wakes up, a burst of requests)
       * leave as one batch script (see `redisScripts.batch`): one command, one reply and one script
       * run for up to `maxBatch` decisions. A call alone runs its own script. Not on a cluster,
       * where a batch's keys would span slots.
       */
      let queue: Array<Queued> = []
      let flushScheduled = false
      const flush = () => {
        flushScheduled = false
        const q = queue
        queue = []
        for (let i = 0; i < q.length; i += maxBatch) sendBatch(q, i, Math.min(q.length, i + maxBatch))
      }
      const sendBatch = (q: ReadonlyArray<Queued>, from: number, to: number): void => {
        const first = q[from]
        if (first === undefined) return
        if (to - from === 1) return runOne(first)
        const args: Array<string | number> = [Scripts.batch.sha, 0]
        let packed = `${to - from}\n`
        for (let i = from; i < to; i++) {
          const p = q[i]
          if (p === undefined) continue
          for (const k of p.keys) args.push(k)
          packed += `${p.script.opcode}\n${p.keys.length}\n${p.args.length}\n`
          for (const a of p.args) packed += `${a}\n`
        }
        args[1] = args.length - 2
        args.push(packed)
        runScript(pick(), Scripts.batch.source, args, (reply) => {
          if (!Array.isArray(reply) || reply.length !== to - from) {
            for (let i = from; i < to; i++) q[i]?.error(new Error("unexpected batch reply"))
            return
          }
          for (let i = from; i < to; i++) q[i]?.reply(reply[i - from])
        }, (e) => {
          for (let i = from; i < to; i++) q[i]?.error(e)
        })
      }

      const operations = new Map<string, Operation>()
      const operationOf = (name: string): Operation => {
        let op = operations.get(name)
        if (op === undefined) {
          op = { fail: (message, kind) => fail(name, message, kind), timeout: () => timeoutError(name) }
          operations.set(name, op)
        }
        return op
      }

      /**
       * One script round trip: `EVALSHA`, and on `NOSCRIPT` (after `SCRIPT FLUSH`, a restart or a
       * failover) `EVAL`, which also caches the script again; batched with the calls of the same
       * tick. Bounded by the deadline sweeper.
       */
      const evalScript = <A>(
        operation: string,
        limiter: string,
        s: Script,
        keys: ReadonlyArray<string>,
        args: ReadonlyArray<string | number>,
        limit: number,
        map: (reply: unknown, limit: number) => A
      ): Effect.Effect<A, StoreError> => {
        const op = operationOf(operation)
        return traced(
          operation,
          limiter,
          Effect.async<A, StoreError>((resume) => {
            const p = new Pending(s, keys, args, limit, map, op, deadlines.track(resume, op.timeout, timeoutMs))
            // Nothing on the wire: no reply is coming to wake other callers within this tick, so
            // the call leaves at once (a lone caller pays nothing for batching).
            if (maxBatch === 1 || outstanding === 0 || s.opcode === 0 || !packable(args)) return runOne(p)
            queue.push(p)
            if (!flushScheduled) {
              flushScheduled = true
              queueMicrotask(flush)
            }
          })
        )
      }

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
      const keyOf = (limiter: string, key: string, state: string) =>
        `${prefix}:{${limiterPart(limiter)}.${encodePart(key)}}:${state}`

      /** `{remaining, resetAfterUs, t}`: see `internal/redisScripts.ts`. */
      const decision = (reply: unknown, limit: number): StoreDecision => {
        const r = replyArray(reply)
        const t = at(r, 2)
        const resetAfterMs = Math.max(0, at(r, 1) / 1000)
        if (t >= 0) {
          return {
            allowed: true,
            limit,
            remaining: at(r, 0),
            resetAfterMs,
            retryAfterMs: 0,
            delayMs: t === 0 ? 0 : t / 1000 + marginMs
          }
        }
        return {
          allowed: false,
          limit,
          remaining: at(r, 0),
          resetAfterMs,
          retryAfterMs: t === scripts.NEVER ? Infinity : -t / 1000 + marginMs,
          delayMs: 0
        }
      }

      const intervalUs = (ratePerSecond: number) => String(1e6 / ratePerSecond)

      const tokenBucket = (req: TokenBucketRequest) =>
        evalScript("tokenBucket", req.limiter, Scripts.tokenBucketTake, [keyOf(req.limiter, req.key, "tb")], [
          intervalUs(req.ratePerSecond),
          req.burst,
          req.cost,
          Math.min(MAX_WAIT_US, Math.max(0, req.maxWaitMs) * 1000)
        ], req.burst, decision)

      const slidingWindow = (req: WindowRequest) =>
        evalScript(
          "slidingWindow",
          req.limiter,
          Scripts.slidingWindowTake,
          [keyOf(req.limiter, req.key, "sw"), keyOf(req.limiter, req.key, "swm")],
          [Math.round(req.windowMs * 1000), req.limit, req.cost],
          req.limit,
          decision
        )

      const fixedWindow = (req: WindowRequest) =>
        evalScript("fixedWindow", req.limiter, Scripts.fixedWindowTake, [keyOf(req.limiter, req.key, "fw")], [
          Math.max(1, Math.round(req.windowMs)),
          req.limit,
          req.cost
        ], req.limit, decision)

      const slotKey = (req: SlotRequest) => keyOf(req.limiter, req.key, "cc")
      const leaseUs = (req: SlotRequest) => Math.max(1, Math.round(req.leaseMs * 1000))

      const acquireSlot = (req: SlotRequest) =>
        evalScript(
          "acquireSlot",
          req.limiter,
          Scripts.slotAcquire,
          [slotKey(req)],
          [req.holder, req.limit, leaseUs(req)],
          req.limit,
          slotDecision
        )

      const renewSlot = (req: SlotRequest) =>
        evalScript("renewSlot", req.limiter, Scripts.slotRenew, [slotKey(req)], [req.holder, leaseUs(req)], req.limit, isOne)

      const releaseSlot = (req: SlotRequest) =>
        evalScript(
          "releaseSlot",
          req.limiter,
          Scripts.slotRelease,
          [slotKey(req)],
          notifications ? [req.holder, freedChannel] : [req.holder],
          req.limit,
          isOne
        )

      // -------------------------------------------------------------------------------------
      // slot notifications: a release publishes the slot's key; waiters of this process wake up

      /** Waiters per slot key. */
      const waiters = new Map<string, Set<Deferred.Deferred<void>>>()
      let subscriber: Redis | undefined
      const ensureSubscriber = (): void => {
        if (subscriber !== undefined || !(first instanceof Redis)) return
        // Its own connection (a subscribed connection runs no other command); commands wait for
        // the connection instead of failing, and ioredis subscribes again after a reconnect.
        const sub = first.duplicate({ lazyConnect: false, enableOfflineQueue: true })
        // A failing subscriber only makes waiters fall back to their backoff.
        sub.on("error", () => undefined)
        sub.on("message", (channel: string, slot: string) => {
          const set = waiters.get(slot)
          if (set === undefined) return
          if (channel === resetChannel) {
            waiters.delete(slot)
            for (const waiter of set) Deferred.unsafeDone(waiter, Exit.void)
            return
          }
          // One release frees one slot: wake this process's oldest waiter only. Every process
          // wakes one, so a release costs one attempt per process, not one per waiting fiber;
          // the others keep waiting for the next message (or their backoff).
          for (const waiter of set) {
            set.delete(waiter)
            if (set.size === 0) waiters.delete(slot)
            Deferred.unsafeDone(waiter, Exit.void)
            return
          }
        })
        sub.subscribe(freedChannel, resetChannel).catch(() => undefined)
        subscriber = sub
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => subscriber?.disconnect()))

      const awaitSlot = (limiter: string, key: string, maxWaitMs: number): Effect.Effect<void> =>
        Effect.suspend(() => {
          ensureSubscriber()
          const slot = keyOf(limiter, key, "cc")
          const waiter = Deferred.unsafeMake<void>(FiberId.none)
          let set = waiters.get(slot)
          if (set === undefined) {
            set = new Set()
            waiters.set(slot, set)
          }
          set.add(waiter)
          return Deferred.await(waiter).pipe(
            Effect.timeoutOption(Duration.millis(maxWaitMs)),
            Effect.asVoid,
            Effect.ensuring(Effect.sync(() => {
              const current = waiters.get(slot)
              if (current === undefined) return
              current.delete(waiter)
              if (current.size === 0) waiters.delete(slot)
            }))
          )
        })

      const peek = (req: PeekRequest): Effect.Effect<StoreDecision, StoreError> => {
        switch (req.algorithm) {
          case "token_bucket":
            return evalScript("peek", req.limiter, Scripts.tokenBucketPeek, [keyOf(req.limiter, req.key, "tb")], [
              intervalUs(req.ratePerSecond),
              req.burst
            ], req.burst, decision)
          case "sliding_window":
            return evalScript(
              "peek",
              req.limiter,
              Scripts.slidingWindowPeek,
              [keyOf(req.limiter, req.key, "sw"), keyOf(req.limiter, req.key, "swm")],
              [Math.round(req.windowMs * 1000), req.limit],
              req.limit,
              decision
            )
          case "fixed_window":
            return evalScript("peek", req.limiter, Scripts.fixedWindowPeek, [keyOf(req.limiter, req.key, "fw")], [
              Math.max(1, Math.round(req.windowMs)),
              req.limit
            ], req.limit, decision)
          case "concurrency":
            return evalScript("peek", req.limiter, Scripts.slotPeek, [keyOf(req.limiter, req.key, "cc")], [req.limit], req.limit, decision)
        }
      }

      const STATES = ["tb", "sw", "swm", "fw", "cc"] as const

      /** Every standalone connection or cluster master, for SCAN and SCRIPT LOAD. */
      const nodes = (): ReadonlyArray<Redis> => first instanceof Cluster ? first.nodes("master") : [first]

      const scanDelete = async (node: Redis, pattern: string): Promise<void> => {
        let cursor = "0"
        do {
          const [nextCursor, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", 1000)
          cursor = nextCursor
          // one key per command: keys of different (limiter, key) pairs live in different slots
          await Promise.all(keys.map((k) => first.unlink(k)))
        } while (cursor !== "0")
      }

      const reset = (limiter: string, key?: string) =>
        key !== undefined
          ? call("reset", limiter, () =>
            first.del(...STATES.map((s) => keyOf(limiter, key, s))).then(() => {
              // the key's slots are free: wake its waiters everywhere (best effort)
              if (notifications) first.publish(resetChannel, keyOf(limiter, key, "cc")).catch(() => undefined)
            }))
          : Effect.tryPromise({
            try: () =>
              Promise.all(
                nodes().map((node) => scanDelete(node, `${escapeGlob(prefix)}:{${limiterPart(limiter)}.*`))
              ).then(() => undefined),
            catch: (e) => fail("reset", messageOf(e))
          }).pipe(
            Effect.timeoutFail({
              duration: Duration.sum(timeout, Duration.seconds(30)),
              onTimeout: () => fail("reset", `reset did not finish in time`)
            }),
            Effect.withSpan("RateLimitStore.redis.reset", {
              kind: "client",
              captureStackTrace: false,
              attributes: { [ATTR_DB_SYSTEM_NAME]: "redis", [ATTR_LIMITER]: limiter }
            })
          )

      const initialize = Effect.tryPromise({
        try: () =>
          Promise.all(
            clients.flatMap((c) =>
              (c instanceof Cluster ? c.nodes("master") : [c]).flatMap((node) =>
                Object.values(Scripts).map((s) => node.script("LOAD", s.source))
              )
            )
          ).then(() => undefined),
        catch: (e) => fail("initialize", messageOf(e))
      }).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(Math.max(timeoutMs, connectTimeoutMs)),
          onTimeout: () => fail("initialize", `scripts not loaded within ${Math.max(timeoutMs, connectTimeoutMs)} ms`)
        })
      )

      yield* initialize

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
        initialize,
        ...(notifications ? { awaitSlot } : {})
      })
    })
  })

/**
 * What makes ioredis misbehave instead of failing: a database path or `db` that is not a whole
 * number (it would send `SELECT NaN`), another scheme. (A URL it cannot parse, or with a bad `%`
 * escape, is a `ConfigError`: see `parseOptionUrl`.) Never quotes the URL.
 */
const urlProblem = (options: RedisStoreOptions, url: StoreUrl | undefined): string | undefined => {
  if (options.db !== undefined && !(Number.isSafeInteger(options.db) && options.db >= 0)) {
    return `db must be a whole number ≥ 0, received ${String(options.db)}`
  }
  if (url === undefined) return undefined
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return `url must be redis:// or rediss://, received the scheme ${JSON.stringify(url.protocol)}`
  }
  const path = url.pathname
  if (path !== "" && path !== "/" && !/^\/\d+$/.test(path)) {
    return `url's database path must be a whole number, received ${JSON.stringify(path.slice(1))}`
  }
  return undefined
}

const parseNode = (node: string): { host: string; port: number } => {
  const i = node.lastIndexOf(":")
  if (i < 0) return { host: node, port: 6379 }
  const host = node.slice(0, i).replace(/^\[|\]$/g, "")
  const port = Number(node.slice(i + 1))
  return { host, port: Number.isFinite(port) ? port : 6379 }
}

const credentialsFromUrl = (url: StoreUrl | undefined): { username?: string; password?: string } =>
  url === undefined ? {} : {
    ...(url.username !== "" ? { username: url.username } : {}),
    ...(url.password !== "" ? { password: url.password } : {})
  }

// ---------------------------------------------------------------------------------------------
// layers and config

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisStoreOptions = {}): Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError> =>
  Layer.scoped(RateLimitStore, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<RedisStoreOptions>
): Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | ConfigError.ConfigError> =>
  Layer.scoped(RateLimitStore, Effect.flatMap(Config.unwrap(options), make))

/**
 * A duration read from config: a number of seconds (rate-sync's TOML unit) or a duration string
 * (`"500 millis"`).
 */
const durationConfig = (name: string): Config.Config<Duration.Duration> =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const text = raw.trim()
      const seconds = Number(text)
      if (text !== "" && Number.isFinite(seconds) && seconds >= 0) {
        return Either.right(Duration.millis(seconds * 1000))
      }
      return Option.match(Duration.decodeUnknown(text), {
        onNone: () =>
          Either.left(ConfigError.InvalidData([], `Expected seconds or a duration such as "500 millis", received "${text}"`)),
        onSome: Either.right
      })
    })
  )

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The options read from configuration: `URL`, `DB`, `PASSWORD`, `USERNAME`, `KEY_PREFIX`,
 * `POOL_MIN_SIZE`, `POOL_MAX_SIZE`, `TIMING_MARGIN_MS`, `SOCKET_TIMEOUT`, `SOCKET_CONNECT_TIMEOUT`,
 * `COMMAND_TIMEOUT` (seconds or a duration string), `CLUSTER_NODES` (comma separated) and
 * `AUTO_PIPELINING`, all under `RATE_SYNC_REDIS_` in the environment.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<RedisStoreOptions> = Config.all({
  url: optional(Config.redacted("URL")),
  db: optional(Config.integer("DB")),
  password: optional(Config.redacted("PASSWORD")),
  username: optional(Config.string("USERNAME")),
  keyPrefix: optional(Config.string("KEY_PREFIX")),
  poolMinSize: optional(Config.integer("POOL_MIN_SIZE")),
  poolMaxSize: optional(Config.integer("POOL_MAX_SIZE")),
  timingMarginMs: optional(Config.number("TIMING_MARGIN_MS")),
  socketTimeout: optional(durationConfig("SOCKET_TIMEOUT")),
  socketConnectTimeout: optional(durationConfig("SOCKET_CONNECT_TIMEOUT")),
  commandTimeout: optional(durationConfig("COMMAND_TIMEOUT")),
  clusterNodes: optional(
    Config.map(Config.string("CLUSTER_NODES"), (s) => s.split(",").map((n) => n.trim()).filter((n) => n !== ""))
  ),
  autoPipelining: optional(Config.boolean("AUTO_PIPELINING")),
  maxBatchSize: optional(Config.integer("MAX_BATCH_SIZE"))
}).pipe(Config.nested("REDIS"), Config.nested("RATE_SYNC"))

/**
 * The store configured from the environment (`RATE_SYNC_REDIS_URL`, ...; see {@link config}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLive: Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | ConfigError.ConfigError> =
  layerConfig(config)

/**
 * Alias of {@link layerLive}: `Effect.provide(RedisStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const RedisStoreLive: Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError | ConfigError.ConfigError> =
  layerLive

/**
 * Builds the store a `RedisStoreDefinition` (TOML `engine = "redis"`, `configureStore`) describes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDefinition = (
  definition: RedisStoreDefinition
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  make(optionsFromDefinition(definition))

/**
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromDefinition = (definition: RedisStoreDefinition): RedisStoreOptions => {
  const { engine: _, ...rest } = definition
  return rest
}
