/**
 * The Effect 3 half of `#test/metricContext`: a metric context other than the default one, carried
 * by a layer, for tests that check where a metric update lands when a runtime is built from that
 * layer (the promise facade's `useLayer`). Effect 3 keeps one global metric registry; what a
 * layer can change is the labels every contextual update (`Metric.update`, `Metric.value`) adds:
 * here `metric_context=<name>`, set by `Effect.tagMetricsScoped`. Effect 4 provides a
 * `Metric.MetricRegistry` of its own instead (test/fx/v4/metricContext.ts).
 */
import { Effect, Layer } from "effect"

export interface MetricContext {
  /** Merged into a runtime's layer: its contextual metric updates go to this context. */
  readonly layer: Layer.Layer<never>
  /** Runs `effect` (a `Metric.value` read, say) in this metric context. */
  readonly within: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
}

export const metricContext = (name: string): MetricContext => ({
  layer: Layer.scopedDiscard(Effect.tagMetricsScoped("metric_context", name)),
  within: (effect) => Effect.tagMetrics(effect, "metric_context", name)
})
