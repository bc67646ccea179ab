/**
 * The body of a rate worker of the multi-process accuracy tests (see `accuracy.ts`), for a store
 * layer of its own: given `<fibers> <durationMs> <ratePerSecond> <burst>` after the store's
 * arguments, it warms up for 0.5 s on a limiter of its own, prints "ready", waits for
 * "go <startAtEpochMs>" on stdin, then runs the fibers on the rate limiter until startAt + duration,
 * and prints one JSON line: { admitted, refused, first, last }.
 */
import { Clock, Duration, Effect, Layer } from "effect"
import { RateLimiter, type RateLimitStore } from "effect-rate-sync"
import * as readline from "node:readline"
import * as T from "#test/effect"

/** Argument `i` of this process (after the script), or a thrown error naming it. */
export const argOf = (args: ReadonlyArray<string>) => (i: number): string => {
  const value = args[i]
  if (value === undefined) throw new Error(`missing argument ${i}`)
  return value
}

/** The start instant the test sends on stdin as `go <epochMs>`. */
export const waitForGo = (): Promise<number> =>
  new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin })
    rl.on("line", (line) => {
      const [word, at] = line.trim().split(" ")
      if (word === "go") {
        rl.close()
        resolve(Number(at))
      }
    })
  })

interface Tally {
  admitted: number
  refused: number
  /** Milliseconds from the start to the first admission, and from the last one to the end. */
  first: number
  last: number
}

/**
 * Runs the rate worker on `store` with `rest` = `[rateId, fibers, durationMs, ratePerSecond, burst]`,
 * then exits the process.
 */
export const runRateWorker = <E>(store: Layer.Layer<RateLimitStore.RateLimitStore, E>, rest: ReadonlyArray<string>): void => {
  const arg = argOf(rest)
  const rateId = arg(0)
  const fibers = Number(arg(1))
  const durationMs = Number(arg(2))
  const ratePerSecond = Number(arg(3))
  const burst = Number(arg(4))
  /** `fibers` fibers on the rate limiter until `deadline`. */
  const run = (rate: string, deadline: number) =>
    Effect.gen(function*() {
      const start = deadline - durationMs
      const tally: Tally = { admitted: 0, refused: 0, first: Infinity, last: Infinity }
      const rateFiber = Effect.gen(function*() {
        while (true) {
          const left = deadline - (yield* Clock.currentTimeMillis)
          if (left <= 0) return
          const result = yield* T.result(Effect.scoped(RateLimiter.acquire(rate, { timeout: Duration.millis(left) })))
          if (T.isOk(result)) {
            if (T.valueOf(result).failedOpen) return yield* Effect.die(new Error("store failed"))
            // counted when it proceeds within the window (GCRA bounds the instants callers proceed at)
            const at = yield* Clock.currentTimeMillis
            if (at > deadline) return
            tally.admitted++
            tally.first = Math.min(tally.first, at - start)
            tally.last = Math.min(tally.last, deadline - at)
          } else {
            const error = T.errOf(result)
            if (error._tag !== "RateLimitExceeded") return yield* Effect.die(error)
            tally.refused++
            const retry = Duration.toMillis(error.retryAfter)
            const now = yield* Clock.currentTimeMillis
            if (now + retry > deadline) return
            yield* Effect.sleep(Duration.millis(Math.max(1, retry)))
          }
        }
      })
      yield* Effect.all(Array.from({ length: fibers }, () => rateFiber), { concurrency: "unbounded", discard: true })
      return tally
    })
  const program = Effect.gen(function*() {
    yield* RateLimiter.initializeAll
    // warm-up on a limiter of its own: the measured run must not start with a cold process
    yield* run(`${rateId}-warm-up`, (yield* Clock.currentTimeMillis) + 500)
    process.stdout.write("ready\n")
    const startAt = yield* Effect.promise(waitForGo)
    yield* Effect.sleep(Duration.millis(Math.max(0, startAt - (yield* Clock.currentTimeMillis))))
    const tally = yield* run(rateId, startAt + durationMs)
    process.stdout.write(`${JSON.stringify(tally)}\n`)
  })
  const Live = RateLimiter.layer({
    [rateId]: { ratePerSecond, burst },
    [`${rateId}-warm-up`]: { ratePerSecond, burst }
  }).pipe(Layer.provide(store))
  Effect.runPromise(program.pipe(Effect.provide(Live))).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`worker failed: ${String(e)}\n`)
      process.exit(1)
    }
  )
}
