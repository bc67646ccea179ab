/**
 * Which store failures the request caused (`StoreError.kind === "rejected"`, never a fail-open
 * admission) and which mean the store is unavailable, on Redis and NATS: the classifiers on their
 * own, then the real servers on loopback (PostgreSQL: test/postgres/errors.test.ts).
 */
import { assert, describe, it } from "#test/vitest"
import { Effect, Redacted } from "effect"
import { NatsStore } from "effect-rate-sync/nats"
import { RedisStore } from "effect-rate-sync/redis"
import { ReplyError } from "ioredis"
import { natsErrorKind, redisErrorKind } from "../../src/core/errorKind.js"
import { describeWhenUp, requireService } from "../utils/services.js"
import * as T from "#test/effect"

const redisUp = await requireService("Redis", "127.0.0.1", 6379)
const natsUp = await requireService("NATS", "127.0.0.1", 4222)

describe("redisErrorKind", () => {
  it("an error reply about the request is rejected", () => {
    for (
      const message of [
        "ERR value is not an integer or out of range",
        "ERR user_script:12: Script attempted to access nonexistent global variable 'x'",
        "ERR Error running script (call to f_0123): @user_script:1: bad argument",
        "WRONGTYPE Operation against a key holding the wrong kind of value",
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
      ]
    ) assert.strictEqual(redisErrorKind(new ReplyError(message)), "rejected", message)
  })

  it("the server or the link being unavailable is unavailable", () => {
    for (
      const message of [
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script",
        "MASTERDOWN Link with MASTER is down",
        "CLUSTERDOWN The cluster is down",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "OOM command not allowed when used memory > 'maxmemory'",
        "READONLY You can't write against a read only replica",
        "NOAUTH Authentication required",
        "ERR max number of clients reached"
      ]
    ) assert.strictEqual(redisErrorKind(new ReplyError(message)), "unavailable", message)
    // not an error reply: the connection, a timeout
    assert.strictEqual(redisErrorKind(new Error("connect ECONNREFUSED 127.0.0.1:1")), "unavailable")
    assert.strictEqual(redisErrorKind(new Error("ERR value is not an integer or out of range")), "unavailable")
  })
})

describe("natsErrorKind", () => {
  it("a request the client or server refuses is rejected; the rest unavailable", () => {
    assert.strictEqual(natsErrorKind(new Error("invalid key: a b")), "rejected")
    assert.strictEqual(natsErrorKind(new Error("'payload' max_payload size exceeded")), "rejected")
    for (const message of ["TIMEOUT", "CONNECTION_CLOSED", "connection draining", "stream not found", "no responders"]) {
      assert.strictEqual(natsErrorKind(new Error(message)), "unavailable", message)
    }
  })
})

describeWhenUp(redisUp)("the real Redis server", () => {
  it.scopedLive("a request the server cannot compute is a rejected StoreError; a server that is down, unavailable", () =>
    Effect.gen(function*() {
      const store = yield* RedisStore.make({ url: Redacted.make("redis://127.0.0.1:6379"), keyPrefix: `rs-test-${crypto.randomUUID()}` })
      // a rate the limiter would refuse at configuration (burst / rate beyond any time Redis counts in)
      const refused = yield* T.result(
        store.tokenBucket({ limiter: "tiny", key: "k", ratePerSecond: 1e-300, burst: 1, cost: 1, maxWaitMs: 0 })
      )
      const rejected = T.getErr(refused)
      assert.strictEqual(rejected.kind, "rejected", rejected.message)
      const down = T.getErr(yield* T.result(
        RedisStore.make({ url: Redacted.make("redis://127.0.0.1:1"), commandTimeout: "300 millis", socketConnectTimeout: "300 millis" })
      ))
      if (down._tag === "StoreError") assert.strictEqual(down.kind, "unavailable")
    }))
})

describeWhenUp(natsUp)("the real NATS server", () => {
  it.scopedLive("a server that does not answer in time is unavailable", () =>
    Effect.gen(function*() {
      const down = T.getErr(yield* T.result(NatsStore.make({ url: Redacted.make("nats://127.0.0.1:1"), connectTimeout: "300 millis" })))
      if (down._tag === "StoreError") assert.strictEqual(down.kind, "unavailable")
    }))
})
