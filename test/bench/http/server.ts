/**
 * One HTTP server of the HTTP benchmark (`test/bench/http.bench.ts` starts it as a child process):
 * `server.ts <framework> <limiter> <store> <mode>`, listening on a free loopback port it prints
 * as `PORT <n>`.
 *
 * - framework: `express`, `fastify`, `hono` (on `@hono/node-server`);
 * - limiter: `none` (the route alone), `ours` (this library's adapter over the promise facade,
 *   loaded from the build of the running major), `peer` (express-rate-limit, @fastify/rate-limit,
 *   hono-rate-limiter);
 * - store: `memory` (each limiter's in-process store), `redis` (ours: `RedisStore`; peers:
 *   rate-limit-redis for Express, @fastify/rate-limit's own `redis` option; Hono: none);
 * - mode: `admit` (a limit no key reaches) or `refuse` (1 per hour: a key's every request after
 *   its first is a 429).
 *
 * Every limiter is a fixed window of one hour keyed by the `x-key` header (the load sends 1 000
 * keys), with its standard rate-limit headers on.
 */
import { serve } from "@hono/node-server"
import fastifyRateLimit from "@fastify/rate-limit"
import express from "express"
import { rateLimit as expressRateLimit } from "express-rate-limit"
import Fastify from "fastify"
import { Hono } from "hono"
import { rateLimiter as honoRateLimiter } from "hono-rate-limiter"
import { Redis } from "ioredis"
import type { AddressInfo } from "node:net"
import { RedisStore as PeerRedisStore } from "rate-limit-redis"
import * as T from "#test/effect"

const [framework = "express", limiter = "none", store = "memory", mode = "admit"] = process.argv.slice(2)
const LIMIT = mode === "refuse" ? 1 : 1_000_000_000
const WINDOW_MS = 3_600_000
const REDIS_URL = process.env["RATE_SYNC_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
const PREFIX = `bench-http-${crypto.randomUUID()}`

const major: number = T.major
// as in the other benches: the library from the build of the running major (see redis.bench.ts)
const distUrl = (file: string) => new globalThis.URL(`../../../packages/effect${major}/dist/${file}`, import.meta.url).href

/** The port of a server listening on TCP (Node types `address()` as string | AddressInfo | null). */
const portOf = (address: string | AddressInfo | null): number => {
  if (address === null || typeof address === "string") throw new Error(`not a TCP server: ${String(address)}`)
  return address.port
}

const keyOf = (header: string | Array<string> | undefined): string => (typeof header === "string" ? header : "none")

/** Ours: the limiter "api" on the memory store or on a Redis store, through the promise facade. */
const configureOurs = async () => {
  const facade: typeof import("effect-rate-sync/promise") = await import(distUrl("promise.js"))
  const { Redacted } = await import("effect")
  if (store === "redis") {
    await facade.configureStore("bench", { engine: "redis", url: Redacted.make(REDIS_URL), keyPrefix: PREFIX })
  }
  await facade.configureLimiter("api", {
    algorithm: "fixed_window",
    limit: LIMIT,
    window: "1 hour",
    ...(store === "redis" ? { store: "bench" } : {})
  })
  await facade.initializeLimiter("api")
}

const redis = () => new Redis(REDIS_URL, { lazyConnect: false })

const listenExpress = async (): Promise<number> => {
  const app = express()
  if (limiter === "ours") {
    await configureOurs()
    const adapter: typeof import("effect-rate-sync/express") = await import(distUrl("express.js"))
    app.use(adapter.rateLimit({ limiter: "api", key: (req) => keyOf(req.headers["x-key"]) }))
  } else if (limiter === "peer") {
    const client = store === "redis" ? redis() : undefined
    app.use(expressRateLimit({
      windowMs: WINDOW_MS,
      limit: LIMIT,
      standardHeaders: "draft-7",
      legacyHeaders: false,
      keyGenerator: (req) => keyOf(req.headers["x-key"]),
      validate: false,
      ...(client === undefined ? {} : {
        store: new PeerRedisStore({
          prefix: `${PREFIX}:`,
          // ioredis `call` answers what the script returns (a typed boundary of rate-limit-redis)
          sendCommand: (command: string, ...args: Array<string>) => client.call(command, ...args) as Promise<number>
        })
      })
    }))
  }
  app.get("/", (_req, res) => {
    res.send("ok")
  })
  return new Promise((resolve) => {
    const server = app.listen(0, "127.0.0.1", () => resolve(portOf(server.address())))
  })
}

const listenFastify = async (): Promise<number> => {
  const app = Fastify({ logger: false })
  if (limiter === "ours") {
    await configureOurs()
    const adapter: typeof import("effect-rate-sync/fastify") = await import(distUrl("fastify.js"))
    app.addHook("onRequest", adapter.rateLimit({ limiter: "api", key: (req) => keyOf(req.headers["x-key"]) }))
  } else if (limiter === "peer") {
    await app.register(fastifyRateLimit, {
      max: LIMIT,
      timeWindow: WINDOW_MS,
      keyGenerator: (req) => keyOf(req.headers["x-key"]),
      ...(store === "redis" ? { redis: redis(), nameSpace: `${PREFIX}:` } : {})
    })
  }
  app.get("/", async () => "ok")
  await app.listen({ port: 0, host: "127.0.0.1" })
  return portOf(app.server.address())
}

const listenHono = async (): Promise<number> => {
  const app = new Hono()
  if (limiter === "ours") {
    await configureOurs()
    const adapter: typeof import("effect-rate-sync/hono") = await import(distUrl("hono.js"))
    app.use(adapter.rateLimit({ limiter: "api", key: (c) => c.req.header("x-key") ?? "none" }))
  } else if (limiter === "peer") {
    if (store === "redis") throw new Error("hono-rate-limiter: no Redis store in this benchmark")
    app.use(honoRateLimiter({
      windowMs: WINDOW_MS,
      limit: LIMIT,
      standardHeaders: "draft-7",
      keyGenerator: (c) => c.req.header("x-key") ?? "none"
    }))
  }
  app.get("/", (c) => c.text("ok"))
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => resolve(info.port))
    void server
  })
}

const port = framework === "fastify" ? await listenFastify() : framework === "hono" ? await listenHono() : await listenExpress()
process.stdout.write(`PORT ${port}\n`)
// `CPU <µs>` on a line of stdin "cpu": this process's CPU time so far (user + system), which the
// runner reads before and after a measurement
process.stdin.setEncoding("utf8")
process.stdin.on("data", (chunk: string) => {
  if (!chunk.includes("cpu")) return
  const usage = process.cpuUsage()
  process.stdout.write(`CPU ${usage.user + usage.system}\n`)
})
// a clean exit on the runner's SIGTERM (so that `node --cpu-prof` writes its profile)
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => process.exit(0))
