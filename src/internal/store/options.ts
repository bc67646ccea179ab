/**
 * The store kit: how every driver reads its options. One duration rule for every engine: in code a
 * `Fx.DurationInput` (Effect 3 `Duration.DurationInput`, Effect 4 `Duration.Input`, a negative one
 * read as 0); from the environment seconds (rate-sync's unit, `"0.5"`) or a duration string
 * (`"50 millis"`), as `core/config/duration.ts` reads them (the `RATE_SYNC_STORES_<ID>_…`
 * overrides of `rate-sync.toml` follow the same rule).
 *
 * @internal
 */
import * as Fx from "#fx/core"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import { err, ok } from "../result.js"
import { envDurationMs } from "../../core/config/duration.js"

/** A duration option in milliseconds, `fallback` when absent. @internal */
export const toMillis = (input: Fx.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Fx.decodeDuration(input))

/** An optional `Config`: `undefined` when the variable is not set. @internal */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * A duration from the environment: seconds (rate-sync's unit; `inf` for an infinite duration) or a
 * duration string (`"50 millis"`); never negative. Anything else is Effect's invalid-data
 * configuration error naming the variable (`Fx.configStringChecked`). @internal
 */
export const durationConfig = (name: string): Config.Config<Duration.Duration> =>
  Fx.configStringChecked(name, (text: string) => {
    const ms = envDurationMs(text)
    return ms === undefined || Number.isNaN(ms) || ms < 0
      ? err(`Expected seconds or a duration such as "500 millis", received ${JSON.stringify(text)}`)
      : ok(ms === Infinity ? Duration.infinity : Duration.millis(ms))
  })
