/**
 * What the NATS store keeps under one key: compact JSON, `x` the instant the value stops
 * mattering (in its writer's milliseconds). Parsing is lenient: a value this version cannot read
 * is treated as absent, and the earlier single-window layout (`s`, `w`, `n`, `l`) is read as the
 * counter of its length.
 *
 * @internal
 */

/** One fixed-window counter: `[length, start, count, limit]`. @internal */
export type FixedEntry = readonly [number, number, number, number]

/** @internal */
export interface Stored {
  readonly x: number
  /** Owner: the id of the store instance whose clock the instants are on ("" when mixed). */
  readonly o?: string | undefined
  /** Sliding window: entry times and costs, oldest first. */
  readonly t?: ReadonlyArray<number> | undefined
  readonly c?: ReadonlyArray<number> | undefined
  /** Fixed windows, one per window length. */
  readonly f?: ReadonlyArray<FixedEntry> | undefined
  /** Leases: `[holder, expiry]` pairs. */
  readonly h?: ReadonlyArray<readonly [string, number]> | undefined
  /**
   * The nonce of the composite take (`takeAll`) that wrote this value, so that the undo of a write
   * whose answer never came can tell whether it landed (the next write drops it).
   */
  readonly n?: string | undefined
}

const isNumber = (u: unknown): u is number => typeof u === "number" && !Number.isNaN(u)
const isNumbers = (u: unknown): u is ReadonlyArray<number> => Array.isArray(u) && u.every(isNumber)

const fixedEntries = (u: ReadonlyArray<unknown>): Array<FixedEntry> => {
  const f: Array<FixedEntry> = []
  for (const e of u) {
    if (Array.isArray(e) && isNumber(e[0]) && isNumber(e[1]) && isNumber(e[2]) && isNumber(e[3])) {
      f.push([e[0], e[1], e[2], e[3]])
    }
  }
  return f
}

const leasePairs = (u: ReadonlyArray<unknown>): Array<readonly [string, number]> => {
  const h: Array<readonly [string, number]> = []
  for (const pair of u) {
    if (Array.isArray(pair) && typeof pair[0] === "string" && isNumber(pair[1])) h.push([pair[0], pair[1]])
  }
  return h
}

/** The value `text` holds, `undefined` when it is not one this store wrote. @internal */
export const parseStored = (text: string): Stored | undefined => {
  let u: unknown
  try {
    u = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof u !== "object" || u === null || !("x" in u) || !isNumber(u.x)) return undefined
  const out: {
    x: number
    o?: string
    t?: ReadonlyArray<number>
    c?: ReadonlyArray<number>
    f?: ReadonlyArray<FixedEntry>
    h?: ReadonlyArray<readonly [string, number]>
    n?: string
  } = { x: u.x }
  if ("o" in u && typeof u.o === "string") out.o = u.o
  if ("t" in u && "c" in u && isNumbers(u.t) && isNumbers(u.c) && u.t.length === u.c.length) {
    out.t = u.t
    out.c = u.c
  }
  if ("f" in u && Array.isArray(u.f)) {
    out.f = fixedEntries(u.f)
  } else if ("s" in u && "w" in u && "n" in u && "l" in u && isNumber(u.s) && isNumber(u.w) && isNumber(u.n) && isNumber(u.l)) {
    out.f = [[u.w, u.s, u.n, u.l]]
  }
  if ("h" in u && Array.isArray(u.h)) out.h = leasePairs(u.h)
  if ("n" in u && typeof u.n === "string") out.n = u.n
  return out
}
