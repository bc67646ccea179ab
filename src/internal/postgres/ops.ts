/**
 * The PostgreSQL store's SPI operations: each is one statement (see `core/postgres/sql.ts`),
 * bounded from the call's start (see `call.ts`) and traced as `RateLimitStore.postgres.<op>`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Sql from "#fx/sql"
import { isIsolationRefused, isMissingObject } from "../../core/postgres/errors.js"
import type { Row } from "../../core/postgres/rows.js"
import { decisionRow, num } from "../../core/postgres/rows.js"
import * as pgSql from "../../core/postgres/sql.js"
import type {
  AdjustRequest,
  AdjustResult,
  CompositeDecision,
  PeekRequest,
  RateTake,
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
import type * as Coalesce from "./coalesce.js"
import type * as Gate from "./gate.js"
import { type Driver, ENGINE } from "./driver.js"
import * as Schema from "./schema.js"

/** The operations a store answers with one statement each. @internal */
export type Operations = Pick<
  RateLimitStoreService,
  | "tokenBucket"
  | "slidingWindow"
  | "fixedWindow"
  | "acquireSlot"
  | "renewSlot"
  | "releaseSlot"
  | "peek"
  | "reset"
  | "takeAll"
  | "adjust"
>

/** A store's driver, and what its operations share. */
interface Env {
  readonly driver: Driver
  /** `lock_timeout` of the writing functions; on Effect 3 also the message's `statement_timeout`. */
  readonly lockMs: number
  /** `p_async`: the writing functions turn `synchronous_commit` off for their transaction. */
  readonly async: boolean
  /**
   * Set once a writing function refused the session's isolation (`RS001`: a database, role or
   * session default other than READ COMMITTED): from then on every write runs in a READ COMMITTED
   * transaction of its own (`#fx/sql` `callFunction`).
   */
  readCommitted: boolean
}

/** The operations of the store on `driver`. @internal */
export const make = (driver: Driver): Operations => {
  const env: Env = {
    driver,
    lockMs: driver.settings.lockMs,
    async: !driver.settings.synchronousCommit,
    readCommitted: false
  }
  // how the coalesced and the merged takes are sent, made once
  const tb = tbSender(env, keysGroup(env, driver.specs.tb_take_keys))
  const fw = fwSender(env, keysGroup(env, driver.specs.fw_take_keys))
  const sw = keysGroup(env, driver.specs.sw_take_keys)
  const slots: Slots = { acquire: keysGroup(env, driver.specs.cc_acq_keys), release: keysGroup(env, driver.specs.cc_rel_keys) }
  return {
    tokenBucket: (req) => tokenBucket(env, tb, req),
    slidingWindow: (req) => slidingWindow(env, sw, req),
    fixedWindow: (req) => fixedWindow(env, fw, req),
    acquireSlot: (req) => acquireSlot(env, slots, req),
    renewSlot: (req) => renewSlot(env, req),
    releaseSlot: (req) => releaseSlot(env, slots, req),
    peek: (req) => peek(env, req),
    reset: (limiter, key) => reset(env, limiter, key),
    takeAll: (takes) => takeAll(env, takes),
    adjust: (req) => adjust(env, req)
  }
}

const traced = tracer(ENGINE, "postgresql")

// ---------------------------------------------------------------------------------------------
// one round trip

/**
 * `once` on `conn`. When the table or a function has vanished (dropped, restored database) and
 * `autoCreate` is on, installs again on the same connection and retries once, like Redis'
 * NOSCRIPT fallback. Retryable SQLSTATEs are retried until `deadlineMs` (see `Call.retryUntil`).
 */
const attempt = <A>(
  env: Env,
  once: (conn: Sql.Connection) => Effect.Effect<A, unknown>
): Call.Statement<A> =>
(conn, deadlineMs) =>
  Call.retryUntil(
    Effect.catchIf(
      once(conn),
      (e) => env.driver.settings.autoCreate && isMissingObject(e),
      () => Effect.andThen(Schema.installOn(env.driver, conn), once(conn))
    ),
    deadlineMs
  )

/** A decision's round trip, bounded from the call's start (its retries too). */
const decide = (
  env: Env,
  operation: string,
  limiter: string,
  statement: Call.Statement<ReadonlyArray<Row>>,
  undoLate?: (rows: ReadonlyArray<Row> | undefined) => Effect.Effect<void>
): Effect.Effect<ReadonlyArray<Row>, StoreError> =>
  traced(operation, limiter, Call.bounded(env.driver.call, operation, env.driver.settings.timeoutMs, statement, true, undoLate))

/** A read: one call of a peek function. */
const query = (env: Env, operation: string, limiter: string, call: pgSql.FunctionCall) =>
  decide(env, operation, limiter, attempt(env, (conn) => Sql.callFunction(conn, call, { readCommitted: false, boundMs: undefined })))

/**
 * A write: one call of a writing function (see `#fx/sql` `callFunction`), in a READ COMMITTED
 * transaction of its own once the session's isolation was found to be another (the function
 * refuses it before reading anything, `RS001`: the call then runs again that way at once);
 * `undoLate` takes the rows of one that answered after its caller timed out (`undefined`: it was
 * cancelled).
 */
const write = (
  env: Env,
  operation: string,
  limiter: string,
  call: pgSql.FunctionCall,
  undoLate?: (rows: ReadonlyArray<Row> | undefined) => Effect.Effect<void>
) => decide(env, operation, limiter, writing(env, call), undoLate)

/** The statement of a write (see {@link write}). */
const writing = (env: Env, call: pgSql.FunctionCall): Call.Statement<ReadonlyArray<Row>> => {
  const run = (conn: Sql.Connection) =>
    Sql.callFunction(conn, call, { readCommitted: env.readCommitted, boundMs: env.lockMs })
  return attempt(env, (conn) =>
    Effect.catchIf(run(conn), isIsolationRefused, () =>
      Effect.suspend(() => {
        env.readCommitted = true
        return run(conn)
      })))
}

/** A write of a coalesced take (`coalesce.ts`), within `ms`, untraced (its callers' spans are). */
const send = (env: Env, operation: string, ms: number, call: pgSql.FunctionCall) =>
  Call.bounded(env.driver.call, operation, ms, writing(env, call), true)

/** `spec` called with `values`. */
const callOf = (spec: pgSql.FunctionSpec, values: ReadonlyArray<pgSql.ArgValue>): pgSql.FunctionCall => ({ spec, values })

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

/**
 * `[allowed, remaining, reset_after, retry_after, delay, ref?]` → `StoreDecision`, waits padded by
 * the margin; `undefined` for a row that is not one.
 */
const decisionOf = (env: Env, limit: number, row: Row): StoreDecision | undefined => {
  const d = decisionRow(row)
  if (d === undefined) return undefined
  const marginMs = env.driver.settings.marginMs
  const answer: StoreDecision = {
    allowed: d.allowed,
    limit,
    remaining: d.remaining,
    resetAfterMs: Math.max(0, d.resetAfter),
    retryAfterMs: d.allowed ? 0 : withMargin(Math.max(d.retryAfter, 0.001), marginMs),
    delayMs: d.allowed ? withMargin(Math.max(0, d.delay), marginMs) : 0
  }
  // an admitted window take names what it charged (`adjust`); shortest decimal of the float8
  return d.allowed && d.ref !== undefined ? { ...answer, ref: String(d.ref) } : answer
}

/** The decision of a take or peek function's one row. */
const decision = (env: Env, operation: string, limit: number) => (rows: ReadonlyArray<Row>) =>
  Effect.flatMap(firstRow(env, operation, rows), (row): Effect.Effect<StoreDecision, StoreError> => {
    const d = decisionOf(env, limit, row)
    return d === undefined ? Effect.fail(env.driver.failures.fail(operation, "unexpected row")) : Effect.succeed(d)
  })

const boolean = (env: Env, operation: string) => (rows: ReadonlyArray<Row>) =>
  Effect.map(firstRow(env, operation, rows), (row) => row[0] === true)

// ---------------------------------------------------------------------------------------------
// operations

const interval = (ratePerSecond: number) => 1000 / ratePerSecond

/**
 * The lane of a coalesced take: its kind, limiter, key and parameters (NUL cannot occur in a
 * limiter id or key: refused by `guard`).
 */
const laneKey = (kind: string, limiter: string, key: string, a: number, b: number) =>
  `${kind}\u0000${limiter}\u0000${key}\u0000${a}\u0000${b}`

/** The decisions of a batch function's rows, `[ord, allowed, …]` each, in order. */
const decisionsOf = (env: Env, operation: string, limit: number, count: number) => (rows: ReadonlyArray<Row>) => {
  const out: Array<StoreDecision> = []
  for (const [i, row] of rows.entries()) {
    const d = num(row[0]) === i + 1 ? decisionOf(env, limit, row.slice(1)) : undefined
    if (d === undefined) return Effect.fail(env.driver.failures.fail(operation, "unexpected row"))
    out.push(d)
  }
  return out.length === count
    ? Effect.succeed(out)
    : Effect.fail(env.driver.failures.fail(operation, `${count} takes answered ${out.length} rows`))
}

/**
 * Single takes queued for a statement slot together (`tb_take`, `fw_take`, `sw_take`), decided as
 * one call of their keys function `spec` (`tb_take_keys`, `fw_take_keys`, `sw_take_keys`;
 * `gate.ts` `MergeGroup`): its rows, by `ord`, as each take's own.
 */
const keysGroup = (env: Env, spec: pgSql.FunctionSpec): Gate.MergeGroup => ({
  run: (calls) => {
    const statement = writing(env, pgSql.keysCall(spec, calls))
    return (conn, deadlineMs) => Effect.map(statement(conn, deadlineMs), (rows) => rowsByOrd(rows, calls.length))
  }
})

/** A keys function's rows (`[ord, …]`) as each take's own rows (`undefined`: none answered it). */
const rowsByOrd = (rows: ReadonlyArray<Row>, count: number): ReadonlyArray<ReadonlyArray<Row> | undefined> => {
  const out: Array<ReadonlyArray<Row> | undefined> = Array.from({ length: count }, () => undefined)
  for (const row of rows) {
    const i = num(row[0])
    if (Number.isInteger(i) && i >= 1 && i <= count) out[i - 1] = [row.slice(1)]
  }
  return out
}

/**
 * A single take's `call` (`tb_take`, `fw_take`, `sw_take`) as a write within the store's
 * `statementTimeout`: alone, or merged by the gate with the single takes of other keys queued with
 * it (`keys`, see {@link keysGroup}); its decision of capacity `limit`.
 */
const singleTake = (env: Env, operation: string, keys: Gate.MergeGroup, call: pgSql.FunctionCall, limit: number) =>
  Call.boundedTake(env.driver.call, operation, env.driver.settings.timeoutMs, writing(env, call), keys, call).pipe(
    Effect.flatMap(decision(env, operation, limit))
  )

const tbSender = (env: Env, keys: Gate.MergeGroup): Coalesce.Sender<TokenBucketRequest, StoreDecision> => ({
  operation: "tokenBucket",
  one: (req) => {
    const call = callOf(env.driver.specs.tb_take, [
      req.limiter,
      req.key,
      interval(req.ratePerSecond),
      req.burst,
      req.cost,
      Math.max(0, req.maxWaitMs),
      env.lockMs,
      env.async
    ])
    return singleTake(env, "tokenBucket", keys, call, req.burst)
  },
  many: (first, reqs, ms) =>
    send(
      env,
      "tokenBucket",
      ms,
      callOf(env.driver.specs.tb_take_many, [
        first.limiter,
        first.key,
        interval(first.ratePerSecond),
        first.burst,
        reqs.map((r) => r.cost),
        reqs.map((r) => Math.max(0, r.maxWaitMs)),
        env.lockMs,
        env.async
      ])
    ).pipe(Effect.flatMap(decisionsOf(env, "tokenBucket", first.burst, reqs.length)))
})

const fwSender = (env: Env, keys: Gate.MergeGroup): Coalesce.Sender<WindowRequest, StoreDecision> => ({
  operation: "fixedWindow",
  one: (req) => {
    const call = callOf(env.driver.specs.fw_take, [
      req.limiter,
      req.key,
      req.limit,
      Math.max(1, req.windowMs),
      req.cost,
      env.lockMs,
      env.async
    ])
    return singleTake(env, "fixedWindow", keys, call, req.limit)
  },
  many: (first, reqs, ms) =>
    send(
      env,
      "fixedWindow",
      ms,
      callOf(env.driver.specs.fw_take_many, [
        first.limiter,
        first.key,
        first.limit,
        Math.max(1, first.windowMs),
        reqs.map((r) => r.cost),
        env.lockMs,
        env.async
      ])
    ).pipe(Effect.flatMap(decisionsOf(env, "fixedWindow", first.limit, reqs.length)))
})

/** A token bucket take, coalesced with the concurrent takes of its key (`coalesce.ts`). */
const tokenBucket = (env: Env, sender: Coalesce.Sender<TokenBucketRequest, StoreDecision>, req: TokenBucketRequest) =>
  guard("tokenBucket", [req.limiter, req.key], () =>
    traced(
      "tokenBucket",
      req.limiter,
      env.driver.coalescer.run(laneKey("tb", req.limiter, req.key, req.ratePerSecond, req.burst), req, sender)
    ))

/** A sliding window take (not coalesced: see docs/engines/postgres.md), a single take (`singleTake`). */
const slidingWindow = (env: Env, keys: Gate.MergeGroup, req: WindowRequest) =>
  guard("slidingWindow", [req.limiter, req.key], () => {
    const call = callOf(env.driver.specs.sw_take, [req.limiter, req.key, req.limit, req.windowMs, req.cost, env.lockMs, env.async])
    return traced("slidingWindow", req.limiter, singleTake(env, "slidingWindow", keys, call, req.limit))
  })

/** A fixed window take, coalesced with the concurrent takes of its key (`coalesce.ts`). */
const fixedWindow = (env: Env, sender: Coalesce.Sender<WindowRequest, StoreDecision>, req: WindowRequest) =>
  guard("fixedWindow", [req.limiter, req.key], () =>
    traced(
      "fixedWindow",
      req.limiter,
      env.driver.coalescer.run(laneKey("fw", req.limiter, req.key, req.limit, req.windowMs), req, sender)
    ))

/** How the acquires and the releases of slots queued together are merged (`cc_acq_keys`, `cc_rel_keys`). */
interface Slots {
  readonly acquire: Gate.MergeGroup
  readonly release: Gate.MergeGroup
}

/**
 * A write of a lease (`cc_acquire`, `cc_release`): alone, or merged by the gate with the others of
 * its `group` queued with it (other keys' and holders', as {@link singleTake}'s); `undoLate` as
 * {@link write}'s.
 */
const leaseWrite = (
  env: Env,
  operation: string,
  limiter: string,
  group: Gate.MergeGroup,
  call: pgSql.FunctionCall,
  undoLate?: (rows: ReadonlyArray<Row> | undefined) => Effect.Effect<void>
) =>
  traced(
    operation,
    limiter,
    Call.boundedTake(env.driver.call, operation, env.driver.settings.timeoutMs, writing(env, call), group, call, undoLate)
  )

const acquireSlot = (env: Env, slots: Slots, req: SlotRequest): Effect.Effect<SlotDecision, StoreError> =>
  guard("acquireSlot", [req.limiter, req.key, req.holder], () =>
    leaseWrite(
      env,
      "acquireSlot",
      req.limiter,
      slots.acquire,
      callOf(env.driver.specs.cc_acquire, [req.limiter, req.key, req.holder, req.limit, req.leaseMs, env.lockMs, env.async]),
      // granted after its caller gave up, or cancelled (perhaps granted): released
      (rows) =>
        rows === undefined ? releaseLate(env, slots, req, true) : rows[0]?.[0] === true ? releaseLate(env, slots, req, false) : Effect.void
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
 * An acquire that timed out for its caller, then landed with the lease granted (`perhaps` false),
 * or was cancelled, perhaps after granting it or before a grant that is still on its way
 * (`perhaps` true): nobody renews or releases that lease, so it is released (best effort, in a
 * fiber of its own, `statementTimeout / 2` apart; errors ignored). A granted lease takes up to 3
 * tries, until one release answers. A cancelled acquire's grant can reach the server after the
 * first release (the cancel lands before the statement runs, the release goes on another
 * connection): its release is tried up to 5 times, until one finds the lease. The limiter never
 * reuses the holder of an acquire that failed. A late renew is harmless: its caller renews again
 * or releases.
 */
const releaseLate = (env: Env, slots: Slots, req: SlotRequest, perhaps: boolean): Effect.Effect<void> => {
  const once = Effect.orElseSucceed(Effect.map(releaseSlot(env, slots, req), (released) => released || !perhaps), () => false)
  const pause = Effect.sleep(Duration.millis(Math.max(10, env.driver.settings.timeoutMs / 2)))
  const loop = (left: number): Effect.Effect<void> =>
    Effect.flatMap(once, (done) => (done || left <= 0 ? Effect.void : Effect.andThen(pause, loop(left - 1))))
  return loop(perhaps ? 4 : 2)
}

const renewSlot = (env: Env, req: SlotRequest) =>
  guard("renewSlot", [req.limiter, req.key, req.holder], () =>
    write(
      env,
      "renewSlot",
      req.limiter,
      callOf(env.driver.specs.cc_renew, [req.limiter, req.key, req.holder, req.leaseMs, env.lockMs, env.async])
    ).pipe(Effect.flatMap(boolean(env, "renewSlot"))))

const releaseSlot = (env: Env, slots: Slots, req: SlotRequest) =>
  guard("releaseSlot", [req.limiter, req.key, req.holder], () =>
    leaseWrite(
      env,
      "releaseSlot",
      req.limiter,
      slots.release,
      callOf(env.driver.specs.cc_release, [req.limiter, req.key, req.holder, env.lockMs, env.async])
    ).pipe(Effect.flatMap(boolean(env, "releaseSlot"))))

const peek = (env: Env, req: PeekRequest): Effect.Effect<StoreDecision, StoreError> =>
  guard("peek", [req.limiter, req.key], () => {
    const specs = env.driver.specs
    switch (req.algorithm) {
      case "token_bucket":
        return query(
          env,
          "peek",
          req.limiter,
          callOf(specs.tb_peek, [req.limiter, req.key, interval(req.ratePerSecond), req.burst, req.cost ?? 1])
        ).pipe(Effect.flatMap(decision(env, "peek", req.burst)))
      case "sliding_window":
        return query(env, "peek", req.limiter, callOf(specs.sw_peek, [req.limiter, req.key, req.limit, req.windowMs, req.cost ?? 1]))
          .pipe(Effect.flatMap(decision(env, "peek", req.limit)))
      case "fixed_window":
        return query(
          env,
          "peek",
          req.limiter,
          callOf(specs.fw_peek, [req.limiter, req.key, req.limit, Math.max(1, req.windowMs), req.cost ?? 1])
        ).pipe(Effect.flatMap(decision(env, "peek", req.limit)))
      case "concurrency":
        return query(env, "peek", req.limiter, callOf(specs.cc_peek, [req.limiter, req.key, req.limit]))
          .pipe(Effect.flatMap(decision(env, "peek", req.limit)))
    }
  })

const reset = (env: Env, limiter: string, key?: string): Effect.Effect<void, StoreError> =>
  guard("reset", key === undefined ? [limiter] : [limiter, key], () =>
    Effect.asVoid(write(env, "reset", limiter, callOf(env.driver.specs.reset, [limiter, key ?? null, env.lockMs, env.async]))))

// ---------------------------------------------------------------------------------------------
// composite calls and adjust

/** The capacity a take is judged against (its decision's `limit`). */
const capacityOf = (take: RateTake): number => (take.algorithm === "token_bucket" ? take.burst : take.limit)

/**
 * Why a composite call cannot be one call of `take_all`, or `undefined`: a sliding window taken
 * twice for one key with two window lengths (its one row of entries would be judged against both
 * at once; the Redis store refuses it alike). Limiters are named, keys never.
 */
const compositeProblem = (takes: ReadonlyArray<RateTake>): string | undefined => {
  const windows = new Map<string, number>()
  for (const take of takes) {
    if (take.algorithm !== "sliding_window") continue
    const id = JSON.stringify([take.limiter, take.key])
    const seen = windows.get(id)
    if (seen !== undefined && seen !== take.windowMs) {
      return `takeAll: the sliding window of limiter ${JSON.stringify(take.limiter)} is taken twice for one key ` +
        `with two window lengths (${seen} and ${take.windowMs} ms)`
    }
    windows.set(id, take.windowMs)
  }
  return undefined
}

const rejected = (env: Env, operation: string, message: string): Effect.Effect<never, StoreError> =>
  Effect.fail(new StoreError({ engine: ENGINE, operation, message: env.driver.failures.fail(operation, message).message, kind: "rejected" }))

/**
 * Several takes as one unit: one call of `take_all` (see `core/postgres/sql.ts`), the takes as
 * parallel arrays; one row per take answers its decision, in order.
 */
const takeAll = (env: Env, takes: ReadonlyArray<RateTake>): Effect.Effect<CompositeDecision, StoreError> => {
  if (takes.length === 0) return Effect.succeed({ allowed: true, decisions: [], delayMs: 0 })
  const problem = compositeProblem(takes)
  if (problem !== undefined) return rejected(env, "takeAll", problem)
  const algs: Array<string> = []
  const limiters: Array<string> = []
  const keys: Array<string> = []
  const a: Array<number> = []
  const b: Array<number> = []
  const c: Array<number> = []
  const d: Array<number> = []
  for (const take of takes) {
    limiters.push(take.limiter)
    keys.push(take.key)
    c.push(take.cost)
    switch (take.algorithm) {
      case "token_bucket":
        algs.push("tb")
        a.push(interval(take.ratePerSecond))
        b.push(take.burst)
        d.push(Math.max(0, take.maxWaitMs))
        break
      case "sliding_window":
        algs.push("sw")
        a.push(take.limit)
        b.push(take.windowMs)
        d.push(0)
        break
      case "fixed_window":
        algs.push("fw")
        a.push(take.limit)
        b.push(Math.max(1, take.windowMs))
        d.push(0)
        break
    }
  }
  const operator = [...new Set(limiters)].join(",")
  return guard("takeAll", [...limiters, ...keys], () =>
    write(
      env,
      "takeAll",
      operator,
      callOf(env.driver.specs.take_all, [algs, limiters, keys, a, b, c, d, env.lockMs, env.async])
    ).pipe(Effect.flatMap((rows): Effect.Effect<CompositeDecision, StoreError> => {
      const decisions: Array<StoreDecision> = []
      for (const [i, take] of takes.entries()) {
        const row = rows[i]
        const decided = row === undefined ? undefined : decisionOf(env, capacityOf(take), row.slice(1))
        if (decided === undefined) return Effect.fail(env.driver.failures.fail("takeAll", "unexpected rows"))
        decisions.push(decided)
      }
      const allowed = decisions.every((x) => x.allowed)
      const delayMs = allowed ? decisions.reduce((m, x) => (x.delayMs > m ? x.delayMs : m), 0) : 0
      return Effect.succeed({ allowed, decisions, delayMs })
    })))
}

/** A window take's ref as the float8 it names (`null`: it names no charge of this store). */
const refValue = (ref: string | undefined): number | null => {
  if (ref === undefined) return null
  const x = Number(ref)
  return Number.isFinite(x) && String(x) === ref ? x : null
}

/** `[applied, remaining, reset_after]` → `AdjustResult`. */
const adjustResult = (env: Env) => (rows: ReadonlyArray<Row>) =>
  Effect.flatMap(firstRow(env, "adjust", rows), (row): Effect.Effect<AdjustResult, StoreError> => {
    const [applied, remaining, resetAfter] = [num(row[0]), num(row[1]), num(row[2])]
    if ([applied, remaining, resetAfter].some(Number.isNaN)) return Effect.fail(env.driver.failures.fail("adjust", "unexpected row"))
    return Effect.succeed({ applied: applied + 0, remaining, resetAfterMs: Math.max(0, resetAfter) })
  })

/**
 * Charge more or give back after the fact: one call of the algorithm's adjust function (see
 * `core/postgres/sql.ts`). A delta that is not a finite number applies nothing.
 */
const adjust = (env: Env, req: AdjustRequest): Effect.Effect<AdjustResult, StoreError> => {
  const { take } = req
  const delta = Number.isFinite(req.delta) ? req.delta : 0
  const specs = env.driver.specs
  return guard("adjust", [take.limiter, take.key], () => {
    switch (take.algorithm) {
      case "token_bucket":
        return write(
          env,
          "adjust",
          take.limiter,
          callOf(specs.tb_adjust, [take.limiter, take.key, interval(take.ratePerSecond), take.burst, delta, env.lockMs, env.async])
        ).pipe(Effect.flatMap(adjustResult(env)))
      case "sliding_window":
        return write(
          env,
          "adjust",
          take.limiter,
          callOf(specs.sw_adjust, [
            take.limiter,
            take.key,
            take.limit,
            take.windowMs,
            delta,
            refValue(req.ref),
            env.lockMs,
            env.async
          ])
        ).pipe(Effect.flatMap(adjustResult(env)))
      case "fixed_window":
        return write(
          env,
          "adjust",
          take.limiter,
          callOf(specs.fw_adjust, [
            take.limiter,
            take.key,
            take.limit,
            Math.max(1, take.windowMs),
            delta,
            refValue(req.ref),
            env.lockMs,
            env.async
          ])
        ).pipe(Effect.flatMap(adjustResult(env)))
    }
  })
}
