/**
 * The rows the PostgreSQL store's statements answer, as plain values. No Effect import.
 *
 * @internal
 */

/** One row: its values in column order. @internal */
export type Row = ReadonlyArray<unknown>

/**
 * The rows of the last statement of a (possibly multi-statement) query, each as its values in
 * column order: `sql.unsafe` answers the rows of a single statement, or one array of rows per
 * statement of a simple-protocol message.
 *
 * @internal
 */
export const lastRows = (result: ReadonlyArray<unknown>): ReadonlyArray<Row> => {
  const last: unknown = result[result.length - 1]
  const rows: ReadonlyArray<unknown> = Array.isArray(last) ? last : result
  return rows.map((row): Row => (typeof row === "object" && row !== null ? Object.values(row) : []))
}

/** A numeric column (`float8` arrives as a number, `numeric` / `bigint` as a string); `NaN` otherwise. @internal */
export const num = (x: unknown): number => {
  if (typeof x === "number") return x
  if (typeof x === "string") return Number(x)
  return Number.NaN
}

/**
 * `[allowed, remaining, reset_after, retry_after, delay]`, as the take and peek functions answer
 * it, and a window take's `ref` (column 6: the fixed window's start, the sliding entry's instant;
 * `undefined` when it charged nothing). @internal
 */
export interface DecisionRow {
  readonly allowed: boolean
  readonly remaining: number
  readonly resetAfter: number
  readonly retryAfter: number
  readonly delay: number
  readonly ref: number | undefined
}

/** The decision a row holds, `undefined` when a number is missing (an unexpected row). @internal */
export const decisionRow = (row: Row): DecisionRow | undefined => {
  const remaining = num(row[1])
  const resetAfter = num(row[2])
  const retryAfter = num(row[3])
  const delay = num(row[4])
  if ([remaining, resetAfter, retryAfter, delay].some(Number.isNaN)) return undefined
  const ref = row[5] === null || row[5] === undefined ? Number.NaN : num(row[5])
  return { allowed: row[0] === true, remaining, resetAfter, retryAfter, delay, ref: Number.isNaN(ref) ? undefined : ref }
}
