/**
 * A loopback TCP proxy for fault tests of any store: it listens on `127.0.0.1:<random port>` and
 * forwards every connection to `targetHost:targetPort`, byte for byte, until told otherwise:
 * - `pause()`: stop forwarding in both directions (a stalled link: connections stay open, the
 *   bytes are held, in order, and delivered on `resume()`); new connections are accepted and held too;
 * - `resume()`: deliver what was held and forward again;
 * - `reset()`: destroy every current connection (both sides; held bytes are dropped); later
 *   connections work as usual;
 * - `slow(ms)`: delay each chunk by `ms` (0: no delay), order kept;
 * - `close()`: stop listening and destroy everything: no socket or timer outlives it.
 *
 * Flow control is not relayed (held and delayed chunks sit in memory): it is for the small
 * exchanges of tests, not for bulk transfers.
 */
import * as net from "node:net"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface TcpProxy {
  /** The port the proxy listens on (on 127.0.0.1). */
  readonly port: number
  /** Connections currently open through the proxy. */
  readonly connections: () => number
  readonly pause: () => void
  readonly resume: () => void
  readonly reset: () => void
  readonly slow: (ms: number) => void
  readonly close: () => Promise<void>
}

/** One direction of one connection: chunks wait here while paused or delayed. */
interface Direction {
  readonly to: net.Socket
  readonly queue: Array<Buffer | "end">
  /** A chunk is being delayed (its timer is pending). */
  delaying: boolean
}

interface Link {
  readonly client: net.Socket
  readonly upstream: net.Socket
  readonly up: Direction
  readonly down: Direction
}

/** Starts a proxy to `targetPort` (on `targetHost`, default `127.0.0.1`). */
export const startTcpProxy = (targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> => {
  const links = new Set<Link>()
  const timers = new Set<NodeJS.Timeout>()
  let paused = false
  let delayMs = 0
  let closed = false

  const destroy = (link: Link): void => {
    links.delete(link)
    link.up.queue.length = 0
    link.down.queue.length = 0
    link.client.destroy()
    link.upstream.destroy()
  }

  const deliver = (direction: Direction, item: Buffer | "end"): void => {
    if (direction.to.destroyed) return
    if (item === "end") direction.to.end()
    else direction.to.write(item)
  }

  /** Forwards what `direction` holds, in order, as far as `paused` and `delayMs` allow. */
  const pump = (direction: Direction): void => {
    while (!paused && !closed && !direction.delaying) {
      const item = direction.queue.shift()
      if (item === undefined) return
      if (delayMs <= 0) {
        deliver(direction, item)
        continue
      }
      direction.delaying = true
      const timer = setTimeout(() => {
        timers.delete(timer)
        direction.delaying = false
        // paused meanwhile: the chunk waits with the others (delayed again on resume)
        if (paused) direction.queue.unshift(item)
        else deliver(direction, item)
        pump(direction)
      }, delayMs)
      timers.add(timer)
    }
  }

  const pumpAll = (): void => {
    for (const link of links) {
      pump(link.up)
      pump(link.down)
    }
  }

  const server = net.createServer((client) => {
    if (closed) {
      client.destroy()
      return
    }
    client.setNoDelay(true)
    const upstream = net.connect({ host: targetHost, port: targetPort })
    upstream.setNoDelay(true)
    const link: Link = {
      client,
      upstream,
      up: { to: upstream, queue: [], delaying: false },
      down: { to: client, queue: [], delaying: false }
    }
    links.add(link)
    const relay = (from: net.Socket, direction: Direction) => {
      from.on("data", (chunk: Buffer) => {
        direction.queue.push(chunk)
        pump(direction)
      })
      from.on("end", () => {
        direction.queue.push("end")
        pump(direction)
      })
      from.on("error", () => destroy(link))
      from.on("close", () => {
        // the other side closed: once what it sent is through, close ours (at once when reset)
        if (direction.queue.length === 0 || !links.has(link)) destroy(link)
      })
    }
    relay(client, link.up)
    relay(upstream, link.down)
  })

  return new Promise<TcpProxy>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") {
        reject(new Error("the proxy has no TCP address"))
        return
      }
      resolve({
        port: address.port,
        connections: () => links.size,
        pause: () => {
          paused = true
        },
        resume: () => {
          paused = false
          pumpAll()
        },
        reset: () => {
          for (const link of [...links]) destroy(link)
        },
        slow: (ms) => {
          delayMs = Math.max(0, ms)
          pumpAll()
        },
        close: () =>
          new Promise<void>((done) => {
            closed = true
            for (const timer of timers) clearTimeout(timer)
            timers.clear()
            for (const link of [...links]) destroy(link)
            server.close(() => done())
          })
      })
    })
  })
}

/** The proxy as a scoped resource: closed with the scope. */
export const tcpProxy = (targetPort: number, targetHost = "127.0.0.1"): Effect.Effect<TcpProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startTcpProxy(targetPort, targetHost)),
    (proxy) => Effect.promise(() => proxy.close())
  )
