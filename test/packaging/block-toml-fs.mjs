// A module-resolution hook that makes the TOML parser and the file system unresolvable, to show
// which imports do not need them.
import { register } from "node:module"

register(
  "data:text/javascript," +
    encodeURIComponent(`
const blocked = /^(smol-toml|(node:)?fs)(\\/.*)?$/
export async function resolve(specifier, context, next) {
  if (blocked.test(specifier)) throw new Error("blocked module: " + specifier)
  return next(specifier, context)
}`)
)
