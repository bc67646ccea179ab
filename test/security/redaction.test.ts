/**
 * No form of a secret leaves a store in an error: impostor servers (tiny `node:net` servers on
 * 127.0.0.1) echo the credentials the client sent back in their refusal, raw, percent-encoded and
 * JSON-escaped, and `StoreError.message` and `Cause.pretty` of the failure must hold none of them.
 * And a store URL with a bad `%` escape is a `ConfigError` naming the field, on every engine, from
 * a file and from code, instead of a `URIError` defect or a misleading connection failure.
 */
import { assert, describe, it } from "#test/vitest"
import { Cause, Effect, Exit, Option, Redacted } from "effect"
import { RateSyncConfig } from "effect-rate-sync"
import { NatsStore } from "effect-rate-sync/nats"
import { PostgresStore } from "effect-rate-sync/postgres"
import { RedisStore } from "effect-rate-sync/redis"
import { randomUUID } from "node:crypto"
import * as net from "node:net"
import { afterAll, beforeAll } from "vitest"
import * as T from "#test/effect"

// ---------------------------------------------------------------------------------------------
// secrets and what may not appear

/** A random marker in every secret: no 8 characters of it in a row may survive. */
const marker = () => randomUUID().replace(/-/g, "")

const json = (s: string): string => JSON.stringify(s).slice(1, -1)

const userinfoEncoded = (s: string): string => {
  const url = new URL("x://h")
  url.password = s
  return url.password
}

/** Every form of `secret` a message could hold. */
const forms = (secret: string): ReadonlyArray<string> => [
  secret,
  encodeURIComponent(secret),
  userinfoEncoded(secret),
  json(secret),
  json(encodeURIComponent(secret)),
  json(userinfoEncoded(secret))
]

const assertClean = (text: string, secret: string, mark: string, what: string): void => {
  for (const form of forms(secret)) assert.notInclude(text, form, `${what} holds a form of the secret: ${text}`)
  for (let i = 0; i + 8 <= mark.length; i++) {
    assert.notInclude(text, mark.slice(i, i + 8), `${what} holds a piece of the secret: ${text}`)
  }
}

/** Runs a store build that must fail; answers the failure and `Cause.pretty` of it. */
const failure = <E extends { readonly message: string }>(build: Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(build)
    if (Exit.isSuccess(exit)) return assert.fail("the build succeeded")
    const error = T.causeFailure(exit.cause)
    if (Option.isNone(error)) return assert.fail(`not a failure: ${Cause.pretty(exit.cause)}`)
    return { error: error.value, pretty: Cause.pretty(exit.cause) }
  })

// ---------------------------------------------------------------------------------------------
// impostor servers

interface Impostor {
  readonly port: number
  readonly close: () => Promise<void>
}

const listen = (onSocket: (socket: net.Socket) => void): Promise<Impostor> =>
  new Promise((resolve, reject) => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => socket.destroy())
      onSocket(socket)
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      if (address === null || typeof address === "string") return reject(new Error("no port"))
      resolve({
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
      })
    })
  })

/** What the impostors echo of a secret they received: every form, and URL-ish text around it. */
const echo = (secret: string): string =>
  `raw <${secret}> encoded <${encodeURIComponent(secret)}> json <${JSON.stringify(secret)}> ` +
  `json-encoded <${JSON.stringify(encodeURIComponent(secret))}> ` +
  `url <postgres://u:${encodeURIComponent(secret)}@127.0.0.1/test?password=${encodeURIComponent(secret)}>`

/**
 * PostgreSQL: answers the startup message with AuthenticationCleartextPassword, reads the
 * PasswordMessage and refuses it with an ErrorResponse whose message echoes the password.
 */
const fakePostgres = () =>
  listen((socket) => {
    let buffer = Buffer.alloc(0)
    let started = false
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        if (!started) {
          if (buffer.length < 8) return
          const length = buffer.readInt32BE(0)
          if (buffer.length < length) return
          const code = buffer.readInt32BE(4)
          buffer = buffer.subarray(length)
          // SSLRequest: no TLS here
          if (code === 80877103) {
            socket.write("N")
            continue
          }
          started = true
          socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]))
          continue
        }
        if (buffer.length < 5) return
        const type = buffer[0]
        const length = buffer.readInt32BE(1)
        if (buffer.length < 1 + length) return
        const body = buffer.subarray(5, 1 + length)
        buffer = buffer.subarray(1 + length)
        if (type !== 0x70) continue
        const password = body.subarray(0, body.indexOf(0)).toString("utf8")
        const field = (code: string, value: string) => Buffer.concat([Buffer.from(code), Buffer.from(value), Buffer.from([0])])
        const fields = Buffer.concat([
          field("S", "FATAL"),
          field("V", "FATAL"),
          field("C", "28P01"),
          field("M", `password authentication failed for user "u": ${echo(password)}`),
          Buffer.from([0])
        ])
        const header = Buffer.alloc(5)
        header[0] = 0x45
        header.writeInt32BE(4 + fields.length, 1)
        socket.end(Buffer.concat([header, fields]))
        return
      }
    })
  })

/**
 * NATS: asks for authentication, then refuses the client's CONNECT line by quoting it whole. The
 * refusal starts with "Authorization Violation" (as the real server's does): nats.js fails the
 * connect with any other `-ERR` text only after retrying until the connect timeout, without it.
 */
const fakeNats = () =>
  listen((socket) => {
    socket.write(`INFO {"server_id":"x","version":"2.10.0","auth_required":true,"max_payload":1048576}\r\n`)
    let text = ""
    socket.on("data", (chunk) => {
      text += chunk.toString("utf8")
      const end = text.indexOf("\r\n")
      if (end < 0) return
      socket.end(`-ERR 'Authorization Violation: ${text.slice(0, end)}'\r\n`)
    })
  })

/** Redis: refuses AUTH with an error that echoes its arguments (any other command: +OK). */
const fakeRedis = () =>
  listen((socket) => {
    let buffer = ""
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8")
      for (;;) {
        // one RESP array of bulk strings: *<n>\r\n($<len>\r\n<arg>\r\n)*
        const match = /^\*(\d+)\r\n/.exec(buffer)
        if (match === null) return
        let at = match[0].length
        const args: Array<string> = []
        for (let i = 0; i < Number(match[1]); i++) {
          const bulk = /^\$(\d+)\r\n/.exec(buffer.slice(at))
          if (bulk === null) return
          const start = at + bulk[0].length
          const arg = buffer.slice(start, start + Number(bulk[1]))
          if (buffer.length < start + Number(bulk[1]) + 2) return
          args.push(arg)
          at = start + Number(bulk[1]) + 2
        }
        buffer = buffer.slice(at)
        const [command, ...rest] = args
        if (command?.toUpperCase() === "AUTH") {
          socket.write(`-ERR wrong credentials ${rest.map(echo).join(" ; ")}\r\n`)
        } else {
          socket.write("+OK\r\n")
        }
      }
    })
  })

let pg: Impostor | undefined
let nats: Impostor | undefined
let redis: Impostor | undefined

beforeAll(async () => {
  ;[pg, nats, redis] = await Promise.all([fakePostgres(), fakeNats(), fakeRedis()])
})

afterAll(async () => {
  await Promise.all([pg?.close(), nats?.close(), redis?.close()])
})

const portOf = (impostor: Impostor | undefined): number => {
  if (impostor === undefined) throw new Error("the impostor server did not start")
  return impostor.port
}

// ---------------------------------------------------------------------------------------------
// echoed secrets

describe("an impostor PostgreSQL server echoing the password", () => {
  const cases: ReadonlyArray<readonly [string, (secret: string, port: number) => string]> = [
    ["given as ?password=", (secret, port) => `postgres://u@127.0.0.1:${port}/test?password=${encodeURIComponent(secret)}`],
    ["given as the URL userinfo", (secret, port) => `postgres://u:${encodeURIComponent(secret)}@127.0.0.1:${port}/test`]
  ]
  for (const [name, urlOf] of cases) {
    it.live(`${name}: neither the StoreError nor Cause.pretty holds any form of it`, () =>
      Effect.gen(function*() {
        const mark = marker()
        const secret = `Pw"\\ @%:/?&#+${mark}`
        const { error, pretty } = yield* failure(
          Effect.scoped(PostgresStore.fromDefinition({ engine: "postgres", url: Redacted.make(urlOf(secret, portOf(pg))) }))
        )
        assert.strictEqual(error._tag, "StoreError")
        // the refusal did arrive (so its echo was scrubbed, not missing)
        assert.include(error.message, "password authentication failed")
        assertClean(error.message, secret, mark, "StoreError.message")
        assertClean(pretty, secret, mark, "Cause.pretty")
      }))
  }
})

describe("an impostor NATS server quoting the whole CONNECT line", () => {
  const token = (mark: string) => `t"o\\k\\"en-${mark}`
  /** [name, options, what the scrubbed CONNECT line shows of the credentials sent] */
  const cases: ReadonlyArray<readonly [string, (mark: string, port: number) => NatsStore.NatsStoreOptions, string]> = [
    [
      "a token option",
      (mark, port) => ({ url: Redacted.make(`nats://127.0.0.1:${port}`), token: Redacted.make(token(mark)) }),
      `"auth_token":"***"`
    ],
    [
      "a token as the URL user",
      (mark, port) => ({ servers: [Redacted.make(`nats://${encodeURIComponent(token(mark))}@127.0.0.1:${port}`)] }),
      `"auth_token":"***"`
    ],
    [
      "a user and password in the URL",
      (mark, port) => ({ url: Redacted.make(`nats://app:${encodeURIComponent(token(mark))}@127.0.0.1:${port}`) }),
      `"user":"app","pass":"***"`
    ]
  ]
  for (const [name, optionsOf, sent] of cases) {
    it.live(`${name} holding " and \\: neither the StoreError nor Cause.pretty holds any form of it`, () =>
      Effect.gen(function*() {
        const mark = marker()
        const { error, pretty } = yield* failure(
          Effect.scoped(NatsStore.make({ ...optionsOf(mark, portOf(nats)), connectTimeout: "3 seconds" }))
        )
        assert.strictEqual(error._tag, "StoreError")
        // the CONNECT line came back with the credentials in it (sent, and their echo scrubbed)
        assert.include(error.message, "CONNECT")
        assert.include(error.message, sent)
        assertClean(error.message, token(mark), mark, "StoreError.message")
        assertClean(pretty, token(mark), mark, "Cause.pretty")
      }))
  }
})

describe("an impostor Redis server echoing the AUTH arguments", () => {
  const cases: ReadonlyArray<readonly [string, (secret: string, port: number) => RedisStore.RedisStoreOptions]> = [
    ["a password option", (secret, port) => ({ url: Redacted.make(`redis://127.0.0.1:${port}`), password: Redacted.make(secret) })],
    ["the URL userinfo", (secret, port) => ({ url: Redacted.make(`redis://:${encodeURIComponent(secret)}@127.0.0.1:${port}`) })],
    ["?password=", (secret, port) => ({ url: Redacted.make(`redis://127.0.0.1:${port}/?password=${encodeURIComponent(secret)}`) })]
  ]
  for (const [name, optionsOf] of cases) {
    it.live(`${name}: neither the StoreError nor Cause.pretty holds any form of it`, () =>
      Effect.gen(function*() {
        const mark = marker()
        const secret = `Pw"\\ @%:/+${mark}`
        const { error, pretty } = yield* failure(
          Effect.scoped(RedisStore.make({ ...optionsOf(secret, portOf(redis)), socketConnectTimeout: "3 seconds" }))
        )
        assert.strictEqual(error._tag, "StoreError")
        assert.include(error.message, "wrong credentials")
        assertClean(error.message, secret, mark, "StoreError.message")
        assertClean(pretty, secret, mark, "Cause.pretty")
      }))
  }
})

// ---------------------------------------------------------------------------------------------
// bad % escapes

const BAD = "100%zz-S3CRET"

describe("a URL with a bad % escape is a ConfigError naming the field", () => {
  const files: ReadonlyArray<readonly [string, string, string]> = [
    ["redis", `redis://:${BAD}@127.0.0.1:6379`, "redis://:***@127.0.0.1:6379 (a bad % escape in the password)"],
    ["redis", `redis://127.0.0.1:6379/?password=${BAD}`, "redis://127.0.0.1:6379/?password=*** (a bad % escape in the query)"],
    ["postgres", `postgres://u:${BAD}@127.0.0.1:5432/test`, "postgres://u:***@127.0.0.1:5432/test (a bad % escape in the password)"],
    ["nats", `nats://127.0.0.1:4222,nats://${BAD}@127.0.0.1:4222`, "nats://***@127.0.0.1:4222 (a bad % escape in the user name)"]
  ]

  it.effect("from rate-sync.toml (stores.main.url), showing the URL with its secrets as ***", () =>
    Effect.gen(function*() {
      for (const [engine, url, received] of files) {
        const error = yield* Effect.flip(RateSyncConfig.parse(`[stores.main]\nengine = "${engine}"\nurl = "${url}"\n`, "test.toml"))
        assert.strictEqual(error._tag, "ConfigError", url)
        assert.strictEqual(error.path, "stores.main.url", url)
        assert.strictEqual(error.received, received)
        assert.notInclude(error.message, "S3CRET")
      }
    }))

  it.effect("from a definition written in code (stores.main.url)", () =>
    Effect.gen(function*() {
      for (const [engine, url, received] of files) {
        const definition = { engine, url: Redacted.make(url) }
        const result = RateSyncConfig.decodeStoreDefinition("main", definition)
        if (T.isOk(result)) return assert.fail(`accepted ${url}`)
        assert.strictEqual(T.errOf(result).path, "stores.main.url")
        assert.strictEqual(T.errOf(result).received, received)
      }
    }))

  it.live("Redis: RedisStore.make({ url }) fails with a ConfigError at url (was a URIError defect)", () =>
    Effect.gen(function*() {
      const { error, pretty } = yield* failure(Effect.scoped(RedisStore.make({ url: Redacted.make(`redis://:${BAD}@127.0.0.1:6379`) })))
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag !== "ConfigError") return
      assert.strictEqual(error.path, "url")
      assert.strictEqual(error.received, "redis://:***@127.0.0.1:6379 (a bad % escape in the password)")
      assert.notInclude(pretty, "S3CRET")
    }))

  it.live("NATS: NatsStore.make({ servers }) fails with a ConfigError at servers[1] (was a connection failure)", () =>
    Effect.gen(function*() {
      const { error, pretty } = yield* failure(
        Effect.scoped(NatsStore.make({
          servers: [Redacted.make("nats://127.0.0.1:4222"), Redacted.make(`nats://u:${BAD}@127.0.0.1:4222`)],
          connectTimeout: "2 seconds"
        }))
      )
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag !== "ConfigError") return
      assert.strictEqual(error.path, "servers[1]")
      assert.strictEqual(error.received, "nats://u:***@127.0.0.1:4222 (a bad % escape in the password)")
      assert.notInclude(pretty, "S3CRET")
      const fromUrl = yield* failure(Effect.scoped(NatsStore.make({ url: Redacted.make(`${BAD}@127.0.0.1:4222`) })))
      assert.strictEqual(fromUrl.error._tag === "ConfigError" ? fromUrl.error.path : fromUrl.error._tag, "url")
    }))

  it.live("PostgreSQL: layerWithPgClient / fromDefinition fail with a ConfigError at url (pg read it its own way)", () =>
    Effect.gen(function*() {
      const url = Redacted.make(`postgres://postgres:${BAD}@127.0.0.1:5432/test`)
      const fromDefinition = yield* failure(Effect.scoped(PostgresStore.fromDefinition({ engine: "postgres", url })))
      assert.strictEqual(fromDefinition.error._tag, "ConfigError")
      if (fromDefinition.error._tag !== "ConfigError") return
      assert.strictEqual(fromDefinition.error.path, "url")
      assert.strictEqual(fromDefinition.error.received, "postgres://postgres:***@127.0.0.1:5432/test (a bad % escape in the password)")
      assert.notInclude(fromDefinition.pretty, "S3CRET")
      const layer = yield* failure(Effect.scoped(Effect.asVoid(Effect.provide(Effect.void, PostgresStore.layerWithPgClient({ url })))))
      assert.strictEqual(layer.error._tag === "ConfigError" ? layer.error.path : layer.error._tag, "url")
    }))
})
