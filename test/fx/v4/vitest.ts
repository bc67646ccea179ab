/**
 * The Effect 4 half of the per-major test API (`#test/vitest`): `@effect/vitest` 4 with the surface
 * of Effect 3's `@effect/vitest` 0.30 that the tests use (see test/fx/v3/vitest.ts for the list):
 *
 * - `it.scoped` is `it.effect` and `it.scopedLive` is `it.live`: on Effect 4 both already run in a
 *   Scope (`it.effect` with the TestClock and TestConsole, `it.live` on the live services).
 * - `prop` (on `it`, its testers, and a `layer`'s `it`) runs fast-check arbitraries with
 *   `{ fastCheck: fc.Parameters }`, as on Effect 3: Effect 4's own `prop` takes Schemas and
 *   `effect/Arbitrary` values instead. An effectful property's runs each get a fresh Scope (and,
 *   under `it.effect`/`it.scoped`, a fresh TestClock and TestConsole), as on Effect 3.
 * - `layer(l, options)` passes its tests an `it` with `scoped` and the fast-check `prop` too.
 */
import * as V from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import * as TestConsole from "effect/testing/TestConsole"
import * as fc from "fast-check"
import type * as Vi from "vitest"

export * from "@effect/vitest"

/** fast-check arbitraries, as a tuple or a record. */
export type Arbitraries = ReadonlyArray<fc.Arbitrary<unknown>> | { readonly [K in string]: fc.Arbitrary<unknown> }

/** The values drawn from `Arbs`. */
export type Values<Arbs extends Arbitraries> = { -readonly [K in keyof Arbs]: Arbs[K] extends fc.Arbitrary<infer T> ? T : never }

/** A test's timeout or options, and the fast-check run parameters of a property. */
export type PropOptions = number | (Vi.TestOptions & { readonly fastCheck?: fc.Parameters<unknown> })

/** A synchronous property test: the property fails when `self` returns `false` or throws. */
export type Prop = <const Arbs extends Arbitraries>(
  name: string,
  arbitraries: Arbs,
  self: (properties: Values<Arbs>, ctx: Vi.TestContext) => unknown,
  timeout?: PropOptions
) => void

/** An effectful property test: the property fails when `self` fails, dies or succeeds with `false`. */
export type EffectProp<R> = <const Arbs extends Arbitraries, A, E>(
  name: string,
  arbitraries: Arbs,
  self: (properties: Values<Arbs>, ctx: Vi.TestContext) => Effect.Effect<A, E, R>,
  timeout?: PropOptions
) => void

/** An Effect test kind (`it.effect`, `it.scoped`, `it.live`, `it.scopedLive`) with the fast-check `prop`. */
export type Tester<R> = V.Vitest.Test<R> & Omit<V.Vitest.Tester<R>, "prop"> & { readonly prop: EffectProp<R> }

/** A `layer`: tests in its callback share the layer's services. */
export interface LayerApi<R> {
  <R2, E>(
    layer: Layer.Layer<R2, E, R>,
    options?: {
      readonly concurrent?: boolean
      readonly memoMap?: Layer.MemoMap
      readonly timeout?: Duration.Input
      readonly excludeTestServices?: boolean
    }
  ): {
    (f: (it: MethodsNonLive<R | R2>) => void): void
    (name: string, f: (it: MethodsNonLive<R | R2>) => void): void
  }
}

/** The `it` of a `layer`'s tests. */
export type MethodsNonLive<R = never> =
  & Omit<V.Vitest.MethodsNonLive<R>, "effect" | "prop" | "layer" | "scoped">
  & Vi.TestAPI
  & {
    readonly effect: Tester<R | Scope.Scope>
    readonly scoped: Tester<R | Scope.Scope>
    readonly prop: Prop
    readonly layer: LayerApi<R>
  }

/** The test API. */
export type Methods<R = never> = MethodsNonLive<R> & {
  readonly live: Tester<R | Scope.Scope>
  readonly scopedLive: Tester<R | Scope.Scope>
}

const isTuple = (arbitraries: Arbitraries): arbitraries is ReadonlyArray<fc.Arbitrary<unknown>> => Array.isArray(arbitraries)

const arbitraryOf = (arbitraries: Arbitraries): fc.Arbitrary<unknown> =>
  isTuple(arbitraries) ? fc.tuple(...arbitraries) : fc.record(arbitraries)

const splitOptions = (timeout: PropOptions | undefined): readonly [Vi.TestOptions, fc.Parameters<unknown> | undefined] => {
  if (timeout === undefined) return [{}, undefined]
  if (typeof timeout === "number") return [{ timeout }, undefined]
  const { fastCheck, ...options } = timeout
  return [options, fastCheck]
}

// typed boundary: fast-check draws a tuple or record of the arbitraries' values, which is `Values<Arbs>`
const valuesOf = <Arbs extends Arbitraries>(_arbitraries: Arbs, drawn: unknown): Values<Arbs> => drawn as Values<Arbs>

const makeProp = (test: Vi.TestAPI): Prop => (name, arbitraries, self, timeout) => {
  const [options, parameters] = splitOptions(timeout)
  const arbitrary = arbitraryOf(arbitraries)
  test(name, options, (ctx) => {
    fc.assert(fc.property(arbitrary, (drawn) => self(valuesOf(arbitraries, drawn), ctx) !== false), parameters)
  })
}

/** The test environment of one run of an `it.effect` property (what `it.effect` gives a test). */
const TestEnv = Layer.mergeAll(TestConsole.layer, TestClock.layer())

/**
 * `tester` with the fast-check `prop`: one test of `tester`'s kind whose property runs each run in
 * the test's services, with a Scope of its own, through `perRun` (a fresh test environment).
 */
const withProp = <R>(
  tester: V.Vitest.Tester<R>,
  perRun: <A, E>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
): Tester<R> => {
  const prop: EffectProp<R> = (name, arbitraries, self, timeout) => {
    const [options, parameters] = splitOptions(timeout)
    const arbitrary = arbitraryOf(arbitraries)
    tester(name, (ctx) =>
      Effect.flatMap(Effect.context<R>(), (context) =>
        Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(arbitrary, (drawn) =>
              Effect.runPromise(
                perRun(Effect.suspend(() => self(valuesOf(arbitraries, drawn), ctx))).pipe(
                  Effect.map((a) => a !== false),
                  Effect.provide(context)
                )
              )),
            parameters
          )
        )), options)
  }
  const test: V.Vitest.Test<R> = (name, self, timeout) => tester(name, self, timeout)
  return Object.assign(test, tester, { prop })
}

const scopedRun = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  // the run's own Scope (a scoped effect needs one; `R` then no longer holds Scope)
  Effect.scoped(effect)

const withOverrides = <T extends object>(target: T, overrides: Readonly<Record<PropertyKey, unknown>>): T =>
  new Proxy(target, {
    get: (t, property, receiver) =>
      Object.hasOwn(overrides, property) ? overrides[property] : Reflect.get(t, property, receiver)
  })

const wrapLayer = <R>(layer: V.Vitest.MethodsNonLive<R>["layer"]): LayerApi<R> =>
  ((l, options) => {
    const register = layer(l, options)
    return (...args: [(it: MethodsNonLive) => void] | [string, (it: MethodsNonLive) => void]) =>
      args.length === 1
        ? register((it) => args[0](nonLive(it)))
        : register(args[0], (it) => args[1](nonLive(it)))
  }) as LayerApi<R> // typed boundary: the same layer, its callback handed the extended `it`

const nonLive = <R>(it: V.Vitest.MethodsNonLive<R>): MethodsNonLive<R> => {
  const effect = withProp<R | Scope.Scope>(it.effect, scopedRun)
  // typed boundary: the proxy answers the overridden members with the types MethodsNonLive gives them
  return withOverrides(it, { effect, scoped: effect, prop: makeProp(it), layer: wrapLayer(it.layer) }) as unknown as MethodsNonLive<R>
}

const effect = withProp<Scope.Scope>(V.it.effect, <A, E, R>(self: Effect.Effect<A, E, R>) =>
  // typed boundary: the fresh TestEnv replaces the test's TestClock and TestConsole, which R may hold
  Effect.provide(Effect.scoped(self), TestEnv) as Effect.Effect<A, E, R>)
const live = withProp<Scope.Scope>(V.it.live, scopedRun)

/** The test API: `@effect/vitest`'s `it` with `scoped`, `scopedLive` and the fast-check `prop`. */
export const it: Methods = withOverrides(V.it, {
  effect,
  scoped: effect,
  live,
  scopedLive: live,
  prop: makeProp(V.it),
  layer: wrapLayer(V.it.layer)
}) as unknown as Methods // typed boundary: as in nonLive

/** Tests sharing a layer's services (`@effect/vitest`'s `layer`, its tests' `it` as in {@link it}). */
export const layer: LayerApi<never> = wrapLayer(V.layer)
