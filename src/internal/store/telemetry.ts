/**
 * The store kit: a span per store operation, as a child of the caller's span when there is one.
 * No span is started for an untraced caller: it is not free on the hot path.
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"

/** OpenTelemetry's database-system attribute. @internal */
export const ATTR_DB_SYSTEM_NAME = "db.system.name"
/** The limiter an operation decides for. @internal */
export const ATTR_LIMITER = "rate_sync.limiter"

/**
 * `traced(operation, limiter, effect)` for one engine: the span `RateLimitStore.<engine>.<operation>`
 * (kind client) with the database system (OpenTelemetry's name for it, `system`, by default the
 * engine's) and the limiter as attributes.
 *
 * @internal
 */
export const tracer = (engine: string, system: string = engine) =>
<A, E>(operation: string, limiter: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Fx.contextWithEffect((context: Context.Context<never>) =>
    Context.getOption(context, Tracer.ParentSpan)._tag === "None"
      ? effect
      : Effect.withSpan(effect, `RateLimitStore.${engine}.${operation}`, {
        kind: "client",
        captureStackTrace: false,
        attributes: { [ATTR_DB_SYSTEM_NAME]: system, [ATTR_LIMITER]: limiter }
      })
  )
