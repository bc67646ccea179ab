/**
 * The Effect 4 half of the store drivers' per-major names: the same names as
 * `src/fx/v3/driver.ts`, with the same meaning, answered with Effect 4.1's API.
 *
 * @internal
 */
import type * as Config from "effect/Config"

/** A `Config` of `A`, or a record of `Config`s for each field of `A`. @internal */
export type ConfigWrap<A> = Config.Wrap<A>
