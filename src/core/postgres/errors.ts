/**
 * How the PostgreSQL store reads a driver failure: the SQLSTATE and message of an `SqlError`
 * (whose `cause` is pg's `DatabaseError` on Effect 3, a reason wrapping the driver's error on
 * Effect 4, all untyped here), which failures a statement may simply retry, which say the
 * store's objects are gone, and what a failure means for the limiter (`errorKind`). Plain
 * functions, no Effect import.
 *
 * @internal
 */
import type { ErrorKind } from "../errorKind.js"
import { ISOLATION_SQLSTATE } from "./sql.js"

/** A field of a driver error (`SqlError`, pg's `DatabaseError`), which are untyped here. */
const fieldOf = (u: unknown, field: "message" | "code" | "cause"): unknown =>
  typeof u === "object" && u !== null ? Reflect.get(u, field) : undefined

const stringField = (u: unknown, field: "message" | "code"): string | undefined => {
  const v = fieldOf(u, field)
  return typeof v === "string" && v !== "" ? v : undefined
}

/**
 * `SqlError` message plus the driver's own (`relation … does not exist`, `ECONNREFUSED`), read where
 * either major puts it: `e.cause.message` (Effect 3: pg's error), `e.cause.cause.message` (Effect 4:
 * the reason repeats the `SqlError`'s message, its `cause` is the driver's error); each distinct
 * message once, outermost first, joined by `: `.
 *
 * @internal
 */
export const describe = (e: unknown): string => {
  const cause = fieldOf(e, "cause")
  const messages: Array<string> = [stringField(e, "message") ?? "unknown error"]
  for (const m of [stringField(cause, "message"), stringField(fieldOf(cause, "cause"), "message")]) {
    if (m !== undefined && !messages.includes(m)) messages.push(m)
  }
  return messages.join(": ")
}

/**
 * The SQLSTATE of a failed statement (`undefined`: none, e.g. a connection error). Read where
 * either major of `@effect/sql` puts it: `e.cause.code` (Effect 3: the `cause` is pg's
 * `DatabaseError`), else one level deeper, `e.cause.cause.code` (Effect 4: the `cause` is a
 * reason, `UnknownError`, `SerializationError`…, whose own `cause` carries the code).
 *
 * @internal
 */
export const sqlStateOf = (e: unknown): string | undefined => {
  const cause = fieldOf(e, "cause")
  return stringField(cause, "code") ?? stringField(fieldOf(cause, "cause"), "code")
}

/**
 * SQLSTATEs meaning the table, a function or the schema is gone (dropped, another database): the
 * deployment's state, not the request's, so every request would fail alike; the store is
 * unavailable (see {@link errorKind}), and the fail-open policy applies.
 */
const MISSING_OBJECT = new Set(["42P01", "42883", "3F000"])

/** Whether `e` says the store's table or a function is gone (`autoCreate` then installs again). @internal */
export const isMissingObject = (e: unknown): boolean => MISSING_OBJECT.has(sqlStateOf(e) ?? "")

/**
 * Whether `e` is a writing function's refusal to run under another isolation than READ COMMITTED
 * (SQLSTATE `RS001`, raised before it read or wrote anything): the store then sends its writes as
 * READ COMMITTED transactions of their own and runs the statement again.
 *
 * @internal
 */
export const isIsolationRefused = (e: unknown): boolean => sqlStateOf(e) === ISOLATION_SQLSTATE

/**
 * SQLSTATEs after which the statement was rolled back and may simply run again: serialization
 * failure and deadlock. The writing functions run under READ COMMITTED only, so they should not
 * occur; retried (jittered, within `statementTimeout`) all the same.
 */
const RETRYABLE = new Set(["40001", "40P01"])

/** Whether the statement that failed with `e` was rolled back and may run again. @internal */
export const isRetryable = (e: unknown): boolean => RETRYABLE.has(sqlStateOf(e) ?? "")

/**
 * SQLSTATE classes of a server that answered and refused the request itself: data exception
 * (22: a value out of range, a datetime overflow, bytes it cannot hold), integrity constraint
 * violation (23), syntax error or access rule violation (42), program limit exceeded (54: an
 * index row too large) and PL/pgSQL `RAISE` (P0).
 */
const REJECTED_CLASSES = new Set(["22", "23", "42", "54", "P0"])

/**
 * What a PostgreSQL failure means for the limiter, from its SQLSTATE (`undefined` when there is
 * none: a connection error, a timeout of ours):
 * - `"rejected"`: the server answered and refused this request itself (see
 *   {@link REJECTED_CLASSES}); the limiter never admits it, whatever its policy;
 * - `"unavailable"`: anything else: connection (08), resources (53), operator intervention (57,
 *   `57014` a statement timeout or cancel), system (58), internal (XX), transaction rollback (40,
 *   once retries ran out), no SQLSTATE (the link, our own deadline, the overloaded gate), a
 *   missing table or function.
 *
 * @internal
 */
export const errorKind = (sqlState: string | undefined): ErrorKind => {
  if (sqlState === undefined || !/^[0-9A-Z]{5}$/.test(sqlState) || MISSING_OBJECT.has(sqlState)) return "unavailable"
  return REJECTED_CLASSES.has(sqlState.slice(0, 2)) ? "rejected" : "unavailable"
}
