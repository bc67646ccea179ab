import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = (file: string) => fileURLToPath(new URL(`./src/${file}`, import.meta.url))

export default defineConfig({
  resolve: {
    alias: [
      { find: /^effect-rate-sync\/redis$/, replacement: src("redis.ts") },
      { find: /^effect-rate-sync\/http$/, replacement: src("http.ts") },
      { find: /^effect-rate-sync\/promise$/, replacement: src("promise.ts") },
      { find: /^effect-rate-sync\/postgres$/, replacement: src("postgres.ts") },
      { find: /^effect-rate-sync\/nats$/, replacement: src("nats.ts") },
      { find: /^effect-rate-sync$/, replacement: src("index.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["scratchpad/**", "node_modules/**", "dist/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks"
  }
})
