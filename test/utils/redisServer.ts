/**
 * Scoped helpers that start real redis-server processes on free loopback ports (no persistence,
 * in a temp dir) and a 3-master Redis Cluster via `redis-cli --cluster create`. Everything they
 * start is killed and its directory removed when the scope closes.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { required } from "./services.js"

export const HOST = "127.0.0.1"

/** `true` when redis-server and redis-cli are installed; else a loud skip (or a failure in CI). */
export const redisBinariesAvailable = (): boolean => {
  const ok = ["redis-server", "redis-cli"].every((bin) => spawnSync(bin, ["--version"]).status === 0)
  if (ok) return true
  const message = "redis-server / redis-cli are not installed"
  if (required) throw new Error(`${message}, and RATE_SYNC_REQUIRE_SERVICES=1 requires them`)
  console.warn(`\n!!! SKIPPING Redis server tests: ${message} (set RATE_SYNC_REQUIRE_SERVICES=1 to fail instead) !!!\n`)
  return false
}

const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = net.createServer()
    server.once("error", () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })

/** A free port whose cluster bus port (+10000) is free too. */
export const freePort = async (): Promise<number> => {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 30000)
    if ((await portFree(port)) && (await portFree(port + 10000))) return port
  }
  throw new Error("no free port")
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const waitUntil = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

const cli = (args: ReadonlyArray<string>, timeoutMs = 20_000): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile("redis-cli", [...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(" ")} failed: ${stderr || error.message}`))
      else resolve(stdout)
    })
  })

export interface RedisServerOptions {
  readonly port?: number
  readonly password?: string
  readonly cluster?: boolean
  readonly extraArgs?: ReadonlyArray<string>
}

/** One redis-server process that can be killed and started again on the same port and directory. */
export interface RedisServer {
  readonly host: string
  readonly port: number
  readonly url: string
  /** SIGKILL (no shutdown, no save). Resolves when the port is closed. */
  readonly kill: () => Promise<void>
  /** Starts the server again (same port, same options). Resolves when it accepts connections. */
  readonly start: () => Promise<void>
  /** SIGSTOP: the socket stays open but nothing answers. */
  readonly pause: () => void
  /** SIGCONT after `pause`. */
  readonly resume: () => void
  /** Runs a redis-cli command against it. */
  readonly cli: (...args: ReadonlyArray<string>) => Promise<string>
}

const makeServer = async (dir: string, options: RedisServerOptions): Promise<RedisServer & { stopAll: () => void }> => {
  const port = options.port ?? (await freePort())
  let child: ChildProcess | undefined
  const args = [
    "--port", String(port),
    "--bind", HOST,
    "--save", "",
    "--appendonly", "no",
    "--dir", dir,
    "--logfile", path.join(dir, `redis-${port}.log`),
    ...(options.password !== undefined ? ["--requirepass", options.password] : []),
    ...(options.cluster === true
      ? ["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "2000"]
      : []),
    ...(options.extraArgs ?? [])
  ]
  const start = async () => {
    child = spawn("redis-server", args, { stdio: "ignore" })
    await waitUntil(`redis-server on ${port}`, () => accepts(port))
  }
  const kill = async () => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null) return
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve())
      c.kill("SIGKILL")
    })
    await waitUntil(`port ${port} to close`, async () => !(await accepts(port)))
  }
  await start()
  const auth = options.password !== undefined ? ["--no-auth-warning", "-a", options.password] : []
  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    kill,
    start,
    pause: () => {
      child?.kill("SIGSTOP")
    },
    resume: () => {
      child?.kill("SIGCONT")
    },
    cli: (...cmd) => cli(["-h", HOST, "-p", String(port), ...auth, ...cmd]),
    stopAll: () => {
      if (child !== undefined && child.exitCode === null) {
        child.kill("SIGCONT")
        child.kill("SIGKILL")
      }
      child = undefined
    }
  }
}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "rate-sync-redis-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Starts a redis-server on a free loopback port; killed when the scope closes. */
export const redisServer = (options: RedisServerOptions = {}): Effect.Effect<RedisServer, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    return yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => makeServer(dir, options), catch: (e) => e instanceof Error ? e : new Error(String(e)) }),
      (server) => Effect.sync(() => server.stopAll())
    )
  })

export interface RedisClusterHandle {
  readonly nodes: ReadonlyArray<RedisServer>
  /** `host:port` seeds for the cluster client. */
  readonly seeds: ReadonlyArray<string>
}

/** Starts 3 masters with `--cluster-enabled yes`, joins them with `redis-cli --cluster create`. */
export const redisCluster = (masters = 3): Effect.Effect<RedisClusterHandle, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const nodes = yield* Effect.all(Array.from({ length: masters }, () => redisServer({ cluster: true })), {
      concurrency: "unbounded"
    })
    const seeds = nodes.map((n) => `${n.host}:${n.port}`)
    yield* Effect.tryPromise({
      try: async () => {
        await cli(["--cluster", "create", ...seeds, "--cluster-replicas", "0", "--cluster-yes"], 30_000)
        for (const node of nodes) {
          await waitUntil(`cluster state ok on ${node.port}`, async () => {
            const info = await node.cli("CLUSTER", "INFO")
            return info.includes("cluster_state:ok") && info.includes(`cluster_known_nodes:${masters}`)
          }, 20_000)
        }
      },
      catch: (e) => e instanceof Error ? e : new Error(String(e))
    })
    return { nodes, seeds }
  })
