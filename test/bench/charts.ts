/**
 * Draws docs/benchmarks.md's figures as SVG charts: for each benchmark section the benches wrote
 * (between `<!-- NAME:start -->` and `<!-- NAME:end -->`), one bar per workload with this
 * library's figure as a ratio to the peer's in the same run (1× = the peer; the dashed line, where
 * the issue set one, is the target). Read from the tables themselves, so a chart always shows the
 * figures printed beside it.
 *
 *   npx tsx test/bench/charts.ts          (writes docs/benchmarks/<section>.svg)
 *
 * No Effect, no dependency: string templates of SVG.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"

const docs = fileURLToPath(new URL("../../docs/", import.meta.url))

/** One bar: a column of the section's table, this library's row against the peer's. */
export interface Bar {
  readonly label: string
  /** The column's header, exactly as in the table. */
  readonly column: string
  /** The row of this library (matched against the first cell). */
  readonly ours: RegExp
  /** The row of the peer. */
  readonly peer: RegExp
  /** A latency: smaller is better, so the ratio is peer / ours. */
  readonly lowerIsBetter?: boolean
  /** The target ratio the issue set, if any. */
  readonly target?: number
}

/** The charts of one section. */
export interface Chart {
  readonly section: string
  readonly title: string
  /** Which table of the section, when it holds several (0: the first). */
  readonly table?: number
  readonly bars: ReadonlyArray<Bar>
}

/** The Redis section's bars (both majors' tables have the same rows against the same peer). */
function redisChart(section: string, title: string, p99: boolean): Chart {
  const check = /RateLimiter\.check \(fixed window\), default/
  const peer = /^rate-limiter-flexible.*auto-pipelining off/
  const bars: Array<Bar> = [
    { label: "64 callers, RateLimiter.check (fixed window)", column: "64 callers: decisions/s", ours: check, peer, target: 1.5 },
    { label: "64 callers, store.tokenBucket", column: "64 callers: decisions/s", ours: /store\.tokenBucket, default/, peer, target: 1.5 }
  ]
  if (p99) bars.push({ label: "64 callers, p99 (lower is better)", column: "p99 ms", ours: check, peer, lowerIsBetter: true })
  bars.push({
    label: "64 callers, Redis CPU per decision (lower is better)",
    column: "server CPU µs/decision",
    ours: check,
    peer,
    lowerIsBetter: true
  })
  bars.push({ label: "1 caller, RateLimiter.check", column: "1 caller: decisions/s", ours: check, peer })
  return { section, title, bars }
}

export const charts: ReadonlyArray<Chart> = [
  {
    section: "memory",
    title: "Memory store: RateLimiter.check, decisions/s (median), ratio to the peer",
    bars: [
      { label: "vs @effect/experimental RateLimiter", column: "median", ours: /^effect-rate-sync/, peer: /^@effect\/experimental/, target: 1.4 },
      { label: "vs rate-limiter-flexible (async loop)", column: "median", ours: /^effect-rate-sync/, peer: /^rate-limiter-flexible/ }
    ]
  },
  redisChart("redis", "Redis store, ratio to rate-limiter-flexible RateLimiterRedis (auto-pipelining off)", true),
  // Effect 4's table has no p99 column of its own to chart beside the peer's here
  redisChart("redis-effect4", "Redis store (Effect 4), ratio to rate-limiter-flexible RateLimiterRedis (auto-pipelining off)", false),
  {
    section: "block",
    title: "Block cache: 64 callers flooding one refused Redis key, decisions/s, ratio",
    bars: [
      {
        label: "cache on vs rate-limiter-flexible inMemoryBlockOnConsumed",
        column: "decisions/s",
        ours: /RateLimiter\.check \(fixed window\), block cache on/,
        peer: /inMemoryBlockOnConsumed on/,
        target: 1
      },
      {
        label: "cache on vs cache off",
        column: "decisions/s",
        ours: /RateLimiter\.check \(fixed window\), block cache on/,
        peer: /RateLimiter\.check \(fixed window\), block cache off/,
        target: 10
      }
    ]
  },
  // HTTP: each framework's adapter against its usual limiter, requests/s and the server's CPU
  ...[["http", ""], ["http-effect4", " (Effect 4)"]].map(([section = "", major = ""]): Chart => ({
    section,
    title: `HTTP${major}: the adapters against each framework's usual limiter, 64 connections, ratio`,
    bars: [
      ...([["express", "express-rate-limit"], ["fastify", "@fastify/rate-limit"], ["hono", "hono-rate-limiter"]] as const).flatMap((
        [framework, peer]
      ) =>
        (["admit", "refuse"] as const).map((mode): Bar => ({
          label: `${framework}, memory, ${mode}: req/s vs ${peer}`,
          column: "req/s",
          ours: new RegExp(`^effect-rate-sync/${framework}, memory, ${mode}`),
          peer: new RegExp(`^${peer.replace("/", "\\/")}, memory, ${mode}`)
        }))
      ),
      ...([["express", "express-rate-limit"], ["fastify", "@fastify/rate-limit"]] as const).map(([framework, peer]): Bar => ({
        label: `${framework}, Redis, admit: req/s vs ${peer}`,
        column: "req/s",
        ours: new RegExp(`^effect-rate-sync/${framework}, redis, admit`),
        peer: new RegExp(`^${peer.replace("/", "\\/")}, redis, admit`)
      }))
    ]
  })),
  ...[3, 4].map((major): Chart => ({
    section: `nats-effect${major}`,
    title: `NATS store (Effect ${major}), ratio to a plain get + compare-and-set loop on nats.js`,
    bars: [
      {
        label: "1000 keys × 16 callers, store.tokenBucket",
        column: "1000 keys × 16 callers: decisions/s, p99 ms",
        ours: /store\.tokenBucket/,
        peer: /^nats\.js: plain/,
        target: 1
      },
      {
        label: "1000 keys × 16 callers, RateLimiter.check (token bucket)",
        column: "1000 keys × 16 callers: decisions/s, p99 ms",
        ours: /RateLimiter\.check \(token bucket\)/,
        peer: /^nats\.js: plain/,
        target: 1
      },
      {
        label: "hot key × 16 callers, store.tokenBucket",
        column: "hot key × 16 callers: decisions/s, p99 ms",
        ours: /store\.tokenBucket/,
        peer: /^nats\.js: plain/,
        target: 2
      },
      {
        label: "1 caller p50 (lower is better)",
        column: "1 caller: p50 ms",
        ours: /store\.tokenBucket/,
        peer: /^nats\.js: plain/,
        lowerIsBetter: true
      }
    ]
  })),
  ...[3, 4].map((major): Chart => ({
    section: `postgres-effect${major}`,
    title: `PostgreSQL store (Effect ${major}), ratio to rate-limiter-flexible RateLimiterPostgres`,
    bars: [
      {
        label: "1000 keys × 32 callers, store.tokenBucket",
        column: "1000 keys × 32 callers: decisions/s",
        ours: /store\.tokenBucket/,
        peer: /^rate-limiter-flexible/,
        target: 1.5
      },
      {
        label: "1000 keys × 32 callers, RateLimiter.check (fixed window)",
        column: "1000 keys × 32 callers: decisions/s",
        ours: /RateLimiter\.check \(fixed window\)/,
        peer: /^rate-limiter-flexible/,
        target: 1.5
      },
      {
        label: "hot key × 32 callers, store.tokenBucket",
        column: "hot key × 32 callers: decisions/s",
        ours: /store\.tokenBucket/,
        peer: /^rate-limiter-flexible/,
        target: 3
      },
      {
        label: "1 caller p50 (lower is better)",
        column: "1 caller: p50 ms",
        ours: /store\.tokenBucket/,
        peer: /^rate-limiter-flexible/,
        lowerIsBetter: true
      }
    ]
  }))
]

/** The section's text between its markers, or `undefined` when the benches have not written it. */
export const sectionOf = (text: string, name: string): string | undefined => {
  const start = text.indexOf(`<!-- ${name}:start -->`)
  const end = text.indexOf(`<!-- ${name}:end -->`)
  return start >= 0 && end > start ? text.slice(start, end) : undefined
}

/** A markdown table: its header cells and its rows of cells. */
export interface Table {
  readonly header: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

const cells = (line: string): Array<string> =>
  line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim().replaceAll("`", ""))

/** Every table of `text`, in order. */
export const tablesOf = (text: string): Array<Table> => {
  const tables: Array<Table> = []
  const lines = text.split("\n")
  for (let i = 0; i + 1 < lines.length; i++) {
    const line = lines[i] ?? ""
    const rule = lines[i + 1] ?? ""
    if (!line.trim().startsWith("|") || !/^\|[\s:|-]+\|$/.test(rule.trim())) continue
    const header = cells(line)
    const rows: Array<Array<string>> = []
    let j = i + 2
    for (; j < lines.length && (lines[j] ?? "").trim().startsWith("|"); j++) rows.push(cells(lines[j] ?? ""))
    tables.push({ header, rows })
    i = j - 1
  }
  return tables
}

/**
 * A cell's figure: the median in parentheses where the cell gives a range over rounds
 * (`2,466–5,547 (4,199), p99 16.6`, `0.388 (0.350)`), else its first number (`1.57 M/s`,
 * `**149,642**`), or `undefined`.
 */
export const numberOf = (cell: string): number | undefined => {
  const plain = cell.replaceAll("*", "")
  const m = /\((-?\d[\d,]*(?:\.\d+)?)\)/.exec(plain)?.slice(1) ?? /-?\d[\d,]*(?:\.\d+)?/.exec(plain)
  const text = m?.[0]
  if (text === undefined) return undefined
  const n = Number(text.replaceAll(",", ""))
  return Number.isFinite(n) ? n : undefined
}

/** A bar's figures: the ratio (above 1: better than the peer), or why it cannot be drawn. */
export type Measured =
  | { readonly ok: true; readonly ratio: number; readonly ours: number; readonly peer: number }
  | { readonly ok: false; readonly why: string }

/** The bar's ratio from `table`; a column named twice (`p50 ms` per workload) is the last one. */
export const measure = (table: Table, bar: Bar): Measured => {
  const column = table.header.lastIndexOf(bar.column)
  if (column < 0) return { ok: false, why: `no column "${bar.column}"` }
  const find = (re: RegExp) => table.rows.find((r) => re.test(r[0] ?? ""))
  const oursRow = find(bar.ours)
  const peerRow = find(bar.peer)
  if (oursRow === undefined || peerRow === undefined) return { ok: false, why: `no row ${oursRow === undefined ? bar.ours : bar.peer}` }
  const ours = numberOf(oursRow[column] ?? "")
  const peer = numberOf(peerRow[column] ?? "")
  if (ours === undefined || peer === undefined || ours <= 0 || peer <= 0) return { ok: false, why: "no figure" }
  return { ok: true, ours, peer, ratio: bar.lowerIsBetter === true ? peer / ours : ours / peer }
}

const escape = (s: string): string => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")

/** The chart as an SVG document (horizontal bars on a ratio scale, 1× and targets marked). */
export const svgOf = (chart: Chart, measured: ReadonlyArray<Measured>, stamp: string): string => {
  const labelW = 400
  const plotW = 360
  const rowH = 34
  const top = 44
  const height = top + rowH * chart.bars.length + 40
  const width = labelW + plotW + 100
  const ratios = measured.flatMap((m) => (m.ok ? [m.ratio] : []))
  const targets = chart.bars.flatMap((b) => (b.target === undefined ? [] : [b.target]))
  // a hot-key ratio of 80× would flatten every other bar: the scale stops at 6× (or the largest
  // target), and a longer bar is drawn to the edge with its figure beside it
  const max = Math.min(Math.max(1.2, ...ratios, ...targets) * 1.1, Math.max(6, ...targets.map((t) => t * 1.1)))
  const x = (r: number) => labelW + (Math.min(r, max) / max) * plotW
  const rows = chart.bars.map((bar, i) => {
    const m = measured[i]
    const y = top + i * rowH
    const label = `<text x="${labelW - 8}" y="${y + 20}" text-anchor="end">${escape(bar.label)}</text>`
    const target = bar.target === undefined
      ? ""
      : `<line x1="${x(bar.target)}" x2="${x(bar.target)}" y1="${y + 4}" y2="${y + rowH - 4}" stroke="#b45309" stroke-width="2" stroke-dasharray="4 3"><title>target ${bar.target}×</title></line>`
    if (m === undefined || !m.ok) {
      return `${label}<text x="${labelW + 6}" y="${y + 20}" fill="#6b7280">not measured${m === undefined ? "" : ` (${escape(m.why)})`}</text>${target}`
    }
    const fill = m.ratio >= (bar.target ?? 1) ? "#15803d" : m.ratio >= 1 ? "#ca8a04" : "#b91c1c"
    return `${label}<rect x="${labelW}" y="${y + 6}" width="${x(m.ratio) - labelW}" height="${rowH - 12}" fill="${fill}"><title>${m.ours} vs ${m.peer}</title></rect>${target}<text x="${
      x(m.ratio) + 6
    }" y="${y + 20}">${m.ratio.toFixed(2)}×</text>`
  })
  const one = x(1)
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="22" font-weight="bold">${escape(chart.title)}</text>`,
    ...rows,
    `<line x1="${one}" x2="${one}" y1="${top}" y2="${top + rowH * chart.bars.length}" stroke="#111827" stroke-width="1"/>`,
    `<text x="${one}" y="${top + rowH * chart.bars.length + 16}" text-anchor="middle">1× (peer)</text>`,
    `<text x="10" y="${height - 8}" fill="#6b7280" font-size="11">${
      escape(stamp)
    } · green: at or above the target (dashed; none: the peer); yellow: above the peer only; red: below the peer</text>`,
    `</svg>`,
    ""
  ].join("\n")
}

/** Every chart that has its section and table in `text` (docs/benchmarks.md): its file name, SVG and a summary line. */
export const renderAll = (text: string): Array<{ readonly file: string; readonly svg: string; readonly summary: string }> =>
  charts.flatMap((chart) => {
    const section = sectionOf(text, chart.section)
    const table = section === undefined ? undefined : tablesOf(section)[chart.table ?? 0]
    if (section === undefined || table === undefined) return []
    const measured = chart.bars.map((bar) => measure(table, bar))
    const stamp = /_Measured (\d{4}-\d{2}-\d{2})\._/.exec(section)?.[1] ?? "undated"
    const summary = measured.map((m, i) => `${chart.bars[i]?.label}: ${m.ok ? `${m.ratio.toFixed(2)}×` : m.why}`).join("; ")
    return [{ file: `${chart.section}.svg`, svg: svgOf(chart, measured, `measured ${stamp}`), summary: `${chart.section}: ${summary}` }]
  })

const main = async (): Promise<void> => {
  const text = await readFile(`${docs}benchmarks.md`, "utf8")
  await mkdir(`${docs}benchmarks`, { recursive: true })
  for (const { file, svg, summary } of renderAll(text)) {
    await writeFile(`${docs}benchmarks/${file}`, svg)
    console.log(summary)
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main()
