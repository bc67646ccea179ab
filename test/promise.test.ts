import { fileURLToPath } from "node:url"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { Layer } from "effect"
import { LimiterNotFound, MemoryStore, RateLimiter } from "effect-rate-sync"
import * as RS from "effect-rate-sync/promise"

const exampleToml = fileURLToPath(new URL("../examples/rate-sync.toml", import.meta.url))

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
    assert.instanceOf(error, LimiterNotFound)
  })
})
