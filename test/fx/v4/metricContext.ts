/**
 * The Effect 4 half of `#test/metricContext`: a metric context other than the default one, carried
 * by a layer, for tests that check where a metric update lands when a runtime is built from that
 * layer (the promise facade's `useLayer`): a fresh `Metric.MetricRegistry` (a `Context.Reference`
 * whose default is the registry everything else uses). Effect 3 has one global registry and adds a
 * label instead (test/fx/v3/metricContext.ts).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"

export interface MetricContext {
  /** Merged into a runtime's layer: its contextual metric updates go to this context. */
  readonly layer: Layer.Layer<never>
  /** Runs `effect` (a `Metric.value` read, say) in this metric context. */
  readonly within: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
}

export const metricContext = (_name: string): MetricContext => {
  const registry: Metric.MetricRegistry = new Map()
  return {
    layer: Layer.succeed(Metric.MetricRegistry, registry),
    within: (effect) => Effect.provideService(effect, Metric.MetricRegistry, registry)
  }
}
