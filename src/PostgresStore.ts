/**
 * The PostgreSQL store, on `@effect/sql`'s `SqlClient` (pg dialect): every SPI operation is one
 * statement, `SELECT * FROM <schema>.<table>_<op>(...)`, calling a PL/pgSQL function that
 * `initialize` installs (with `autoCreate`). The function locks the `(limiter, key)` row
 * (`SELECT … FOR UPDATE`, so concurrent callers of one key serialize), reads the server's clock
 * (`clock_timestamp()`), decides, and writes only what it admitted.
 *
 * State lives in one table (default `public.rate_limiter_state`), one row per
 * `(limiter, key, kind)` with its own `expires_at`; expired rows are ignored by the math and
 * deleted by a cleanup fiber (`DELETE … LIMIT`, `SKIP LOCKED`) forked in the store's scope.
 * Limiter ids and keys are stored as `text` (compared byte for byte), so distinct pairs never
 * share state; `reset(limiter)` is an index range delete.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Random from "effect/Random"
import type * as Scope from "effect/Scope"
import { makeRedactor, secretParamPattern, userinfoPattern } from "./core/secrets.js"
import { displayUrl, parseUrl, secretsOfUrl } from "./core/url.js"
import type { UrlRules } from "./core/url.js"
import * as Deadlines from "./internal/store/deadlines.js"
import * as pgSql from "./core/postgres/sql.js"
import type {
  PeekRequest,
  RateLimitStoreService,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  TokenBucketRequest,
  WindowRequest
} from "./RateLimitStore.js"
import * as RateLimitError from "./RateLimitError.js"
import { make as makeStore, RateLimitStore, StoreError } from "./RateLimitStore.js"
import type { PostgresStoreDefinition } from "./StoreDefinition.js"

/**
 * Options of the PostgreSQL store (rate-sync's PostgreSQL engine options, camelCased). The
 * connection itself comes from the `SqlClient` in context (see {@link layerWithPgClient} and
 * {@link fromDefinition} to build one).
 *
 * @since 0.1.0
 * @category models
 */
export interface PostgresStoreOptions {
  /** Table of the state. Default `"rate_limiter_state"`. `[A-Za-z_][A-Za-z0-9_]*`, at most 48 characters; quoted (case-sensitive). */
  readonly tableName?: string | undefined
  /** Schema of the table and functions. Default `"public"`. `[A-Za-z_][A-Za-z0-9_]*`; quoted. */
  readonly schemaName?: string | undefined
  /**
   * Create the table (and the schema when not `public`) and install the functions at start-up.
   * Default `true`. With `false`, start-up checks they exist and fails otherwise; apply
   * {@link ddl} with a privileged role beforehand.
   */
  readonly autoCreate?: boolean | undefined
  /**
   * Create the table `UNLOGGED` (no WAL: several times faster writes, but the state is emptied
   * after a crash and not replicated). Only applies when the table is created. Default `false`.
   */
  readonly unlogged?: boolean | undefined
  /**
   * Added to every non-zero `delayMs` / `retryAfterMs` the store answers, to absorb the network
   * time between the server's decision and the caller's wake-up. Default 0.
   */
  readonly timingMarginMs?: number | undefined
  /**
   * Wait for the WAL flush when a decision commits (PostgreSQL's `synchronous_commit`). Default
   * `false`: the writing statements turn it off for their own transaction, which halves the latency
   * of a take; a server crash may lose the last few hundred milliseconds of decisions (as Redis
   * does by default), never consistency. `true` keeps the server's setting.
   */
  readonly synchronousCommit?: boolean | undefined
  /** Every call settles (answers or fails with `StoreError`) within this. Default 2 seconds. */
  readonly statementTimeout?: Duration.DurationInput | undefined
  /**
   * Most statements of the store in flight at once; the other calls wait in the store's own
   * queue, which a caller that times out leaves without a trace in the pg pool. Default: the
   * `maxConnections` of the `PgClient` in context, else 10 (pg's default pool size).
   */
  readonly maxConcurrentStatements?: number | undefined
  /**
   * Most calls waiting for a statement slot. Past it, and whenever the calls already waiting
   * could not all be answered within `statementTimeout` at the recent pace, a call fails at once
   * with `StoreError` (`overloaded`) instead of queueing. Default 10 000.
   */
  readonly maxQueuedStatements?: number | undefined
  /** Bound on `initialize` (DDL may wait for locks). Default 15 seconds. */
  readonly initializeTimeout?: Duration.DurationInput | undefined
  /** How often expired rows are deleted. Default 60 seconds. */
  readonly cleanupInterval?: Duration.DurationInput | undefined
  /** Most rows one cleanup statement deletes (a cleanup runs up to 10 of them). Default 1000. */
  readonly cleanupBatchSize?: number | undefined
}

const ENGINE = "postgres"
const ATTR_DB_SYSTEM_NAME = "db.system.name"
const ATTR_LIMITER = "rate_sync.limiter"
const DEFAULT_TABLE = "rate_limiter_state"
const DEFAULT_SCHEMA = "public"
/** SQLSTATEs meaning the table or a function is gone (dropped, or another database). */
const MISSING_OBJECT = new Set(["42P01", "42883", "3F000"])
/**
 * SQLSTATEs after which the statement was rolled back and may simply run again: serialization
 * failure and deadlock. The writing statements force READ COMMITTED, so they should not occur;
 * retried (jittered, within `statementTimeout`) all the same.
 */
const RETRYABLE = new Set(["40001", "40P01"])

/** A timeout as PostgreSQL's `lock_timeout` / `statement_timeout` take it: whole ms, 1 to 2^31 − 1 (0 would mean none). */
const serverTimeoutMs = (ms: number): number => Math.max(1, Math.min(2_147_483_647, Math.round(ms)))

/** The clock, in milliseconds. */
const nowMs = Effect.map(Clock.currentTimeNanos, (ns) => Number(ns) / 1e6)

/**
 * Runs `once` again after a retryable SQLSTATE, waiting min(2^k, 50) ms (jittered ×0.8–1.2)
 * before the k-th retry, as long as the retry starts before `deadlineMs` (the call's start plus
 * its `statementTimeout`: the statement's fiber outlives a caller that timed out, its retries
 * must not).
 */
const retryUntil = <A>(once: Effect.Effect<A, unknown>, deadlineMs: number): Effect.Effect<A, unknown> => {
  const loop = (k: number): Effect.Effect<A, unknown> =>
    Effect.catchIf(
      once,
      (e) => RETRYABLE.has(sqlStateOf(e) ?? ""),
      (e) =>
        Effect.flatMap(Effect.zip(nowMs, Random.next), ([now, r]) => {
          const delay = Math.min(2 ** k, 50) * (0.8 + 0.4 * r)
          return now + delay >= deadlineMs ? Effect.fail(e) : Effect.zipRight(Effect.sleep(Duration.millis(delay)), loop(k + 1))
        })
    )
  return loop(0)
}

// ---------------------------------------------------------------------------------------------
// secrets and errors

/** `password=…` / `password: …` (a keyword/value connection string, a driver's echo of one). */
const passwordPairPattern = { regex: /(password\s*[=:]\s*)\S+/gi, replacement: "$1***" }

/**
 * A redactor (built once per store) that removes from a driver message every form (raw,
 * decoded, encoded, JSON-escaped: see `core/secrets.ts`) of the known secrets, then URL userinfo,
 * secret query values (`?password=`, `sslpassword`, ...) and `password=…` pairs.
 */
const sanitizeWith = (secrets: ReadonlyArray<string>): (message: string) => string =>
  makeRedactor(secrets, [userinfoPattern, secretParamPattern, passwordPairPattern])

/** pg takes userinfo before an empty host (a unix socket in `?host=`). */
const URL_RULES: UrlRules = { emptyHost: true }

/** The password, the URL, its password and its secret query values (`?password=`, `sslpassword`). */
const secretsOf = (url: Redacted.Redacted | undefined, password: Redacted.Redacted | undefined): ReadonlyArray<string> => [
  ...(password !== undefined ? [Redacted.value(password)] : []),
  ...(url !== undefined ? secretsOfUrl(Redacted.value(url), URL_RULES) : [])
]

const URL_EXPECTED = "a postgres:// or postgresql:// URL with valid % escapes"

/** A `ConfigError` naming the option `url` when it does not parse (shown with its secrets as `***`). */
const urlConfigError = (url: Redacted.Redacted | undefined): RateLimitError.ConfigError | undefined => {
  if (url === undefined) return undefined
  const text = Redacted.value(url)
  const parsed = parseUrl(text, URL_RULES)
  return parsed.ok ? undefined : RateLimitError.ConfigError.at("url", URL_EXPECTED, `${displayUrl(text, URL_RULES)} (${parsed.problem})`)
}

/** A field of a driver error (`SqlError`, pg's `DatabaseError`), which are untyped here. */
const fieldOf = (u: unknown, field: "message" | "code" | "cause"): unknown =>
  typeof u === "object" && u !== null ? Reflect.get(u, field) : undefined

const stringField = (u: unknown, field: "message" | "code"): string | undefined => {
  const v = fieldOf(u, field)
  return typeof v === "string" && v !== "" ? v : undefined
}

/** `SqlError` message plus the driver's own (`relation … does not exist`, `ECONNREFUSED`). */
const describe = (e: unknown): string => {
  const outer = stringField(e, "message") ?? "unknown error"
  const inner = stringField(fieldOf(e, "cause"), "message")
  return inner === undefined || inner === outer ? outer : `${outer}: ${inner}`
}

const sqlStateOf = (e: unknown): string | undefined => stringField(fieldOf(e, "cause"), "code")

const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

// ---------------------------------------------------------------------------------------------
// rows

type Row = ReadonlyArray<unknown>

/**
 * The rows of the last statement of a (possibly multi-statement) query, each as its values in
 * column order: `sql.unsafe` answers the rows of a single statement, or one array of rows per
 * statement of a simple-protocol message.
 */
const lastRows = (result: ReadonlyArray<unknown>): ReadonlyArray<Row> => {
  const last: unknown = result[result.length - 1]
  const rows: ReadonlyArray<unknown> = Array.isArray(last) ? last : result
  return rows.map((row): Row => (typeof row === "object" && row !== null ? Object.values(row) : []))
}

const num = (x: unknown): number => {
  if (typeof x === "number") return x
  if (typeof x === "string") return Number(x)
  return Number.NaN
}

/**
 * The SQL reference of the store (schema, table, functions), as `autoCreate` applies it: for a
 * DBA to run when the application's role may not create objects (`autoCreate: false`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const ddl = (options: PostgresStoreOptions = {}): Effect.Effect<string, StoreError> =>
  Effect.suspend(() => {
    const n = namesOf(options)
    return typeof n === "string"
      ? Effect.fail(new StoreError({ engine: ENGINE, operation: "configure", message: n }))
      : Effect.succeed(pgSql.install(n, options.unlogged ?? false))
  })

const namesOf = (options: PostgresStoreOptions): pgSql.Names | string => {
  const table = options.tableName ?? DEFAULT_TABLE
  const schema = options.schemaName ?? DEFAULT_SCHEMA
  const badTable = pgSql.invalidIdentifier(table, pgSql.MAX_TABLE_NAME)
  if (badTable !== undefined) return `tableName ${JSON.stringify(table)} ${badTable}`
  const badSchema = pgSql.invalidIdentifier(schema, 63)
  if (badSchema !== undefined) return `schemaName ${JSON.stringify(schema)} ${badSchema}`
  return pgSql.names(schema, table)
}

// ---------------------------------------------------------------------------------------------
// make

/**
 * Builds the store on the `SqlClient` in context (a pg client): validates the names, runs
 * `initialize` (creates the table and installs the functions with `autoCreate`, else checks
 * they exist), and forks the cleanup of expired rows in the scope. Fails with `StoreError`; the
 * message never holds a URL with credentials or a password.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: PostgresStoreOptions = {}
): Effect.Effect<RateLimitStoreService, StoreError, SqlClient.SqlClient | Scope.Scope> =>
  makeWith(options, [])

const makeWith = (
  options: PostgresStoreOptions,
  secrets: ReadonlyArray<string>
): Effect.Effect<RateLimitStoreService, StoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sanitize = sanitizeWith(secrets)
    const fail = (operation: string, message: string) =>
      new StoreError({ engine: ENGINE, operation, message: sanitize(message) })
    const n = namesOf(options)
    if (typeof n === "string") return yield* Effect.fail(fail("configure", n))
    const batchSize = Math.max(1, Math.floor(options.cleanupBatchSize ?? 1000))
    const marginMs = options.timingMarginMs ?? 0
    const autoCreate = options.autoCreate ?? true
    const timeoutMs = toMillis(options.statementTimeout, 2000)
    /** Server-side bound on a row-lock wait and a writing statement (`lock_timeout`, `statement_timeout`, ms; 0 would mean none). */
    const lockMs = serverTimeoutMs(timeoutMs)
    const initTimeoutMs = toMillis(options.initializeTimeout, 15_000)
    const cleanupEvery = Duration.millis(Math.max(10, toMillis(options.cleanupInterval, 60_000)))
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const text = pgSql.statements(n, options.synchronousCommit ?? false, lockMs)
    const poolSize = Option.match(yield* Effect.serviceOption(PgClient.PgClient), {
      onNone: () => undefined,
      onSome: (client) => client.config.maxConnections
    })
    const permits = Math.max(1, Math.floor(options.maxConcurrentStatements ?? poolSize ?? 10))
    const maxQueued = Math.max(0, Math.floor(options.maxQueuedStatements ?? 10_000))
    const gate = yield* makeGate(permits, maxQueued)

    const span = (operation: string, limiter: string | undefined) =>
      Effect.withSpan(`RateLimitStore.postgres.${operation}`, {
        kind: "client",
        captureStackTrace: false,
        attributes: limiter === undefined
          ? { [ATTR_DB_SYSTEM_NAME]: "postgresql" }
          : { [ATTR_DB_SYSTEM_NAME]: "postgresql", [ATTR_LIMITER]: limiter }
      })

    /** Every call is answered by its deadline at the latest (see `internal/deadlines.ts`). */
    const deadlines = yield* Deadlines.make(timeoutMs)

    /** A failed statement: `rejected` when the server refused the request itself (see `postgresSql.errorKind`). */
    const failed = (operation: string, e: unknown) =>
      new StoreError({ engine: ENGINE, operation, message: sanitize(describe(e)), kind: pgSql.errorKind(sqlStateOf(e)) })

    /** A statement's fiber that ended otherwise than with its answer or a `StoreError` (a defect). */
    const died = (operation: string, cause: Cause.Cause<StoreError>): StoreError =>
      Option.getOrElse(Cause.failureOption(cause), () => fail(operation, `the statement failed: ${Cause.pretty(cause)}`))

    const overloaded = (operation: string, ms: number) => (refusal: Refusal) =>
      fail(
        operation,
        refusal.expectedMs === undefined
          ? `overloaded: ${refusal.waiting} calls already wait for one of ${permits} statement slots (maxQueuedStatements)`
          : `overloaded: ${refusal.waiting} calls already wait for one of ${permits} statement slots; an answer would take about ${
            Math.round(refusal.expectedMs)
          } ms, past the ${ms} ms statementTimeout`
      )

    /**
     * One statement, settled within `ms` whatever the link does and whether or not the caller is
     * interruptible (the limiter acquires and releases slots uninterruptibly). The statement runs
     * in a fiber of its own: it waits for one of the store's `permits` slots (so none of its
     * statements waits in the pg pool's own queue), or fails at once when overloaded (see
     * {@link makeGate}), then runs to its end. The caller waits for its answer, registered with
     * the store's deadlines: at `ms` the sweeper fails the call with `no answer within ms`; a
     * statement still waiting for a slot then leaves the queue, one already sent runs to its end
     * in the background (a writing one bounded on the server by `lock_timeout` and
     * `statement_timeout`) and frees its slot then, its late answer given to `undoLate` (an
     * acquired slot nobody will release). No timer, no interruption per call. `measure`: the
     * statement's time feeds the pace estimate (decisions, not DDL or cleanup).
     */
    const bounded = <A>(
      operation: string,
      ms: number,
      effect: Effect.Effect<A, unknown>,
      measure = false,
      undoLate?: (a: A) => Effect.Effect<void>
    ): Effect.Effect<A, StoreError> =>
      Effect.suspend(() => {
        const refused = overloaded(operation, ms)
        // refused at once: no fiber needed
        const refusal = gate.refusal(ms)
        if (refusal !== undefined) return Effect.fail(refused(refusal))
        const pending: Pending<A> = { inFlight: undefined, exit: undefined, ticket: { expired: false, leave: undefined } }
        const timedOut = () => fail(operation, `no answer within ${ms} ms`)
        const statement = gate.run(
          ms,
          refused,
          measure,
          Effect.mapError(effect, (e) => failed(operation, e)),
          pending.ticket,
          timedOut
        )
        const answer = (exit: Exit.Exit<A, StoreError>): Effect.Effect<void> => {
          const inFlight = pending.inFlight
          if (inFlight === undefined) {
            // answered before the caller registered (a refusal in the fiber): the caller takes it
            pending.exit = exit
            return Effect.void
          }
          if (!pending.ticket.expired) {
            if (Exit.isSuccess(exit)) inFlight.succeed(exit.value)
            else inFlight.fail(died(operation, exit.cause))
            return Effect.void
          }
          return undoLate !== undefined && Exit.isSuccess(exit) ? undoLate(exit.value) : Effect.void
        }
        return Effect.flatMap(
          Effect.forkDaemon(Effect.uninterruptible(Effect.flatMap(Effect.exit(statement), answer))),
          () =>
            Effect.async<A, StoreError>((resume) => {
              if (pending.exit !== undefined) {
                resume(pending.exit)
                return
              }
              pending.inFlight = deadlines.track(resume, () => {
                const ticket = pending.ticket
                ticket.expired = true
                if (ticket.leave !== undefined) ticket.leave()
                return timedOut()
              }, ms)
            })
        )
      })

    /** Every statement of the store runs outside any transaction of the caller's. */
    const run = (statement: string, params?: ReadonlyArray<unknown>) => outsideTransactions(sql.unsafe(statement, params))
    const install = run(pgSql.installIfChanged(n, options.unlogged ?? false))
    const installOnce = bounded("initialize", initTimeoutMs, install)
    const checkInstalled = bounded(
      "initialize",
      initTimeoutMs,
      outsideTransactions(sql.unsafe(pgSql.missingObjects(n)).values)
    ).pipe(
      Effect.flatMap((rows) =>
        rows.length === 0 ? Effect.void : Effect.fail(
          fail(
            "initialize",
            `autoCreate is false and ${rows.map((r) => String(r[0])).join(", ")} ${
              rows.length === 1 ? "is" : "are"
            } missing: apply PostgresStore.ddl(options) with a role that may create them`
          )
        )
      )
    )
    const initialize: Effect.Effect<void, StoreError> = (autoCreate ? Effect.asVoid(installOnce) : checkInstalled)
      .pipe(span("initialize", undefined))

    /**
     * One round trip. When the table or a function has vanished (dropped, restored database) and
     * `autoCreate` is on, installs again and retries once, like Redis' NOSCRIPT fallback. Retryable
     * SQLSTATEs are retried until `deadlineMs` (see {@link retryUntil}).
     */
    const attempt = (
      once: Effect.Effect<ReadonlyArray<Row>, unknown>,
      deadlineMs: number
    ): Effect.Effect<ReadonlyArray<Row>, unknown> =>
      retryUntil(
        Effect.catchIf(
          once,
          (e) => autoCreate && MISSING_OBJECT.has(sqlStateOf(e) ?? ""),
          () => Effect.zipRight(install, once)
        ),
        deadlineMs
      )
    /** A decision's round trip, bounded from the call's start (its retries too). */
    const decide = (
      operation: string,
      limiter: string,
      once: Effect.Effect<ReadonlyArray<Row>, unknown>,
      undoLate?: (rows: ReadonlyArray<Row>) => Effect.Effect<void>
    ) =>
      Effect.flatMap(nowMs, (start) => bounded(operation, timeoutMs, attempt(once, start + timeoutMs), true, undoLate)).pipe(
        span(operation, limiter)
      )
    /** A read: one parameterized statement. */
    const query = (operation: string, limiter: string, statement: string, params: ReadonlyArray<unknown>) =>
      decide(operation, limiter, outsideTransactions(sql.unsafe(statement, params).values))
    /**
     * A write: one simple-protocol message (see `postgresSql.statements`), its last result;
     * `undoLate` takes the rows of one that answered after its caller timed out.
     */
    const write = (
      operation: string,
      limiter: string,
      statement: string,
      undoLate?: (rows: ReadonlyArray<Row>) => Effect.Effect<void>
    ) => decide(operation, limiter, Effect.map(outsideTransactions(sql.unsafe<object>(statement)), lastRows), undoLate)
    const text_ = pgSql.textLiteral
    const float_ = pgSql.floatLiteral
    const lock = pgSql.intLiteral(lockMs)

    /** PostgreSQL's `text` cannot hold NUL: refused before sending, as the server would (22021). */
    const checkIds = (operation: string, ...ids: ReadonlyArray<string>): StoreError | undefined =>
      ids.some((id) => id.includes("\u0000"))
        ? new StoreError({
          engine: ENGINE,
          operation,
          message: "limiter ids, keys and holders must not contain NUL characters (PostgreSQL text)",
          kind: "rejected"
        })
        : undefined

    const firstRow = (operation: string, rows: ReadonlyArray<Row>): Effect.Effect<Row, StoreError> => {
      const row = rows[0]
      return row === undefined ? Effect.fail(fail(operation, "the statement returned no row")) : Effect.succeed(row)
    }

    /** `[allowed, remaining, reset_after, retry_after, delay]` → `StoreDecision`. */
    const decision = (operation: string, limit: number) => (rows: ReadonlyArray<Row>) =>
      Effect.flatMap(firstRow(operation, rows), (row): Effect.Effect<StoreDecision, StoreError> => {
        const allowed = row[0] === true
        const remaining = num(row[1])
        const resetAfter = num(row[2])
        const retryAfter = num(row[3])
        const delay = num(row[4])
        if ([remaining, resetAfter, retryAfter, delay].some(Number.isNaN)) {
          return Effect.fail(fail(operation, "unexpected row"))
        }
        return Effect.succeed({
          allowed,
          limit,
          remaining,
          resetAfterMs: Math.max(0, resetAfter),
          retryAfterMs: allowed ? 0 : retryAfter === Infinity ? Infinity : Math.max(retryAfter, 0.001) + marginMs,
          delayMs: allowed && delay > 0 ? delay + marginMs : 0
        })
      })

    const boolean = (operation: string) => (rows: ReadonlyArray<Row>) =>
      Effect.map(firstRow(operation, rows), (row) => row[0] === true)

    const guard = <A>(operation: string, ids: ReadonlyArray<string>, effect: () => Effect.Effect<A, StoreError>) => {
      const bad = checkIds(operation, ...ids)
      return bad === undefined ? effect() : Effect.fail(bad)
    }

    const interval = (ratePerSecond: number) => 1000 / ratePerSecond

    const tokenBucket = (req: TokenBucketRequest) =>
      guard("tokenBucket", [req.limiter, req.key], () =>
        write(
          "tokenBucket",
          req.limiter,
          text.tokenBucket([
            text_(req.limiter),
            text_(req.key),
            float_(interval(req.ratePerSecond)),
            float_(req.burst),
            float_(req.cost),
            float_(Math.max(0, req.maxWaitMs)),
            lock
          ])
        ).pipe(Effect.flatMap(decision("tokenBucket", req.burst))))

    const slidingWindow = (req: WindowRequest) =>
      guard("slidingWindow", [req.limiter, req.key], () =>
        write(
          "slidingWindow",
          req.limiter,
          text.slidingWindow([
            text_(req.limiter),
            text_(req.key),
            float_(req.limit),
            float_(req.windowMs),
            float_(req.cost),
            lock
          ])
        ).pipe(Effect.flatMap(decision("slidingWindow", req.limit))))

    const fixedWindow = (req: WindowRequest) =>
      guard("fixedWindow", [req.limiter, req.key], () =>
        write(
          "fixedWindow",
          req.limiter,
          text.fixedWindow([
            text_(req.limiter),
            text_(req.key),
            float_(req.limit),
            float_(Math.max(1, req.windowMs)),
            float_(req.cost),
            lock
          ])
        ).pipe(Effect.flatMap(decision("fixedWindow", req.limit))))

    const acquireSlot = (req: SlotRequest) =>
      guard("acquireSlot", [req.limiter, req.key, req.holder], () =>
        write(
          "acquireSlot",
          req.limiter,
          text.acquireSlot([
            text_(req.limiter),
            text_(req.key),
            text_(req.holder),
            float_(req.limit),
            float_(req.leaseMs),
            lock
          ]),
          (rows) => (rows[0]?.[0] === true ? releaseLate(req) : Effect.void)
        )
          .pipe(
            Effect.flatMap((rows) => firstRow("acquireSlot", rows)),
            Effect.map((row): SlotDecision => {
              const acquired = row[0] === true
              const retry = num(row[2])
              return {
                acquired,
                limit: req.limit,
                active: num(row[1]),
                retryAfterMs: acquired ? 0 : retry === Infinity ? Infinity : Math.max(retry, 0.001) + marginMs
              }
            })
          ))

    /**
     * An acquire that timed out for its caller, then landed with the lease granted: nobody renews
     * or releases that lease, so it is released (best effort, in the statement's background fiber:
     * up to 3 tries, `statementTimeout / 2` apart; errors ignored). The limiter never reuses the
     * holder of an acquire that failed. A late renew is harmless: its caller renews again or
     * releases.
     */
    const releaseLate = (req: SlotRequest): Effect.Effect<void> => {
      const once = Effect.orElseSucceed(Effect.as(releaseSlot(req), true), () => false)
      const pause = Effect.sleep(Duration.millis(Math.max(10, timeoutMs / 2)))
      const loop = (left: number): Effect.Effect<void> =>
        Effect.flatMap(once, (done) => (done || left <= 0 ? Effect.void : Effect.zipRight(pause, loop(left - 1))))
      return loop(2)
    }

    const renewSlot = (req: SlotRequest) =>
      guard("renewSlot", [req.limiter, req.key, req.holder], () =>
        write(
          "renewSlot",
          req.limiter,
          text.renewSlot([text_(req.limiter), text_(req.key), text_(req.holder), float_(req.leaseMs), lock])
        ).pipe(
          Effect.flatMap(boolean("renewSlot"))
        ))

    const releaseSlot = (req: SlotRequest) =>
      guard("releaseSlot", [req.limiter, req.key, req.holder], () =>
        write("releaseSlot", req.limiter, text.releaseSlot([text_(req.limiter), text_(req.key), text_(req.holder), lock])).pipe(
          Effect.flatMap(boolean("releaseSlot"))
        ))

    const peek = (req: PeekRequest): Effect.Effect<StoreDecision, StoreError> =>
      guard("peek", [req.limiter, req.key], () => {
        switch (req.algorithm) {
          case "token_bucket":
            return query("peek", req.limiter, text.tokenBucketPeek, [
              req.limiter,
              req.key,
              interval(req.ratePerSecond),
              req.burst
            ]).pipe(Effect.flatMap(decision("peek", req.burst)))
          case "sliding_window":
            return query("peek", req.limiter, text.slidingWindowPeek, [req.limiter, req.key, req.limit, req.windowMs])
              .pipe(Effect.flatMap(decision("peek", req.limit)))
          case "fixed_window":
            return query("peek", req.limiter, text.fixedWindowPeek, [
              req.limiter,
              req.key,
              req.limit,
              Math.max(1, req.windowMs)
            ]).pipe(Effect.flatMap(decision("peek", req.limit)))
          case "concurrency":
            return query("peek", req.limiter, text.slotPeek, [req.limiter, req.key, req.limit]).pipe(
              Effect.flatMap(decision("peek", req.limit))
            )
        }
      })

    const reset = (limiter: string, key?: string): Effect.Effect<void, StoreError> =>
      guard("reset", key === undefined ? [limiter] : [limiter, key], () =>
        Effect.asVoid(
          key === undefined
            ? write("reset", limiter, text.resetLimiter(limiter))
            : write("reset", limiter, text.resetKey(limiter, key))
        ))

    yield* initialize

    const cleanupOnce = deleteExpiredWith(sql, text.cleanup(batchSize), batchSize, (statement) =>
      bounded("cleanup", timeoutMs, statement))
    yield* Effect.forkScoped(
      Effect.interruptible(
        Effect.forever(
          Effect.zipRight(
            Effect.sleep(cleanupEvery),
            cleanupOnce.pipe(
              Effect.catchAll((e) => Effect.logDebug(`rate-sync postgres cleanup failed: ${e.message}`))
            )
          )
        )
      )
    )

    return makeStore({
      engine: ENGINE,
      tokenBucket,
      slidingWindow,
      fixedWindow,
      acquireSlot,
      renewSlot,
      releaseSlot,
      peek,
      reset,
      initialize
    })
  })

/**
 * One bounded statement (see `bounded` in {@link make}): `inFlight` once its caller waits for it,
 * `exit` when it ended before that.
 */
interface Pending<A> {
  inFlight: Deadlines.InFlight<A, StoreError> | undefined
  exit: Exit.Exit<A, StoreError> | undefined
  readonly ticket: Ticket
}

/** Why a call is refused at once: how many wait, and the expected wait (`undefined`: the queue is full). */
interface Refusal {
  readonly waiting: number
  readonly expectedMs: number | undefined
}

/**
 * How the store's deadline reaches a call that has no slot yet: `expired` once its caller was
 * answered (it then never takes one); `leave`, set while it is queued, takes it out of the queue.
 * Either way it fails with its `abandoned` error.
 */
interface Ticket {
  expired: boolean
  leave: (() => void) | undefined
}

/** Runs statements once one of the store's slots is free (see {@link makeGate}). */
interface Gate {
  /** Whether a call bounded by `timeoutMs` would be refused now (`undefined`: it would run or queue). */
  readonly refusal: (timeoutMs: number) => Refusal | undefined
  /**
   * Runs `effect` in a slot, in the calling fiber: at once, after waiting in the queue, or not at
   * all: fails with `refused(…)` when overloaded for a call bounded by `timeoutMs`, with
   * `abandoned()` when `ticket.leave` took it out of the queue.
   */
  readonly run: <A>(
    timeoutMs: number,
    refused: (refusal: Refusal) => StoreError,
    measure: boolean,
    effect: Effect.Effect<A, StoreError>,
    ticket: Ticket,
    abandoned: () => StoreError
  ) => Effect.Effect<A, StoreError>
}

/** A call waiting for a slot; `granted` once a finishing call handed it its slot. */
interface Waiter {
  granted: boolean
  wake: (granted: boolean) => void
}

/**
 * The store's admission to the pool: at most `permits` statements in flight. Waiting for a slot
 * never touches the pg pool, whose own queue must never hold an abandoned waiter: a caller
 * interrupted while waiting there leaves its waiter behind, and when a connection frees, pg-pool
 * hands it to that waiter, which `@effect/sql-pg` releases straight back, recursively (thousands
 * of them overflow the stack and crash the process).
 *
 * The statements run in fibers of their own (see `bounded` in {@link make}), uninterruptibly, from
 * the wait for a slot to their end: the caller is answered by the store's deadline, not by
 * interrupting anything. A call still waiting at its deadline leaves the queue (`Ticket`). Once it
 * holds a slot it runs to its end: a writing statement is bounded on the server (`lock_timeout`
 * and `statement_timeout`, the store's `statementTimeout`; a peek reads without locks), while
 * interrupting it would send `pg_cancel_backend` through `pool.query`, queueing in pg-pool for a
 * connection while holding one (a timed-out cancel then leaves a dead waiter there, and the
 * store's slot count would no longer match the connections in use).
 *
 * A FIFO queue with direct hand-off: a finishing call gives its slot to the oldest waiter, O(1)
 * (Effect's `Semaphore` wakes every waiter on each release, quadratic for thousands of waiters).
 *
 * When every slot is busy, a call is refused at once (`overloaded`) instead of
 * queueing when `maxQueued` calls already wait, or when the calls ahead of it, at the pace of the
 * recent statements (an exponential moving average of their time in a slot, forgotten whenever
 * every slot is free again), would take it past its timeout.
 */
const makeGate = (permits: number, maxQueued: number): Effect.Effect<Gate> =>
  Effect.sync((): Gate => {
    let free = permits
    let paceMs = 0
    /** Insertion-ordered: the first is the oldest; deleting a waiter that left is O(1). */
    const queue = new Set<Waiter>()
    const release = (): void => {
      for (const next of queue) {
        queue.delete(next)
        next.granted = true
        next.wake(true)
        return
      }
      free++
      // Idle: the pace measured under the last load says nothing about the next one.
      if (free === permits) paceMs = 0
    }
    const releaseEffect = Effect.sync(release)
    const record = (start: number) =>
      Effect.map(nowMs, (end) => {
        const d = Math.max(0, end - start)
        paceMs = paceMs === 0 ? d : paceMs * 0.8 + d * 0.2
      })
    const queueRefusal = (timeoutMs: number): Refusal | undefined => {
      if (queue.size >= maxQueued) return { waiting: queue.size, expectedMs: undefined }
      const expectedMs = (Math.floor(queue.size / permits) + 2) * paceMs
      return expectedMs > timeoutMs ? { waiting: queue.size, expectedMs } : undefined
    }
    const refusal = (timeoutMs: number): Refusal | undefined => (free > 0 ? undefined : queueRefusal(timeoutMs))
    const run = <A>(
      timeoutMs: number,
      refused: (refusal: Refusal) => StoreError,
      measure: boolean,
      effect: Effect.Effect<A, StoreError>,
      ticket: Ticket,
      abandoned: () => StoreError
    ): Effect.Effect<A, StoreError> => {
      const use = Effect.ensuring(
        measure ? Effect.flatMap(nowMs, (start) => Effect.tap(effect, () => record(start))) : effect,
        releaseEffect
      )
      // uninterruptible: a slot taken is always given back
      return Effect.uninterruptible(Effect.suspend((): Effect.Effect<A, StoreError> => {
        if (ticket.expired) return Effect.fail(abandoned())
        if (free > 0) {
          free--
          return use
        }
        const refuse = queueRefusal(timeoutMs)
        if (refuse !== undefined) return Effect.fail(refused(refuse))
        const waiter: Waiter = { granted: false, wake: () => {} }
        queue.add(waiter)
        const wait = Effect.async<boolean>((resume) => {
          if (waiter.granted) {
            resume(Effect.succeed(true))
            return
          }
          waiter.wake = (granted) => resume(Effect.succeed(granted))
          ticket.leave = () => {
            if (!waiter.granted && queue.delete(waiter)) waiter.wake(false)
          }
        })
        return Effect.flatMap(wait, (granted): Effect.Effect<A, StoreError> => {
          ticket.leave = undefined
          return granted ? use : Effect.fail(abandoned())
        })
      }))
    }
    return { refusal, run }
  })

/**
 * Runs a statement on a connection of its own even when the caller is inside
 * `sql.withTransaction`: a decision must commit (and release its row lock) at once, not when the
 * caller's transaction ends, and its transaction-local settings must not leak into the caller's.
 */
const outsideTransactions = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.mapInputContext(effect, (context: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(context))

/** Deletes expired rows, batch by batch (at most 10 batches); answers how many. */
const deleteExpiredWith = (
  sql: SqlClient.SqlClient,
  statement: string,
  batchSize: number,
  bound: (statement: Effect.Effect<ReadonlyArray<Row>, unknown>) => Effect.Effect<ReadonlyArray<Row>, StoreError>
): Effect.Effect<number, StoreError> => {
  const loop = (batch: number, total: number): Effect.Effect<number, StoreError> =>
    Effect.flatMap(bound(Effect.map(outsideTransactions(sql.unsafe<object>(statement)), lastRows)), (rows) => {
      const deleted = num(rows[0]?.[0])
      const sum = total + (Number.isNaN(deleted) ? 0 : deleted)
      return deleted >= batchSize && batch < 10 ? loop(batch + 1, sum) : Effect.succeed(sum)
    })
  return loop(1, 0)
}

/**
 * Deletes the expired rows of the store's table now (the store also does it every
 * `cleanupInterval`); answers how many rows went.
 *
 * @since 0.1.0
 * @category constructors
 */
export const deleteExpired = (
  options: PostgresStoreOptions = {}
): Effect.Effect<number, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const n = namesOf(options)
    if (typeof n === "string") return yield* Effect.fail(new StoreError({ engine: ENGINE, operation: "cleanup", message: n }))
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const batchSize = Math.max(1, Math.floor(options.cleanupBatchSize ?? 1000))
    return yield* deleteExpiredWith(
      sql,
      pgSql.statements(n, true, serverTimeoutMs(toMillis(options.statementTimeout, 2000))).cleanup(batchSize),
      batchSize,
      (statement) =>
        Effect.mapError(
          statement,
          (e) => new StoreError({ engine: ENGINE, operation: "cleanup", message: sanitizeWith([])(describe(e)) })
        )
    )
  })

// ---------------------------------------------------------------------------------------------
// layers and config

/**
 * The store on the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PostgresStoreOptions = {}
): Layer.Layer<RateLimitStore, StoreError, SqlClient.SqlClient> => Layer.scoped(RateLimitStore, make(options))

/**
 * The store on the `SqlClient` in context, its options read from configuration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<PostgresStoreOptions>
): Layer.Layer<RateLimitStore, StoreError | ConfigError.ConfigError, SqlClient.SqlClient> =>
  Layer.scoped(RateLimitStore, Effect.flatMap(Config.unwrap(options), make))

/**
 * `PgClient.layer`, its `SqlError` turned into a sanitized `StoreError`; a `url` that does not
 * parse (or has a bad `%` escape) is a `ConfigError` before anything is opened.
 */
const pgClientLayer = (
  pgConfig: PgClient.PgClientConfig
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, StoreError | RateLimitError.ConfigError> => {
  const badUrl = urlConfigError(pgConfig.url)
  if (badUrl !== undefined) return Layer.fail(badUrl)
  const sanitize = sanitizeWith(secretsOf(pgConfig.url, pgConfig.password))
  return Layer.mapError(
    PgClient.layer(pgConfig),
    (e) => new StoreError({ engine: ENGINE, operation: "connect", message: sanitize(describe(e)) })
  )
}

/**
 * The store with its own pg pool (`PgClient.layer(pgConfig)`), closed with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithPgClient = (
  pgConfig: PgClient.PgClientConfig,
  options: PostgresStoreOptions = {}
): Layer.Layer<RateLimitStore, StoreError | RateLimitError.ConfigError> =>
  Layer.scoped(
    RateLimitStore,
    makeWith(options, secretsOf(pgConfig.url, pgConfig.password))
  ).pipe(Layer.provide(pgClientLayer(pgConfig)))

/**
 * Builds the store a `PostgresStoreDefinition` (TOML `engine = "postgres"`, `configureStore`)
 * describes, with its own pg pool (`url`, `poolMinSize`, `poolMaxSize`) closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromDefinition = (
  definition: PostgresStoreDefinition
): Effect.Effect<RateLimitStoreService, StoreError | RateLimitError.ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const pgConfig: PgClient.PgClientConfig = {
      ...(definition.url !== undefined ? { url: definition.url } : {}),
      ...(definition.poolMinSize !== undefined ? { minConnections: definition.poolMinSize } : {}),
      ...(definition.poolMaxSize !== undefined ? { maxConnections: definition.poolMaxSize } : {}),
      applicationName: "effect-rate-sync"
    }
    const context = yield* Layer.build(pgClientLayer(pgConfig))
    return yield* makeWith(optionsFromDefinition(definition), secretsOf(definition.url, undefined)).pipe(
      Effect.provide(context)
    )
  })

/**
 * The store options of a definition (the connection fields are for the pool).
 *
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromDefinition = (definition: PostgresStoreDefinition): PostgresStoreOptions => ({
  ...(definition.tableName !== undefined ? { tableName: definition.tableName } : {}),
  ...(definition.schemaName !== undefined ? { schemaName: definition.schemaName } : {}),
  ...(definition.autoCreate !== undefined ? { autoCreate: definition.autoCreate } : {}),
  ...(definition.timingMarginMs !== undefined ? { timingMarginMs: definition.timingMarginMs } : {})
})

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * The definition read from configuration: `URL`, `TABLE_NAME`, `SCHEMA_NAME`, `AUTO_CREATE`,
 * `POOL_MIN_SIZE`, `POOL_MAX_SIZE`, `TIMING_MARGIN_MS`, all under `RATE_SYNC_POSTGRES_` in the
 * environment.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<PostgresStoreDefinition> = Config.all({
  url: optional(Config.redacted("URL")),
  tableName: optional(Config.string("TABLE_NAME")),
  schemaName: optional(Config.string("SCHEMA_NAME")),
  autoCreate: optional(Config.boolean("AUTO_CREATE")),
  poolMinSize: optional(Config.integer("POOL_MIN_SIZE")),
  poolMaxSize: optional(Config.integer("POOL_MAX_SIZE")),
  timingMarginMs: optional(Config.number("TIMING_MARGIN_MS"))
}).pipe(
  Config.mapOrFail((fields) => {
    const definition: PostgresStoreDefinition = {
      engine: "postgres",
      ...(fields.url !== undefined ? { url: fields.url } : {}),
      ...(fields.tableName !== undefined ? { tableName: fields.tableName } : {}),
      ...(fields.schemaName !== undefined ? { schemaName: fields.schemaName } : {}),
      ...(fields.autoCreate !== undefined ? { autoCreate: fields.autoCreate } : {}),
      ...(fields.poolMinSize !== undefined ? { poolMinSize: fields.poolMinSize } : {}),
      ...(fields.poolMaxSize !== undefined ? { poolMaxSize: fields.poolMaxSize } : {}),
      ...(fields.timingMarginMs !== undefined ? { timingMarginMs: fields.timingMarginMs } : {})
    }
    const n = namesOf(optionsFromDefinition(definition))
    return typeof n === "string" ? Either.left(ConfigError.InvalidData([], n)) : Either.right(definition)
  }),
  Config.nested("POSTGRES"),
  Config.nested("RATE_SYNC")
)

/**
 * The store with its own pool, configured from the environment (`RATE_SYNC_POSTGRES_URL`, ...;
 * see {@link config}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLive: Layer.Layer<
  RateLimitStore,
  StoreError | RateLimitError.ConfigError | ConfigError.ConfigError
> = Layer.scoped(
  RateLimitStore,
  Effect.flatMap(config, fromDefinition)
)

/**
 * Alias of {@link layerLive}: `Effect.provide(PostgresStoreLive)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const PostgresStoreLive: Layer.Layer<
  RateLimitStore,
  StoreError | RateLimitError.ConfigError | ConfigError.ConfigError
> = layerLive
