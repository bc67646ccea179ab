// A module-resolution hook that makes every optional peer unresolvable, as on a machine where the
// user installed only effect-rate-sync and effect. It fails the way Node does for a package that
// is not installed (code ERR_MODULE_NOT_FOUND, "Cannot find package '...'"), and says it blocked it.
import { register } from "node:module"

register(
  "data:text/javascript," +
    encodeURIComponent(`
const blocked = /^(ioredis|@effect\\/platform|@effect\\/platform-node|@effect\\/sql|@effect\\/sql-pg|pg|@nats-io\\/.*)(\\/.*)?$/
export async function resolve(specifier, context, next) {
  if (blocked.test(specifier)) {
    const error = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL + " (blocked optional peer: " + specifier + ")")
    error.code = "ERR_MODULE_NOT_FOUND"
    throw error
  }
  return next(specifier, context)
}`)
)
