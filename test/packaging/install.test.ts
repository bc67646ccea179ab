/**
 * The README's promise for each Effect major, kept: in a fresh folder, the README's install line
 * (with the packed tarball in place of the registry name) installs, the README's 30-second example
 * type-checks with `skipLibCheck: false` and runs, on the Node each major is tested on.
 *
 * It builds and packs both majors first (`npm run build`, `packages/pack.mjs --pack`), so it tests
 * what src/ holds now. The installs come from the npm registry (effect, smol-toml) and take tens of
 * seconds each with a cold cache.
 */
import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))
const node24 = join(root, "packages/effect4/node_modules/.bin")
const tsc = join(root, "node_modules/typescript/bin/tsc")

interface Run {
  readonly code: number
  readonly out: string
}

/** Runs `command` in `cwd` through a shell, with `binDir` first on PATH (its `node` then runs npm too). */
const sh = (command: string, cwd: string, binDir?: string): Promise<Run> =>
  new Promise((resolve) => {
    const PATH = binDir === undefined ? process.env.PATH : `${binDir}:${process.env.PATH ?? ""}`
    execFile("bash", ["-c", command], { cwd, timeout: 300_000, maxBuffer: 32 * 1024 * 1024, env: { ...process.env, PATH } }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : Number(error.code ?? 1), out: `${stdout}${stderr}` })
    )
  })

/** The README's install line for a major (the row "the library" of the install table). */
const installLine = (readme: string, major: 3 | 4): string => {
  const row = readme.split("\n").find((line) => line.startsWith("| the library |"))
  assert.isDefined(row, "the README's install table has no row `| the library |`")
  const cells = (row ?? "").split("|").map((cell) => cell.trim())
  const cell = cells[major === 4 ? 2 : 3] ?? ""
  const line = /`([^`]+)`/.exec(cell)?.[1]
  assert.isDefined(line, `no install line for Effect ${major} in ${row}`)
  return line ?? ""
}

/** The README's 30-second example (the first ts block after its heading). */
const example = (readme: string): string => {
  const section = readme.slice(readme.indexOf("## 30-second example"))
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1]
  assert.isDefined(code, "the README has no 30-second example")
  return code ?? ""
}

const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022", "DOM"],
    types: ["node"],
    strict: true,
    skipLibCheck: false,
    outDir: "out"
  },
  include: ["example.ts"]
}

let readme = ""
const tarballs: { effect3?: string; effect4?: string } = {}
let packDir = ""

describe("packaging: the README install line and example, per Effect major, in a fresh folder", () => {
  beforeAll(async () => {
    readme = await readFile(join(root, "README.md"), "utf8")
    packDir = await mkdtemp(join(tmpdir(), "rate-sync-pack-"))
    const build = await sh("npm run build --silent", root)
    assert.strictEqual(build.code, 0, `npm run build failed:\n${build.out}`)
    const pack = await sh(`node packages/pack.mjs --pack ${packDir}`, root)
    assert.strictEqual(pack.code, 0, pack.out)
    for (const line of pack.out.trim().split("\n")) {
      if (/effect-rate-sync-effect3-[\d.]+\.tgz$/.test(line)) tarballs.effect3 = line
      else if (/effect-rate-sync-[\d.]+\.tgz$/.test(line)) tarballs.effect4 = line
    }
  }, 300_000)

  afterAll(async () => {
    if (packDir !== "") await rm(packDir, { recursive: true, force: true })
  })

  for (const major of [4, 3] as const) {
    it(`Effect ${major}: install, tsc without skipLibCheck, run on Node ${major === 4 ? "24 and 22.19" : "20 and 24"}`, async () => {
      const tarball = major === 4 ? tarballs.effect4 : tarballs.effect3
      assert.isDefined(tarball, "the tarball was not packed")
      const line = installLine(readme, major)
      const install = major === 4
        ? line.replace(/ effect-rate-sync$/, ` effect-rate-sync@file:${tarball}`)
        : line.replace(/ effect-rate-sync@npm:effect-rate-sync-effect3@\S+/, ` effect-rate-sync@file:${tarball}`)
      assert.notStrictEqual(install, line, `the install line changed shape: ${line}`)
      // Effect 4 is installed and run on Node 24 (what its packages need); Effect 3 on the system Node.
      const bin = major === 4 ? node24 : undefined
      const dir = await mkdtemp(join(tmpdir(), `rate-sync-effect${major}-`))
      try {
        await writeFile(join(dir, "package.json"), JSON.stringify({ name: "readme-try", private: true, type: "module" }))
        const installed = await sh(`${install} --no-audit --no-fund && npm install --no-audit --no-fund -D @types/node@${major === 4 ? 24 : 20}`, dir, bin)
        assert.strictEqual(installed.code, 0, `${install}\n${installed.out}`)
        const effect = JSON.parse(await readFile(join(dir, "node_modules/effect/package.json"), "utf8")) as { readonly version: string }
        assert.strictEqual(effect.version.split(".")[0], String(major), `installed effect ${effect.version}`)

        await writeFile(join(dir, "example.ts"), example(readme))
        await writeFile(join(dir, "tsconfig.json"), JSON.stringify(tsconfig))
        const checked = await sh(`node ${tsc} -p .`, dir, bin)
        assert.strictEqual(checked.code, 0, `tsc (skipLibCheck: false):\n${checked.out}`)

        // The example on each Node the major's `engines` covers at its ends: Effect 4 on Node 24 and
        // on 22.19 (its lower bound, installed here as the `node` package); Effect 3 on the system
        // Node (20) and on Node 24.
        const nodes = major === 4 ? [node24, "node_modules/node2219/node_modules/.bin"] : [undefined, node24]
        if (major === 4) {
          const lower = await sh("npm install --no-audit --no-fund --prefix node_modules/node2219 node@22.19.0", dir, bin)
          assert.strictEqual(lower.code, 0, lower.out)
        }
        for (const nodeBin of nodes) {
          const ran = await sh("node --version && node out/example.js", dir, nodeBin === undefined ? undefined : nodeBin.startsWith("/") ? nodeBin : join(dir, nodeBin))
          assert.strictEqual(ran.code, 0, ran.out)
          assert.include(ran.out, "calling the paid API")
          // Effect.log(ok, d.allowed, d.remaining, d.retryAfterMs): tryAcquire and check took 2 of 5.
          // Effect 3's logger prints logfmt, Effect 4's a pretty line.
          assert.match(ran.out, major === 4 ? /INFO \(#\d+\): true true 3 0\n/ : /message=true message=true message=3 message=0\n/)
          assert.match(ran.out, nodeBin === undefined ? /^v20\./ : nodeBin === node24 ? /^v24\./ : /^v22\.19\./)
        }
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }, 600_000)
  }
})
