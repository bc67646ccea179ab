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
  type RateItem,
  rateHeaders,
  refusalHeaders,
  tooManyRequestsBody,
  unavailableBody
} from "../../core/http/headers.js"
import type { ConfigError } from "../../RateLimitError.js"
import type { RefusalHandler } from "../../HttpRateLimit.js"
import type * as RateLimiter from "../../RateLimiter.js"
import type { Compiled, Outcome } from "./compile.js"

/**
 * Adds the items' headers to the response the app answers, after the headers of any limiter
 * that ran before (see `rateHeaders`).
 *
 * @internal
 */
export const addHeaders = (
  items: ReadonlyArray<RateItem>,
  mode: HeadersMode
): Effect.Effect<void, never, HttpServerRequest.HttpServerRequest> =>
  mode === "none" ? Effect.void : appendPreResponseHandler((_request, response) =>
    Effect.succeed(setHeaders(response, rateHeaders(items, mode, (name) => response.headers[name]))))

/**
 * The 429 of a refusal: the problem body and {@link refusalHeaders}.
 *
 * @internal
 */
export const tooManyRequestsResponse = (
  limiter: string,
  items: ReadonlyArray<RateItem>,
  violated: ReadonlyArray<string>,
  retryAfter: number,
  mode: HeadersMode
): HttpServerResponse.HttpServerResponse =>
  jsonResponse(tooManyRequestsBody(limiter, retryAfter, violated), {
    status: 429,
    contentType: "application/problem+json",
    headers: refusalHeaders(items, mode, retryAfter)
  })

const unavailableResponse: HttpServerResponse.HttpServerResponse = jsonResponse(unavailableBody, {
  status: 503,
  contentType: "application/problem+json"
})

type Refused = Extract<Outcome, { readonly _tag: "Refused" }>

type Refuse = (
  refused: Refused,
  request: HttpServerRequest.HttpServerRequest
) => Effect.Effect<HttpServerResponse.HttpServerResponse>

/**
 * How a refusal is answered, chosen once: the default 429, or the custom handler's response with
 * the refusal headers it did not set itself.
 */
const refusalOf = (mode: HeadersMode, onRefused: RefusalHandler | undefined): Refuse => {
  if (onRefused === undefined) {
    return (r) =>
      Effect.succeed(tooManyRequestsResponse(r.decision.limiterId, r.items, r.violated, r.retryAfter, mode))
  }
  return (r, request) =>
    Effect.map(onRefused(r.decision, request, r.combined), (response) => {
      const missing: Record<string, string> = {}
      for (const [name, value] of Object.entries(refusalHeaders(r.items, mode, r.retryAfter))) {
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
  const { decide, headers, onRefused } = Fx.valueOf(compiled)
  const refuse = refusalOf(headers, onRefused)
  return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.flatMap(decide(request), (outcome) => {
      switch (outcome._tag) {
        case "Pass":
          return httpApp
        case "Allowed":
          return Effect.andThen(addHeaders(outcome.items, headers), httpApp)
        case "Refused":
          return refuse(outcome, request)
        case "Unavailable":
          return Effect.succeed(unavailableResponse)
      }
    }))
}
