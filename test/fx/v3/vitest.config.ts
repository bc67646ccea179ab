/**
 * The Effect 3 test run (`npm run test:effect3`): the root `vitest.config.ts` (vitest 3 and the
 * root's Effect 3 toolchain) with the Effect 4 halves of the per-major test helpers left out:
 * `test/fx/v4/**` imports Effect 4 modules (`effect/http`, `effect/testing`, ...) and runs on the
 * Effect 4 run only (`packages/effect4/vitest.config.ts`). Vitest 3's `--exclude` flag does not reach
 * a project's own `exclude`, hence this file.
 */
import { defineConfig, type TestProjectConfiguration } from "vitest/config"
import base from "../../../vitest.config.js"

const effect4Only = ["test/fx/v4/**"]

const withoutEffect4 = (project: TestProjectConfiguration): TestProjectConfiguration =>
  typeof project === "object" && "test" in project && project.test !== undefined
    ? { ...project, test: { ...project.test, exclude: [...(project.test.exclude ?? []), ...effect4Only] } }
    : project

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    exclude: [...(base.test?.exclude ?? []), ...effect4Only],
    projects: (base.test?.projects ?? []).map(withoutEffect4)
  }
})
