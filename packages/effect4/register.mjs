/**
 * Runs the repository's TypeScript on Effect 4 without a build: `node --import tsx --import
 * ./packages/effect4/register.mjs file.ts` (what `npm run demo:effect4` and
 * `npm run example:http:effect4` do, on this folder's Node 24). It resolves `effect`, `effect/*`
 * and `@effect/*` imported from the repository's own files as if imported from this folder (its
 * node_modules holds effect 4.1; the root's holds Effect 3), and `#fx/*` to `src/fx/v4/*.ts`.
 * The same resolution as packages/effect4/vitest.config.ts gives the Effect 4 test run.
 */
import { register } from "node:module"

register("./resolve.mjs", import.meta.url)
