/** What the PostgreSQL tests share: the test database, fresh table names, a table with a trigger. */
import { Effect } from "effect"
import { PostgresStore } from "effect-rate-sync/postgres"
import * as Sql from "#fx/sql"
import { SqlClient } from "#fx/sql"
import * as T from "#test/effect"
import { FUNCTIONS } from "../../src/core/postgres/sql.js"

export { FUNCTIONS }

/** The test database (superuser `postgres`, trust authentication on loopback). */
export const URL = "postgres://postgres@127.0.0.1:5432/test"

/** A table name no other test uses (its functions are named after it). */
export const freshTable = () => `rs_test_${crypto.randomUUID().replace(/-/g, "")}`

/**
 * A layer that makes the store's table `table` (a store made on it installs its functions), a side
 * table `<table>_writes` of `columns`, and a `BEFORE UPDATE` trigger on the store's table running
 * `body` (plpgsql, `NEW` the row written; it ends `RETURN NEW`), all of it dropped when the layer
 * is released.
 */
export const tableWithTrigger = (table: string, columns: string, body: string) =>
  T.layerScopedDiscard(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const writes = `"public"."${table}_writes"`
      const trigger = `"public"."${table}_trigger"`
      yield* Effect.addFinalizer(() =>
        Sql.script(
          sql,
          [
            `DROP TABLE IF EXISTS "public"."${table}"`,
            `DROP TABLE IF EXISTS ${writes}`,
            `DROP FUNCTION IF EXISTS ${trigger}()`,
            ...FUNCTIONS.map((f) => `DROP FUNCTION IF EXISTS "public"."${table}_${f}"`)
          ].join(";\n")
        ).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
      )
      yield* PostgresStore.make({ tableName: table })
      yield* sql.unsafe(`CREATE TABLE ${writes} (${columns})`)
      yield* sql.unsafe(`CREATE FUNCTION ${trigger}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN ${body} END $f$`)
      yield* sql.unsafe(`CREATE TRIGGER on_write BEFORE UPDATE ON "public"."${table}" FOR EACH ROW EXECUTE FUNCTION ${trigger}()`)
    })
  )
