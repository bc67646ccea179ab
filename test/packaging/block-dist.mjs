// A module-resolution hook that refuses this package's build output (dist/), to show that a script
// runs from the sources (through tsx and the tsconfig paths) on a machine that never ran
// `npm run build`.
import { register } from "node:module"

const dist = new URL("../../dist/", import.meta.url).href

register(
  "data:text/javascript," +
    encodeURIComponent(`
const dist = ${JSON.stringify(dist)}
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  if (result.url.startsWith(dist)) throw new Error("blocked build output: " + result.url)
  return result
}`)
)
