/**
 * The two examples of docs/limiters.md ("an LLM client with requests and tokens per minute", "a
 * login route with per-IP and global limits"), as written there (with stand-ins for the model and
 * the password check), run on the memory store with TestClock.
 */
import { assert, describe, it } from "#test/vitest"
import { Duration, Effect, Fiber, Layer } from "effect"
import { MemoryStore, RateLimiter } from "effect-rate-sync"
import * as T from "#test/effect"
import { TestClock } from "#test/effect"

// stand-ins
const estimateTokens = (prompt: string) => prompt.length * 100
let used = 0
interface Reply {
  readonly text: string
  readonly usage: { readonly totalTokens: number }
}
const callModel = (prompt: string): Effect.Effect<Reply, "model down"> =>
  prompt === "fail" ? Effect.fail("model down") : Effect.succeed({ text: "ok", usage: { totalTokens: used } })
interface Credentials {
  readonly user: string
  readonly password: string
}
const verify = (c: Credentials): Effect.Effect<string, "wrong password"> =>
  c.password === "right" ? Effect.succeed(c.user) : Effect.fail("wrong password")

describe("docs/limiters.md examples", () => {
  it.scoped("an LLM client with requests and tokens per minute", () => {
    // --- as in the docs ---
    const Live = RateLimiter.layer({
      rpm: { algorithm: "sliding_window", limit: 500, window: "1 minute" },
      tpm: { ratePerSecond: 2_000, burst: 120_000 } // 120k tokens a minute, refilled continuously
    }).pipe(Layer.provide(MemoryStore.layer()))

    const complete = (userId: string, prompt: string) =>
      Effect.scoped(Effect.gen(function*() {
        const estimate = estimateTokens(prompt)
        // one request and the estimate, for this user, as one unit; waits for the slower limit
        const permit = yield* RateLimiter.acquire(["rpm", { limiter: "tpm", cost: estimate }], {
          key: userId,
          timeout: "30 seconds"
        })
        const reply = yield* callModel(prompt).pipe(
          // the call failed: nothing was used
          Effect.tapError(() => permit.refund)
        )
        // the real count: charge the difference (more: a debt the user's next calls wait out; less: given back)
        yield* permit.adjust({ tpm: reply.usage.totalTokens - estimate })
        return reply
      }))
    // --- end ---

    return Effect.gen(function*() {
      const prompt = "x".repeat(400) // an estimate of 40 000 tokens
      used = 130_000
      yield* complete("u1", prompt)
      // 130 000 used of 120 000: 10 000 in debt; the next 40 000 come in 25 s (2000/s)
      const s = yield* RateLimiter.status("tpm", { key: "u1", cost: 40_000 })
      assert.deepStrictEqual([s.allowed, s.remaining, s.retryAfterMs], [false, 0, 25_000])
      used = 40_000
      const next = yield* T.fork(complete("u1", prompt))
      yield* TestClock.adjust("24999 millis")
      assert.isTrue((yield* T.poll(next))._tag === "None", "waiting out the debt")
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(next)
      // another user has a bucket of its own; a failed call gives its estimate back
      assert.strictEqual(yield* Effect.flip(complete("u2", "fail")), "model down")
      assert.strictEqual((yield* RateLimiter.status("tpm", { key: "u2" })).remaining, 120_000)
      assert.strictEqual((yield* RateLimiter.status("rpm", { key: "u1" })).remaining, 498)
    }).pipe(Effect.provide(Live))
  })

  it.scoped("a login route with per-IP and global limits", () => {
    // --- as in the docs ---
    const Live = RateLimiter.layer({
      "login-ip": { algorithm: "sliding_window", limit: 5, window: "15 minutes", failClosed: true },
      "login-global": { algorithm: "sliding_window", limit: 1_000, window: "1 minute", failClosed: true }
    }).pipe(Layer.provide(MemoryStore.layer()))

    // A failed attempt counts against both limits; a successful login gives its charge back.
    const login = (ip: string, credentials: Credentials) =>
      verify(credentials).pipe(
        RateLimiter.withRateLimit([{ limiter: "login-ip", key: ip }, "login-global"], { refundOn: "success", timeout: 0 })
      )

    // In a handler that answers 429 itself: which limit refused, and when to come back.
    const handle = (ip: string, credentials: Credentials) =>
      login(ip, credentials).pipe(
        Effect.catchTag("RateLimitExceeded", (e) =>
          Effect.succeed({
            status: 429,
            retryAfterSeconds: Math.ceil(Duration.toSeconds(e.retryAfter)),
            policies: e.violations.map((v) => v.limiterId)
          }))
      )
    // --- end ---

    return Effect.gen(function*() {
      const wrong = { user: "ann", password: "guess" }
      for (let i = 0; i < 5; i++) assert.strictEqual(yield* Effect.flip(handle("1.2.3.4", wrong)), "wrong password")
      assert.deepStrictEqual(yield* handle("1.2.3.4", wrong), { status: 429, retryAfterSeconds: 900, policies: ["login-ip"] })
      // the refused attempt spent nothing of the global budget; other IPs go on
      assert.strictEqual((yield* RateLimiter.status("login-global")).remaining, 995)
      assert.strictEqual(yield* handle("5.6.7.8", { user: "bob", password: "right" }), "bob")
      assert.strictEqual((yield* RateLimiter.status("login-global")).remaining, 995)
    }).pipe(Effect.provide(Live))
  })
})
