/**
 * The benchmark charts (test/bench/charts.ts): the table reading, the ratio per bar, and that
 * every chart committed under docs/benchmarks/ is the one drawn from docs/benchmarks.md as it is
 * (a bench that rewrote a section without `npx tsx test/bench/charts.ts` fails here).
 */
import { readdir, readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { measure, numberOf, renderAll, sectionOf, tablesOf } from "../bench/charts.js"

const docs = fileURLToPath(new URL("../../docs/", import.meta.url))

const sample = [
  "<!-- x:start -->",
  "_Measured 2026-12-02._",
  "",
  "| contender | 1 caller: p50 ms | 64 callers: decisions/s | p50 ms |",
  "|---|---:|---:|---:|",
  "| `ours` default | 0.100 (0.1) | **149,642** | 2.0 |",
  "| peer | 0.150 | 95,359 | 4.0 |",
  "<!-- x:end -->"
].join("\n")

describe("benchmark charts", () => {
  it("reads numbers as the tables print them", () => {
    expect([numberOf("1.57 M/s"), numberOf("**149,642**"), numberOf("0.388 (0.350)"), numberOf("2,466–5,547 (4,199), p99 16.6"), numberOf("—")])
      .toEqual([1.57, 149642, 0.35, 4199, undefined])
  })

  it("finds a section's table and computes each bar's ratio (latency inverted, last column of a repeated name)", () => {
    const section = sectionOf(sample, "x")
    expect(section).toBeDefined()
    const table = tablesOf(section ?? "")[0]
    expect(table?.rows.map((r) => r[0])).toEqual(["ours default", "peer"])
    if (table === undefined) return
    const throughput = measure(table, { label: "t", column: "64 callers: decisions/s", ours: /^ours/, peer: /^peer/ })
    expect(throughput.ok && throughput.ratio).toBeCloseTo(149642 / 95359, 9)
    const latency = measure(table, { label: "l", column: "p50 ms", ours: /^ours/, peer: /^peer/, lowerIsBetter: true })
    expect(latency.ok && latency.ratio).toBeCloseTo(2, 9)
    expect(measure(table, { label: "m", column: "nope", ours: /^ours/, peer: /^peer/ })).toEqual({ ok: false, why: `no column "nope"` })
    expect(measure(table, { label: "m", column: "p50 ms", ours: /^ours/, peer: /^absent/ }).ok).toBe(false)
  })

  it("every chart under docs/benchmarks/ is drawn from docs/benchmarks.md as it stands", async () => {
    const rendered = renderAll(await readFile(`${docs}benchmarks.md`, "utf8"))
    expect(rendered.length).toBeGreaterThan(0)
    const committed = (await readdir(`${docs}benchmarks`)).filter((f) => f.endsWith(".svg")).sort()
    expect(committed).toEqual(rendered.map((r) => r.file).sort())
    for (const { file, svg } of rendered) {
      expect(await readFile(`${docs}benchmarks/${file}`, "utf8"), `${file}: rerun npx tsx test/bench/charts.ts`).toBe(svg)
    }
  })
})
