#!/usr/bin/env node
/**
 * Finishes the two builds that `npm run build` compiles from the one src/ (docs/architecture.md,
 * "Two majors from one source"):
 *
 *   packages/effect3/dist   tsc -p tsconfig.build.json         → npm effect-rate-sync-effect3
 *   packages/effect4/dist   tsc -p tsconfig.build.effect4.json → npm effect-rate-sync
 *
 * 1. In every emitted .js and .d.ts, the per-major module's specifier `#fx/<name>` becomes the
 *    relative path of `fx/v3/<name>.js` or `fx/v4/<name>.js` in that build, so the published
 *    packages need no `imports` field and resolve the same under every module resolution.
 * 2. README.md, LICENSE and docs/ are copied beside each package.json (the registry page and the
 *    README's links read them from the tarball).
 * 3. With `--pack DIR`, `npm pack` writes both tarballs into DIR and prints their paths.
 *
 * It fails when a build is missing, when a `#fx/` or `#test/` specifier is left, or when a build
 * holds the other major's per-major module.
 */
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, relative, resolve, sep } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const builds = [
  { dir: join(root, "packages", "effect3"), fx: "v3", other: "v4" },
  { dir: join(root, "packages", "effect4"), fx: "v4", other: "v3" }
]

const files = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : [path]
  })

const specifier = /(["'])#fx\/([A-Za-z0-9_-]+)\1/g

for (const build of builds) {
  const dist = join(build.dir, "dist")
  if (!existsSync(join(dist, "index.js"))) throw new Error(`${relative(root, dist)}/index.js is missing: run the build first`)
  if (existsSync(join(dist, "fx", build.other))) {
    throw new Error(`${relative(root, dist)} holds fx/${build.other}: the ${build.fx} build must leave out the other major`)
  }
  let rewritten = 0
  for (const file of files(dist)) {
    if (!file.endsWith(".js") && !file.endsWith(".d.ts")) continue
    const text = readFileSync(file, "utf8")
    const next = text.replace(specifier, (_, quote, name) => {
      const target = join(dist, "fx", build.fx, `${name}.js`)
      if (!existsSync(target)) throw new Error(`${relative(root, file)} imports #fx/${name}, which ${relative(root, target)} does not provide`)
      let path = relative(dirname(file), target).split(sep).join("/")
      if (!path.startsWith(".")) path = `./${path}`
      rewritten++
      return `${quote}${path}${quote}`
    })
    if (/["']#(fx|test)\//.test(next)) throw new Error(`${relative(root, file)} still imports a #fx/ or #test/ path`)
    if (next !== text) writeFileSync(file, next)
  }
  cpSync(join(root, "README.md"), join(build.dir, "README.md"))
  cpSync(join(root, "LICENSE"), join(build.dir, "LICENSE"))
  cpSync(join(root, "docs"), join(build.dir, "docs"), { recursive: true })
  console.log(`${relative(root, build.dir)}: ${rewritten} #fx specifiers made relative; README.md, LICENSE, docs/ copied`)
}

const packAt = process.argv.indexOf("--pack")
if (packAt !== -1) {
  const into = resolve(process.argv[packAt + 1] ?? join(root, "packages"))
  for (const build of builds) {
    const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", into], { cwd: build.dir, encoding: "utf8" })
    console.log(join(into, out.trim().split("\n").pop() ?? ""))
  }
}
