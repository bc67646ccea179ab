import { Effect, MetricLabel } from "effect"
import * as Metrics from "../src/RateLimitMetrics.js"
const N = 500_000
const bench = async (name: string, eff: Effect.Effect<unknown, unknown, never>) => {
  await Effect.runPromise(eff)
  const t = performance.now(); await Effect.runPromise(eff); const dt = performance.now() - t
  console.log(name, (N / dt / 1000).toFixed(3), "M/s")
}
const tags = [MetricLabel.make("limiter", "x")]
const main = async () => {
  await bench("succeed", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.succeed(i) }))
  await bench("sync", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.sync(() => i) }))
  await bench("matchEffect(succeed)", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.matchEffect(Effect.succeed(i), { onFailure: Effect.fail, onSuccess: Effect.succeed }) }))
  await bench("flatMap(succeed)", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.flatMap(Effect.succeed(i), Effect.succeed) }))
  await bench("clockWith(succeed)", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.clockWith(() => Effect.succeed(i)) }))
  await bench("metric unsafeUpdate in sync", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.sync(() => Metrics.acquisitions.unsafeUpdate(1, tags)) }))
  await bench("suspend(succeed)", Effect.gen(function*() { for (let i = 0; i < N; i++) yield* Effect.suspend(() => Effect.succeed(i)) }))
}
main()
