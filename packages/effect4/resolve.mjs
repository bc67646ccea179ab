/** The module-resolution hook packages/effect4/register.mjs installs (see there). */
const toolchainImporter = new URL("./package.json", import.meta.url).href
const toolchain = new URL("./node_modules/", import.meta.url).href
const fx = new URL("../../src/fx/v4/", import.meta.url).href
const testFx = new URL("../../test/fx/v4/", import.meta.url).href
const toolchainId = /^(?:effect|@effect\/[^/]+)(?:\/.*)?$/
const effect3Only = /^@effect\/(?:platform|sql|experimental)(?:\/.*)?$/

export async function resolve(specifier, context, next) {
  if (specifier.startsWith("#fx/")) return { url: `${fx}${specifier.slice(4)}.ts`, shortCircuit: true }
  if (specifier.startsWith("#test/")) return { url: `${testFx}${specifier.slice(6)}.ts`, shortCircuit: true }
  if (!toolchainId.test(specifier) || (context.parentURL ?? "").startsWith(toolchain)) return next(specifier, context)
  if (effect3Only.test(specifier)) {
    throw new Error(`"${specifier}" (imported by ${context.parentURL}) is an Effect 3 package; on Effect 4 its modules are in effect itself`)
  }
  const resolved = await next(specifier, { ...context, parentURL: toolchainImporter })
  if (!resolved.url.startsWith(toolchain)) {
    throw new Error(`"${specifier}" (imported by ${context.parentURL}) resolved outside packages/effect4/node_modules: ${resolved.url}`)
  }
  return resolved
}
