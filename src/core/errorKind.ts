/**
 * Which store failures the request caused (`"rejected"`: never a fail-open admission) and which
 * mean the store is unavailable (`"unavailable"`: the limiter's `failClosed` policy applies). Plain
 * functions of what a driver threw, no Effect import. PostgreSQL's rule (by SQLSTATE) lives with
 * its SQL (`core/postgres/errors.ts`, `errorKind`).
 *
 * @internal
 */

/** @internal */
export type ErrorKind = "unavailable" | "rejected"

const errorName = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "name" in e && typeof e.name === "string" ? e.name : undefined

const errorMessage = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" ? e.message : String(e)

/**
 * Redis error replies that say the request itself cannot run (a script error on its arguments, a
 * value out of range, a key of the wrong type, an argument over a size limit). Every other failure
 * (no connection, a timeout, `LOADING`, `BUSY`, `MASTERDOWN`, `CLUSTERDOWN`, `TRYAGAIN`, `OOM`,
 * `READONLY`, `NOAUTH`, a full client table, …) says the server is unavailable.
 */
const REDIS_REJECTED =
  /^(WRONGTYPE\b|ERR (user_script|Error running script|value is not|.*out of range|.*not a valid float|invalid expire time|string exceeds maximum allowed size|Protocol error))/

/**
 * The kind of a failed Redis command: `rejected` only for an error reply (ioredis' `ReplyError`)
 * that names the request as the cause.
 *
 * @internal
 */
export const redisErrorKind = (e: unknown): ErrorKind =>
  errorName(e) === "ReplyError" && REDIS_REJECTED.test(errorMessage(e)) ? "rejected" : "unavailable"

/** nats.js errors about the request: a key the KV refuses, a payload over the server's `max_payload`. */
const NATS_REJECTED = /invalid key|max_payload|maximum payload|message size exceeds/i

/**
 * The kind of a failed NATS request: `rejected` when the client or the server refused the request
 * itself; a timeout, a closed or reconnecting connection, a missing stream is `unavailable`.
 *
 * @internal
 */
export const natsErrorKind = (e: unknown): ErrorKind => NATS_REJECTED.test(errorMessage(e)) ? "rejected" : "unavailable"
