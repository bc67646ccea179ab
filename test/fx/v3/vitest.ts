/**
 * The Effect 3 half of the per-major test API (`#test/vitest`): `@effect/vitest` 0.30 as it is.
 * Its twin `test/fx/v4/vitest.ts` gives Effect 4's `@effect/vitest` 4 the same surface:
 *
 * - `it.effect`: a test with the TestClock (and TestConsole); on Effect 4 it also runs in a Scope.
 * - `it.scoped`: `it.effect` in a Scope (Effect 4: `it.effect`, which is scoped there).
 * - `it.live`: a test on the live services; on Effect 4 it also runs in a Scope.
 * - `it.scopedLive`: `it.live` in a Scope (Effect 4: `it.live`).
 * - `it.prop` / `it.effect.prop` / `it.scoped.prop` / `it.live.prop`: property tests over
 *   fast-check arbitraries (`FastCheck` from `#test/effect`), options `{ fastCheck: { numRuns } }`
 *   (Effect 4's take Schemas and its own `effect/Arbitrary`; the Effect 4 half runs fast-check).
 * - `layer(l, options)((it) => …)`: tests sharing a layer, whose `it` has `effect`, `scoped`, `prop`.
 *
 * Everything else is vitest's (`describe`, `expect`, `beforeAll`, …) and `@effect/vitest`'s `assert`.
 */
export * from "@effect/vitest"
