/**
 * The Effect 4 run's toolchain: `effect`, `@effect/vitest` and `vitest` come from
 * packages/effect4/node_modules, one instance each (see packages/effect4/vitest.config.ts), and
 * no module of the root's Effect 3 toolchain is loaded.
 */
import * as Vitest from "@effect/vitest"
import * as Effect from "effect/Effect"
import { expect, it } from "vitest"

/** A module file of the Effect 4 toolchain, imported by Node itself. */
const nativeImport = (path: string): Promise<unknown> =>
  import(new URL(`../../../packages/effect4/node_modules/${path}`, import.meta.url).href)

it("effect is the Effect 4 toolchain's, one instance", async () => {
  expect(await nativeImport("effect/dist/Effect.js")).toBe(Effect)
  expect(typeof Effect.forkChild).toBe("function")
})

it("vitest is the Effect 4 toolchain's, one instance, also under @effect/vitest", async () => {
  expect(await nativeImport("vitest/dist/index.js")).toHaveProperty("expect", expect)
  expect(Vitest.expect).toBe(expect)
})
