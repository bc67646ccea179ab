/**
 * The Effect side of the HTTP answers: rate-limit headers added to the app's response, the 429
 * and 503 responses, and the middleware that interprets an {@link Outcome}. The header text and
 * the bodies are built in `core/http/headers.ts`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fx from "#fx/core"
import { appendPreResponseHandler, type HttpApp, HttpServerRequest, type HttpServerResponse, jsonResponse, setHeaders } from "#fx/http"
import {
  type HeadersMode,
  policyWindow,
  rateHeaders,
  type RateNumbers,
  refusalHeaders,
  retryAfterSeconds,
  tooManyRequestsBody,
  unavailableBody
} from "../../core/http/headers.js"
import type { ConfigError } from "../../RateLimitError.js"
import type * as RateLimiter from "../../RateLimiter.js"
import type { RefusalHandler } from "../../HttpRateLimit.js"
import type { Compiled } from "./compile.js"

/**
 * Adds the decision's headers to the response the app answers, after the headers of any limiter
 * that ran before (see `rateHeaders`).
 *
 * @internal
 */
export const addHeaders = (
  decision: RateLimiter.Decision,
  mode: HeadersMode,
  policy: string
): Effect.Effect<void, never, HttpServerRequest.HttpServerRequest> =>
  mode === "none" ? Effect.void : appendPreResponseHandler((_request, response) =>
    Effect.succeed(
      setHeaders(
        response,
        rateHeaders(decision, policyWindow(decision.spec), mode, policy, (name) => response.headers[name])
      )
    ))

/**
 * The headers of a refusal (rate-limit headers and `Retry-After`).
 *
 * @internal
 */
export const refusalHeadersOf = (
  decision: RateLimiter.Decision,
  retryAfter: number,
  mode: HeadersMode,
  policy: string
): Record<string, string> => refusalHeaders(decision, policyWindow(decision.spec), mode, policy, retryAfter)

/**
 * The headers the middleware sends for a decision: the rate-limit headers of an allowed request
 * (after those `existing` reads), or those of a refusal with `Retry-After`.
 *
 * @internal
 */
export const decisionHeaders = (
  decision: RateLimiter.Decision,
  mode: HeadersMode,
  policy: string,
  existing?: (name: string) => string | undefined
): Record<string, string> =>
  decision.allowed
    ? rateHeaders(decision, policyWindow(decision.spec), mode, policy, existing)
    : refusalHeadersOf(decision, retryAfterSeconds(decision.retryAfterMs), mode, policy)

/**
 * The 429 of a refusal: the problem body and {@link refusalHeaders}, from plain numbers.
 *
 * @internal
 */
export const tooManyRequestsResponse = (
  limiter: string,
  numbers: RateNumbers,
  window: number | undefined,
  retryAfter: number,
  mode: HeadersMode,
  policy: string
): HttpServerResponse.HttpServerResponse =>
  jsonResponse(tooManyRequestsBody(limiter, retryAfter), {
    status: 429,
    contentType: "application/problem+json",
    headers: refusalHeaders(numbers, window, mode, policy, retryAfter)
  })

const refusalResponse = (
  limiter: string,
  decision: RateLimiter.Decision,
  retryAfter: number,
  mode: HeadersMode,
  policy: string
): HttpServerResponse.HttpServerResponse =>
  tooManyRequestsResponse(limiter, decision, policyWindow(decision.spec), retryAfter, mode, policy)

const unavailableResponse: HttpServerResponse.HttpServerResponse = jsonResponse(unavailableBody, {
  status: 503,
  contentType: "application/problem+json"
})

type Refuse = (
  decision: RateLimiter.Decision,
  retryAfter: number,
  request: HttpServerRequest.HttpServerRequest
) => Effect.Effect<HttpServerResponse.HttpServerResponse>

/**
 * How a refusal is answered, chosen once: the default 429, or the custom handler's response with
 * the refusal headers it did not set itself.
 */
const refusalOf = (
  limiter: string,
  mode: HeadersMode,
  policy: string,
  onRefused: RefusalHandler | undefined
): Refuse => {
  if (onRefused === undefined) {
    return (decision, retryAfter) => Effect.succeed(refusalResponse(limiter, decision, retryAfter, mode, policy))
  }
  return (decision, retryAfter, request) =>
    Effect.map(onRefused(decision, request), (response) => {
      const missing: Record<string, string> = {}
      for (const [name, value] of Object.entries(refusalHeadersOf(decision, retryAfter, mode, policy))) {
        if (response.headers[name] === undefined) missing[name] = value
      }
      return setHeaders(response, missing)
    })
}

/**
 * The middleware of a compiled configuration: a refusal or a 503 answers without the app; an
 * invalid configuration makes every request die with its `ConfigError`.
 *
 * @internal
 */
export const wrap = <EK, RK, EC, RC>(compiled: Fx.Result<Compiled<EK, RK, EC, RC>, ConfigError>) =>
<E, R>(
  httpApp: HttpApp<E, R>
): HttpApp<E | EK | EC, R | RK | RC | RateLimiter.RateLimiter> => {
  if (Fx.isErr(compiled)) return Effect.die(Fx.errOf(compiled))
  const { decide, headers, limiter, onRefused, policy } = Fx.valueOf(compiled)
  const refuse = refusalOf(limiter, headers, policy, onRefused)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.flatMap(decide(request), (outcome) => {
      switch (outcome._tag) {
        case "Pass":
          return httpApp
        case "Allowed":
          return Effect.andThen(addHeaders(outcome.decision, headers, policy), httpApp)
        case "Refused":
          return refuse(outcome.decision, outcome.retryAfter, request)
        case "Unavailable":
          return Effect.succeed(unavailableResponse)
      }
    }))
}
