/** What the PostgreSQL tests share: the test database and fresh table names. */
export { FUNCTIONS } from "../../src/core/postgres/sql.js"

/** The test database (superuser `postgres`, trust authentication on loopback). */
export const URL = "postgres://postgres@127.0.0.1:5432/test"

/** A table name no other test uses (its functions are named after it). */
export const freshTable = () => `rs_test_${crypto.randomUUID().replace(/-/g, "")}`
