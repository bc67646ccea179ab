/**
 * The framework modules load no framework: `effect-rate-sync/express`, `/fastify` and `/hono`
 * import their framework for its types only, so an application that has one framework (or none)
 * never meets a missing peer. Checked in a fresh `node` process (tsx, and on the Effect 4 run
 * packages/effect4/register.mjs, as `npm run demo:effect4` does) whose resolve hook throws on any
 * framework, the Effect HTTP stack or another HTTP peer: importing the three modules and building
 * a middleware with each must not reach one.
 */
import { spawn } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { major } from "#test/effect"

const repo = fileURLToPath(new URL("../../", import.meta.url))

const FORBIDDEN = String.raw`^(?:express|fastify|hono|@hono\/node-server|@effect\/platform|effect\/http|effect\/unstable\/http)(?:\/|$)`

const hook = `
export async function resolve(specifier, context, next) {
  if (new RegExp(${JSON.stringify(FORBIDDEN)}).test(specifier)) throw new Error("loaded " + specifier)
  return next(specifier, context)
}
`

const child = (hookUrl: string) => `
import { register } from "node:module"
register(${JSON.stringify(hookUrl)})
const modules = [
  await import(${JSON.stringify(pathToFileURL(join(repo, "src/express.ts")).href)}),
  await import(${JSON.stringify(pathToFileURL(join(repo, "src/fastify.ts")).href)}),
  await import(${JSON.stringify(pathToFileURL(join(repo, "src/hono.ts")).href)})
]
for (const m of modules) m.rateLimit({ limiter: "api", trustedProxies: ["loopback"] })
console.log(modules.map((m) => typeof m.rateLimit).join(" "))
`

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const process_ = spawn(process.execPath, args, { cwd: repo, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    process_.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    process_.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const watchdog = setTimeout(() => process_.kill("SIGKILL"), 60_000)
    process_.on("error", (error) => {
      clearTimeout(watchdog)
      reject(error)
    })
    process_.on("close", (code) => {
      clearTimeout(watchdog)
      resolve({ code, stdout, stderr })
    })
  })

describe("framework modules", () => {
  it(`load no framework at run time (Effect ${major})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "rate-sync-adapters-"))
    try {
      const hookFile = join(dir, "forbid.mjs")
      await writeFile(hookFile, hook)
      const script = join(dir, "child.mts")
      await writeFile(script, child(pathToFileURL(hookFile).href))
      const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
      const env = { ...process.env }
      const args = ["--import", tsx]
      if (Number(major) === 4) { // `major` is the literal 3 or 4, typed per major
        env.TSX_TSCONFIG_PATH = join(repo, "packages/effect4/tsconfig.run.json")
        args.push("--import", pathToFileURL(join(repo, "packages/effect4/register.mjs")).href)
      }
      const ran = await run([...args, script], env)
      assert.strictEqual(ran.stderr, "")
      assert.deepStrictEqual([ran.code, ran.stdout.trim()], [0, "function function function"])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("the hook of that check does throw on a framework import", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rate-sync-adapters-"))
    try {
      const hookFile = join(dir, "forbid.mjs")
      await writeFile(hookFile, hook)
      const script = join(dir, "child.mjs")
      await writeFile(script, `import { register } from "node:module"\nregister(${JSON.stringify(pathToFileURL(hookFile).href)})\nawait import("express")\n`)
      const ran = await run([script], { ...process.env })
      assert.notStrictEqual(ran.code, 0)
      assert.include(ran.stderr, "loaded express")
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
