// The promise facade from plain JavaScript (ESM, Node 20+): no TypeScript, no Effect code.
// Run it from the repository with `node --import tsx examples/promise.mjs` (or, in your own
// project, `node promise.mjs` after `npm install effect-rate-sync effect`).
import { fileURLToPath } from "node:url"
import { RateLimitError } from "effect-rate-sync"
import { acquire, dispose, loadConfig, rateLimited, tryAcquire } from "effect-rate-sync/promise"

// Without loadConfig the facade reads $RATE_SYNC_CONFIG, ./rate-sync.toml or ./config/rate-sync.toml.
await loadConfig(fileURLToPath(new URL("./rate-sync.toml", import.meta.url)))

// Hold a concurrency slot (limiter "db": 2 in flight), and give it back in `finally`.
const first = await acquire("db")
const second = await acquire("db")
try {
  console.log("third db slot now:", await tryAcquire("db")) // false: both slots are held
  try {
    await acquire("db", { timeout: 0.1 }) // a plain number is seconds, as in rate-sync.toml
  } catch (error) {
    console.log("acquire after 0.1 s:", error instanceof RateLimitError.RateLimitExceeded ? error.reason : error)
  }
} finally {
  await first.release()
  await second.release()
}
console.log("third db slot after release:", await tryAcquire("db", { timeout: "1 second" }))

// Wrap an async function: acquire before each call, release after.
const query = rateLimited("db")(async (sql) => `ran ${sql}`)
console.log(await Promise.all([query("select 1"), query("select 2"), query("select 3")]))

// Not needed for the process to exit; closes stores and connections now.
await dispose()
