/**
 * The Effect 3 half of the per-major HTTP module: the HTTP names the shared code needs whose module,
 * spelling or shape differs between `@effect/platform` 0.97 (Effect 3.22) and `effect/http` +
 * `effect/http-api` (Effect 4.1), answered with `@effect/platform`. Its twin is `src/fx/v4/http.ts`;
 * the two export the same names with the same meaning, and each doc comment says both spellings.
 * Shared code imports these from `#fx/http`.
 *
 * It also holds the whole `HttpApi` part whose shape differs: the `HttpApi` errors (status and
 * `application/problem+json` annotations), the failure schema, the middleware tag and how a
 * pre-handler check becomes that tag's service. On Effect 3 an `HttpApiMiddleware` is an effect that
 * runs before the handler; on Effect 4 it is a function wrapping the handler.
 *
 * @internal
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp_ from "@effect/platform/HttpApp"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServerRequest_ from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse_ from "@effect/platform/HttpServerResponse"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { tooManyRequestsBody, unavailableBody } from "../../core/http/headers.js"
import * as Fx from "./core.js"

/**
 * The server request module (Effect 3 `@effect/platform/HttpServerRequest`, Effect 4
 * `effect/http/HttpServerRequest`): `HttpServerRequest.HttpServerRequest` is the tag and the type. @internal
 */
export * as HttpServerRequest from "@effect/platform/HttpServerRequest"

/**
 * The server response module (Effect 3 `@effect/platform/HttpServerResponse`, Effect 4
 * `effect/http/HttpServerResponse`). @internal
 */
export * as HttpServerResponse from "@effect/platform/HttpServerResponse"

// ---------------------------------------------------------------------------------------------
// HTTP apps

/**
 * A handler of the current request: an effect answering a response and needing the request
 * (Effect 3 `HttpApp.Default<E, R>`; Effect 4 has no such module, it is
 * `Effect<HttpServerResponse, E, R | HttpServerRequest>`, the same structure). @internal
 */
export type HttpApp<E = never, R = never> = HttpApp_.Default<E, R>

/**
 * The services a router gives its handlers (Effect 3 `HttpRouter.HttpRouter.Provided`, Effect 4
 * `HttpRouter.Provided`). @internal
 */
export type RouterProvided = HttpRouter.HttpRouter.Provided

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
): Effect.Effect<void, never, HttpServerRequest_.HttpServerRequest> => HttpApp_.appendPreResponseHandler(handler)

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
  HttpServerResponse_.unsafeJson(
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
  HttpServerResponse_.isServerResponse(u)

// ---------------------------------------------------------------------------------------------
// HttpApi errors

/**
 * The encoding annotation of an `HttpApi` error answered as `application/problem+json` (Effect 3
 * `HttpApiSchema.AnnotationEncoding`, Effect 4 `~httpApiEncoding`); the status is
 * `HttpApiSchema.annotations({ status })` here, `httpApiStatus` on Effect 4.
 */
const problemJson = {
  [HttpApiSchema.AnnotationEncoding]: { kind: "Json", contentType: "application/problem+json" }
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
}, { ...HttpApiSchema.annotations({ status: 429 }), ...problemJson }) {
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
}, { ...HttpApiSchema.annotations({ status: 503 }), ...problemJson }) {
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
export const HttpApiFailure = Fx.union2(TooManyRequests, RateLimitUnavailable)

// ---------------------------------------------------------------------------------------------
// HttpApi middleware

/**
 * What a rate-limit `HttpApiMiddleware` is implemented by, for a check failing with `E`
 * (Effect 3 `HttpApiMiddleware.Tag`'s service: an `Effect<void, E, HttpRouter.Provided>` run before
 * the handler; Effect 4 `HttpApiMiddleware.Service`'s: a function of the handler's effect
 * answering the response, `(httpEffect, { endpoint, group }) => Effect<HttpServerResponse, unhandled | E,
 * HttpRouter.Provided>`). @internal
 */
export type HttpApiMiddlewareOf<E> = Effect.Effect<void, E, RouterProvided>

/**
 * The middleware of a check that runs before the handler: it fails the request with its error
 * or lets the handler answer (Effect 3: the check itself; Effect 4: a wrapper that runs the check,
 * then the handler). Headers the check registers with {@link appendPreResponseHandler} land on
 * whatever response `HttpApi` sends, the encoded error's included. @internal
 */
export const httpApiMiddleware = <E>(
  check: Effect.Effect<void, E, HttpServerRequest_.HttpServerRequest>
): HttpApiMiddlewareOf<E> => check

/**
 * A ready `HttpApiMiddleware` tag failing with {@link HttpApiFailure} (Effect 3
 * `HttpApiMiddleware.Tag<Self>()(id, { failure })`, Effect 4
 * `HttpApiMiddleware.Service<Self>()(id, { error })`). @internal
 */
export class HttpApiRateLimit extends HttpApiMiddleware.Tag<HttpApiRateLimit>()(
  "effect-rate-sync/HttpRateLimit/HttpApiRateLimit",
  { failure: HttpApiFailure }
) {}
