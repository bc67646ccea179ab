/**
 * Writes a benchmark's section of docs/benchmarks.md, between `<!-- NAME:start -->` and
 * `<!-- NAME:end -->`, stamped with the date of the run. Other sections are left as they are.
 */
import { readFile, writeFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"

const path = fileURLToPath(new URL("../../docs/benchmarks.md", import.meta.url))

export const writeSection = async (name: string, body: string): Promise<void> => {
  let text = ""
  try {
    text = await readFile(path, "utf8")
  } catch {
    text = "# Benchmarks\n"
  }
  const start = `<!-- ${name}:start -->`
  const end = `<!-- ${name}:end -->`
  const stamped = `${start}\n_Measured ${new Date().toISOString().slice(0, 10)}._\n\n${body}\n${end}`
  const i = text.indexOf(start)
  const j = text.indexOf(end)
  text = i >= 0 && j > i ? text.slice(0, i) + stamped + text.slice(j + end.length) : `${text.trimEnd()}\n\n${stamped}\n`
  await writeFile(path, text)
}
