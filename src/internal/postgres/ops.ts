/**
 * The PostgreSQL store's SPI operations: each is one statement (see `core/postgres/sql.ts`),
 * bounded from the call's start (see `call.ts`) and traced as `RateLimitStore.postgres.<op>`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Sql from "#fx/sql"
import { isMissingObject } from "../../core/postgres/errors.js"
import type { Row } from "../../core/postgres/rows.js"
import { decisionRow, lastRows, num } from "../../core/postgres/rows.js"
import * as pgSql from "../../core/postgres/sql.js"
import type {
  PeekRequest,
  RateLimitStoreService,
  SlotDecision,
  SlotRequest,
  StoreDecision,
  TokenBucketRequest,
  WindowRequest
} from "../../RateLimitStore.js"
import { StoreError } from "../../RateLimitStore.js"
import { withMargin } from "../store/margin.js"
import { tracer } from "../store/telemetry.js"
import * as Call from "./call.js"
import { type Driver, ENGINE } from "./driver.js"
import { nowMs } from "./gate.js"
import * as Schema from "./schema.js"

/** The operations a store answers with one statement each. @internal */
export type Operations = Pick<
  RateLimitStoreService,
  "tokenBucket" | "slidingWindow" | "fixedWindow" | "acquireSlot" | "renewSlot" | "releaseSlot" | "peek" | "reset"
>

/** A store's driver, and what its operations build once. */
interface Env {
  readonly driver: Driver
  readonly install: Effect.Effect<ReadonlyArray<unknown>, unknown>
  /** The `lock_timeout` argument of the writing functions. */
  readonly lock: string
}

/** The operations of the store on `driver`. @internal */
export const make = (driver: Driver): Operations => {
  const env: Env = { driver, install: Schema.install(driver), lock: pgSql.intLiteral(driver.settings.lockMs) }
  return {
    tokenBucket: (req) => tokenBucket(env, req),
    slidingWindow: (req) => slidingWindow(env, req),
    fixedWindow: (req) => fixedWindow(env, req),
    acquireSlot: (req) => acquireSlot(env, req),
    renewSlot: (req) => renewSlot(env, req),
    releaseSlot: (req) => releaseSlot(env, req),
    peek: (req) => peek(env, req),
    reset: (limiter, key) => reset(env, limiter, key)
  }
}

const traced = tracer(ENGINE, "postgresql")

// ---------------------------------------------------------------------------------------------
// one round trip

/**
 * One round trip. When the table or a function has vanished (dropped, restored database) and
 * `autoCreate` is on, installs again and retries once, like Redis' NOSCRIPT fallback. Retryable
 * SQLSTATEs are retried until `deadlineMs` (see `Call.retryUntil`).
 */
const attempt = (
  env: Env,
  once: Effect.Effect<ReadonlyArray<Row>, unknown>,
  deadlineMs: number
): Effect.Effect<ReadonlyArray<Row>, unknown> =>
  Call.retryUntil(
    Effect.catchIf(
      once,
      (e) => env.driver.settings.autoCreate && isMissingObject(e),
      () => Effect.andThen(env.install, once)
    ),
    deadlineMs
  )

/** A decision's round trip, bounded from the call's start (its retries too). */
const decide = (
  env: Env,
  operation: string,
  limiter: string,
  once: Effect.Effect<ReadonlyArray<Row>, unknown>,
  undoLate?: (rows: ReadonlyArray<Row>) => Effect.Effect<void>
): Effect.Effect<ReadonlyArray<Row>, StoreError> => {
  const timeoutMs = env.driver.settings.timeoutMs
  return traced(
    operation,
    limiter,
    Effect.flatMap(
      nowMs,
      (start) => Call.bounded(env.driver.call, operation, timeoutMs, attempt(env, once, start + timeoutMs), true, undoLate)
    )
  )
}

/** A read: one parameterized statement. */
const query = (env: Env, operation: string, limiter: string, statement: string, params: ReadonlyArray<unknown>) =>
  decide(env, operation, limiter, Call.outsideTransactions(env.driver.sql, env.driver.sql.unsafe(statement, params).values))

/**
 * A write: one script (see `sql.ts` `statements`, `#fx/sql` `script`), its last result; `undoLate`
 * takes the rows of one that answered after its caller timed out.
 */
const write = (
  env: Env,
  operation: string,
  limiter: string,
  statement: string,
  undoLate?: (rows: ReadonlyArray<Row>) => Effect.Effect<void>
) =>
  decide(
    env,
    operation,
    limiter,
    Effect.map(Call.outsideTransactions(env.driver.sql, Sql.script(env.driver.sql, statement)), lastRows),
    undoLate
  )

// ---------------------------------------------------------------------------------------------
// answers

/** PostgreSQL's `text` cannot hold NUL: refused before sending, as the server would (22021). */
const guard = <A>(
  operation: string,
  ids: ReadonlyArray<string>,
  effect: () => Effect.Effect<A, StoreError>
): Effect.Effect<A, StoreError> =>
  ids.some((id) => id.includes("\u0000"))
    ? Effect.fail(
      new StoreError({
        engine: ENGINE,
        operation,
        message: "limiter ids, keys and holders must not contain NUL characters (PostgreSQL text)",
        kind: "rejected"
      })
    )
    : effect()

const firstRow = (env: Env, operation: string, rows: ReadonlyArray<Row>): Effect.Effect<Row, StoreError> => {
  const row = rows[0]
  return row === undefined
    ? Effect.fail(env.driver.failures.fail(operation, "the statement returned no row"))
    : Effect.succeed(row)
}

/** `[allowed, remaining, reset_after, retry_after, delay]` → `StoreDecision`, waits padded by the margin. */
const decision = (env: Env, operation: string, limit: number) => (rows: ReadonlyArray<Row>) =>
  Effect.flatMap(firstRow(env, operation, rows), (row): Effect.Effect<StoreDecision, StoreError> => {
    const d = decisionRow(row)
    if (d === undefined) return Effect.fail(env.driver.failures.fail(operation, "unexpected row"))
    const marginMs = env.driver.settings.marginMs
    return Effect.succeed({
      allowed: d.allowed,
      limit,
      remaining: d.remaining,
      resetAfterMs: Math.max(0, d.resetAfter),
      retryAfterMs: d.allowed ? 0 : withMargin(Math.max(d.retryAfter, 0.001), marginMs),
      delayMs: d.allowed ? withMargin(Math.max(0, d.delay), marginMs) : 0
    })
  })

const boolean = (env: Env, operation: string) => (rows: ReadonlyArray<Row>) =>
  Effect.map(firstRow(env, operation, rows), (row) => row[0] === true)

// ---------------------------------------------------------------------------------------------
// operations

const text_ = pgSql.textLiteral
const float_ = pgSql.floatLiteral
const interval = (ratePerSecond: number) => 1000 / ratePerSecond

const tokenBucket = (env: Env, req: TokenBucketRequest) =>
  guard("tokenBucket", [req.limiter, req.key], () =>
    write(
      env,
      "tokenBucket",
      req.limiter,
      env.driver.text.tokenBucket([
        text_(req.limiter),
        text_(req.key),
        float_(interval(req.ratePerSecond)),
        float_(req.burst),
        float_(req.cost),
        float_(Math.max(0, req.maxWaitMs)),
        env.lock
      ])
    ).pipe(Effect.flatMap(decision(env, "tokenBucket", req.burst))))

const slidingWindow = (env: Env, req: WindowRequest) =>
  guard("slidingWindow", [req.limiter, req.key], () =>
    write(
      env,
      "slidingWindow",
      req.limiter,
      env.driver.text.slidingWindow([
        text_(req.limiter),
        text_(req.key),
        float_(req.limit),
        float_(req.windowMs),
        float_(req.cost),
        env.lock
      ])
    ).pipe(Effect.flatMap(decision(env, "slidingWindow", req.limit))))

const fixedWindow = (env: Env, req: WindowRequest) =>
  guard("fixedWindow", [req.limiter, req.key], () =>
    write(
      env,
      "fixedWindow",
      req.limiter,
      env.driver.text.fixedWindow([
        text_(req.limiter),
        text_(req.key),
        float_(req.limit),
        float_(Math.max(1, req.windowMs)),
        float_(req.cost),
        env.lock
      ])
    ).pipe(Effect.flatMap(decision(env, "fixedWindow", req.limit))))

const acquireSlot = (env: Env, req: SlotRequest): Effect.Effect<SlotDecision, StoreError> =>
  guard("acquireSlot", [req.limiter, req.key, req.holder], () =>
    write(
      env,
      "acquireSlot",
      req.limiter,
      env.driver.text.acquireSlot([
        text_(req.limiter),
        text_(req.key),
        text_(req.holder),
        float_(req.limit),
        float_(req.leaseMs),
        env.lock
      ]),
      (rows) => (rows[0]?.[0] === true ? releaseLate(env, req) : Effect.void)
    ).pipe(
      Effect.flatMap((rows) => firstRow(env, "acquireSlot", rows)),
      Effect.map((row): SlotDecision => {
        const acquired = row[0] === true
        return {
          acquired,
          limit: req.limit,
          active: num(row[1]),
          retryAfterMs: acquired ? 0 : withMargin(Math.max(num(row[2]), 0.001), env.driver.settings.marginMs)
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
const releaseLate = (env: Env, req: SlotRequest): Effect.Effect<void> => {
  const once = Effect.orElseSucceed(Effect.as(releaseSlot(env, req), true), () => false)
  const pause = Effect.sleep(Duration.millis(Math.max(10, env.driver.settings.timeoutMs / 2)))
  const loop = (left: number): Effect.Effect<void> =>
    Effect.flatMap(once, (done) => (done || left <= 0 ? Effect.void : Effect.andThen(pause, loop(left - 1))))
  return loop(2)
}

const renewSlot = (env: Env, req: SlotRequest) =>
  guard("renewSlot", [req.limiter, req.key, req.holder], () =>
    write(
      env,
      "renewSlot",
      req.limiter,
      env.driver.text.renewSlot([text_(req.limiter), text_(req.key), text_(req.holder), float_(req.leaseMs), env.lock])
    ).pipe(Effect.flatMap(boolean(env, "renewSlot"))))

const releaseSlot = (env: Env, req: SlotRequest) =>
  guard("releaseSlot", [req.limiter, req.key, req.holder], () =>
    write(
      env,
      "releaseSlot",
      req.limiter,
      env.driver.text.releaseSlot([text_(req.limiter), text_(req.key), text_(req.holder), env.lock])
    ).pipe(Effect.flatMap(boolean(env, "releaseSlot"))))

const peek = (env: Env, req: PeekRequest): Effect.Effect<StoreDecision, StoreError> =>
  guard("peek", [req.limiter, req.key], () => {
    const text = env.driver.text
    switch (req.algorithm) {
      case "token_bucket":
        return query(env, "peek", req.limiter, text.tokenBucketPeek, [
          req.limiter,
          req.key,
          interval(req.ratePerSecond),
          req.burst
        ]).pipe(Effect.flatMap(decision(env, "peek", req.burst)))
      case "sliding_window":
        return query(env, "peek", req.limiter, text.slidingWindowPeek, [req.limiter, req.key, req.limit, req.windowMs])
          .pipe(Effect.flatMap(decision(env, "peek", req.limit)))
      case "fixed_window":
        return query(env, "peek", req.limiter, text.fixedWindowPeek, [
          req.limiter,
          req.key,
          req.limit,
          Math.max(1, req.windowMs)
        ]).pipe(Effect.flatMap(decision(env, "peek", req.limit)))
      case "concurrency":
        return query(env, "peek", req.limiter, text.slotPeek, [req.limiter, req.key, req.limit])
          .pipe(Effect.flatMap(decision(env, "peek", req.limit)))
    }
  })

const reset = (env: Env, limiter: string, key?: string): Effect.Effect<void, StoreError> =>
  guard("reset", key === undefined ? [limiter] : [limiter, key], () =>
    Effect.asVoid(
      key === undefined
        ? write(env, "reset", limiter, env.driver.text.resetLimiter(limiter))
        : write(env, "reset", limiter, env.driver.text.resetKey(limiter, key))
    ))
