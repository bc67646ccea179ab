/**
 * The Effect 4 half of `#test/web`: an Effect HTTP app as a web handler (`Request` in, `Response`
 * out), for tests that compare another server's answers with the Effect middleware's. Its twin is
 * `test/fx/v3/web.ts` (Effect 3 `HttpApp.toWebHandler` from `@effect/platform`, Effect 4
 * `HttpEffect.toWebHandler` from `effect/http`).
 */
import type * as Effect from "effect/Effect"
import * as HttpEffect from "effect/http/HttpEffect"
import type * as Scope from "effect/Scope"
import type { HttpServerRequest, HttpServerResponse } from "#fx/http"

/** `app` as a web handler, pre-response handlers applied (Effect 3 `HttpApp.toWebHandler`, Effect 4 `HttpEffect.toWebHandler`). */
export const toWebHandler = <E>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, HttpServerRequest.HttpServerRequest | Scope.Scope>
): (request: Request) => Promise<Response> => {
  const handler = HttpEffect.toWebHandler(app)
  return (request) => handler(request)
}
