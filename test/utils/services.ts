/**
 * Reachability of the real servers the integration tests use. Where a server is down the tests
 * skip with a loud message, unless RATE_SYNC_REQUIRE_SERVICES=1 (CI), where they fail.
 */
import * as net from "node:net"
import { assert, describe, it } from "#test/vitest"

export const required = process.env["RATE_SYNC_REQUIRE_SERVICES"] === "1"

const probe = (host: string, port: number, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/**
 * Resolves `true` when `host:port` accepts connections. When it does not: throws if services are
 * required, else prints a loud skip message and resolves `false`.
 */
export const requireService = async (name: string, host: string, port: number): Promise<boolean> => {
  if (await probe(host, port, 2000)) return true
  const message = `${name} is not reachable on ${host}:${port}`
  if (required) throw new Error(`${message}, and RATE_SYNC_REQUIRE_SERVICES=1 requires it`)
  console.warn(`\n!!! SKIPPING ${name} integration tests: ${message} (set RATE_SYNC_REQUIRE_SERVICES=1 to fail instead) !!!\n`)
  return false
}

/**
 * `describe` for a block that needs a server: the block when `available`, else one test that
 * passes only when services are not required (so an unreachable server is visible in the report,
 * and can never turn a CI run green).
 */
export const describeWhenUp = (available: boolean) => (name: string, body: () => void): void => {
  if (available) {
    describe(name, body)
    return
  }
  describe(name, () => {
    it("server unreachable: not run (allowed only without RATE_SYNC_REQUIRE_SERVICES=1)", () => {
      assert.isFalse(required)
    })
  })
}
