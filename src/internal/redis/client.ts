/**
 * The Redis store's connections: a standalone pool (used round-robin) or one cluster client,
 * connected before the store answers (bounded by the connect timeout), closed with its scope.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Cluster, Redis } from "ioredis"
import type { ClusterOptions, RedisOptions } from "ioredis"
import { messageOf } from "../../core/secrets.js"
import type { StoreUrl } from "../../core/url.js"
import type { StoreError } from "../../RateLimitStore.js"
import type { Settings } from "./settings.js"

/** @internal */
export type Client = Redis | Cluster

const DEFAULT_URL = "redis://127.0.0.1:6379"

/**
 * The store's clients, all connected. `pick` takes the next one round-robin (a cluster client,
 * or a pool of one, is always the same).
 *
 * @internal
 */
export class Pool {
  private next = 0
  constructor(readonly clients: ReadonlyArray<Client>, readonly first: Client) {}
  pick(): Client {
    if (this.clients.length === 1) return this.first
    this.next = (this.next + 1) % this.clients.length
    return this.clients[this.next] ?? this.first
  }
  /** Every standalone connection or cluster master, for SCAN and SCRIPT LOAD. */
  nodes(): ReadonlyArray<Redis> {
    return this.first instanceof Cluster ? this.first.nodes("master") : [this.first]
  }
}

/** The last error a client reported; `fatal` when it is a refusal (wrong password, unknown db). */
interface LastError {
  message: string
  fatal: boolean
}

/**
 * Opens `settings.poolSize` clients (one on a cluster), each connected before the next is opened;
 * they close (`QUIT`, bounded by a second, then a disconnect) with the scope.
 *
 * @internal
 */
export const open = (settings: Settings): Effect.Effect<Pool, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const lastError: LastError = { message: "", fatal: false }
    const onError = (e: unknown) => {
      lastError.message = messageOf(e)
      // a reply error while connecting is a refusal (wrong password, unknown db), not a blip
      lastError.fatal = e instanceof Error && e.name === "ReplyError"
    }
    const clients: Array<Client> = []
    for (let i = 0; i < settings.poolSize; i++) {
      const client = yield* Effect.acquireRelease(Effect.sync(() => newClient(settings, onError)), closeClient)
      yield* connect(settings, client, lastError)
      clients.push(client)
    }
    const first = clients[0]
    if (first === undefined) return yield* Effect.die(new Error("no Redis client"))
    return new Pool(clients, first)
  })

/** The ioredis options every connection shares. */
const commonOptions = (settings: Settings): RedisOptions => {
  const { options } = settings
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: options.autoPipelining ?? false,
    // No per-command `commandTimeout`: ioredis arms and clears a timer per command for it, which
    // cost 10-15% of the throughput at 64 callers. The deadline sweeper bounds every call instead.
    connectTimeout: settings.connectTimeoutMs,
    socketTimeout: settings.socketTimeoutMs,
    ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {}),
    ...(options.username !== undefined ? { username: options.username } : {}),
    // reconnect quickly, so enforcement is back soon after the server is
    retryStrategy: (times: number) => Math.min(25 * times, 200)
  }
}

const newClient = (settings: Settings, onError: (e: unknown) => void): Client => {
  const { options } = settings
  const common = commonOptions(settings)
  if (settings.clustered && options.clusterNodes !== undefined) {
    const { retryStrategy: _, ...redisOptions } = common
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: options.autoPipelining ?? false,
      clusterRetryStrategy: (times: number) => Math.min(50 * times, 500),
      slotsRefreshTimeout: settings.connectTimeoutMs,
      // explicit `password` / `username` win over the userinfo of `url`
      redisOptions: { ...credentialsFromUrl(settings.url), ...redisOptions }
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

/**
 * Waits until `client` is ready: fails at once on a refusal, else at the connect timeout (quoting
 * the last error; ioredis retries in between).
 */
const connect = (settings: Settings, client: Client, lastError: LastError): Effect.Effect<void, StoreError> =>
  Fx.callback<void, StoreError>((resume) => {
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
      if (lastError.fatal) finish(Effect.fail(settings.fail("connect", lastError.message)))
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
    Fx.timeoutFail({
      duration: Duration.millis(settings.connectTimeoutMs),
      onTimeout: () =>
        settings.fail(
          "connect",
          `could not connect within ${settings.connectTimeoutMs} ms${
            lastError.message === "" ? "" : `: ${lastError.message}`
          }`
        )
    })
  )

const closeClient = (client: Client): Effect.Effect<void> =>
  Effect.tryPromise(() => client.quit()).pipe(
    Effect.timeoutOption(1000),
    Effect.ignore,
    Effect.ensuring(Effect.sync(() => client.disconnect()))
  )

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
