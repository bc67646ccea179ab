import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = (file: string) => fileURLToPath(new URL(`./src/${file}`, import.meta.url))

/**
 * Tests whose assertions include a limiter's promised timing (admitted totals over wall-clock
 * seconds, overload answers within a timeout, many processes or fibers on one key). On a 2-core
 * machine they run after the rest, one file at a time, so another file's CPU load cannot starve them.
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

export default defineConfig({
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
      { find: /^effect-rate-sync$/, replacement: src("index.ts") }
    ]
  },
  test: {
    exclude: ["scratchpad/**", "node_modules/**", "dist/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: ["scratchpad/**", "node_modules/**", "dist/**", ...timing],
          sequence: { groupOrder: 0 }
        }
      },
      {
        extends: true,
        test: { name: "timing", include: timing, poolOptions: { forks: { singleFork: true } }, sequence: { groupOrder: 1 } }
      }
    ]
  }
})
