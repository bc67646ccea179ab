/**
 * The Effect 3 half of the store drivers' per-major names (Redis, NATS): what they need beyond
 * `src/fx/v3/core.ts`. Its twin is `src/fx/v4/driver.ts`; the two export the same names with the
 * same meaning. Shared code imports them from `#fx/driver`.
 *
 * @internal
 */
import type * as Config from "effect/Config"

/**
 * A `Config` of `A`, or a record of `Config`s for each field of `A` (Effect 3
 * `Config.Config.Wrap<A>`, Effect 4 `Config.Wrap<A>`). @internal
 */
export type ConfigWrap<A> = Config.Config.Wrap<A>
