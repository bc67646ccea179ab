/**
 * DDL and statements of the PostgreSQL store.
 *
 * One table holds every state, one row per `(limiter, key, kind)`:
 * - `tb` (token bucket): `tat`, the theoretical arrival time (store ms);
 * - `sw` (sliding window): `times` / `costs`, the admitted entries, oldest first, kept for
 *   `win_ms` (the longest window of the callers) until `win_until` (that caller's last admitted
 *   take plus its window), then for the current caller's window only;
 * - `fw:<window ms>` (fixed window, one row per window length): `win_start`, `win_ms`, `win_count`;
 * - `cc` (concurrency): `holders` / `expiries`, the leases (holder -> expiry, store ms).
 * Every row has an `expires_at`: the instant from which it can no longer change a decision.
 *
 * Each SPI operation is one statement, `SELECT * FROM <schema>.<table>_<op>(...)`, calling a
 * PL/pgSQL function installed by `initialize`; the writing ones are sent as one simple-protocol
 * message `SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCAL statement_timeout = …; SELECT …`
 * (see {@link statements}).
 * A function that writes locks the pair's row first (`SELECT … FOR UPDATE`, creating it with
 * `INSERT … ON CONFLICT DO NOTHING` when absent), then reads the server's clock
 * (`clock_timestamp()`, after the lock so that concurrent callers of one key see increasing
 * times), decides with the math of `algorithm.ts`, and writes only when the request is admitted.
 * Peeks read without locking.
 *
 * Identifiers are validated by the caller (`[A-Za-z_][A-Za-z0-9_]*`) and always double-quoted.
 *
 * @internal
 */
import { createHash } from "node:crypto"

/** @internal */
export interface Names {
  /** `"schema"` */
  readonly schema: string
  /** `"schema"."table"` */
  readonly table: string
  /** `"schema"."table_<suffix>"` */
  readonly fn: (suffix: FunctionName) => string
  /** The raw names, for catalog lookups and the advisory lock. */
  readonly rawSchema: string
  readonly rawTable: string
}

/** @internal */
export const FUNCTIONS = [
  "tb_take",
  "tb_peek",
  "sw_take",
  "sw_peek",
  "fw_take",
  "fw_peek",
  "cc_acquire",
  "cc_renew",
  "cc_release",
  "cc_peek"
] as const

/** @internal */
export type FunctionName = (typeof FUNCTIONS)[number]

/**
 * Longest table name accepted: `<table>_cc_release` must fit PostgreSQL's 63-byte identifiers.
 *
 * @internal
 */
export const MAX_TABLE_NAME = 48

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * `undefined` when `name` is a valid identifier of at most `max` characters, else why not.
 *
 * @internal
 */
export const invalidIdentifier = (name: string, max: number): string | undefined => {
  if (!IDENTIFIER.test(name)) return "must match [A-Za-z_][A-Za-z0-9_]* (it is used as a quoted SQL identifier)"
  if (name.length > max) return `must be at most ${max} characters`
  return undefined
}

const quote = (name: string): string => `"${name}"`

/** @internal */
export const names = (schemaName: string, tableName: string): Names => ({
  schema: quote(schemaName),
  table: `${quote(schemaName)}.${quote(tableName)}`,
  fn: (suffix) => `${quote(schemaName)}.${quote(`${tableName}_${suffix}`)}`,
  rawSchema: schemaName,
  rawTable: tableName
})

/**
 * Admission tolerance (ms). Store instants are epoch milliseconds (~1.8e12) in `float8`, whose
 * resolution there is ~2.4e-4 ms, so a stored TAT carries that much rounding: a request that is
 * mathematically admissible is admitted when its wait is at most one microsecond.
 */
const EPS = "0.001"
/** Tolerance when flooring a ratio that should be whole (float noise of stored instants). */
const RATIO_EPS = "0.000001"

const NOW = "extract(epoch from clock_timestamp())::float8 * 1000"

/**
 * Locks the row of `(p_limiter, p_key, kind)` (`kind` is a SQL expression: `'tb'`, `v_kind`),
 * creating an empty one when absent, and reads `cols` into `vars` (NULL for a new row).
 * Concurrent creators serialize on the primary key: the loser's `INSERT … DO NOTHING` waits for
 * the winner, then its `SELECT … FOR UPDATE` (a fresh snapshot per statement, READ COMMITTED)
 * sees the committed row. A row removed in between (by the cleanup)
 * makes the loop try again.
 */
const lockOrCreate = (n: Names, kind: string, cols: string, vars: string) => `${LOCK_TIMEOUT}
  FOR attempt IN 1..10 LOOP
    SELECT ${cols} INTO ${vars} FROM ${n.table} s
      WHERE s.limiter = p_limiter AND s.key = p_key AND s.kind = ${kind} FOR UPDATE;
    EXIT WHEN FOUND;
    INSERT INTO ${n.table} (limiter, key, kind, expires_at)
      VALUES (p_limiter, p_key, ${kind}, clock_timestamp()) ON CONFLICT DO NOTHING;
    EXIT WHEN FOUND;
    IF attempt = 10 THEN RAISE EXCEPTION 'could not lock the state row'; END IF;
  END LOOP;
  now_ms := ${NOW};`

/**
 * Bounds the row-lock wait on the server too (`p_lock_ms`, the client's statement timeout), local
 * to the statement's transaction: a caller that gave up does not leave a statement queued behind a
 * stuck lock holder.
 */
const LOCK_TIMEOUT = `
  PERFORM set_config('lock_timeout', p_lock_ms::text, true);`

/** `kind` is a SQL expression (`'tb'`, `v_kind`). */
const WHERE = (kind: string) => `limiter = p_limiter AND key = p_key AND kind = ${kind}`

const DECISION_OUT =
  "OUT allowed boolean, OUT remaining float8, OUT reset_after float8, OUT retry_after float8, OUT delay float8"

const fn = (name: string, args: string, returns: string, declare: string, body: string) => `
CREATE OR REPLACE FUNCTION ${name}(${args}) ${returns} LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  now_ms float8;
${declare}
BEGIN
${body}
END
$fn$;`

const tbRemaining = (d: string) =>
  `least(greatest(floor(p_burst - ${d} / p_interval + ${RATIO_EPS}), 0), floor(p_burst))`

const tbTake = (n: Names) =>
  fn(
    n.fn("tb_take"),
    `p_limiter text, p_key text, p_interval float8, p_burst float8, p_cost float8, p_max_wait float8, p_lock_ms int, ${DECISION_OUT}`,
    "",
    `  v_tat float8;
  d float8;
  nxt float8;
  wait float8;`,
    `${lockOrCreate(n, "'tb'", "s.tat", "v_tat")}
  -- d = tat0 - now >= 0; relative quantities keep the float noise at the scale of d
  d := greatest(coalesce(v_tat - now_ms, 0), 0);
  delay := 0;
  IF NOT (p_cost <= p_burst) OR NOT (p_interval > 0 AND p_interval < 'Infinity'::float8) THEN
    allowed := false;
    remaining := CASE WHEN p_interval > 0 AND p_interval < 'Infinity'::float8 THEN ${tbRemaining("d")} ELSE 0 END;
    reset_after := d;
    retry_after := 'Infinity'::float8;
    RETURN;
  END IF;
  nxt := d + p_cost * p_interval;
  wait := nxt - p_burst * p_interval;
  IF wait <= ${EPS} OR wait <= p_max_wait THEN
    UPDATE ${n.table} SET tat = now_ms + nxt, expires_at = to_timestamp((now_ms + nxt) / 1000)
      WHERE ${WHERE("'tb'")};
    allowed := true;
    IF wait <= ${EPS} THEN
      remaining := ${tbRemaining("nxt")};
    ELSE
      remaining := 0;
      delay := wait;
    END IF;
    reset_after := nxt;
    retry_after := 0;
  ELSE
    allowed := false;
    remaining := ${tbRemaining("d")};
    reset_after := d;
    retry_after := wait;
  END IF;`
  )

const tbPeek = (n: Names) =>
  fn(
    n.fn("tb_peek"),
    `p_limiter text, p_key text, p_interval float8, p_burst float8, ${DECISION_OUT}`,
    "",
    `  v_tat float8;
  d float8;
  wait float8;`,
    `  SELECT s.tat INTO v_tat FROM ${n.table} s WHERE s.limiter = p_limiter AND s.key = p_key AND s.kind = 'tb';
  now_ms := ${NOW};
  d := greatest(coalesce(v_tat - now_ms, 0), 0);
  delay := 0;
  reset_after := d;
  IF NOT (1 <= p_burst) OR NOT (p_interval > 0 AND p_interval < 'Infinity'::float8) THEN
    allowed := false;
    remaining := 0;
    retry_after := 'Infinity'::float8;
    RETURN;
  END IF;
  wait := d + p_interval - p_burst * p_interval;
  allowed := wait <= ${EPS};
  remaining := ${tbRemaining("d")};
  retry_after := CASE WHEN allowed THEN 0 ELSE wait END;`
  )

const swLoad = `
  v_times := coalesce(v_times, '{}');
  v_costs := coalesce(v_costs, '{}');
  n := cardinality(v_times);`

/**
 * Live entries of a sliding window are `v_times[i..n]`; `total` their costs. The scan starts at
 * `start` (`k` in a take: every entry before it is older than the caller's window too).
 */
const swScan = (start: string) => `
  i := ${start};
  WHILE i <= n AND v_times[i] + p_window <= now_ms LOOP i := i + 1; END LOOP;
  total := 0;
  FOR j IN i..n LOOP total := total + v_costs[j]; END LOOP;
  reset_after := CASE WHEN i <= n THEN v_times[n] + p_window - now_ms ELSE 0 END;`

/** `retry_after` for a cost `c` that does not fit (`c <= p_limit`). */
const swRetry = (c: string) => `
  retry_after := p_window;
  freed := 0;
  FOR j IN i..n LOOP
    freed := freed + v_costs[j];
    IF freed >= total + ${c} - p_limit THEN
      retry_after := v_times[j] + p_window - now_ms;
      EXIT;
    END IF;
  END LOOP;`

const swDeclare = `  v_times float8[];
  v_costs float8[];
  v_keep float8;
  v_until float8;
  keep float8;
  new_keep float8;
  new_until float8;
  n int;
  i int;
  k int;
  total float8;
  freed float8;`

/**
 * Entries are kept for a longer window than the caller's (`win_ms`) while the caller that uses it
 * may still count them: until `win_until`, its last admitted take plus its window. While
 * processes with different windows share a key (a rolling deploy of a new `window`), one with a
 * shorter window counts its own window but never prunes the entries one with a longer window
 * still counts; once the longer window's caller has not taken for its whole window, the row is
 * pruned to the caller's own window again (under steady traffic of the shorter window it would
 * otherwise keep every entry of the longer one forever). A row of a previous version (no
 * `win_until`) keeps `win_ms` until its newest entry is that old. The kept entries are
 * `v_times[k..n]` (`k <= i`); an admitted take stores `new_keep` / `new_until`.
 */
const swKeep = `
  v_until := coalesce(v_until, CASE WHEN n > 0 THEN v_times[n] + v_keep END);
  IF v_keep > p_window AND v_until > now_ms THEN
    keep := v_keep;
    new_keep := v_keep;
    new_until := v_until;
  ELSE
    keep := p_window;
    new_keep := p_window;
    new_until := now_ms + p_window;
  END IF;
  k := 1;
  WHILE k <= n AND v_times[k] + keep <= now_ms LOOP k := k + 1; END LOOP;`

const swTake = (n: Names) =>
  fn(
    n.fn("sw_take"),
    `p_limiter text, p_key text, p_limit float8, p_window float8, p_cost float8, p_lock_ms int, ${DECISION_OUT}`,
    "",
    swDeclare,
    `${lockOrCreate(n, "'sw'", "s.times, s.costs, s.win_ms, s.win_until", "v_times, v_costs, v_keep, v_until")}
${swLoad}
${swKeep}
${swScan("k")}
  delay := 0;
  IF NOT (p_cost <= p_limit) THEN
    allowed := false;
    remaining := least(greatest(floor(p_limit - total), 0), p_limit);
    retry_after := 'Infinity'::float8;
    RETURN;
  END IF;
  IF total + p_cost <= p_limit THEN
    IF p_cost > 0 THEN
      v_times := v_times[k:n];
      v_costs := v_costs[k:n];
      n := cardinality(v_times);
      IF n > 0 AND v_times[n] >= now_ms THEN
        -- same instant: merge into the newest entry
        v_costs[n] := v_costs[n] + p_cost;
      ELSE
        v_times := v_times || now_ms;
        v_costs := v_costs || p_cost;
        n := n + 1;
      END IF;
      UPDATE ${n.table} SET times = v_times, costs = v_costs, win_ms = new_keep, win_until = new_until,
        expires_at = to_timestamp((v_times[n] + keep) / 1000)
        WHERE ${WHERE("'sw'")};
      reset_after := v_times[n] + p_window - now_ms;
    END IF;
    allowed := true;
    remaining := least(greatest(floor(p_limit - total - p_cost), 0), p_limit);
    retry_after := 0;
  ELSE
    allowed := false;
    remaining := least(greatest(floor(p_limit - total), 0), p_limit);
${swRetry("p_cost")}
  END IF;`
  )

const swPeek = (n: Names) =>
  fn(
    n.fn("sw_peek"),
    `p_limiter text, p_key text, p_limit float8, p_window float8, ${DECISION_OUT}`,
    "",
    swDeclare,
    `  SELECT s.times, s.costs INTO v_times, v_costs FROM ${n.table} s
    WHERE s.limiter = p_limiter AND s.key = p_key AND s.kind = 'sw';
  now_ms := ${NOW};
${swLoad}
${swScan("1")}
  delay := 0;
  allowed := total + 1 <= p_limit;
  remaining := least(greatest(floor(p_limit - total), 0), p_limit);
  IF allowed THEN
    retry_after := 0;
  ELSIF NOT (1 <= p_limit) THEN
    retry_after := 'Infinity'::float8;
  ELSE
${swRetry("1")}
  END IF;`
  )

/** The current aligned window (guarded against the float rounding `floor(x / w) * w > x`). */
const fwWindow = `
  w_start := floor(now_ms / p_window) * p_window;
  IF w_start > now_ms THEN w_start := w_start - p_window; END IF;
  cnt := CASE WHEN v_start = w_start AND v_win = p_window THEN coalesce(v_count, 0) ELSE 0 END;
  reset_after := w_start + p_window - now_ms;
  delay := 0;`

/**
 * The row kind of a fixed window: `fw:<length ms>` (`fw:x<hex of the float8>` for a length that is
 * not a whole number of ms), so each window length keeps its own counter (see `fwTake`).
 */
const fwKind = `
  v_kind := 'fw:' || CASE WHEN p_window = trunc(p_window) AND abs(p_window) < 1e15
    THEN trunc(p_window)::bigint::text ELSE 'x' || encode(float8send(p_window), 'hex') END;`

const fwDeclare = `  v_kind text;
  v_start float8;
  v_win float8;
  v_count float8;
  w_start float8;
  cnt float8;`

const fwTake = (n: Names) =>
  fn(
    n.fn("fw_take"),
    `p_limiter text, p_key text, p_limit float8, p_window float8, p_cost float8, p_lock_ms int, ${DECISION_OUT}`,
    "",
    fwDeclare,
    `${fwKind}
${lockOrCreate(n, "v_kind", "s.win_start, s.win_ms, s.win_count", "v_start, v_win, v_count")}
${fwWindow}
  IF cnt + p_cost <= p_limit THEN
    UPDATE ${n.table} SET win_start = w_start, win_ms = p_window, win_count = cnt + p_cost,
      expires_at = to_timestamp((w_start + p_window) / 1000)
      WHERE ${WHERE("v_kind")};
    allowed := true;
    remaining := least(greatest(floor(p_limit - cnt - p_cost), 0), p_limit);
    retry_after := 0;
  ELSE
    allowed := false;
    remaining := least(greatest(floor(p_limit - cnt), 0), p_limit);
    retry_after := CASE WHEN p_cost <= p_limit THEN reset_after ELSE 'Infinity'::float8 END;
  END IF;`
  )

const fwPeek = (n: Names) =>
  fn(
    n.fn("fw_peek"),
    `p_limiter text, p_key text, p_limit float8, p_window float8, ${DECISION_OUT}`,
    "",
    fwDeclare,
    `${fwKind}
  SELECT s.win_start, s.win_ms, s.win_count INTO v_start, v_win, v_count FROM ${n.table} s
    WHERE s.limiter = p_limiter AND s.key = p_key AND s.kind = v_kind;
  now_ms := ${NOW};
${fwWindow}
  allowed := cnt + 1 <= p_limit;
  remaining := least(greatest(floor(p_limit - cnt), 0), p_limit);
  retry_after := CASE WHEN allowed THEN 0 WHEN 1 <= p_limit THEN reset_after ELSE 'Infinity'::float8 END;`
  )

const ccDeclare = `  v_holders text[];
  v_exps float8[];
  h text[] := '{}';
  e float8[] := '{}';
  earliest float8;
  latest float8;
  pos int;`

/** Keeps the live leases in `h` / `e`, with their earliest and latest expiry. */
const ccLive = `
  FOR j IN 1..coalesce(cardinality(v_holders), 0) LOOP
    IF v_exps[j] > now_ms THEN
      h := h || v_holders[j];
      e := e || v_exps[j];
      earliest := least(earliest, v_exps[j]);
      latest := greatest(latest, v_exps[j]);
    END IF;
  END LOOP;`

const ccWrite = (n: Names) => `
  IF cardinality(h) = 0 THEN
    DELETE FROM ${n.table} WHERE ${WHERE("'cc'")};
  ELSE
    UPDATE ${n.table} SET holders = h, expiries = e,
      expires_at = to_timestamp((SELECT max(x) FROM unnest(e) x) / 1000)
      WHERE ${WHERE("'cc'")};
  END IF;`

const ccAcquire = (n: Names) =>
  fn(
    n.fn("cc_acquire"),
    "p_limiter text, p_key text, p_holder text, p_limit float8, p_lease float8, p_lock_ms int, OUT acquired boolean, OUT active int, OUT retry_after float8",
    "",
    ccDeclare,
    `${lockOrCreate(n, "'cc'", "s.holders, s.expiries", "v_holders, v_exps")}
${ccLive}
  pos := array_position(h, p_holder);
  IF pos IS NOT NULL OR cardinality(h) < p_limit THEN
    IF pos IS NOT NULL THEN
      e[pos] := now_ms + p_lease;
    ELSE
      h := h || p_holder;
      e := e || (now_ms + p_lease);
    END IF;
${ccWrite(n)}
    acquired := true;
    retry_after := 0;
  ELSE
    acquired := false;
    retry_after := CASE WHEN earliest IS NULL THEN 'Infinity'::float8 ELSE earliest - now_ms END;
  END IF;
  active := cardinality(h);`
  )

/** Locks the existing lease row (never creates one): renew and release. */
const ccLockExisting = (n: Names) => `${LOCK_TIMEOUT}
  SELECT s.holders, s.expiries INTO v_holders, v_exps FROM ${n.table} s
    WHERE s.limiter = p_limiter AND s.key = p_key AND s.kind = 'cc' FOR UPDATE;
  now_ms := ${NOW};
  pos := array_position(v_holders, p_holder);
  IF pos IS NULL THEN RETURN false; END IF;`

const ccRenew = (n: Names) =>
  fn(
    n.fn("cc_renew"),
    "p_limiter text, p_key text, p_holder text, p_lease float8, p_lock_ms int",
    "RETURNS boolean",
    `${ccDeclare}
  was float8;`,
    `${ccLockExisting(n)}
  was := v_exps[pos];
  -- a live lease is pushed; an expired one is dropped, never re-created
  v_exps[pos] := CASE WHEN was > now_ms THEN now_ms + p_lease ELSE 0 END;
${ccLive}
${ccWrite(n)}
  RETURN was > now_ms;`
  )

const ccRelease = (n: Names) =>
  fn(
    n.fn("cc_release"),
    "p_limiter text, p_key text, p_holder text, p_lock_ms int",
    "RETURNS boolean",
    `${ccDeclare}
  was float8;`,
    `${ccLockExisting(n)}
  was := v_exps[pos];
  v_exps[pos] := 0;
${ccLive}
${ccWrite(n)}
  RETURN was > now_ms;`
  )

const ccPeek = (n: Names) =>
  fn(
    n.fn("cc_peek"),
    `p_limiter text, p_key text, p_limit float8, ${DECISION_OUT}`,
    "",
    ccDeclare,
    `  SELECT s.holders, s.expiries INTO v_holders, v_exps FROM ${n.table} s
    WHERE s.limiter = p_limiter AND s.key = p_key AND s.kind = 'cc';
  now_ms := ${NOW};
${ccLive}
  allowed := cardinality(h) < p_limit;
  remaining := least(greatest(p_limit - cardinality(h), 0), p_limit);
  reset_after := coalesce(latest - now_ms, 0);
  retry_after := CASE WHEN allowed THEN 0 WHEN earliest IS NULL THEN 'Infinity'::float8 ELSE earliest - now_ms END;
  delay := 0;`
  )

/**
 * The table. `fillfactor` leaves room on each page so that the update of a hot key is a HOT
 * update (no index write): `expires_at` is deliberately not indexed for the same reason (the
 * cleanup scans, bounded by `LIMIT`).
 *
 * @internal
 */
export const createTable = (n: Names, unlogged: boolean): string => `
CREATE ${unlogged ? "UNLOGGED " : ""}TABLE IF NOT EXISTS ${n.table} (
  limiter text NOT NULL,
  key text NOT NULL,
  kind text NOT NULL,
  tat float8,
  win_start float8,
  win_ms float8,
  win_count float8,
  win_until float8,
  times float8[],
  costs float8[],
  holders text[],
  expiries float8[],
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (limiter, key, kind)
) WITH (fillfactor = 80);`

/**
 * The columns added since the table's first version, for a table an earlier version created
 * (`CREATE TABLE IF NOT EXISTS` leaves it as it is). Run with the rest of the installation, so
 * only when the version changes.
 *
 * @internal
 */
export const addColumns = (n: Names): string => `
ALTER TABLE ${n.table} ADD COLUMN IF NOT EXISTS win_until float8;`

/**
 * Every function, `CREATE OR REPLACE`.
 *
 * @internal
 */
export const createFunctions = (n: Names): string =>
  [tbTake, tbPeek, swTake, swPeek, fwTake, fwPeek, ccAcquire, ccRenew, ccRelease, ccPeek].map((f) => f(n)).join("\n")

const lockStatement = (n: Names) =>
  `SELECT pg_advisory_xact_lock(hashtext(${literal(`effect-rate-sync:${n.rawSchema}.${n.rawTable}`)}));`

const objects = (n: Names, unlogged: boolean) =>
  `${n.rawSchema === "public" ? "" : `CREATE SCHEMA IF NOT EXISTS ${n.schema};`}
${createTable(n, unlogged)}
${addColumns(n)}
${createFunctions(n)}`

/**
 * The version of the installed objects, kept as the table's comment: a hash of the table's columns
 * and the functions' source, so a process finding the same version installs nothing, and one with
 * new columns or functions installs them.
 *
 * @internal
 */
export const version = (n: Names): string =>
  `effect-rate-sync ${
    createHash("sha1").update(`${createTable(n, false)}${addColumns(n)}${createFunctions(n)}`).digest("hex").slice(0, 16)
  }`

/**
 * The whole installation script, for a DBA (`PostgresStore.ddl`).
 *
 * @internal
 */
export const install = (n: Names, unlogged: boolean): string =>
  `${lockStatement(n)}
${objects(n, unlogged)}
COMMENT ON TABLE ${n.table} IS ${literal(version(n))};`

/**
 * What `initialize` runs with `autoCreate`: several statements sent as one simple query, which
 * PostgreSQL runs as one implicit transaction (rolled back whole on error, so no connection is
 * ever left in an aborted transaction), serialized between processes by an advisory lock
 * (concurrent `CREATE TABLE IF NOT EXISTS` / `CREATE OR REPLACE FUNCTION` can otherwise fail on
 * the catalogs' unique indexes). The objects are (re)created only when the table, a function, or
 * the version comment is missing or different, so restarts write nothing to the catalogs and a
 * role that does not own the objects can start once they are installed.
 *
 * @internal
 */
export const installIfChanged = (n: Names, unlogged: boolean): string =>
  `${lockStatement(n)}
DO $rs_install$
BEGIN
  IF to_regclass(${literal(n.table)}) IS NULL
    OR obj_description(to_regclass(${literal(n.table)}), 'pg_class') IS DISTINCT FROM ${literal(version(n))}
    OR (SELECT count(*) FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace
        WHERE ns.nspname = ${literal(n.rawSchema)}
          AND p.proname IN (${FUNCTIONS.map((f) => literal(`${n.rawTable}_${f}`)).join(", ")})) < ${FUNCTIONS.length}
  THEN
    EXECUTE $rs_ddl$${objects(n, unlogged)}$rs_ddl$;
    EXECUTE $rs_ddl$COMMENT ON TABLE ${n.table} IS ${literal(version(n))}$rs_ddl$;
  END IF;
END
$rs_install$;`

/** A string literal of validated identifier characters (no quote can occur). */
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`

/**
 * With `autoCreate: false`: what is missing or outdated (table, version, functions), one row each.
 *
 * @internal
 */
export const missingObjects = (n: Names): string => {
  const checks = [
    `SELECT 'table ' || ${literal(n.table)} WHERE to_regclass(${literal(n.table)}) IS NULL`,
    `SELECT 'the version comment ' || ${literal(version(n))} || ' of the table (outdated functions)'
      WHERE obj_description(to_regclass(${literal(n.table)}), 'pg_class') IS DISTINCT FROM ${literal(version(n))}
        AND to_regclass(${literal(n.table)}) IS NOT NULL`,
    ...FUNCTIONS.map((f) =>
      `SELECT 'function ' || ${literal(n.fn(f))} WHERE NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace ns ON ns.oid = p.pronamespace WHERE ns.nspname = ${
        literal(n.rawSchema)
      } AND p.proname = ${literal(`${n.rawTable}_${f}`)})`
    )
  ]
  return checks.join("\nUNION ALL\n")
}

/**
 * A SQL literal of a `text` argument: `E'…'` with quotes and backslashes doubled, so it reads the
 * same whatever `standard_conforming_strings` is. (NUL, which `text` cannot hold, is refused by the
 * store before any statement is built.)
 *
 * @internal
 */
export const textLiteral = (s: string): string => `E'${s.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`

/**
 * A SQL literal of a `float8` argument: the shortest decimal that reads back as the same double
 * (`String(x)`), `Infinity`, `-Infinity` or `NaN`, cast to `float8`.
 *
 * @internal
 */
export const floatLiteral = (x: number): string => `'${Object.is(x, -0) ? "0" : String(x)}'::float8`

/**
 * A SQL literal of an `int` argument (rounded, clamped to int4).
 *
 * @internal
 */
export const intLiteral = (x: number): string =>
  String(Number.isFinite(x) ? Math.max(-2_147_483_648, Math.min(2_147_483_647, Math.round(x))) : 0)

/**
 * Prefix of every writing statement. PostgreSQL runs the messages of one simple query as one
 * implicit transaction, and `SET TRANSACTION` before its first query sets that transaction's
 * isolation: a decision runs under READ COMMITTED whatever `default_transaction_isolation` the
 * database, the role or the session sets. Under REPEATABLE READ or SERIALIZABLE, `SELECT … FOR
 * UPDATE` of a row another decision updated after the snapshot fails with SQLSTATE 40001, so
 * concurrent takes of one key would fail instead of queueing on the row lock.
 */
const READ_COMMITTED = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;"

/**
 * {@link READ_COMMITTED}, then `SET LOCAL statement_timeout` (the store's `statementTimeout`, ms),
 * local to the message's transaction: a statement the client gave up on (it runs to its end, see
 * `PostgresStore`) cannot hold its connection, and the store's slot, for longer on the server.
 */
const writePrefix = (timeoutMs: number) => `${READ_COMMITTED} SET LOCAL statement_timeout = ${intLiteral(Math.max(1, timeoutMs))};`

/**
 * The statements. Reads (peeks) are parameterized statements (`$1`, …; extended protocol). Writes
 * are functions of their arguments' SQL literals ({@link textLiteral}, {@link floatLiteral},
 * {@link intLiteral}) that build one simple-protocol message, `SET TRANSACTION ISOLATION LEVEL READ
 * COMMITTED; SET LOCAL statement_timeout = <timeoutMs>; SELECT …` (three statements in one round
 * trip; a parameterized statement cannot carry a second one), whose last result is the decision. With `synchronousCommit: false` the writing
 * ones also run `set_config('synchronous_commit', 'off', true)` (transaction-local, in the same
 * statement): the commit no longer waits for the WAL flush, which is most of a take's latency; a
 * server crash may then lose the last few hundred milliseconds of decisions, never consistency.
 *
 * @internal
 */
export const statements = (n: Names, synchronousCommit: boolean, timeoutMs: number) => {
  const prefix = writePrefix(timeoutMs)
  const write = (suffix: FunctionName, scalar = false) => (args: ReadonlyArray<string>): string => {
    const select = scalar ? "f" : "f.*"
    const call = `${n.fn(suffix)}(${args.join(", ")}) f`
    return synchronousCommit
      ? `${prefix} SELECT ${select} FROM ${call}`
      : `${prefix} SELECT ${select} FROM ${call}, set_config('synchronous_commit', 'off', true) c`
  }
  return {
    tokenBucket: write("tb_take"),
    tokenBucketPeek: `SELECT * FROM ${n.fn("tb_peek")}($1, $2, $3, $4)`,
    slidingWindow: write("sw_take"),
    slidingWindowPeek: `SELECT * FROM ${n.fn("sw_peek")}($1, $2, $3, $4)`,
    fixedWindow: write("fw_take"),
    fixedWindowPeek: `SELECT * FROM ${n.fn("fw_peek")}($1, $2, $3, $4)`,
    acquireSlot: write("cc_acquire"),
    renewSlot: write("cc_renew", true),
    releaseSlot: write("cc_release", true),
    slotPeek: `SELECT * FROM ${n.fn("cc_peek")}($1, $2, $3)`,
    resetKey: (limiter: string, key: string) =>
      `${prefix} DELETE FROM ${n.table} WHERE limiter = ${textLiteral(limiter)} AND key = ${textLiteral(key)}`,
    resetLimiter: (limiter: string) => `${prefix} DELETE FROM ${n.table} WHERE limiter = ${textLiteral(limiter)}`,
    /**
     * Deletes at most `batchSize` expired rows. The rows are locked by the `SKIP LOCKED` scan, so a
     * row a take is working on is skipped, and no take can revive a row between its selection and
     * its deletion.
     */
    cleanup: (batchSize: number) =>
      `${prefix} WITH doomed AS (
      SELECT limiter, key, kind FROM ${n.table} WHERE expires_at < clock_timestamp() LIMIT ${intLiteral(batchSize)} FOR UPDATE SKIP LOCKED
    ), gone AS (
      DELETE FROM ${n.table} t USING doomed d
      WHERE t.limiter = d.limiter AND t.key = d.key AND t.kind = d.kind
      RETURNING 1
    )
    SELECT count(*)::int FROM gone`
  }
}
