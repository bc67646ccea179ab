/**
 * The examples run, on the Effect major of the test run: `npm run demo` (the README's first
 * command), the HTTP server demo and the Prometheus scrape on each major (Effect 4's
 * `effect/observability` exporter; on Effect 3 the example's own rendering of `Metric.snapshot`,
 * which gives the same lines). Each runs as its own process, as a user runs it:
 * on Effect 3 through tsx on this Node, on Effect 4 through tsx and packages/effect4/register.mjs
 * on packages/effect4's Node 24 (what `npm run demo:effect4` does).
 */
import * as Fx from "#fx/core"
import { assert, describe, it } from "#test/vitest"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))
/** The major of this run, as a number: each run sees one literal type. */
const major: number = Fx.major

const argsFor = (file: string): { readonly command: string; readonly args: ReadonlyArray<string>; readonly env: NodeJS.ProcessEnv } =>
  major === 4
    ? {
      command: `${root}packages/effect4/node_modules/.bin/node`,
      args: ["--import", "tsx", "--import", "./packages/effect4/register.mjs", file],
      env: { ...process.env, TSX_TSCONFIG_PATH: "packages/effect4/tsconfig.run.json" }
    }
    : { command: process.execPath, args: ["--import", "tsx", file], env: process.env }

const run = (file: string): Promise<{ readonly code: number; readonly out: string }> =>
  new Promise((resolve) => {
    const { args, command, env } = argsFor(file)
    execFile(command, args, { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number(error.code ?? 1), out: `${stdout}${stderr}` })
    )
  })

describe(`examples on Effect ${major}`, () => {
  it("the demo (examples/quickstart.ts): paced api calls, at most 2 db tasks at once, the 6th login refused, metrics", async () => {
    const r = await run("examples/quickstart.ts")
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, "api call 15")
    assert.include(r.out, "peak concurrency: 2")
    assert.include(r.out, "attempt 5: allowed (0 left)")
    assert.include(r.out, "attempt 6: REFUSED, retry in 300 s")
    assert.match(r.out, /api {4}acquisitions=15 refusals=0/)
    assert.match(r.out, /login {2}acquisitions=5 refusals=1/)
  })

  it("the HTTP server demo: five 200s with RateLimit headers, then a 429 with the problem body; login refused on its 4th try", async () => {
    const r = await run(`examples/effect${major}/http-server.ts`)
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, `GET /hello {} -> 200 ratelimit-policy: "api";q=5;w=60 | ratelimit: "api";r=0;t=60 | x-ratelimit-remaining: 0`)
    assert.include(r.out, `GET /hello {} -> 429 ratelimit-policy: "api";q=5;w=60 | ratelimit: "api";r=0;t=60 | x-ratelimit-remaining: 0 | retry-after: 60`)
    assert.include(r.out, `{"type":"https://iana.org/assignments/http-problem-types#quota-exceeded","title":"Too Many Requests","status":429,"detail":"Rate limit \\"api\\" exceeded; retry after 60 seconds.","violated-policies":["api"],"limiter":"api","retryAfter":60}`)
    assert.include(r.out, `GET /hello {"x-api-key":"internal"} -> 200 \n`)
    assert.match(r.out, /POST \/login \{"x-forwarded-for":"198\.51\.100\.4"\} -> 429 ratelimit-policy: "login";q=3;w=300/)
  })

  it("the Prometheus example: a real scrape of /metrics shows every rate_sync_* series, counters from 0, the wait histogram in ms", async () => {
    const r = await run(`examples/effect${major}/prometheus.ts`)
    assert.strictEqual(r.code, 0, r.out)
    const lines = new Set(r.out.split("\n"))
    for (
      const line of [
        "# TYPE rate_sync_acquisitions_total counter",
        `rate_sync_acquisitions_total{limiter="api"} 4`,
        `rate_sync_acquisitions_total{limiter="login"} 2`,
        `rate_sync_refusals_total{limiter="login"} 1`,
        `rate_sync_refusals_total{limiter="api"} 0`,
        `rate_sync_fail_open_total{limiter="api"} 0`,
        `rate_sync_store_errors_total{limiter="login"} 0`,
        "# TYPE rate_sync_wait_time_ms histogram",
        // the 3 of the burst waited for no token (under load their wait, measured on the clock,
        // can still reach a few ms), the 4th about 500 ms
        `rate_sync_wait_time_ms_bucket{limiter="api",le="256"} 3`,
        `rate_sync_wait_time_ms_bucket{limiter="api",le="65536"} 4`,
        `rate_sync_wait_time_ms_bucket{limiter="api",le="+Inf"} 4`,
        `rate_sync_wait_time_ms_count{limiter="api"} 4`
      ]
    ) assert.isTrue(lines.has(line), `${line}\nnot in the scrape:\n${r.out}`)
    // the 4th api call waited for a token (2/s after a burst of 3): about 500 ms
    const sum = Number(/rate_sync_wait_time_ms_sum\{limiter="api"\} ([0-9.]+)/.exec(r.out)?.[1])
    assert.isAtLeast(sum, 300)
    assert.isAtMost(sum, 1500)
  })
})
