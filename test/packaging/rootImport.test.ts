import { assert, describe, it } from "#test/vitest"
import { runWithHook } from "./run.js"

const run = runWithHook("block-drivers.mjs")

describe("packaging: optional peers", () => {
  it("the root module and a memory-store program run with every optional peer missing", async () => {
    const r = await run(`
      import { Effect, Layer } from "effect"
      const { MemoryStore, RateLimiter, RateSync } = await import("./src/index.ts")
      const live = RateLimiter.layer({ api: { ratePerSecond: 10 } }).pipe(Layer.provide(MemoryStore.layer()))
      const d = await Effect.runPromise(RateLimiter.check("api").pipe(Effect.provide(live)))
      console.log("allowed=" + d.allowed + " rateSync=" + typeof RateSync.layer)
    `)
    assert.strictEqual(r.stderr.includes("blocked optional peer"), false, r.stderr)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, "allowed=true rateSync=object")
  })

  it("the hook really blocks: the redis subpath needs ioredis, and says so", async () => {
    const r = await run(`await import("./src/redis.ts")`)
    assert.notStrictEqual(r.code, 0)
    assert.include(r.stderr, "blocked optional peer: ioredis")
  })

  // Each driver subpath imported without its peers: the error names the exact install line, keeps
  // Node's code, and has Node's error as its cause.
  for (
    const [entry, install] of [
      ["redis", "npm install ioredis"],
      ["nats", "npm install @nats-io/transport-node @nats-io/kv"],
      ["postgres", "npm install @effect/sql @effect/sql-pg"]
    ] as const
  ) {
    it(`the ${entry} subpath without its peers fails naming \`${install}\``, async () => {
      const r = await run(`
        try {
          await import("./src/${entry}.ts")
          console.log("loaded")
        } catch (error) {
          console.log(JSON.stringify({ message: error.message, code: error.code, cause: String(error.cause) }))
        }
      `)
      assert.strictEqual(r.code, 0, r.stderr)
      const failure: { readonly message: string; readonly code: string; readonly cause: string } = JSON.parse(r.stdout)
      assert.isTrue(failure.message.endsWith(install), failure.message)
      assert.include(failure.message, `effect-rate-sync/${entry} needs the optional peer`)
      assert.strictEqual(failure.code, "ERR_MODULE_NOT_FOUND")
      assert.include(failure.cause, "blocked optional peer")
    })
  }

  it("Node's own ERR_MODULE_NOT_FOUND (no hook involved) is reported the same; a missing file of the library is not", async () => {
    const r = await run(`
      const { importDriver } = await import("./src/internal/peer.ts")
      const report = (error) => JSON.stringify({ message: error.message, code: error.code, cause: String(error.cause) })
      await importDriver("demo", ["not-installed-peer-a1"], () => import("not-installed-peer-a1/sub")).catch((e) => console.log(report(e)))
      await importDriver("demo", ["not-installed-peer-a1"], () => import("not-installed-peer-b2")).catch((e) => console.log(report(e)))
      await importDriver("demo", ["not-installed-peer-a1"], () => import("./src/no-such-file.js")).catch((e) => console.log(report(e)))
    `)
    assert.strictEqual(r.code, 0, r.stderr)
    const [peer, needed, file] = r.stdout.trim().split("\n").map((line): { readonly message: string; readonly code: string; readonly cause: string } => JSON.parse(line))
    assert.isTrue(peer?.message.endsWith("npm install not-installed-peer-a1"), peer?.message)
    assert.strictEqual(peer?.code, "ERR_MODULE_NOT_FOUND")
    assert.include(peer?.cause, "Cannot find package 'not-installed-peer-a1'")
    // A package the peers need, not among them: named too.
    assert.isTrue(needed?.message.endsWith("npm install not-installed-peer-a1 not-installed-peer-b2"), needed?.message)
    assert.notInclude(file?.message, "npm install", "a missing file of the library passes through")
    assert.strictEqual(file?.code, "ERR_MODULE_NOT_FOUND")
  })

  it("a config naming the redis engine without ioredis installed fails with a ConfigError that says what to install", async () => {
    const r = await run(`
      import { Effect } from "effect"
      const { RateSync, RateSyncConfig } = await import("./src/index.ts")
      const config = await Effect.runPromise(RateSyncConfig.parse('[stores.main]\\nengine = "redis"\\n[limiters.api]\\nstore = "main"\\nrate_per_second = 1'))
      const exit = await Effect.runPromiseExit(Effect.scoped(RateSync.layerFromConfig(config).pipe((l) => Effect.asVoid(Effect.provide(Effect.void, l)))))
      console.log(JSON.stringify(exit.cause?.failure ?? exit.cause?.error ?? null))
    `)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, '"_tag":"ConfigError"')
    assert.include(r.stdout, "npm install ioredis")
    assert.include(r.stdout, "stores.main.engine")
  })
})
