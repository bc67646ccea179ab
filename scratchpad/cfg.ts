import { ConfigProvider, Effect } from "effect"
import * as C from "../src/RateSyncConfig.js"
const run = (t: string, env: Record<string,string> = {}) =>
  Effect.runPromise(Effect.either(C.parse(t)).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))).then((r) => console.log(JSON.stringify(r)))
await run(`[stores.main]\nengine="redis"\nurl="redis://:pw@h:6379"\n[limiters.api]\nrate_per_second=10\ntimeout=1.5\n`)
await run(`[stores.main]\nengine="redis"\nurl="http://:pw@h"\n`)
await run(`[limiters.api]\nrate_per_second=nan\n`)
await run(`[limiters.api]\nmax_concurrent=2\n`, { RATE_SYNC_LIMITERS_API_RATE_PER_SECOND: "-3" })
await run(`[limiters.api]\nwindow_seconds=2\nlimit=3\n`)
await run(`a = = 1`)
