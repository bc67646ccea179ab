/**
 * What every part of the PostgreSQL store shares: its settings (the options with their
 * defaults applied), how it words a failure, and the `Driver` its operations run on.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Sql from "#fx/sql"
import { describe, errorKind, sqlStateOf } from "../../core/postgres/errors.js"
import { serverTimeoutMs } from "../../core/postgres/names.js"
import type * as pgSql from "../../core/postgres/sql.js"
import type { PostgresStoreOptions } from "../../PostgresStore.js"
import { StoreError } from "../../RateLimitStore.js"
import { toMillis } from "../store/options.js"
import type * as Call from "./call.js"
import type * as Coalesce from "./coalesce.js"

/** @internal */
export const ENGINE = "postgres"

/** The options of a store, defaults applied. @internal */
export interface Settings {
  readonly autoCreate: boolean
  readonly unlogged: boolean
  readonly synchronousCommit: boolean
  readonly marginMs: number
  /** `statementTimeout`: every call settles within it. */
  readonly timeoutMs: number
  /** Server-side bound on a row-lock wait and, on Effect 3, a writing statement (`lock_timeout`, `statement_timeout`, ms; 0 would mean none). */
  readonly lockMs: number
  readonly initTimeoutMs: number
  readonly cleanupEvery: Duration.Duration
  readonly batchSize: number
  readonly permits: number
  readonly maxQueued: number
}

/**
 * Statements of the store in flight at once by default (fewer when the pool is smaller). Takes,
 * slot acquires and slot releases that wait for a slot together are decided by one statement
 * (`gate.ts` `MergeGroup`), so a few slots carry any load: fewer, larger statements cost the
 * server and the client less than many (measured: docs/engines/postgres.md), and the rest of a
 * shared pool stays the application's.
 */
const DEFAULT_PERMITS = 2

/** The settings of `options`; `poolSize` is the `maxConnections` of the `PgClient` in context, if any. @internal */
export const settingsOf = (options: PostgresStoreOptions, poolSize: number | undefined): Settings => {
  const timeoutMs = toMillis(options.statementTimeout, 2000)
  return {
    autoCreate: options.autoCreate ?? true,
    unlogged: options.unlogged ?? false,
    synchronousCommit: options.synchronousCommit ?? false,
    marginMs: options.timingMarginMs ?? 0,
    timeoutMs,
    lockMs: serverTimeoutMs(timeoutMs),
    initTimeoutMs: toMillis(options.initializeTimeout, 15_000),
    cleanupEvery: Duration.millis(Math.max(10, toMillis(options.cleanupInterval, 60_000))),
    batchSize: batchSizeOf(options),
    permits: Math.max(1, Math.floor(options.maxConcurrentStatements ?? Math.min(poolSize ?? DEFAULT_PERMITS, DEFAULT_PERMITS))),
    maxQueued: Math.max(0, Math.floor(options.maxQueuedStatements ?? 10_000))
  }
}

/** The `maxConnections` of the `PgClient` in context, if there is one. @internal */
export const poolSize: Effect.Effect<number | undefined> = Effect.map(
  Effect.serviceOption(Sql.PgClient.PgClient),
  Option.match({ onNone: () => undefined, onSome: Sql.poolSizeOf })
)

/** Most rows one cleanup statement deletes. @internal */
export const batchSizeOf = (options: PostgresStoreOptions): number => Math.max(1, Math.floor(options.cleanupBatchSize ?? 1000))

/** How the store words its failures, driver messages scrubbed by `sanitize`. @internal */
export interface Failures {
  readonly fail: (operation: string, message: string) => StoreError
  /** A failed statement: `rejected` when the server refused the request itself (see `core/postgres/errors.ts`). */
  readonly failed: (operation: string, e: unknown) => StoreError
}

/** @internal */
export const failures = (sanitize: (message: string) => string): Failures => ({
  fail: (operation, message) => new StoreError({ engine: ENGINE, operation, message: sanitize(message) }),
  failed: (operation, e) =>
    new StoreError({ engine: ENGINE, operation, message: sanitize(describe(e)), kind: errorKind(sqlStateOf(e)) })
})

/** What the store's operations run on. @internal */
export interface Driver {
  readonly sql: Sql.SqlClient.SqlClient
  readonly names: pgSql.Names
  /** The store's functions, their prepared statements and signatures. */
  readonly specs: pgSql.Specs
  readonly settings: Settings
  readonly failures: Failures
  readonly call: Call.Call
  /** The hot keys' takes coalesced (`coalesce.ts`). */
  readonly coalescer: Coalesce.Coalescer
}
