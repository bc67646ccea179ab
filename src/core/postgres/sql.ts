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
 * Each SPI operation is one call of a PL/pgSQL function installed by `initialize`,
 * `SELECT * FROM <schema>.<table>_<op>(…)`, sent as one statement (see {@link FunctionCall}). The
 * functions carry what used to be the statement's settings: a writing one refuses to run under
 * another isolation than READ COMMITTED (SQLSTATE {@link ISOLATION_SQLSTATE}: the store then sends
 * its writes in a READ COMMITTED transaction of their own), bounds its row-lock waits
 * (`lock_timeout`, the client's statement timeout) and turns `synchronous_commit` off for its own
 * transaction (`p_async`), all local to the statement's transaction.
 *
 * A token-bucket or fixed-window take is one conditional `UPDATE … WHERE <admitted> RETURNING`
 * (its row lock, its admission check and its write in one row operation), falling back to a plain
 * read for a refusal and, for a key without a row, to an `INSERT … ON CONFLICT DO NOTHING` of an
 * empty row before the update runs again. The other
 * writers lock the pair's row first (`SELECT … FOR UPDATE`, creating it when absent), then read the
 * server's clock (`clock_timestamp()`, after the lock so that concurrent callers of one key see
 * increasing times), decide with the math of `algorithm.ts`, and write only when the request is
 * admitted. Peeks read without locking.
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
  "tb_take_many",
  "tb_take_keys",
  "tb_peek",
  "sw_take",
  "sw_take_keys",
  "sw_peek",
  "fw_take",
  "fw_take_many",
  "fw_take_keys",
  "fw_peek",
  "cc_acquire",
  "cc_acq_keys",
  "cc_renew",
  "cc_release",
  "cc_rel_keys",
  "cc_peek",
  "reset",
  "take_all",
  "tb_adjust",
  "sw_adjust",
  "fw_adjust"
] as const

/** @internal */
export type FunctionName = (typeof FUNCTIONS)[number]

/**
 * Longest table name accepted: `<table>_tb_take_many` must fit PostgreSQL's 63-byte identifiers.
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
 * The SQLSTATE a writing function raises when its transaction is not READ COMMITTED (a database,
 * role or session default of REPEATABLE READ or SERIALIZABLE): class `RS`, not PostgreSQL's, so it
 * can mean nothing else. Raised before anything is read or written; the store then runs its
 * writes in an explicit READ COMMITTED transaction (see `#fx/sql` `callFunction`).
 *
 * @internal
 */
export const ISOLATION_SQLSTATE = "RS001"

// ---------------------------------------------------------------------------------------------
// the functions' signatures

/** The SQL type of a function argument, as the statements cast their parameters. @internal */
export type ArgType = "text" | "float8" | "int" | "boolean" | "text[]" | "float8[]"

/**
 * A store function: its name, its arguments (names and types, in order), the statement that
 * calls it with parameters (`SELECT * FROM <fn>($1::text, …)`, prepared once per connection on
 * Effect 4) and its signature (`to_regprocedure`).
 *
 * @internal
 */
export interface FunctionSpec {
  readonly name: FunctionName
  readonly args: ReadonlyArray<readonly [string, ArgType]>
  readonly types: ReadonlyArray<ArgType>
  /** The function's quoted name, `"schema"."table_<name>"`. */
  readonly fn: string
  readonly prepared: string
  readonly signature: string
  /** The function writes (it runs the isolation check and takes `p_lock_ms` / `p_async`). */
  readonly writes: boolean
}

const LIMITER_KEY: ReadonlyArray<readonly [string, ArgType]> = [["p_limiter", "text"], ["p_key", "text"]]
const WRITE_TAIL: ReadonlyArray<readonly [string, ArgType]> = [["p_lock_ms", "int"], ["p_async", "boolean"]]

/** A token bucket take's own arguments (its write tail apart). */
const TB_TAKE: ReadonlyArray<readonly [string, ArgType]> = [
  ...LIMITER_KEY,
  ["p_interval", "float8"],
  ["p_burst", "float8"],
  ["p_cost", "float8"],
  ["p_max_wait", "float8"]
]
/** A fixed window take's own arguments (its write tail apart). */
const FW_TAKE: ReadonlyArray<readonly [string, ArgType]> = [
  ...LIMITER_KEY,
  ["p_limit", "float8"],
  ["p_window", "float8"],
  ["p_cost", "float8"]
]

/** A sliding window take's own arguments (its write tail apart): as a fixed window's. */
const SW_TAKE = FW_TAKE
/** A slot acquire's own arguments (its write tail apart). */
const CC_ACQUIRE: ReadonlyArray<readonly [string, ArgType]> = [
  ...LIMITER_KEY,
  ["p_holder", "text"],
  ["p_limit", "float8"],
  ["p_lease", "float8"]
]
/** A slot release's own arguments (its write tail apart). */
const CC_RELEASE: ReadonlyArray<readonly [string, ArgType]> = [...LIMITER_KEY, ["p_holder", "text"]]

/** The scalar type of an array argument's elements. */
const ELEMENT = { text: "text[]", float8: "float8[]" } as const

/**
 * A keys function's arguments (see {@link keysCall}): each of a single take's, as an array of
 * one value per take, named with an `s` (`p_limiter` → `p_limiters`).
 */
const keysArgs = (take: ReadonlyArray<readonly [string, ArgType]>): ReadonlyArray<readonly [string, ArgType]> =>
  take.map(([name, type]) => [`${name}s`, type === "text" ? ELEMENT.text : ELEMENT.float8])

/** The arguments of each function, in order. */
const ARGS: Record<FunctionName, ReadonlyArray<readonly [string, ArgType]>> = {
  tb_take: [...TB_TAKE, ...WRITE_TAIL],
  tb_take_many: [
    ...LIMITER_KEY,
    ["p_interval", "float8"],
    ["p_burst", "float8"],
    ["p_costs", "float8[]"],
    ["p_max_waits", "float8[]"],
    ...WRITE_TAIL
  ],
  tb_take_keys: [...keysArgs(TB_TAKE), ...WRITE_TAIL],
  tb_peek: [...LIMITER_KEY, ["p_interval", "float8"], ["p_burst", "float8"], ["p_cost", "float8"]],
  sw_take: [...SW_TAKE, ...WRITE_TAIL],
  sw_take_keys: [...keysArgs(SW_TAKE), ...WRITE_TAIL],
  sw_peek: [...LIMITER_KEY, ["p_limit", "float8"], ["p_window", "float8"], ["p_cost", "float8"]],
  fw_take: [...FW_TAKE, ...WRITE_TAIL],
  fw_take_keys: [...keysArgs(FW_TAKE), ...WRITE_TAIL],
  fw_take_many: [...LIMITER_KEY, ["p_limit", "float8"], ["p_window", "float8"], ["p_costs", "float8[]"], ...WRITE_TAIL],
  fw_peek: [...LIMITER_KEY, ["p_limit", "float8"], ["p_window", "float8"], ["p_cost", "float8"]],
  cc_acquire: [...CC_ACQUIRE, ...WRITE_TAIL],
  cc_acq_keys: [...keysArgs(CC_ACQUIRE), ...WRITE_TAIL],
  cc_renew: [...LIMITER_KEY, ["p_holder", "text"], ["p_lease", "float8"], ...WRITE_TAIL],
  cc_release: [...CC_RELEASE, ...WRITE_TAIL],
  cc_rel_keys: [...keysArgs(CC_RELEASE), ...WRITE_TAIL],
  cc_peek: [...LIMITER_KEY, ["p_limit", "float8"]],
  reset: [...LIMITER_KEY, ...WRITE_TAIL],
  take_all: [
    ["p_algs", "text[]"],
    ["p_limiters", "text[]"],
    ["p_keys", "text[]"],
    ["p_a", "float8[]"],
    ["p_b", "float8[]"],
    ["p_c", "float8[]"],
    ["p_d", "float8[]"],
    ...WRITE_TAIL
  ],
  tb_adjust: [...LIMITER_KEY, ["p_interval", "float8"], ["p_burst", "float8"], ["p_delta", "float8"], ...WRITE_TAIL],
  sw_adjust: [
    ...LIMITER_KEY,
    ["p_limit", "float8"],
    ["p_window", "float8"],
    ["p_delta", "float8"],
    ["p_ref", "float8"],
    ...WRITE_TAIL
  ],
  fw_adjust: [
    ...LIMITER_KEY,
    ["p_limit", "float8"],
    ["p_window", "float8"],
    ["p_delta", "float8"],
    ["p_ref", "float8"],
    ...WRITE_TAIL
  ]
}

/** @internal */
export type Specs = Readonly<Record<FunctionName, FunctionSpec>>

const specOf = (n: Names, name: FunctionName): FunctionSpec => {
  const args = ARGS[name]
  const fn = n.fn(name)
  const types = args.map(([, type]) => type)
  return {
    name,
    args,
    types,
    fn,
    prepared: `SELECT * FROM ${fn}(${types.map((type, i) => `$${i + 1}::${type}`).join(", ")})`,
    signature: `${fn}(${types.join(", ")})`,
    writes: args.some(([arg]) => arg === "p_async")
  }
}

/** The functions of the store on `n`. @internal */
export const specs = (n: Names): Specs => ({
  tb_take: specOf(n, "tb_take"),
  tb_take_many: specOf(n, "tb_take_many"),
  tb_take_keys: specOf(n, "tb_take_keys"),
  tb_peek: specOf(n, "tb_peek"),
  sw_take: specOf(n, "sw_take"),
  sw_take_keys: specOf(n, "sw_take_keys"),
  sw_peek: specOf(n, "sw_peek"),
  fw_take: specOf(n, "fw_take"),
  fw_take_many: specOf(n, "fw_take_many"),
  fw_take_keys: specOf(n, "fw_take_keys"),
  fw_peek: specOf(n, "fw_peek"),
  cc_acquire: specOf(n, "cc_acquire"),
  cc_acq_keys: specOf(n, "cc_acq_keys"),
  cc_renew: specOf(n, "cc_renew"),
  cc_release: specOf(n, "cc_release"),
  cc_rel_keys: specOf(n, "cc_rel_keys"),
  cc_peek: specOf(n, "cc_peek"),
  reset: specOf(n, "reset"),
  take_all: specOf(n, "take_all"),
  tb_adjust: specOf(n, "tb_adjust"),
  sw_adjust: specOf(n, "sw_adjust"),
  fw_adjust: specOf(n, "fw_adjust")
})

const argList = (spec: FunctionSpec) => spec.args.map(([name, type]) => `${name} ${type}`).join(", ")

// ---------------------------------------------------------------------------------------------
// the functions

/**
 * Admission tolerance (ms). Store instants are epoch milliseconds (~1.8e12) in `float8`, whose
 * resolution there is ~2.4e-4 ms, so a stored TAT carries that much rounding: a request that is
 * mathematically admissible is admitted when its wait is at most one microsecond.
 */
const EPS = "0.001"
/** Tolerance when flooring a ratio that should be whole (float noise of stored instants). */
const RATIO_EPS = "0.000001"

/** The server's clock, epoch ms. Each occurrence reads it again (`clock_timestamp()` is volatile). */
const NOW = "extract(epoch from clock_timestamp())::float8 * 1000"

/**
 * The first statements of a writing function: it refuses another isolation than READ COMMITTED
 * (under REPEATABLE READ or SERIALIZABLE, `SELECT … FOR UPDATE` or `UPDATE` of a row another
 * decision updated after the snapshot fails with SQLSTATE 40001 instead of waiting for it; the
 * store then sends its writes as READ COMMITTED transactions of their own), bounds its row-lock
 * waits on the server (`p_lock_ms`, the client's statement timeout: a caller that gave up does not
 * leave a statement queued behind a stuck lock holder) and, with `p_async`, does not wait for the
 * WAL flush when its transaction commits. Both settings are `set_config(…, true)`, local to the
 * statement's transaction; a function-level `SET synchronous_commit` clause would not do: it is
 * undone when the function returns, before the commit that reads it.
 */
const ENTER = `
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '${ISOLATION_SQLSTATE}',
      MESSAGE = 'effect-rate-sync: a writing function runs under READ COMMITTED, not ' || current_setting('transaction_isolation');
  END IF;
  PERFORM set_config('lock_timeout', p_lock_ms::text, true),
    CASE WHEN p_async THEN set_config('synchronous_commit', 'off', true) END;`

/**
 * Locks the row of `(p_limiter, p_key, kind)` (`kind` is a SQL expression: `'sw'`, `v_kind`),
 * creating an empty one when absent, and reads `cols` into `vars` (NULL for a new row).
 * Concurrent creators serialize on the primary key: the loser's `INSERT … DO NOTHING` waits for
 * the winner, then its `SELECT … FOR UPDATE` (a fresh snapshot per statement, READ COMMITTED)
 * sees the committed row. A row removed in between (by the cleanup) makes the loop try again.
 */
const lockOrCreate = (n: Names, kind: string, cols: string, vars: string) => `
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

/** `kind` is a SQL expression (`'tb'`, `v_kind`). */
const WHERE = (kind: string) => `limiter = p_limiter AND key = p_key AND kind = ${kind}`
/** The same on the alias `s`. */
const WHERE_S = (kind: string) => `s.limiter = p_limiter AND s.key = p_key AND s.kind = ${kind}`

const DECISION_OUT =
  "OUT allowed boolean, OUT remaining float8, OUT reset_after float8, OUT retry_after float8, OUT delay float8"
/** A window take's decision, with `ref`: what it charged (the fixed window's start, the sliding entry's instant). */
const WINDOW_OUT = `${DECISION_OUT}, OUT ref float8`

const fn = (spec: FunctionSpec, out: string, returns: string, declare: string, body: string) => `
CREATE OR REPLACE FUNCTION ${spec.fn}(${argList(spec)}${out === "" ? "" : `, ${out}`}) ${returns} LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  now_ms float8;
${declare}
BEGIN${spec.writes ? ENTER : ""}
${body}
END
$fn$;`

const tbRemaining = (d: string) =>
  `least(greatest(floor(p_burst - ${d} / p_interval + ${RATIO_EPS}), 0), floor(p_burst))`

const VALID_INTERVAL = "p_interval > 0 AND p_interval < 'Infinity'::float8"

/** An admitted take's answer, from `d = tat' − now` (a wait past the burst is a reservation's delay). */
const tbAdmitted = `
  allowed := true;
  retry_after := 0;
  reset_after := d;
  delay := d - p_burst * p_interval;
  IF delay <= ${EPS} THEN
    delay := 0;
    remaining := ${tbRemaining("d")};
  ELSE
    remaining := 0;
  END IF;`

/** A refused take of `cost`'s answer, from `d = max(tat − now, 0)` (a refusal writes nothing). */
const tbRefused = (cost: string) => `
  allowed := false;
  delay := 0;
  reset_after := d;
  IF ${VALID_INTERVAL} THEN
    remaining := ${tbRemaining("d")};
    retry_after := CASE WHEN ${cost} <= p_burst THEN d + (${cost} - p_burst) * p_interval ELSE 'Infinity'::float8 END;
  ELSE
    remaining := 0;
    retry_after := 'Infinity'::float8;
  END IF;`

/**
 * GCRA (`algorithm.ts`): with `d = max(tat − now, 0)`, admit when `d + (cost − burst)·T` is at
 * most the tolerance or `p_max_wait` (a reservation), storing `max(tat, now) + cost·T`. One
 * conditional `UPDATE` decides and writes on the locked row, the clock read in its expressions (so
 * after the lock: callers of one key are stamped in the order they are served); it answers
 * `d' = tat' − now` of the new state. No row updated: a plain read of the row for the refusal,
 * or, when there is no row, an empty one is created (`INSERT … ON CONFLICT DO NOTHING`: a
 * concurrent creator wins) and the update runs again (so the first take of a key is an `UPDATE`
 * too, as every later one: a trigger on the table sees every take).
 */
const tbTake = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    DECISION_OUT,
    "",
    TB_DECLARE,
    tbDecide(n, "RETURN;")
  )

const TB_DECLARE = `  v_tat float8;
  d float8;`

/**
 * One take's decision (see {@link tbTake}) from `p_limiter`, `p_key`, `p_interval`, `p_burst`,
 * `p_cost`, `p_max_wait`, into the OUT columns; `admitted` ends an admitted take (a refused one
 * falls through to the end).
 */
const tbDecide = (n: Names, admitted: string) =>
  `  IF p_cost <= p_burst AND ${VALID_INTERVAL} THEN
    FOR attempt IN 1..10 LOOP
      UPDATE ${n.table} s SET tat = greatest(s.tat, ${NOW}) + p_cost * p_interval,
          expires_at = to_timestamp((greatest(s.tat, ${NOW}) + p_cost * p_interval) / 1000)
        WHERE ${WHERE_S("'tb'")}
          AND greatest(coalesce(s.tat - ${NOW}, 0), 0) + (p_cost - p_burst) * p_interval <= greatest(${EPS}, p_max_wait)
        RETURNING s.tat - ${NOW} INTO d;
      IF NOT FOUND THEN
        SELECT s.tat INTO v_tat FROM ${n.table} s WHERE ${WHERE_S("'tb'")};
        EXIT WHEN FOUND;
        INSERT INTO ${n.table} (limiter, key, kind, expires_at)
          VALUES (p_limiter, p_key, 'tb', clock_timestamp()) ON CONFLICT DO NOTHING;
      ELSE
        d := greatest(d, 0);
${tbAdmitted}
        ${admitted}
      END IF;
      IF attempt = 10 THEN RAISE EXCEPTION 'could not update the state row'; END IF;
    END LOOP;
  ELSE
    SELECT s.tat INTO v_tat FROM ${n.table} s WHERE ${WHERE_S("'tb'")};
  END IF;
  -- refused: the state as read now (a refusal writes nothing)
  now_ms := ${NOW};
  d := greatest(coalesce(v_tat - now_ms, 0), 0);
${tbRefused("p_cost")}`

/**
 * The takes of several keys in one statement (`internal/postgres/gate.ts`: single takes that
 * waited for a statement slot at the same time, merged): each decided exactly as `tb_take`
 * decides it, in the order of `(limiter, key)` (then position), so that two such statements lock
 * the rows they share in the same order and never deadlock; a key named twice is decided twice,
 * the second on the state the first left. Answers one row per take, `ord` its position (from 1),
 * in that order.
 */
const tbTakeKeys = (n: Names, spec: FunctionSpec) =>
  keysFunction(spec, DECISION_OUT, TB_DECLARE, TB_TAKE, "", tbDecide(n, "RETURN NEXT; EXIT take;"))

/**
 * A keys function (`tb_take_keys`, `fw_take_keys`): for each take, in the order of `(limiter,
 * key)` then position, its single function's body `decide` on its own arguments (`take`, declared
 * as variables and set from the arrays), its answer one row (`ord` its position, from 1); `reset`
 * clears what an earlier take's answer would otherwise leave in the OUT columns. `decide` ends an
 * admitted take with `RETURN NEXT; EXIT take;` and falls through to the end for a refused one.
 */
const keysFunction = (
  spec: FunctionSpec,
  out: string,
  declare: string,
  take: ReadonlyArray<readonly [string, ArgType]>,
  reset: string,
  decide: string
) =>
  fn(
    spec,
    `OUT ord int, ${out}`,
    "RETURNS SETOF record",
    `${declare}
  q_i bigint;
${take.map(([name, type]) => `  ${name} ${type};`).join("\n")}`,
    `  FOR q_i IN SELECT u.u_ord FROM unnest(p_limiters, p_keys) WITH ORDINALITY u(u_limiter, u_key, u_ord) ORDER BY u.u_limiter, u.u_key, u.u_ord LOOP
    ord := q_i;
${take.map(([name]) => `    ${name} := ${name}s[q_i];`).join("\n")}${reset}
    <<take>>
    BEGIN
${decide}
    RETURN NEXT;
    END take;
  END LOOP;`
  )

/**
 * The takes of one coalesced batch (`internal/postgres/coalesce.ts`: concurrent takes of one
 * process on one key), decided in order on one lock of the row, each on the state the ones before
 * it leave, at one reading of the clock taken after the lock: exactly what `tb_take` would answer
 * each of them if they arrived together, one after another. One `UPDATE` writes the last state
 * (none when every take was refused). Answers one row per take, `ord` its position (from 1).
 */
const tbTakeMany = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    `OUT ord int, ${DECISION_OUT}`,
    "RETURNS SETOF record",
    `  v_tat float8;
  d float8;
  c float8;
  changed boolean := false;`,
    `${lockOrCreate(n, "'tb'", "s.tat", "v_tat")}
  FOR i IN 1..coalesce(cardinality(p_costs), 0) LOOP
    ord := i;
    c := p_costs[i];
    d := greatest(coalesce(v_tat - now_ms, 0), 0);
    IF c <= p_burst AND ${VALID_INTERVAL}
      AND d + (c - p_burst) * p_interval <= greatest(${EPS}, coalesce(p_max_waits[i], 0))
    THEN
      v_tat := greatest(v_tat, now_ms) + c * p_interval;
      changed := true;
      d := greatest(v_tat - now_ms, 0);
${tbAdmitted}
    ELSE
${tbRefused("c")}
    END IF;
    RETURN NEXT;
  END LOOP;
  IF changed THEN
    UPDATE ${n.table} SET tat = v_tat, expires_at = to_timestamp(v_tat / 1000) WHERE ${WHERE("'tb'")};
  END IF;`
  )

const tbPeek = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    DECISION_OUT,
    "",
    `  v_tat float8;
  d float8;
  wait float8;`,
    `  SELECT s.tat INTO v_tat FROM ${n.table} s WHERE ${WHERE_S("'tb'")};
  now_ms := ${NOW};
  d := greatest(coalesce(v_tat - now_ms, 0), 0);
  delay := 0;
  reset_after := d;
  IF NOT (p_cost <= p_burst) OR NOT (${VALID_INTERVAL}) THEN
    allowed := false;
    remaining := CASE WHEN ${VALID_INTERVAL} THEN ${tbRemaining("d")} ELSE 0 END;
    retry_after := 'Infinity'::float8;
    RETURN;
  END IF;
  wait := d + (p_cost - p_burst) * p_interval;
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
  v_at float8;
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

/**
 * Each admitted take is an entry of its own, stamped with its instant, which is its `ref` (what
 * `adjust` names): an instant no later than the newest entry's (two takes within one microsecond)
 * is moved just past it (the next `float8`: a later stamp counts a fraction of a microsecond
 * longer, never shorter), so the stamps stay sorted and distinct.
 */
const swTake = (n: Names, spec: FunctionSpec) => fn(spec, WINDOW_OUT, "", swDeclare, swDecide(n, "RETURN;"))

/**
 * One sliding window take's decision (see {@link swTake}) from `p_limiter`, `p_key`, `p_limit`,
 * `p_window`, `p_cost`, into the OUT columns; `done` ends it early (a cost above the limit), else
 * it falls through to the end.
 */
const swDecide = (n: Names, done: string) =>
  `${lockOrCreate(n, "'sw'", "s.times, s.costs, s.win_ms, s.win_until", "v_times, v_costs, v_keep, v_until")}
${swLoad}
${swKeep}
${swScan("k")}
  delay := 0;
  IF NOT (p_cost <= p_limit) THEN
    allowed := false;
    remaining := least(greatest(floor(p_limit - total), 0), p_limit);
    retry_after := 'Infinity'::float8;
    ${done}
  END IF;
  IF total + p_cost <= p_limit THEN
    IF p_cost > 0 THEN
      v_times := v_times[k:n];
      v_costs := v_costs[k:n];
      n := cardinality(v_times);
      v_at := CASE WHEN n > 0 AND v_times[n] >= now_ms THEN v_times[n] * 1.0000000000000002 ELSE now_ms END;
      v_times := v_times || v_at;
      v_costs := v_costs || p_cost;
      n := n + 1;
      UPDATE ${n.table} SET times = v_times, costs = v_costs, win_ms = new_keep, win_until = new_until,
        expires_at = to_timestamp((v_at + keep) / 1000)
        WHERE ${WHERE("'sw'")};
      reset_after := v_at + p_window - now_ms;
      ref := v_at;
    END IF;
    allowed := true;
    remaining := least(greatest(floor(p_limit - total - p_cost), 0), p_limit);
    retry_after := 0;
  ELSE
    allowed := false;
    remaining := least(greatest(floor(p_limit - total), 0), p_limit);
${swRetry("p_cost")}
  END IF;`

/** Single sliding window takes of several keys in one statement (see {@link tbTakeKeys}). */
const swTakeKeys = (n: Names, spec: FunctionSpec) =>
  keysFunction(spec, WINDOW_OUT, swDeclare, SW_TAKE, "\n    ref := NULL;", swDecide(n, "RETURN NEXT; EXIT take;"))

const swPeek = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    DECISION_OUT,
    "",
    swDeclare,
    `  SELECT s.times, s.costs INTO v_times, v_costs FROM ${n.table} s WHERE ${WHERE_S("'sw'")};
  now_ms := ${NOW};
${swLoad}
${swScan("1")}
  delay := 0;
  allowed := total + p_cost <= p_limit;
  remaining := least(greatest(floor(p_limit - total), 0), p_limit);
  IF allowed THEN
    retry_after := 0;
  ELSIF NOT (p_cost <= p_limit) THEN
    retry_after := 'Infinity'::float8;
  ELSE
${swRetry("p_cost")}
  END IF;`
  )

/**
 * The row kind of a fixed window: `fw:<length ms>` (`fw:x<hex of the float8>` for a length that is
 * not a whole number of ms), so each window length keeps its own counter (see `fwTake`).
 */
const fwKind = `
  v_kind := 'fw:' || CASE WHEN p_window = trunc(p_window) AND abs(p_window) < 1e15
    THEN trunc(p_window)::bigint::text ELSE 'x' || encode(float8send(p_window), 'hex') END;`

/** The aligned window of `now_ms` (guarded against the float rounding `floor(x / w) * w > x`). */
const fwAlign = `
  w_start := floor(now_ms / p_window) * p_window;
  IF w_start > now_ms THEN w_start := w_start - p_window; END IF;`

const fwDeclare = `  v_kind text;
  v_start float8;
  v_win float8;
  v_count float8;
  w_start float8;
  cnt float8;`

/** The row's window as the decision sees it: its own when it is this one or a later one (see `fwTake`). */
const fwCurrent = (start: string, win: string) => `${win} = p_window AND ${start} >= w_start`
const fwCount = (start: string, win: string, count: string) =>
  `CASE WHEN ${fwCurrent(start, win)} THEN coalesce(${count}, 0) ELSE 0 END`
const fwStart = (start: string, win: string) => `CASE WHEN ${win} = p_window AND ${start} > w_start THEN ${start} ELSE w_start END`

/**
 * One counter per aligned window: admit when `count + cost ≤ limit`, as one conditional `UPDATE`.
 * The window is the one of the clock read before the row lock (the alignment needs one reading);
 * a row already counting a later window (written by a caller that read the clock later but was
 * served first) is counted in that later window, so a window never goes back. `ref` is the
 * window's start.
 */
const fwTake = (n: Names, spec: FunctionSpec) => fn(spec, WINDOW_OUT, "", fwDeclare, fwDecide(n, "RETURN;"))

/**
 * One fixed window take's decision (see {@link fwTake}) from `p_limiter`, `p_key`, `p_limit`,
 * `p_window`, `p_cost`, into the OUT columns; `admitted` ends an admitted take (a refused one falls
 * through to the end).
 */
const fwDecide = (n: Names, admitted: string) =>
  `${fwKind}
  now_ms := ${NOW};
${fwAlign}
  delay := 0;
  IF p_cost <= p_limit THEN
    FOR attempt IN 1..10 LOOP
      UPDATE ${n.table} s SET win_count = ${fwCount("s.win_start", "s.win_ms", "s.win_count")} + p_cost,
          win_start = ${fwStart("s.win_start", "s.win_ms")},
          win_ms = p_window,
          expires_at = to_timestamp((${fwStart("s.win_start", "s.win_ms")} + p_window) / 1000)
        WHERE ${WHERE_S("v_kind")} AND ${fwCount("s.win_start", "s.win_ms", "s.win_count")} + p_cost <= p_limit
        RETURNING s.win_count, s.win_start INTO cnt, v_start;
      IF NOT FOUND THEN
        SELECT s.win_start, s.win_ms, s.win_count INTO v_start, v_win, v_count FROM ${n.table} s WHERE ${WHERE_S("v_kind")};
        EXIT WHEN FOUND;
        INSERT INTO ${n.table} (limiter, key, kind, expires_at)
          VALUES (p_limiter, p_key, v_kind, clock_timestamp()) ON CONFLICT DO NOTHING;
      ELSE
        allowed := true;
        remaining := least(greatest(floor(p_limit - cnt), 0), p_limit);
        reset_after := greatest(v_start + p_window - ${NOW}, 0);
        retry_after := 0;
        ref := v_start;
        ${admitted}
      END IF;
      IF attempt = 10 THEN RAISE EXCEPTION 'could not update the state row'; END IF;
    END LOOP;
  ELSE
    SELECT s.win_start, s.win_ms, s.win_count INTO v_start, v_win, v_count FROM ${n.table} s WHERE ${WHERE_S("v_kind")};
  END IF;
  -- refused: the state as read (a refusal writes nothing)
  cnt := ${fwCount("v_start", "v_win", "v_count")};
  allowed := false;
  remaining := least(greatest(floor(p_limit - cnt), 0), p_limit);
  reset_after := greatest(${fwStart("v_start", "v_win")} + p_window - ${NOW}, 0);
  retry_after := CASE WHEN p_cost <= p_limit THEN reset_after ELSE 'Infinity'::float8 END;`

/** Single fixed window takes of several keys in one statement (see {@link tbTakeKeys}). */
const fwTakeKeys = (n: Names, spec: FunctionSpec) =>
  keysFunction(spec, WINDOW_OUT, fwDeclare, FW_TAKE, "\n    ref := NULL;", fwDecide(n, "RETURN NEXT; EXIT take;"))

/**
 * The takes of one coalesced batch on a fixed window (see `tbTakeMany`): decided in order on one
 * lock of the row, in the window of one reading of the clock taken after the lock, each admitted
 * when the count the ones before it left plus its cost is at most the limit; one `UPDATE` writes
 * the count. `ref` is the window's start. Answers one row per take, `ord` its position (from 1).
 */
const fwTakeMany = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    `OUT ord int, ${WINDOW_OUT}`,
    "RETURNS SETOF record",
    `${fwDeclare}
  c float8;
  changed boolean := false;`,
    `${fwKind}
${lockOrCreate(n, "v_kind", "s.win_start, s.win_ms, s.win_count", "v_start, v_win, v_count")}
${fwAlign}
  cnt := ${fwCount("v_start", "v_win", "v_count")};
  v_start := ${fwStart("v_start", "v_win")};
  delay := 0;
  FOR i IN 1..coalesce(cardinality(p_costs), 0) LOOP
    ord := i;
    c := p_costs[i];
    reset_after := greatest(v_start + p_window - now_ms, 0);
    IF c <= p_limit AND cnt + c <= p_limit THEN
      cnt := cnt + c;
      changed := true;
      allowed := true;
      retry_after := 0;
      ref := v_start;
    ELSE
      allowed := false;
      retry_after := CASE WHEN c <= p_limit THEN reset_after ELSE 'Infinity'::float8 END;
      ref := NULL;
    END IF;
    remaining := least(greatest(floor(p_limit - cnt), 0), p_limit);
    RETURN NEXT;
  END LOOP;
  IF changed THEN
    UPDATE ${n.table} SET win_count = cnt, win_start = v_start, win_ms = p_window,
        expires_at = to_timestamp((v_start + p_window) / 1000)
      WHERE ${WHERE("v_kind")};
  END IF;`
  )

const fwPeek = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    DECISION_OUT,
    "",
    fwDeclare,
    `${fwKind}
  SELECT s.win_start, s.win_ms, s.win_count INTO v_start, v_win, v_count FROM ${n.table} s WHERE ${WHERE_S("v_kind")};
  now_ms := ${NOW};
${fwAlign}
  cnt := ${fwCount("v_start", "v_win", "v_count")};
  reset_after := greatest(${fwStart("v_start", "v_win")} + p_window - now_ms, 0);
  delay := 0;
  allowed := cnt + p_cost <= p_limit;
  remaining := least(greatest(floor(p_limit - cnt), 0), p_limit);
  retry_after := CASE WHEN allowed THEN 0 WHEN p_cost <= p_limit THEN reset_after ELSE 'Infinity'::float8 END;`
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

/** An acquire's decision, on `p_limiter`, `p_key`, `p_holder`, `p_limit`, `p_lease`: falls through to its end. */
const ccAcquireBody = (n: Names) =>
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

/** An acquire's answer. */
const CC_ACQUIRE_OUT = "OUT acquired boolean, OUT active int, OUT retry_after float8"

const ccAcquire = (n: Names, spec: FunctionSpec) => fn(spec, CC_ACQUIRE_OUT, "", ccDeclare, ccAcquireBody(n))

/** What a leases function's loop clears before each take: `ccDeclare`'s initial values. */
const CC_RESET = `
    h := '{}';
    e := '{}';
    earliest := NULL;
    latest := NULL;`

/**
 * The acquires of several keys in one statement (`internal/postgres/gate.ts`: acquires that
 * waited for a statement slot at the same time, merged), each decided as `cc_acquire` decides
 * it, in the order of `(limiter, key)` then position (see {@link keysFunction}).
 */
const ccAcqKeys = (n: Names, spec: FunctionSpec) =>
  keysFunction(spec, CC_ACQUIRE_OUT, ccDeclare, CC_ACQUIRE, CC_RESET, ccAcquireBody(n))

/** The declarations of renew and release: `ccDeclare` and the lease's expiry as it was. */
const CC_WAS_DECLARE = `${ccDeclare}
  was float8;`

/** Locks the existing lease row (never creates one): renew and release. */
const ccLockExisting = (n: Names, missing = "RETURN false;") => `
  SELECT s.holders, s.expiries INTO v_holders, v_exps FROM ${n.table} s
    WHERE ${WHERE_S("'cc'")} FOR UPDATE;
  now_ms := ${NOW};
  pos := array_position(v_holders, p_holder);
  IF pos IS NULL THEN ${missing} END IF;`

const ccRenew = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    "",
    "RETURNS boolean",
    CC_WAS_DECLARE,
    `${ccLockExisting(n)}
  was := v_exps[pos];
  -- a live lease is pushed; an expired one is dropped, never re-created
  v_exps[pos] := CASE WHEN was > now_ms THEN now_ms + p_lease ELSE 0 END;
${ccLive}
${ccWrite(n)}
  RETURN was > now_ms;`
  )

/** A release: `missing` when the holder has no lease; `done(released)` at its end. */
const ccReleaseBody = (n: Names, missing: string, done: (released: string) => string) =>
  `${ccLockExisting(n, missing)}
  was := v_exps[pos];
  v_exps[pos] := 0;
${ccLive}
${ccWrite(n)}
  ${done("was > now_ms")}`

const ccRelease = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    "",
    "RETURNS boolean",
    CC_WAS_DECLARE,
    ccReleaseBody(n, "RETURN false;", (released) => `RETURN ${released};`)
  )

/**
 * The releases of several leases in one statement (merged as {@link ccAcqKeys}), each as
 * `cc_release` releases it; `released` answers what `cc_release` returns.
 */
const ccRelKeys = (n: Names, spec: FunctionSpec) =>
  keysFunction(
    spec,
    "OUT released boolean",
    CC_WAS_DECLARE,
    CC_RELEASE,
    CC_RESET,
    ccReleaseBody(n, "released := false; RETURN NEXT; EXIT take;", (released) => `released := ${released};`)
  )

const ccPeek = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    DECISION_OUT,
    "",
    ccDeclare,
    `  SELECT s.holders, s.expiries INTO v_holders, v_exps FROM ${n.table} s WHERE ${WHERE_S("'cc'")};
  now_ms := ${NOW};
${ccLive}
  allowed := cardinality(h) < p_limit;
  remaining := least(greatest(p_limit - cardinality(h), 0), p_limit);
  reset_after := coalesce(latest - now_ms, 0);
  retry_after := CASE WHEN allowed THEN 0 WHEN earliest IS NULL THEN 'Infinity'::float8 ELSE earliest - now_ms END;
  delay := 0;`
  )

/**
 * `reset(limiter, key)` (`p_key` NULL: every key of the limiter): a range of the primary key, so
 * resetting `"a"` never touches `"a:b"`; answers the rows deleted.
 */
const reset = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    "",
    "RETURNS bigint",
    "  deleted bigint;",
    `  IF p_key IS NULL THEN
    DELETE FROM ${n.table} WHERE limiter = p_limiter;
  ELSE
    DELETE FROM ${n.table} WHERE limiter = p_limiter AND key = p_key;
  END IF;
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;`
  )

// ---------------------------------------------------------------------------------------------
// composite calls and adjust

/** Floors a ratio that should be whole (float noise of stored instants), as `algorithm.ts` `snap`. */
const snap = (x: string) => `CASE WHEN abs(${x} - round(${x})) <= 1e-9 THEN round(${x}) ELSE ${x} END`

/**
 * Several rate takes as one unit, all-or-nothing (`CompositeDecision`, the semantics of
 * `algorithm.ts` `compositeCheck` / `compositeApply` / `compositeRefusal`), one call.
 *
 * The takes come as parallel arrays, one element per take: `p_algs` (`tb`, `sw`, `fw`),
 * `p_limiters`, `p_keys`, and four numbers `p_a … p_d` (token bucket: interval, burst, cost, max
 * wait; windows: limit, window, cost, unused). The rows of the call (one per distinct
 * `(limiter, key, kind)`) are locked first, in one fixed order (`limiter, key, kind` under the
 * "C" collation), so two calls naming the same rows never deadlock (a single take locks one row);
 * a missing row is created (`INSERT … ON CONFLICT DO NOTHING`, so concurrent creators serialize on
 * it) and, when the call is refused, deleted again before the commit: a refused call leaves the
 * table as it found it. The clock is read once, after the locks: every take is judged, then
 * charged, at that one instant.
 *
 * 1. Check, writing nothing: each take in order on a copy of its row's state, after the earlier
 *    takes of the call on the same row (a row named twice is charged twice). Only token buckets:
 *    each is judged with the smallest `maxWaitMs` of the call, and a bucket whose summed cost in
 *    the call passes its burst never fits (`retry_after` Infinity). With a window take, buckets
 *    are judged with no wait.
 * 2. Refused (a take refused): nothing is written; the refused takes answer their refusal, the
 *    others `allowed` with their row's state as it was (no delay, no ref).
 * 3. Admitted: every take is charged in order. Token buckets are booked where the caller
 *    proceeds, `next = max(tat, now + D) + cost·T` (`D` the largest wait; a bucket named twice:
 *    the second from the first's `next`; a take of cost 0 books nothing), each answering
 *    `delay = D`; fixed windows store their count (ref: the window's start); a sliding window
 *    records one entry per take as `sw_take` does (ref: the entry's instant).
 *
 * Answers one row per take, `ord` its position (from 1).
 */
const takeAll = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    `OUT ord int, ${WINDOW_OUT}`,
    "RETURNS SETOF record",
    `  cnt int := coalesce(cardinality(p_algs), 0);
  kinds text[] := '{}';
  rl text[];
  rk text[];
  rkind text[];
  nrows int;
  pos int;
  dup boolean;
  row_of int[] := '{}';
  created boolean[] := '{}';
  loaded boolean[] := '{}';
  -- per row: token bucket (stored tat, scratch tat, cost admitted in the call, tat as charged)
  r_tat float8[] := '{}';
  s_tat float8[] := '{}';
  s_spent float8[] := '{}';
  c_tat float8[] := '{}';
  -- per row: fixed window (as read, and start, count in the call), sliding window (pending cost and instant)
  f_start float8[] := '{}';
  f_win float8[] := '{}';
  f_count float8[] := '{}';
  s_start float8[] := '{}';
  s_count float8[] := '{}';
  s_pending float8[] := '{}';
  s_pending_at float8[] := '{}';
  -- per take: the decision, and the state's remaining / reset before its charge
  o_allowed boolean[] := '{}';
  o_remaining float8[] := '{}';
  o_reset float8[] := '{}';
  o_retry float8[] := '{}';
  o_delay float8[] := '{}';
  o_ref float8[] := '{}';
  b_remaining float8[] := '{}';
  b_reset float8[] := '{}';
  buckets boolean := true;
  max_wait float8;
  admitted boolean := true;
  d_max float8 := 0;
  r int;
  t int;
  v_tat float8;
  v_start float8;
  v_win float8;
  v_count float8;
  v_times float8[];
  v_costs float8[];
  v_keep float8;
  v_until float8;
  v_at float8;
  w_start float8;
  p_window float8;
  p_limit float8;
  p_cost float8;
  p_interval float8;
  p_burst float8;
  tat0 float8;
  nxt float8;
  wait float8;
  spent float8;
  counted float8;
  latest float8;
  total float8;
  freed float8;
  keep float8;
  new_keep float8;
  new_until float8;
  n int;
  i int;
  k int;`,
    `  FOR t IN 1..cnt LOOP
    IF p_algs[t] = 'tb' THEN
      kinds[t] := 'tb';
      max_wait := least(max_wait, p_d[t]);
    ELSIF p_algs[t] = 'sw' THEN
      kinds[t] := 'sw';
      buckets := false;
    ELSE
      p_window := p_b[t];
${fwKind.replaceAll("v_kind", "kinds[t]")}
      buckets := false;
    END IF;
  END LOOP;
  IF NOT buckets OR max_wait IS NULL THEN max_wait := 0; END IF;
  -- the distinct rows, in one fixed order (limiter, key, kind under "C"): an insertion sort (a
  -- call names a few rows; a query of unnest / DISTINCT / array_agg costs tens of microseconds)
  nrows := 0;
  rl := '{}';
  rk := '{}';
  rkind := '{}';
  FOR t IN 1..cnt LOOP
    pos := nrows + 1;
    dup := false;
    FOR r IN 1..nrows LOOP
      IF rl[r] = p_limiters[t] AND rk[r] = p_keys[t] AND rkind[r] = kinds[t] THEN
        dup := true;
        EXIT;
      END IF;
      IF p_limiters[t] < rl[r] COLLATE "C" OR (p_limiters[t] = rl[r]
        AND (p_keys[t] < rk[r] COLLATE "C" OR (p_keys[t] = rk[r] AND kinds[t] < rkind[r] COLLATE "C"))) THEN
        pos := r;
        EXIT;
      END IF;
    END LOOP;
    IF NOT dup THEN
      rl := rl[1:pos - 1] || p_limiters[t] || rl[pos:nrows];
      rk := rk[1:pos - 1] || p_keys[t] || rk[pos:nrows];
      rkind := rkind[1:pos - 1] || kinds[t] || rkind[pos:nrows];
      nrows := nrows + 1;
    END IF;
  END LOOP;
  FOR r IN 1..nrows LOOP
    created[r] := false;
    loaded[r] := false;
    FOR attempt IN 1..10 LOOP
      -- locked and read in one statement (a new row reads as NULLs)
      SELECT s.tat, s.win_start, s.win_ms, s.win_count INTO v_tat, v_start, v_win, v_count
        FROM ${n.table} s WHERE s.limiter = rl[r] AND s.key = rk[r] AND s.kind = rkind[r] FOR UPDATE;
      r_tat[r] := v_tat;
      f_start[r] := v_start;
      f_win[r] := v_win;
      f_count[r] := v_count;
      EXIT WHEN FOUND;
      INSERT INTO ${n.table} (limiter, key, kind, expires_at)
        VALUES (rl[r], rk[r], rkind[r], clock_timestamp()) ON CONFLICT DO NOTHING;
      IF FOUND THEN
        created[r] := true;
        EXIT;
      END IF;
      IF attempt = 10 THEN RAISE EXCEPTION 'could not lock the state row'; END IF;
    END LOOP;
  END LOOP;
  FOR t IN 1..cnt LOOP
    FOR r IN 1..nrows LOOP
      IF rl[r] = p_limiters[t] AND rk[r] = p_keys[t] AND rkind[r] = kinds[t] THEN
        row_of[t] := r;
        EXIT;
      END IF;
    END LOOP;
  END LOOP;
  now_ms := ${NOW};

  -- 1. check
  FOR t IN 1..cnt LOOP
    r := row_of[t];
    o_delay[t] := 0;
    o_retry[t] := 0;
    IF p_algs[t] = 'tb' THEN
      p_interval := p_a[t];
      p_burst := p_b[t];
      p_cost := p_c[t];
      IF NOT loaded[r] THEN
        s_tat[r] := r_tat[r];
        s_spent[r] := 0;
        loaded[r] := true;
      END IF;
      tat0 := greatest(coalesce(s_tat[r], now_ms), now_ms);
      b_reset[t] := tat0 - now_ms;
      b_remaining[t] := CASE WHEN ${VALID_INTERVAL} THEN ${tbRemaining("(tat0 - now_ms)")} ELSE 0 END;
      spent := s_spent[r] + p_cost;
      o_allowed[t] := false;
      o_remaining[t] := b_remaining[t];
      o_reset[t] := b_reset[t];
      IF NOT (p_cost <= p_burst) OR NOT (${VALID_INTERVAL}) OR spent > p_burst THEN
        o_retry[t] := 'Infinity'::float8;
      ELSE
        nxt := tat0 + p_cost * p_interval;
        wait := nxt - p_burst * p_interval - now_ms;
        IF wait <= ${EPS} OR wait <= max_wait THEN
          s_tat[r] := nxt;
          s_spent[r] := spent;
          o_allowed[t] := true;
          o_delay[t] := CASE WHEN wait <= ${EPS} THEN 0 ELSE wait END;
          o_remaining[t] := CASE WHEN o_delay[t] > 0 THEN 0 ELSE ${tbRemaining("(nxt - now_ms)")} END;
          o_reset[t] := nxt - now_ms;
        ELSE
          o_retry[t] := wait;
        END IF;
      END IF;
    ELSIF p_algs[t] = 'fw' THEN
      p_limit := p_a[t];
      p_window := p_b[t];
      p_cost := p_c[t];
      IF NOT loaded[r] THEN
        v_start := f_start[r];
        v_win := f_win[r];
        v_count := f_count[r];
${fwAlign}
        s_start[r] := ${fwStart("v_start", "v_win")};
        s_count[r] := ${fwCount("v_start", "v_win", "v_count")};
        loaded[r] := true;
      END IF;
      b_remaining[t] := least(greatest(floor(p_limit - s_count[r]), 0), p_limit);
      b_reset[t] := greatest(s_start[r] + p_window - now_ms, 0);
      o_reset[t] := b_reset[t];
      IF p_cost <= p_limit AND s_count[r] + p_cost <= p_limit THEN
        s_count[r] := s_count[r] + p_cost;
        o_allowed[t] := true;
        o_remaining[t] := least(greatest(floor(p_limit - s_count[r]), 0), p_limit);
        o_ref[t] := s_start[r];
      ELSE
        o_allowed[t] := false;
        o_remaining[t] := b_remaining[t];
        o_retry[t] := CASE WHEN p_cost <= p_limit THEN b_reset[t] ELSE 'Infinity'::float8 END;
      END IF;
    ELSE
      p_limit := p_a[t];
      p_window := p_b[t];
      p_cost := p_c[t];
      IF NOT loaded[r] THEN
        s_pending[r] := 0;
        s_pending_at[r] := '-Infinity'::float8;
        loaded[r] := true;
      END IF;
      SELECT s.times, s.costs INTO v_times, v_costs FROM ${n.table} s WHERE s.limiter = rl[r] AND s.key = rk[r] AND s.kind = rkind[r];
      v_times := coalesce(v_times, '{}');
      v_costs := coalesce(v_costs, '{}');
      n := cardinality(v_times);
      i := 1;
      WHILE i <= n AND v_times[i] + p_window <= now_ms LOOP i := i + 1; END LOOP;
      total := 0;
      FOR j IN i..n LOOP total := total + v_costs[j]; END LOOP;
      counted := total + s_pending[r];
      latest := CASE WHEN s_pending[r] > 0 THEN s_pending_at[r] WHEN i <= n THEN v_times[n] ELSE '-Infinity'::float8 END;
      b_remaining[t] := least(greatest(floor(p_limit - counted), 0), p_limit);
      b_reset[t] := CASE WHEN latest > '-Infinity'::float8 THEN latest + p_window - now_ms ELSE 0 END;
      o_reset[t] := b_reset[t];
      IF NOT (p_cost <= p_limit) OR NOT (counted + p_cost <= p_limit) THEN
        o_allowed[t] := false;
        o_remaining[t] := b_remaining[t];
        IF NOT (p_cost <= p_limit) THEN
          o_retry[t] := 'Infinity'::float8;
        ELSE
          o_retry[t] := CASE WHEN s_pending[r] > 0 THEN s_pending_at[r] + p_window - now_ms ELSE p_window END;
          freed := 0;
          FOR j IN i..n LOOP
            freed := freed + v_costs[j];
            IF freed >= counted + p_cost - p_limit THEN
              o_retry[t] := v_times[j] + p_window - now_ms;
              EXIT;
            END IF;
          END LOOP;
        END IF;
      ELSE
        o_allowed[t] := true;
        o_remaining[t] := least(greatest(floor(p_limit - counted - p_cost), 0), p_limit);
        IF p_cost > 0 THEN
          s_pending[r] := s_pending[r] + p_cost;
          s_pending_at[r] := greatest(latest, now_ms);
        END IF;
      END IF;
    END IF;
    IF NOT o_allowed[t] THEN
      admitted := false;
    ELSIF o_delay[t] > d_max THEN
      d_max := o_delay[t];
    END IF;
  END LOOP;

  -- 2. refused: nothing written (the rows this call created go again)
  IF NOT admitted THEN
    FOR r IN 1..nrows LOOP
      IF created[r] THEN
        DELETE FROM ${n.table} WHERE limiter = rl[r] AND key = rk[r] AND kind = rkind[r];
      END IF;
    END LOOP;
    FOR t IN 1..cnt LOOP
      ord := t;
      allowed := o_allowed[t];
      delay := 0;
      ref := NULL;
      IF o_allowed[t] THEN
        remaining := b_remaining[t];
        reset_after := b_reset[t];
        retry_after := 0;
      ELSE
        remaining := o_remaining[t];
        reset_after := o_reset[t];
        retry_after := o_retry[t];
      END IF;
      RETURN NEXT;
    END LOOP;
    RETURN;
  END IF;

  -- 3. admitted: every take charged, in order
  FOR t IN 1..cnt LOOP
    r := row_of[t];
    ord := t;
    allowed := true;
    retry_after := 0;
    delay := 0;
    ref := NULL;
    IF p_algs[t] = 'tb' THEN
      p_interval := p_a[t];
      p_burst := p_b[t];
      p_cost := p_c[t];
      IF p_cost > 0 THEN
        nxt := greatest(coalesce(c_tat[r], r_tat[r]), now_ms + d_max) + p_cost * p_interval;
        c_tat[r] := nxt;
        UPDATE ${n.table} SET tat = nxt, expires_at = to_timestamp(nxt / 1000)
          WHERE limiter = rl[r] AND key = rk[r] AND kind = rkind[r];
      ELSE
        -- a take of cost 0 books nothing (as a single take of cost 0)
        nxt := greatest(coalesce(c_tat[r], r_tat[r]), now_ms);
      END IF;
      delay := d_max;
      remaining := CASE WHEN d_max > 0 THEN ${tbRemaining("(nxt - now_ms)")} ELSE o_remaining[t] END;
      reset_after := nxt - now_ms;
    ELSIF p_algs[t] = 'fw' THEN
      p_window := p_b[t];
      UPDATE ${n.table} SET win_count = s_count[r], win_start = s_start[r], win_ms = p_window,
          expires_at = to_timestamp((s_start[r] + p_window) / 1000)
        WHERE limiter = rl[r] AND key = rk[r] AND kind = rkind[r];
      remaining := o_remaining[t];
      reset_after := o_reset[t];
      ref := o_ref[t];
    ELSE
      p_limit := p_a[t];
      p_window := p_b[t];
      p_cost := p_c[t];
      SELECT s.times, s.costs, s.win_ms, s.win_until INTO v_times, v_costs, v_keep, v_until
        FROM ${n.table} s WHERE s.limiter = rl[r] AND s.key = rk[r] AND s.kind = rkind[r];
${swLoad}
${swKeep}
${swScan("k")}
      remaining := least(greatest(floor(p_limit - total - p_cost), 0), p_limit);
      IF p_cost > 0 THEN
        v_times := v_times[k:n];
        v_costs := v_costs[k:n];
        n := cardinality(v_times);
        v_at := CASE WHEN n > 0 AND v_times[n] >= now_ms THEN v_times[n] * 1.0000000000000002 ELSE now_ms END;
        v_times := v_times || v_at;
        v_costs := v_costs || p_cost;
        UPDATE ${n.table} SET times = v_times, costs = v_costs, win_ms = new_keep, win_until = new_until,
            expires_at = to_timestamp((v_at + keep) / 1000)
          WHERE limiter = rl[r] AND key = rk[r] AND kind = rkind[r];
        reset_after := v_at + p_window - now_ms;
        ref := v_at;
      END IF;
    END IF;
    RETURN NEXT;
  END LOOP;`
  )

/**
 * Token bucket adjust (`algorithm.ts` `gcraAdjust`): `p_delta > 0` pushes the TAT by `delta·T`
 * from `max(tat, now)` (past the burst: debt; a key without a row gets one), `p_delta < 0` moves
 * it back, never below `now` (a full bucket; `applied` then the fraction given back), and only
 * when no reservation is outstanding (`tat0 − burst·T ≤ now`; otherwise it applies nothing). A
 * delta or interval that is not a finite number applies nothing. Answers `applied, remaining,
 * reset_after`.
 */
const tbAdjust = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    "OUT applied float8, OUT remaining float8, OUT reset_after float8",
    "",
    `  v_tat float8;
  tat0 float8;
  nxt float8;`,
    `  IF p_delta > 0 AND p_delta < 'Infinity'::float8 AND ${VALID_INTERVAL} THEN
${lockOrCreate(n, "'tb'", "s.tat", "v_tat")}
  ELSE
    SELECT s.tat INTO v_tat FROM ${n.table} s WHERE ${WHERE_S("'tb'")} FOR UPDATE;
    now_ms := ${NOW};
  END IF;
  tat0 := greatest(coalesce(v_tat, now_ms), now_ms);
  applied := 0;
  IF NOT (${VALID_INTERVAL}) THEN
    remaining := 0;
    reset_after := tat0 - now_ms;
    RETURN;
  END IF;
  nxt := tat0;
  IF p_delta > 0 AND p_delta < 'Infinity'::float8 THEN
    nxt := tat0 + p_delta * p_interval;
    applied := p_delta;
  ELSIF p_delta < 0 AND p_delta > '-Infinity'::float8 AND tat0 > now_ms
    AND tat0 - p_burst * p_interval <= now_ms + ${EPS} THEN
    IF tat0 + p_delta * p_interval > now_ms THEN
      nxt := tat0 + p_delta * p_interval;
      applied := p_delta;
    ELSE
      nxt := now_ms;
      applied := ${snap("((now_ms - tat0) / p_interval)")};
    END IF;
  END IF;
  IF applied <> 0 THEN
    UPDATE ${n.table} SET tat = nxt, expires_at = to_timestamp(nxt / 1000) WHERE ${WHERE("'tb'")};
  END IF;
  remaining := ${tbRemaining("(nxt - now_ms)")};
  reset_after := nxt - now_ms;`
  )

/**
 * Sliding window adjust (`algorithm.ts` `slidingAdjust`): the entry stamped `p_ref` (the take's
 * ref), while it is in the window (`time + window > now`), costs `max(0, cost + delta)` from now
 * on; an entry that has left, a ref naming none (NULL included) or a delta that is not a finite
 * number apply nothing. Never creates a row. Answers `applied, remaining, reset_after` (of the
 * caller's window).
 */
const swAdjust = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    "OUT applied float8, OUT remaining float8, OUT reset_after float8",
    "",
    `  v_times float8[];
  v_costs float8[];
  n int;
  i int;
  total float8;
  c float8;`,
    `  SELECT s.times, s.costs INTO v_times, v_costs FROM ${n.table} s WHERE ${WHERE_S("'sw'")} FOR UPDATE;
  now_ms := ${NOW};
  applied := 0;
  v_times := coalesce(v_times, '{}');
  v_costs := coalesce(v_costs, '{}');
  n := cardinality(v_times);
  i := 1;
  WHILE i <= n AND v_times[i] + p_window <= now_ms LOOP i := i + 1; END LOOP;
  IF p_ref IS NOT NULL AND p_delta > '-Infinity'::float8 AND p_delta < 'Infinity'::float8 THEN
    FOR j IN i..n LOOP
      IF v_times[j] = p_ref THEN
        c := greatest(0, v_costs[j] + p_delta);
        applied := c - v_costs[j];
        IF applied <> 0 THEN
          v_costs[j] := c;
          UPDATE ${n.table} SET costs = v_costs WHERE ${WHERE("'sw'")};
        END IF;
        EXIT;
      END IF;
    END LOOP;
  END IF;
  total := 0;
  FOR j IN i..n LOOP total := total + v_costs[j]; END LOOP;
  remaining := least(greatest(floor(p_limit - total), 0), p_limit);
  reset_after := CASE WHEN i <= n THEN v_times[n] + p_window - now_ms ELSE 0 END;`
  )

/**
 * Fixed window adjust (`algorithm.ts` `fixedAdjustIn`): only while the window that took
 * (`p_ref`, its start) is the current one, `count = max(0, count + delta)` (past the limit: debt
 * until the window ends; a charge on a key without a row creates one); another window's ref, a
 * NULL ref or a delta that is not a finite number apply nothing. Answers `applied, remaining,
 * reset_after`.
 */
const fwAdjust = (n: Names, spec: FunctionSpec) =>
  fn(
    spec,
    "OUT applied float8, OUT remaining float8, OUT reset_after float8",
    "",
    `${fwDeclare}
  start float8;
  nc float8;`,
    `${fwKind}
  IF p_delta > 0 AND p_delta < 'Infinity'::float8 AND p_ref IS NOT NULL THEN
${lockOrCreate(n, "v_kind", "s.win_start, s.win_ms, s.win_count", "v_start, v_win, v_count")}
  ELSE
    SELECT s.win_start, s.win_ms, s.win_count INTO v_start, v_win, v_count FROM ${n.table} s WHERE ${WHERE_S("v_kind")} FOR UPDATE;
    now_ms := ${NOW};
  END IF;
${fwAlign}
  start := ${fwStart("v_start", "v_win")};
  cnt := ${fwCount("v_start", "v_win", "v_count")};
  applied := 0;
  reset_after := greatest(start + p_window - now_ms, 0);
  IF p_ref IS NOT NULL AND p_ref = start AND p_delta > '-Infinity'::float8 AND p_delta < 'Infinity'::float8 THEN
    nc := greatest(0, cnt + p_delta);
    applied := nc - cnt;
    IF applied <> 0 THEN
      UPDATE ${n.table} SET win_count = nc, win_start = start, win_ms = p_window,
          expires_at = to_timestamp((start + p_window) / 1000)
        WHERE ${WHERE("v_kind")};
      cnt := nc;
    END IF;
  END IF;
  remaining := least(greatest(floor(p_limit - cnt), 0), p_limit);`
  )

const BODIES: Record<FunctionName, (n: Names, spec: FunctionSpec) => string> = {
  tb_take: tbTake,
  tb_take_many: tbTakeMany,
  tb_take_keys: tbTakeKeys,
  tb_peek: tbPeek,
  sw_take: swTake,
  sw_take_keys: swTakeKeys,
  sw_peek: swPeek,
  fw_take: fwTake,
  fw_take_many: fwTakeMany,
  fw_take_keys: fwTakeKeys,
  fw_peek: fwPeek,
  cc_acquire: ccAcquire,
  cc_acq_keys: ccAcqKeys,
  cc_renew: ccRenew,
  cc_release: ccRelease,
  cc_rel_keys: ccRelKeys,
  cc_peek: ccPeek,
  reset,
  take_all: takeAll,
  tb_adjust: tbAdjust,
  sw_adjust: swAdjust,
  fw_adjust: fwAdjust
}

// ---------------------------------------------------------------------------------------------
// installation

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
 * Every function, `CREATE OR REPLACE`. A function whose arguments changed since a previous version
 * is a new overload of the same name: the previous one stays, so processes of that version keep
 * working during a rolling upgrade (see {@link previousSignatures}).
 *
 * @internal
 */
export const createFunctions = (n: Names): string => {
  const all = specs(n)
  return FUNCTIONS.map((name) => BODIES[name](n, all[name])).join("\n")
}

/**
 * The signatures of the functions of the previous version, left installed for its processes (the
 * new ones are overloads): `PostgresStore.ddl` lists how to drop them once no process of that
 * version runs.
 *
 * @internal
 */
export const previousSignatures = (n: Names): ReadonlyArray<string> => [
  `${n.fn("tb_take")}(text, text, float8, float8, float8, float8, int)`,
  `${n.fn("tb_peek")}(text, text, float8, float8)`,
  `${n.fn("sw_take")}(text, text, float8, float8, float8, int)`,
  `${n.fn("sw_peek")}(text, text, float8, float8)`,
  `${n.fn("fw_take")}(text, text, float8, float8, float8, int)`,
  `${n.fn("fw_peek")}(text, text, float8, float8)`,
  `${n.fn("cc_acquire")}(text, text, text, float8, float8, int)`,
  `${n.fn("cc_renew")}(text, text, text, float8, int)`,
  `${n.fn("cc_release")}(text, text, text, int)`
]

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
 * The whole installation script, for a DBA (`PostgresStore.ddl`), with, as comments, how to drop
 * the previous version's functions once no process of that version runs.
 *
 * @internal
 */
export const install = (n: Names, unlogged: boolean): string =>
  `${lockStatement(n)}
${objects(n, unlogged)}
COMMENT ON TABLE ${n.table} IS ${literal(version(n))};
-- Functions of the previous version (effect-rate-sync 0.1), kept for its processes during an
-- upgrade; once none runs:
${previousSignatures(n).map((s) => `-- DROP FUNCTION IF EXISTS ${s};`).join("\n")}`

/** A condition true when one of the store's functions (of this version's signatures) is missing. */
const anyFunctionMissing = (n: Names) => {
  const all = specs(n)
  return FUNCTIONS.map((name) => `to_regprocedure(${literal(all[name].signature)}) IS NULL`).join("\n    OR ")
}

/**
 * What `initialize` runs with `autoCreate`: several statements run as one transaction (one
 * simple-protocol message on Effect 3; rolled back whole on error, so no connection is ever left
 * in an aborted transaction), serialized between processes by an advisory lock (concurrent
 * `CREATE TABLE IF NOT EXISTS` / `CREATE OR REPLACE FUNCTION` can otherwise fail on the catalogs'
 * unique indexes). The objects are (re)created only when the table, a function (of this
 * version's signature), or the version comment is missing or different, so restarts write nothing
 * to the catalogs and a role that does not own the objects can start once they are installed.
 *
 * @internal
 */
export const installIfChanged = (n: Names, unlogged: boolean): string =>
  `${lockStatement(n)}
DO $rs_install$
BEGIN
  IF to_regclass(${literal(n.table)}) IS NULL
    OR obj_description(to_regclass(${literal(n.table)}), 'pg_class') IS DISTINCT FROM ${literal(version(n))}
    OR ${anyFunctionMissing(n)}
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
  const all = specs(n)
  const checks = [
    `SELECT 'table ' || ${literal(n.table)} WHERE to_regclass(${literal(n.table)}) IS NULL`,
    `SELECT 'the version comment ' || ${literal(version(n))} || ' of the table (outdated functions)'
      WHERE obj_description(to_regclass(${literal(n.table)}), 'pg_class') IS DISTINCT FROM ${literal(version(n))}
        AND to_regclass(${literal(n.table)}) IS NOT NULL`,
    ...FUNCTIONS.map((f) =>
      `SELECT 'function ' || ${literal(all[f].signature)} WHERE to_regprocedure(${literal(all[f].signature)}) IS NULL`
    )
  ]
  return checks.join("\nUNION ALL\n")
}

// ---------------------------------------------------------------------------------------------
// statements

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

/** An `int` argument's value: rounded, clamped to int4 (0 for a non-finite number). @internal */
export const intValue = (x: number): number =>
  Number.isFinite(x) ? Math.max(-2_147_483_648, Math.min(2_147_483_647, Math.round(x))) : 0

/**
 * A SQL literal of an `int` argument (rounded, clamped to int4).
 *
 * @internal
 */
export const intLiteral = (x: number): string => String(intValue(x))

/**
 * An argument's value, of the type its spec names (`null`: SQL NULL; an array for `text[]` and
 * `float8[]`, the composite call's columns).
 *
 * @internal
 */
export type ArgValue = string | number | boolean | null | ReadonlyArray<string> | ReadonlyArray<number>

/** The elements of an array argument (a scalar where an array is expected is one element). */
const elements = (value: ArgValue): ReadonlyArray<unknown> => (Array.isArray(value) ? value : [value])

/** The literal of `value` as an argument of `type`. @internal */
export const argLiteral = (type: ArgType, value: ArgValue): string => {
  if (value === null) return `NULL::${type}`
  switch (type) {
    case "text":
      return textLiteral(String(value))
    case "float8":
      return floatLiteral(Number(value))
    case "int":
      return intLiteral(Number(value))
    case "boolean":
      return value === true ? "true" : "false"
    case "text[]":
      return `ARRAY[${elements(value).map((x) => textLiteral(String(x))).join(", ")}]::text[]`
    case "float8[]":
      return `ARRAY[${elements(value).map((x) => floatLiteral(Number(x))).join(", ")}]::float8[]`
  }
}

/**
 * One call of a store function: `spec.prepared` with `values` as its parameters (Effect 4: a
 * prepared statement, planned once per connection), or {@link literalCall} (Effect 3: the text of
 * one simple-protocol statement).
 *
 * @internal
 */
export interface FunctionCall {
  readonly spec: FunctionSpec
  readonly values: ReadonlyArray<ArgValue>
}

/**
 * Single takes' calls (of one function, `tb_take`) as one call of its keys function `spec`
 * (`tb_take_keys`): each array argument of `spec` is the column of the takes' argument at the same
 * position, in order; each scalar one (the write tail, `p_lock_ms`, `p_async`: the same for every
 * take of a store) the first take's, counted from the end. @internal
 */
export const keysCall = (spec: FunctionSpec, calls: ReadonlyArray<FunctionCall>): FunctionCall => {
  const first = calls[0]?.values ?? []
  const count = spec.types.length
  const values = spec.types.map((type, j): ArgValue => {
    switch (type) {
      case "text[]":
        return calls.map((c) => String(c.values[j]))
      case "float8[]":
        return calls.map((c) => Number(c.values[j]))
      default:
        return first[first.length - (count - j)] ?? null
    }
  })
  return { spec, values }
}

/** `SELECT * FROM <fn>(<literals>)`: the call as one statement of literals. @internal */
export const literalCall = (call: FunctionCall): string =>
  `SELECT * FROM ${call.spec.fn}(${call.values.map((v, i) => argLiteral(call.spec.types[i] ?? "text", v)).join(", ")})`

/**
 * `SET TRANSACTION ISOLATION LEVEL READ COMMITTED;`: as the first statement of a message or
 * script, the transaction's isolation (see {@link ISOLATION_SQLSTATE}).
 *
 * @internal
 */
export const READ_COMMITTED = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED;"

/**
 * `SET LOCAL statement_timeout = <ms>;`: before a statement of the same transaction, the server's
 * bound on it (a statement's own timeout is armed when it arrives: a function cannot set it for
 * the statement that calls it).
 *
 * @internal
 */
export const statementTimeout = (ms: number): string => `SET LOCAL statement_timeout = ${intLiteral(Math.max(1, ms))};`

/**
 * Deletes at most `batchSize` expired rows, as one script (see `#fx/sql` `script`): READ COMMITTED,
 * bounded by `timeoutMs` on the server. The rows are locked by the `SKIP LOCKED` scan, so a row a
 * take is working on is skipped, and no take can revive a row between its selection and its
 * deletion.
 *
 * @internal
 */
export const cleanup = (n: Names, timeoutMs: number, batchSize: number): string =>
  `${READ_COMMITTED} ${statementTimeout(timeoutMs)} WITH doomed AS (
      SELECT limiter, key, kind FROM ${n.table} WHERE expires_at < clock_timestamp() LIMIT ${intLiteral(batchSize)} FOR UPDATE SKIP LOCKED
    ), gone AS (
      DELETE FROM ${n.table} t USING doomed d
      WHERE t.limiter = d.limiter AND t.key = d.key AND t.kind = d.kind
      RETURNING 1
    )
    SELECT count(*)::int FROM gone`
