/**
 * The Effect 4 half of the per-major HTTP module: the same names as `src/fx/v3/http.ts`, with the
 * same meaning, answered with `effect/http` and `effect/http-api` (inside the `effect` package on
 * Effect 4.1; there is no `HttpApp` module, the router is a layer of registrations, and an
 * `HttpApiMiddleware.Service` wraps the handler). See that file for what this module is; each doc
 * comment names the Effect 3 and Effect 4 spelling.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as HttpEffect from "effect/http/HttpEffect"
import type * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServerRequest_ from "effect/http/HttpServerRequest"
import * as HttpServerResponse_ from "effect/http/HttpServerResponse"
import type * as HttpApiEndpoint from "effect/http-api/HttpApiEndpoint"
import type * as HttpApiGroup from "effect/http-api/HttpApiGroup"
import * as HttpApiMiddleware from "effect/http-api/HttpApiMiddleware"
import type * as HttpApiSchema from "effect/http-api/HttpApiSchema"
import * as Schema from "effect/Schema"
import type * as Types from "effect/Types"
import { tooManyRequestsBody, unavailableBody } from "../../core/http/headers.js"
import * as Fx from "./core.js"

/**
 * The server request module (Effect 3 `@effect/platform/HttpServerRequest`, Effect 4
 * `effect/http/HttpServerRequest`): `HttpServerRequest.HttpServerRequest` is the tag and the type. @internal
 */
export * as HttpServerRequest from "effect/http/HttpServerRequest"

/**
 * The server response module (Effect 3 `@effect/platform/HttpServerResponse`, Effect 4
 * `effect/http/HttpServerResponse`). @internal
 */
export * as HttpServerResponse from "effect/http/HttpServerResponse"

// ---------------------------------------------------------------------------------------------
// HTTP apps

/**
 * A handler of the current request: an effect answering a response and needing the request
 * (Effect 3 `HttpApp.Default<E, R>`; Effect 4 has no such module, it is
 * `Effect<HttpServerResponse, E, R | HttpServerRequest>`, the same structure). @internal
 */
export type HttpApp<E = never, R = never> = Effect.Effect<
  HttpServerResponse_.HttpServerResponse,
  E,
  R | HttpServerRequest_.HttpServerRequest
>

/**
 * The services a router gives its handlers (Effect 3 `HttpRouter.HttpRouter.Provided`, Effect 4
 * `HttpRouter.Provided`). @internal
 */
export type RouterProvided = HttpRouter.Provided

/**
 * A function run on the response just before it is sent (Effect 3 `HttpApp.PreResponseHandler`,
 * Effect 4 `HttpEffect.PreResponseHandler`), narrowed to handlers that cannot fail. @internal
 */
export type PreResponseHandler = (
  request: HttpServerRequest_.HttpServerRequest,
  response: HttpServerResponse_.HttpServerResponse
) => Effect.Effect<HttpServerResponse_.HttpServerResponse>

/**
 * Registers `handler` to run on the response of the current request, whatever answers it (the
 * app, a refusal, an encoded error) (Effect 3 `HttpApp.appendPreResponseHandler`, Effect 4
 * `HttpEffect.appendPreResponseHandler`). @internal
 */
export const appendPreResponseHandler = (
  handler: PreResponseHandler
): Effect.Effect<void, never, HttpServerRequest_.HttpServerRequest> => HttpEffect.appendPreResponseHandler(handler)

// ---------------------------------------------------------------------------------------------
// responses

/**
 * A JSON response of a value known to serialise (Effect 3 `HttpServerResponse.unsafeJson`,
 * Effect 4 `HttpServerResponse.jsonUnsafe`). @internal
 */
export const jsonResponse = (
  body: unknown,
  options: {
    readonly status: number
    readonly contentType: string
    readonly headers?: Readonly<Record<string, string>> | undefined
  }
): HttpServerResponse_.HttpServerResponse =>
  HttpServerResponse_.jsonUnsafe(
    body,
    options.headers === undefined
      ? { status: options.status, contentType: options.contentType }
      : { status: options.status, contentType: options.contentType, headers: options.headers }
  )

/** The response with these headers set, replacing any of the same name (same on both majors). @internal */
export const setHeaders = (
  response: HttpServerResponse_.HttpServerResponse,
  headers: Readonly<Record<string, string>>
): HttpServerResponse_.HttpServerResponse => HttpServerResponse_.setHeaders(response, headers)

/**
 * Whether a value is a server response (Effect 3 `HttpServerResponse.isServerResponse`, Effect 4
 * `HttpServerResponse.isHttpServerResponse`). @internal
 */
export const isResponse = (u: unknown): u is HttpServerResponse_.HttpServerResponse =>
  HttpServerResponse_.isHttpServerResponse(u)

// ---------------------------------------------------------------------------------------------
// HttpApi errors

/**
 * The annotations of an `HttpApi` error answered with `status` as `application/problem+json`
 * (Effect 3 `HttpApiSchema.annotations({ status })` plus `HttpApiSchema.AnnotationEncoding`;
 * Effect 4 `httpApiStatus` plus `~httpApiEncoding`). The encoding is the annotation
 * `HttpApiSchema.asJson({ contentType })` writes: `asJson` itself answers a rebuilt schema, not
 * the class, so it is set on the class here, where every endpoint that declares the error sees it.
 */
const problemJson = (status: number) => {
  const encoding: HttpApiSchema.ResponseEncoding = { _tag: "Json", contentType: "application/problem+json" }
  return { httpApiStatus: status, "~httpApiEncoding": encoding }
}

/**
 * The 429 refusal, as an `HttpApi` error (status 429, `application/problem+json`; the body is the
 * error's fields and its `_tag`). `retryAfter` is in whole seconds, at least 1. Declared with
 * `Schema.TaggedError` on both majors, annotated per major (see `problemJson`). @internal
 */
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>(
  "effect-rate-sync/HttpRateLimit/TooManyRequests"
)("TooManyRequests", {
  type: Schema.String,
  title: Schema.String,
  status: Fx.literals(429),
  detail: Schema.String,
  "violated-policies": Schema.Array(Schema.String),
  limiter: Schema.String,
  retryAfter: Schema.Number
}, problemJson(429)) {
  /**
   * Builds the error for the limiter waited for, a retry time in seconds and the policies that
   * refused (default: the limiter's).
   */
  static of(limiter: string, retryAfter: number, violatedPolicies?: ReadonlyArray<string>): TooManyRequests {
    return new TooManyRequests(tooManyRequestsBody(limiter, retryAfter, violatedPolicies))
  }
}

/**
 * The 503 answered when the store fails and `failOpen` is `false` (status 503,
 * `application/problem+json`). Generic on purpose: no store error text, URL or key layout. @internal
 */
export class RateLimitUnavailable extends Schema.TaggedError<RateLimitUnavailable>(
  "effect-rate-sync/HttpRateLimit/RateLimitUnavailable"
)("RateLimitUnavailable", {
  type: Schema.String,
  title: Schema.String,
  status: Fx.literals(503),
  detail: Schema.String
}, problemJson(503)) {
  /**
   * The one instance's fields.
   */
  static of(): RateLimitUnavailable {
    return new RateLimitUnavailable(unavailableBody)
  }
}

/**
 * The failure schema of a rate-limit `HttpApiMiddleware`, each member with its own status: the
 * form its declaration takes (Effect 3 `Schema.Union(TooManyRequests, RateLimitUnavailable)` for
 * `HttpApiMiddleware.Tag`'s `failure`; Effect 4 the array `[TooManyRequests, RateLimitUnavailable]`
 * for `HttpApiMiddleware.Service`'s `error`, since a union schema there answers one status). @internal
 */
export const HttpApiFailure: readonly [typeof TooManyRequests, typeof RateLimitUnavailable] = [
  TooManyRequests,
  RateLimitUnavailable
]

// ---------------------------------------------------------------------------------------------
// HttpApi middleware

/**
 * What a rate-limit `HttpApiMiddleware` is implemented by, for a check failing with `E`
 * (Effect 3 `HttpApiMiddleware.Tag`'s service: an `Effect<void, E, HttpRouter.Provided>` run before
 * the handler; Effect 4 `HttpApiMiddleware.Service`'s: a function of the handler's effect
 * answering the response, `(httpEffect, { endpoint, group }) => Effect<HttpServerResponse, unhandled | E,
 * HttpRouter.Provided>`). @internal
 */
export type HttpApiMiddlewareOf<E> = (
  httpEffect: Effect.Effect<HttpServerResponse_.HttpServerResponse, Types.unhandled>,
  options: { readonly endpoint: HttpApiEndpoint.Top; readonly group: HttpApiGroup.Top }
) => Effect.Effect<HttpServerResponse_.HttpServerResponse, Types.unhandled | E, RouterProvided>

/**
 * The middleware of a check that runs before the handler: it fails the request with its error
 * or lets the handler answer (Effect 3: the check itself; Effect 4: a wrapper that runs the check,
 * then the handler). Headers the check registers with {@link appendPreResponseHandler} land on
 * whatever response `HttpApi` sends, the encoded error's included: `HttpApi` encodes a
 * middleware's failure outside the wrapper, so the wrapper cannot set them on it. @internal
 */
export const httpApiMiddleware = <E>(
  check: Effect.Effect<void, E, HttpServerRequest_.HttpServerRequest>
): HttpApiMiddlewareOf<E> =>
(httpEffect) =>
  // a generator: a ternary of `Effect.fail` and `httpEffect` does not infer against `unhandled`
  Effect.gen(function*() {
    yield* check
    return yield* httpEffect
  })

/**
 * A ready `HttpApiMiddleware` tag failing with {@link HttpApiFailure} (Effect 3
 * `HttpApiMiddleware.Tag<Self>()(id, { failure })`, Effect 4
 * `HttpApiMiddleware.Service<Self>()(id, { error })`). @internal
 */
export class HttpApiRateLimit extends HttpApiMiddleware.Service<HttpApiRateLimit>()(
  "effect-rate-sync/HttpRateLimit/HttpApiRateLimit",
  { error: HttpApiFailure }
) {}
