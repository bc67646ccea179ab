/**
 * The store kit: how every driver reads its options. One duration rule for every engine: in code a
 * `Duration.DurationInput`; from the environment seconds (rate-sync's unit, `"0.5"`) or a duration
 * string (`"50 millis"`).
 *
 * @internal
 */
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

/** A duration option in milliseconds, `fallback` when absent. @internal */
export const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/** An optional `Config`: `undefined` when the variable is not set. @internal */
export const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

/** A duration from the environment: seconds (rate-sync's unit) or a duration string (`"50 millis"`). @internal */
export const durationConfig = (name: string): Config.Config<Duration.Duration> =>
  Config.orElse(
    Config.map(Config.number(name), (seconds) => Duration.millis(seconds * 1000)),
    () => Config.duration(name)
  )
