import { Redis } from "ioredis"
import { createHash } from "node:crypto"
import * as scripts from "../src/internal/redisScripts.js"
const N = 30000
const measure = async (name: string, op: (i: number) => Promise<unknown>, c = 64) => {
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: c }, async () => { while (true) { const i = next++; if (i >= N) return; await op(i) } }))
  console.log(name, c, Math.round(N / ((performance.now() - t0) / 1000)))
}
const main = async () => {
  for (const opts of [{ enableAutoPipelining: true }, { enableAutoPipelining: true, commandTimeout: 1000 }, { enableAutoPipelining: false }]) {
    const r = new Redis("redis://127.0.0.1:6379", opts)
    const sha = createHash("sha1").update(scripts.tokenBucketTake).digest("hex")
    await r.script("LOAD", scripts.tokenBucketTake)
    console.log(JSON.stringify(opts))
    await measure("ping", () => r.ping())
    await measure("evalsha tb", (i) => r.evalsha(sha, 1, `p:{${i % 1000}}:tb`, "1", "1000000", "1", "0"))
    await measure("evalsha tb seq", (i) => r.evalsha(sha, 1, `p:{${i % 1000}}:tb`, "1", "1000000", "1", "0"), 1)
    await r.quit()
  }
}
main()
