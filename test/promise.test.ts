import { spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterEach, assert, describe, it } from "#test/vitest"
import { Duration, Effect, Layer } from "effect"
import { MemoryStore, RateLimitError, RateLimiter, RateLimitStore } from "effect-rate-sync"
import * as RS from "effect-rate-sync/promise"
import * as T from "#test/effect"

const exampleToml = fileURLToPath(new URL("../examples/rate-sync.toml", import.meta.url))

// The rejection of a promise that must reject.
const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => e
  )

// A store outside any runtime, so that two configurations of the facade can share it.
const sharedStore = (): Layer.Layer<RateLimitStore.RateLimitStore> =>
  Layer.succeed(RateLimitStore.RateLimitStore, Effect.runSync(Effect.scoped(MemoryStore.make())))

// Runs `body` with `$RATE_SYNC_CONFIG` naming a file that does not exist: building the default
// configuration then fails, so a call that would build it behind our back rejects.
const withoutDefaultConfig = async (body: () => Promise<void>): Promise<void> => {
  const saved = process.env.RATE_SYNC_CONFIG
  process.env.RATE_SYNC_CONFIG = join(tmpdir(), `missing-${crypto.randomUUID()}.toml`)
  try {
    await body()
  } finally {
    if (saved === undefined) delete process.env.RATE_SYNC_CONFIG
    else process.env.RATE_SYNC_CONFIG = saved
  }
}

interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

// Runs a TypeScript module with tsx in a fresh `node` process (in an empty directory, without
// `$RATE_SYNC_CONFIG`). The watchdog kills a child still running after `watchdogMs`.
const runChild = async (source: string, watchdogMs: number): Promise<ChildResult> => {
  const dir = await mkdtemp(join(tmpdir(), "rate-sync-child-"))
  try {
    const script = join(dir, "child.mts") // an ES module wherever it lives (top-level await)
    await writeFile(script, source)
    // tsx as a loader of this very process (its CLI would run the script in a grandchild that
    // the watchdog could not reach).
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
    const env = { ...process.env }
    delete env.RATE_SYNC_CONFIG
    return await new Promise<ChildResult>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", tsx, script], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
      const watchdog = setTimeout(() => child.kill("SIGKILL"), watchdogMs)
      child.on("error", (e) => {
        clearTimeout(watchdog)
        reject(e)
      })
      child.on("close", (code, signal) => {
        clearTimeout(watchdog)
        resolve({ code, signal, stdout, stderr })
      })
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

describe("Promise facade", () => {
  afterEach(() => RS.dispose())

  it("acquire / release holds and frees a concurrency slot; await using releases too", async () => {
    await RS.useLayer(RateLimiter.layer({ db: { maxConcurrent: 1 } }).pipe(Layer.provide(MemoryStore.layer())))
    const first = await RS.acquire("db")
    assert.isFalse(await RS.tryAcquire("db"))
    await first.release()
    await first.release() // idempotent
    assert.isTrue(await RS.tryAcquire("db"))
    {
      await using _held = await RS.acquire("db")
      assert.isFalse(await RS.tryAcquire("db"))
    }
    assert.isTrue(await RS.tryAcquire("db"))
    const m = (await RS.getLimiter("db")).getMetrics()
    assert.strictEqual(m.currentConcurrent, 0)
    assert.strictEqual(m.totalReleases, 4)
  })

  it("rateLimited wraps an async function, with a limiter id chosen per call", async () => {
    await RS.useLayer(RateLimiter.layer({}).pipe(Layer.provide(MemoryStore.layer())))
    await RS.configureLimiter("tenant-a", { maxConcurrent: 1 })
    await RS.cloneLimiter("tenant-a", "tenant-b")
    let running = 0
    let peak = 0
    const work = RS.rateLimited((tenant: string) => `tenant-${tenant}`)(async (tenant: string) => {
      running++
      peak = Math.max(peak, running)
      await new Promise((resolve) => setImmediate(resolve))
      running--
      return tenant
    })
    const out = await Promise.all(["a", "a", "b", "b"].map((t) => work(t)))
    assert.deepStrictEqual(out, ["a", "a", "b", "b"])
    assert.strictEqual(peak, 2) // one per tenant at a time
    const limiters = await RS.listLimiters()
    assert.deepStrictEqual(Object.keys(limiters).sort(), ["tenant-a", "tenant-b"])
  })

  it("loadConfig reads a rate-sync.toml; failures reject with tagged errors", async () => {
    await RS.loadConfig(exampleToml)
    assert.deepStrictEqual(Object.keys(await RS.listStores()), ["local"])
    await RS.initializeAllLimiters()
    const d = await RS.check("login", { key: "198.51.100.1" })
    assert.isTrue(d.allowed)
    assert.strictEqual(d.remaining, 4)
    const error = await RS.acquire("missing").then(
      () => undefined,
      (e: unknown) => e
    )
    assert.instanceOf(error, RateLimitError.LimiterNotFound)
  })

  it("loadConfig of a bad path rejects with the tagged ConfigError and leaves the previous configuration working", async () => {
    await RS.useLayer(RateLimiter.layer({ db: { maxConcurrent: 1 } }).pipe(Layer.provide(MemoryStore.layer())))
    const held = await RS.acquire("db")
    const error = await rejection(RS.loadConfig(join(tmpdir(), `missing-${crypto.randomUUID()}.toml`)))
    assert.instanceOf(error, RateLimitError.ConfigError, "the tagged error itself, not a FiberFailure wrapper")
    // The same runtime, with its state: the slot is still held, then released.
    assert.isFalse(await RS.tryAcquire("db"), "the previous configuration still holds the slot")
    await held.release()
    assert.isTrue(await RS.tryAcquire("db"))
    assert.deepStrictEqual(Object.keys(await RS.listLimiters()), ["db"])
    // A good file still replaces it.
    await RS.loadConfig(exampleToml)
    assert.deepStrictEqual(Object.keys(await RS.listStores()), ["local"])
  })

  it("dispose gives back the slots still held; release() afterwards is a no-op that builds no runtime", async () => {
    const store = sharedStore()
    const limiters = RateLimiter.layer({ db: { maxConcurrent: 1 } })
    await RS.useLayer(limiters.pipe(Layer.provide(store)))
    const held = await RS.acquire("db")
    await withoutDefaultConfig(async () => {
      await RS.dispose()
      await held.release() // would reject with ConfigError if it built the default runtime
      await held[Symbol.asyncDispose]()
    })
    // A new configuration over the same store finds the slot free: dispose released it.
    await RS.useLayer(limiters.pipe(Layer.provide(store)))
    assert.isTrue(await RS.tryAcquire("db"), "the slot was given back by dispose")
    // The same when loadConfig / useLayer replaces the configuration a permit was acquired on.
    const second = await RS.acquire("db")
    await RS.useLayer(limiters.pipe(Layer.provide(store)))
    const third = await RS.acquire("db", { timeout: 0 })
    await second.release() // a no-op: it must not free the slot `third` holds
    assert.isFalse(await RS.tryAcquire("db"), "third still holds the only slot")
    await third.release()
    assert.isTrue(await RS.tryAcquire("db"))
  })

  it("dispose while an acquire is waiting: it rejects with ConfigurationClosed and holds no slot", async () => {
    const store = sharedStore()
    const limiters = RateLimiter.layer({ db: { maxConcurrent: 1 } })
    await RS.useLayer(limiters.pipe(Layer.provide(store)))
    const held = await RS.acquire("db")
    const waiting = rejection(RS.acquire("db")) // no timeout: waits for the slot `held` has
    await withoutDefaultConfig(async () => {
      await RS.dispose()
      const error = await waiting
      assert.instanceOf(error, RS.ConfigurationClosed, `a typed rejection, not a defect: ${String(error)}`)
      assert.strictEqual(error.reason, "disposed")
      await held.release() // a no-op: dispose gave the slot back; builds no runtime either
    })
    // Over the same store, the slot is free: the interrupted acquire did not take it.
    await RS.useLayer(limiters.pipe(Layer.provide(store)))
    assert.isTrue(await RS.tryAcquire("db"), "no slot left behind by the interrupted acquire")
  })

  it("an acquire started just before dispose rejects with ConfigurationClosed, not a runtime defect", async () => {
    await RS.useLayer(RateLimiter.layer({ db: { maxConcurrent: 1 } }).pipe(Layer.provide(MemoryStore.layer())))
    const pending = rejection(RS.acquire("db"))
    await RS.dispose()
    const error = await pending
    assert.instanceOf(error, RS.ConfigurationClosed, `a typed rejection, not a defect: ${String(error)}`)
    assert.strictEqual(error.reason, "disposed")
  })

  it("an acquire waiting when loadConfig / useLayer replaces the configuration rejects; it never resolves slotless", async () => {
    const store = sharedStore()
    const limiters = RateLimiter.layer({ db: { maxConcurrent: 1 } })
    await RS.useLayer(limiters.pipe(Layer.provide(store)))
    const held = await RS.acquire("db")
    const waiting = rejection(RS.acquire("db"))
    // Replacing gives `held`'s slot back; the waiter must not take it and then lose it.
    await RS.useLayer(limiters.pipe(Layer.provide(store)))
    const error = await waiting
    assert.instanceOf(error, RS.ConfigurationClosed)
    assert.strictEqual(error.reason, "replaced")
    await held.release() // a no-op
    // The new configuration, over the same store, has its one slot free.
    const fresh = await RS.acquire("db", { timeout: 0 })
    assert.isFalse(await RS.tryAcquire("db"), "fresh holds the only slot")
    await fresh.release()
    assert.isTrue(await RS.tryAcquire("db"))
  })

  it("timeouts: a number is seconds, a string or a Duration means what it says; negative is a ConfigError", async () => {
    await RS.useLayer(RateLimiter.layer({ db: { maxConcurrent: 1 } }).pipe(Layer.provide(MemoryStore.layer())))
    const held = await RS.acquire("db")
    // How long a refused tryAcquire waited, in ms.
    const waited = async (timeout: RS.PromiseAcquireOptions["timeout"]): Promise<number> => {
      const start = performance.now()
      assert.isFalse(await RS.tryAcquire("db", { timeout }), `refused after ${String(timeout)}`)
      return performance.now() - start
    }
    const forms: ReadonlyArray<T.DurationInput> = [0.3, "300 millis", "0.3 seconds", Duration.millis(300)]
    for (const timeout of forms) {
      const ms = await waited(timeout)
      assert.isAtLeast(ms, 250, `${String(timeout)} waited ${ms} ms`)
      assert.isBelow(ms, 3000, `${String(timeout)} waited ${ms} ms`)
    }
    assert.isBelow(await waited(0), 250, "0: answers at once")
    // acquire: the same rule, and the refusal is RateLimitExceeded after the wait.
    const start = performance.now()
    const error = await rejection(RS.acquire("db", { timeout: 0.3 }))
    assert.instanceOf(error, RateLimitError.RateLimitExceeded)
    assert.isAtLeast(performance.now() - start, 250)
    // rateLimited passes its options on.
    const refused = await rejection(RS.rateLimited("db", { timeout: 0.05 })(async () => "ran")())
    assert.instanceOf(refused, RateLimitError.RateLimitExceeded)
    // Infinity waits as long as needed: the slot comes when `held` is released.
    const waiting = RS.tryAcquire("db", { timeout: Infinity })
    setTimeout(() => void held.release(), 100)
    assert.isTrue(await waiting)
    // A negative or NaN number is refused as the Effect API refuses it, not clamped to 0.
    for (const timeout of [-1, Number.NaN]) {
      const bad = await rejection(RS.tryAcquire("db", { timeout }))
      assert.instanceOf(bad, RateLimitError.ConfigError)
      assert.strictEqual(bad.path, "options.timeout")
    }
  })

  it("a limiter handle's getMetrics() asks the configuration current at the time of the call", async () => {
    await RS.useLayer(RateLimiter.layer({ db: { maxConcurrent: 2 } }).pipe(Layer.provide(MemoryStore.layer())))
    const handle = await RS.getLimiter("db")
    await (await RS.acquire("db")).release()
    assert.strictEqual(handle.getMetrics().totalAcquisitions, 1)
    await RS.loadConfig(exampleToml) // also defines `db`, with fresh metrics
    assert.strictEqual(handle.getMetrics().totalAcquisitions, 0, "the new configuration's limiter")
    await (await RS.acquire("db")).release()
    assert.strictEqual(handle.getMetrics().totalReleases, 1)
    await RS.dispose()
    let thrown: unknown
    try {
      handle.getMetrics()
    } catch (e) {
      thrown = e
    }
    assert.instanceOf(thrown, RateLimitError.LimiterNotFound, "no configuration after dispose: a tagged error")
  })

  it("check on an in-process store (decided without a fiber): the limit, its replacement, the metrics, bad input and closing as every call", async () => {
    await RS.useLayer(RateLimiter.layer({ api: { algorithm: "fixed_window", limit: 2, window: "1 hour" } }).pipe(Layer.provide(MemoryStore.layer())))
    const first = await RS.check("api", { key: "u" })
    const second = await RS.check("api", { key: "u" })
    const third = await RS.check("api", { key: "u" })
    assert.deepStrictEqual([first, second, third].map((d) => [d.allowed, d.remaining]), [[true, 1], [true, 0], [false, 0]])
    assert.isTrue(third.retryAfterMs > 0 && third.retryAfterMs <= 3_600_000, `until the window's end: ${third.retryAfterMs}`)
    assert.strictEqual((await RS.check("api", { key: "v" })).remaining, 1, "a key of its own")
    const metrics = (await RS.getLimiter("api")).getMetrics()
    assert.deepStrictEqual([metrics.totalAcquisitions, metrics.refusals], [3, 1])
    // the replaced limiter decides the next call: its limit of 5 on the window's count so far (2)
    await RS.configureLimiter("api", { algorithm: "fixed_window", limit: 5, window: "1 hour" })
    assert.deepStrictEqual(await RS.check("api", { key: "u" }).then((d) => [d.allowed, d.limit, d.remaining]), [true, 5, 2])
    // what check itself answers: an unknown id, a bad cost, a concurrency-only limiter
    assert.instanceOf(await rejection(RS.check("nope")), RateLimitError.LimiterNotFound)
    assert.instanceOf(await rejection(RS.check("api", { cost: 0.5 })), RateLimitError.InvalidCost)
    await RS.configureLimiter("db", { maxConcurrent: 1 })
    assert.isTrue((await RS.check("db")).allowed)
    // a configuration replaced: its own limiters decide
    await RS.useLayer(RateLimiter.layer({ api: { algorithm: "fixed_window", limit: 1, window: "1 hour" } }).pipe(Layer.provide(MemoryStore.layer())))
    assert.deepStrictEqual([(await RS.check("api", { key: "u" })).remaining, (await RS.check("api", { key: "u" })).allowed], [0, false])
    await RS.dispose()
  })

  it("a script that uses the facade and never calls dispose() exits by itself", async () => {
    const facade = new URL("../src/promise.ts", import.meta.url).href
    const result = await runChild(
      `import * as RS from ${JSON.stringify(facade)}
await RS.configureLimiter("api", { ratePerSecond: 5 })
await RS.configureLimiter("db", { maxConcurrent: 2 })
await (await RS.acquire("api")).release()
await RS.rateLimited("db")(async () => 1)()
await RS.check("api", { key: "k" })
await RS.tryAcquire("db")
RS.getLimiter("db").then((l) => console.log("done", l.getMetrics().totalReleases))
`,
      30_000
    )
    assert.strictEqual(result.signal, null, `killed by the watchdog: the process did not exit\n${result.stderr}`)
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(result.stdout.trim(), "done 2")
  }, 60_000)
})
