/**
 * Loading a driver module whose optional peer dependencies may be missing.
 *
 * A driver subpath (`effect-rate-sync/redis`, ...) cannot import its driver module statically: an
 * ES module's whole static graph is resolved before any of it runs, so a missing peer would fail
 * with Node's bare `ERR_MODULE_NOT_FOUND` before any code could explain it. The subpath entry
 * loads the driver with a top-level `await import(...)` through {@link importDriver} instead,
 * which turns that failure into one that names the exact `npm install` line.
 *
 * @internal
 */

// The package a specifier belongs to: `@scope/name` or `name`.
const packageOf = (specifier: string): string => {
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier)
}

// The package Node's message names ("Cannot find package 'ioredis' imported from ..."), if any.
const missingPackage = (message: string): string | undefined => {
  const named = /Cannot find package '([^']+)'/.exec(message)?.[1]
  return named === undefined ? undefined : packageOf(named)
}

const isModuleNotFound = (error: unknown): error is Error & { readonly code: string } =>
  error instanceof Error && "code" in error && error.code === "ERR_MODULE_NOT_FOUND"

/**
 * The error a driver subpath throws when an optional peer is missing; its `code` is Node's
 * `ERR_MODULE_NOT_FOUND`, its `cause` Node's own error, its message ends with the install line.
 */
export const missingPeer = (subpath: string, peers: ReadonlyArray<string>, cause: Error): Error => {
  const missing = missingPackage(cause.message)
  const install = missing === undefined || peers.includes(missing) ? peers : [...peers, missing]
  const which = missing === undefined ? install.join(", ") : missing
  return Object.assign(
    new Error(
      `effect-rate-sync/${subpath} needs the optional peer dependenc${install.length > 1 ? "ies" : "y"} ` +
        `${install.join(", ")}; ${which} is not installed. Install with: npm install ${install.join(" ")}`,
      { cause }
    ),
    { code: "ERR_MODULE_NOT_FOUND" }
  )
}

/**
 * Runs `load` (the driver module's dynamic import); a module that cannot be found, when it is one
 * of `peers` or something they need, rejects with {@link missingPeer}. Other failures pass through.
 */
export const importDriver = async <M>(
  subpath: string,
  peers: ReadonlyArray<string>,
  load: () => Promise<M>
): Promise<M> => {
  try {
    return await load()
  } catch (error) {
    // A missing package (a peer, or a package a peer needs); not a missing file of this library.
    if (
      isModuleNotFound(error) &&
      (missingPackage(error.message) !== undefined || peers.some((peer) => error.message.includes(peer)))
    ) {
      throw missingPeer(subpath, peers, error)
    }
    throw error
  }
}
