/**
 * examples/promise.mjs, the README's plain-JavaScript example of the promise facade, runs with
 * plain `node` (ESM, no TypeScript syntax, no `await using`) on the sources through tsx, with this
 * package's build output blocked: `npm test` passes on a machine that never ran `npm run build`.
 * The README shows the same code.
 */
import { execFile } from "node:child_process"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "#test/vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))
const example = fileURLToPath(new URL("../../examples/promise.mjs", import.meta.url))
const hook = fileURLToPath(new URL("./block-dist.mjs", import.meta.url))

const runExample = (): Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--import", hook, example],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr })
    )
  })

describe("packaging: the promise facade's plain-JavaScript example", () => {
  it("examples/promise.mjs runs with node and prints what the README says", async () => {
    const r = await runExample()
    assert.strictEqual(r.stderr.includes("blocked build output"), false, r.stderr)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.strictEqual(
      r.stdout,
      [
        "third db slot now: false",
        "acquire after 0.1 s: concurrency",
        "third db slot after release: true",
        "[ 'ran select 1', 'ran select 2', 'ran select 3' ]",
        ""
      ].join("\n")
    )
  })

  it("the README shows examples/promise.mjs as it is", async () => {
    const [readme, code] = await Promise.all([readFile(`${root}/README.md`, "utf8"), readFile(example, "utf8")])
    assert.include(readme, "```js\n" + code + "```", "README's promise-facade example differs from examples/promise.mjs")
  })
})
