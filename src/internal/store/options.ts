/**
 * The store kit: how every driver reads its options. One duration rule for every engine: in code a
 * `Duration.DurationInput`; from the environment seconds (rate-sync's unit, `"0.5"`) or a duration
 * string (`"50 millis"`), as `core/config/duration.ts` reads them (the `RATE_SYNC_STORES_<ID>_…`
 * overrides of `rate-sync.toml` follow the same rule).
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import { err, ok } from "../result.js"
import { envDurationMs } from "../../core/config/duration.js"

/** A duration option in milliseconds, `fallback` when absent. @internal */
export const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/** An optional `Config`: `undefined` when the variable is not set. @internal */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/**
 * A duration from the environment: seconds (rate-sync's unit; `inf` for an infinite duration) or a
 * duration string (`"50 millis"`); never negative. @internal
 */
export const durationConfig = (name: string): Config.Config<Duration.Duration> =>
  Config.string(name).pipe(
    Config.mapOrFail((text) => {
      const ms = envDurationMs(text)
      return ms === undefined || Number.isNaN(ms) || ms < 0
        ? err(
          ConfigError.InvalidData([], `Expected seconds or a duration such as "500 millis", received ${JSON.stringify(text)}`)
        )
        : ok(ms === Infinity ? Duration.infinity : Duration.millis(ms))
    })
  )
