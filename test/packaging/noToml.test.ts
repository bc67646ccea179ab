/**
 * The registry and the root module load neither the TOML parser (smol-toml) nor the file system:
 * definitions written in code are validated by `internal/config/storeDefinition.ts` (from the
 * field tables), and only `RateSyncConfig.parse` / `load` (so `RateSync`'s layers) load
 * smol-toml and `node:fs`, when called.
 */
import { assert, describe, it } from "#test/vitest"
import { runWithHook } from "./run.js"

const run = runWithHook("block-toml-fs.mjs")

describe("packaging: smol-toml and node:fs", () => {
  it("importing RateLimiter, then validating and building a store defined in code, loads neither", async () => {
    const r = await run(`
      import { Effect, Layer } from "effect"
      const RateLimiter = await import("./src/RateLimiter.ts")
      const program = Effect.gen(function*() {
        yield* RateLimiter.configureStore("m", { engine: "memory", maxKeys: 10, maxBytes: 1_000_000 })
        const bad = yield* Effect.flip(RateLimiter.configureStore("x", { engine: "memory", maxKeys: -1 }))
        yield* RateLimiter.configureLimiter("api", { store: "m", ratePerSecond: 10 })
        const d = yield* RateLimiter.check("api")
        return "allowed=" + d.allowed + " bad=" + bad._tag + ":" + (bad._tag === "ConfigError" ? bad.path : "")
      })
      console.log(await Effect.runPromise(Effect.scoped(Effect.flatMap(RateLimiter.make({}), (service) =>
        Effect.provideService(program, RateLimiter.RateLimiter, service)))))
    `)
    assert.strictEqual(r.stderr.includes("blocked module"), false, r.stderr)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, "allowed=true bad=ConfigError:stores.x.maxKeys")
  })

  it("importing the root module loads neither", async () => {
    const r = await run(`
      const root = await import("./src/index.ts")
      console.log("modules=" + Object.keys(root).length)
    `)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.include(r.stdout, "modules=")
  })

  it("the hook really blocks: RateSyncConfig.parse needs smol-toml, and loads it only then", async () => {
    const r = await run(`
      import { Cause, Effect, Exit } from "effect"
      const { RateSyncConfig } = await import("./src/index.ts")
      const exit = await Effect.runPromiseExit(RateSyncConfig.parse("[limiters.api]\\nrate_per_second = 1\\n"))
      console.log("exit=" + exit._tag + " " + (Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""))
    `)
    assert.include(r.stdout, "exit=Failure")
    assert.include(r.stdout + r.stderr, "blocked module: smol-toml")
  })
})
