// A module-resolution hook that makes every optional peer unresolvable, as on a machine where the
// user installed only effect-rate-sync and effect.
import { register } from "node:module"

register(
  "data:text/javascript," +
    encodeURIComponent(`
const blocked = /^(ioredis|@effect\\/platform|@effect\\/platform-node|@effect\\/sql|@effect\\/sql-pg|pg|@nats-io\\/.*)(\\/.*)?$/
export async function resolve(specifier, context, next) {
  if (blocked.test(specifier)) throw new Error("blocked optional peer: " + specifier)
  return next(specifier, context)
}`)
)
