/**
 * The Effect 4 test run: the repository's tests on effect 4.1, @effect/vitest 4 and vitest 5, run
 * by `npm run test:effect4` with this folder's vitest on this folder's Node 24. The repository root
 * is the vitest root, and the projects and the timing split are those of the root `vitest.config.ts`
 * (the Effect 3 run).
 *
 * Resolution: the root `node_modules` is the Effect 3 toolchain, so every bare import of `effect`,
 * `effect/*`, `@effect/*` and `vitest` from the repository's own files (src/, test/, examples/) is
 * resolved again as if imported from this folder (`packages/effect4/package.json`), and must land in
 * this folder's `node_modules`: a package only Effect 3 has (`@effect/platform`, `@effect/sql`,
 * `@effect/experimental`) fails the import with a message instead of falling back to the root's
 * Effect 3 copy (which Node's lookup through the parent folders would find). Packages inside this
 * folder's `node_modules` (@effect/vitest, @effect/platform-node, @effect/sql-pg) are loaded by Node
 * itself and find the same `effect` next to them, so one instance of `effect` and of `vitest` is
 * loaded (checked by test/fx/v4/toolchain.test.ts). `#fx/*` is `src/fx/v4/*.ts` and `#test/*` is
 * `test/fx/v4/*.ts` (the root package.json `imports` name the Effect 3 halves).
 */
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const repo = (path: string) => here(`../../${path}`)
const src = (file: string) => repo(`src/${file}`)

/** The folder every `effect`, `@effect/*` and `vitest` module of the Effect 4 run comes from. */
const toolchain = here("./node_modules/")
/** The importer the bare ids are resolved from. */
const toolchainImporter = here("./package.json")

/** Bare ids that must come from the Effect 4 toolchain. */
const toolchainId = /^(?:effect|vitest|@effect\/[^/]+)(?:\/.*)?$/
/** Packages of the Effect 3 line only (on Effect 4 their modules are in `effect` itself). */
const effect3Only = /^@effect\/(?:platform|sql|experimental)(?:\/.*)?$/

/**
 * Resolves `effect`, `effect/*`, `@effect/*` and `vitest` from the Effect 4 toolchain, whoever
 * imports them, and fails an import that would leave it.
 */
const effect4Resolution = {
  name: "effect-rate-sync:effect4-resolution",
  enforce: "pre" as const,
  async resolveId(
    this: {
      resolve: (id: string, importer?: string, options?: { skipSelf?: boolean }) => Promise<{ id: string } | null>
    },
    id: string,
    importer: string | undefined
  ) {
    if (!toolchainId.test(id) || (importer !== undefined && importer.startsWith(toolchain))) return null
    if (effect3Only.test(id)) {
      throw new Error(
        `"${id}" (imported by ${importer ?? "?"}) is an Effect 3 package: the Effect 4 run has no such package ` +
          `(effect 4 has these modules itself: effect/http, effect/sql, effect/persistence). ` +
          `A test that needs it belongs to the Effect 3 run only (see the exclusions in packages/effect4/vitest.config.ts).`
      )
    }
    const resolved = await this.resolve(id, toolchainImporter, { skipSelf: true })
    if (resolved === null || !resolved.id.startsWith(toolchain)) {
      throw new Error(
        `"${id}" (imported by ${importer ?? "?"}) is not in packages/effect4/node_modules` +
          (resolved === null ? "" : ` (it resolved to ${resolved.id})`) +
          `: add it to packages/effect4/package.json, or keep the test on the Effect 3 run.`
      )
    }
    return resolved
  }
}

/**
 * Tests whose assertions include a limiter's promised timing (as in the root vitest.config.ts):
 * they run after the rest, one file at a time.
 */
const timing = [
  "test/redis/accuracy.test.ts",
  "test/postgres/accuracy.test.ts",
  "test/nats/accuracy.test.ts",
  "test/redis/faults.test.ts",
  "test/postgres/robustness.test.ts",
  "test/postgres/stall.test.ts",
  "test/nats/Contention.test.ts"
]

/**
 * Tests that run on the Effect 3 run only:
 * - `test/fx/v3/**`: the Effect 3 halves of the per-major test helpers and their own tests.
 * - `test/core/**`: the pure src/core (no Effect import; test/core/noEffect.test.ts guards that):
 *   nothing in them depends on the Effect major, so they run once, on the Effect 3 run.
 * - `test/packaging/install.test.ts`: it builds and installs BOTH majors' packages itself (each on
 *   its own Node), so it runs once.
 */
const effect3Only_ = ["test/fx/v3/**", "test/core/**", "test/packaging/install.test.ts"]

const excluded = ["scratchpad/**", "node_modules/**", "dist/**", "packages/**", ...effect3Only_]

export default defineConfig({
  root: repo(""),
  plugins: [effect4Resolution],
  resolve: {
    alias: [
      { find: /^effect-rate-sync\/redis$/, replacement: src("redis.ts") },
      { find: /^effect-rate-sync\/http$/, replacement: src("http.ts") },
      { find: /^effect-rate-sync\/promise$/, replacement: src("promise.ts") },
      { find: /^effect-rate-sync\/postgres$/, replacement: src("postgres.ts") },
      { find: /^effect-rate-sync\/nats$/, replacement: src("nats.ts") },
      { find: /^effect-rate-sync\/express$/, replacement: src("express.ts") },
      { find: /^effect-rate-sync\/fastify$/, replacement: src("fastify.ts") },
      { find: /^effect-rate-sync\/hono$/, replacement: src("hono.ts") },
      { find: /^effect-rate-sync$/, replacement: src("index.ts") },
      { find: /^#fx\/(.*)$/, replacement: src("fx/v4/$1.ts") },
      { find: /^#test\/(.*)$/, replacement: repo("test/fx/v4/$1.ts") }
    ]
  },
  test: {
    exclude: excluded,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: [...excluded, ...timing],
          sequence: { groupOrder: 0 }
        }
      },
      {
        extends: true,
        test: { name: "timing", include: timing, exclude: excluded, maxWorkers: 1, sequence: { groupOrder: 1 } }
      }
    ]
  }
})
