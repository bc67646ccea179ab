/**
 * The store kit: the timing margin. A store that decides with one clock and answers a caller who
 * waits on another (the server's decision, the caller's wake-up after a network trip) pads what
 * it answers by `timingMarginMs`, so the caller comes back no earlier than the store meant.
 *
 * ONE rule for every engine and every operation: each non-zero wait the store answers (a rate
 * decision's `delayMs` and `retryAfterMs`, a refused slot's `retryAfterMs`) gets the margin; zero
 * stays zero (an admission now is not delayed) and `Infinity` stays `Infinity` (never is never).
 * Redis and PostgreSQL apply it (their decisions are on the server's clock).
 *
 * NATS KV has no server-side clock: each instance decides on its own, so there `timingMarginMs`
 * is the clock-skew allowance between instances, applied inside the decide step to instants
 * another instance wrote (`core/nats/decide.ts`), not to the waits answered.
 *
 * @internal
 */

/** `ms` padded by `marginMs` when it is a wait (non-zero); 0 and `Infinity` as they are. @internal */
export const withMargin = (ms: number, marginMs: number): number => ms === 0 ? 0 : ms + marginMs
