/**
 * The names the PostgreSQL store's SQL is written with, validated (`[A-Za-z_][A-Za-z0-9_]*`,
 * quoted), and how its timeouts reach the server. Plain functions, no Effect import.
 *
 * @internal
 */
import * as pgSql from "./sql.js"

/** @internal */
export const DEFAULT_TABLE = "rate_limiter_state"
/** @internal */
export const DEFAULT_SCHEMA = "public"

/**
 * The quoted names of the store's schema, table and functions, or why `tableName` / `schemaName`
 * is not a valid identifier.
 *
 * @internal
 */
export const namesOf = (
  options: { readonly tableName?: string | undefined; readonly schemaName?: string | undefined }
): pgSql.Names | string => {
  const table = options.tableName ?? DEFAULT_TABLE
  const schema = options.schemaName ?? DEFAULT_SCHEMA
  const badTable = pgSql.invalidIdentifier(table, pgSql.MAX_TABLE_NAME)
  if (badTable !== undefined) return `tableName ${JSON.stringify(table)} ${badTable}`
  const badSchema = pgSql.invalidIdentifier(schema, 63)
  if (badSchema !== undefined) return `schemaName ${JSON.stringify(schema)} ${badSchema}`
  return pgSql.names(schema, table)
}

/** A timeout as PostgreSQL's `lock_timeout` / `statement_timeout` take it: whole ms, 1 to 2^31 − 1 (0 would mean none). @internal */
export const serverTimeoutMs = (ms: number): number => Math.max(1, Math.min(2_147_483_647, Math.round(ms)))
