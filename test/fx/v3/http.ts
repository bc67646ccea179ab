/**
 * The Effect 3 half of the per-major HTTP test helpers (`#test/http`): an HTTP app run as a web
 * handler in the test's own runtime (so its limiter and its TestClock are the test's), a real
 * Node server for an app, and the responses the tests build. Its twin is `test/fx/v4/http.ts`
 * (Effect 3 `@effect/platform` + `@effect/platform-node` 0.108, Effect 4 `effect/http` +
 * `@effect/platform-node` 4).
 */
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApp_ from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { HttpApp } from "#fx/http"

export { HttpServerRequest, HttpServerResponse } from "#fx/http"

/**
 * The socket peer of a web request. A web handler has no socket, so the tests put the peer in
 * this header and {@link webHandler} (outside the middleware under test) moves it to
 * `remoteAddress`, as a server would.
 */
export const PEER_HEADER = "x-test-peer"

/** What a web handler answered. */
export interface WebResponse {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
}

/** Sends one request to a web handler (peer 198.51.100.1 unless the headers say). */
export type Send = (
  path: string,
  init?: { readonly headers?: Record<string, string>; readonly method?: string }
) => Effect.Effect<WebResponse>

const withPeer = <E, R>(app: HttpApp<E, R>): HttpApp<E, R> =>
  Effect.updateService(app, HttpServerRequest.HttpServerRequest, (request) => {
    const peer = request.headers[PEER_HEADER]
    return peer === undefined ? request : request.modify({ remoteAddress: peer })
  })

/** A web handler as a {@link Send}. */
export const sendTo = (handler: (request: Request) => Promise<Response>): Send => (path, init) =>
  Effect.promise(async () => {
    const response = await handler(
      new Request(`http://localhost${path}`, {
        method: init?.method ?? "GET",
        headers: { [PEER_HEADER]: "198.51.100.1", ...init?.headers }
      })
    )
    const headers: Record<string, string> = {}
    response.headers.forEach((value, name) => {
      headers[name] = value
    })
    return { status: response.status, headers, body: await response.text() }
  })

/**
 * Runs `app` as a web handler in the current context (Effect 3 `HttpApp.toWebHandlerRuntime` of
 * `Effect.runtime()`, Effect 4 `HttpEffect.toWebHandlerWith` of `Effect.context()`) and answers
 * a function that sends one request.
 */
export const webHandler = <E, R>(app: HttpApp<E, R | Scope.Scope>): Effect.Effect<Send, never, R> =>
  Effect.map(Effect.runtime<R>(), (runtime) => sendTo(HttpApp_.toWebHandlerRuntime(runtime)(withPeer(app))))

/** A JSON response (Effect 3 `HttpServerResponse.unsafeJson`, Effect 4 `HttpServerResponse.jsonUnsafe`). */
export const json = (
  body: unknown,
  options: { readonly status?: number; readonly headers?: Readonly<Record<string, string>> } = {}
): HttpServerResponse.HttpServerResponse => HttpServerResponse.unsafeJson(body, options)

/** `app` served by a real Node HTTP server on 127.0.0.1, on a free port (see {@link baseUrl}). */
export const serve = <E, R>(app: HttpApp<E, R>) =>
  HttpServer.serve(app).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))

/** The served app's URL, `http://127.0.0.1:<port>`. */
export const baseUrl: Effect.Effect<string, never, HttpServer.HttpServer> = HttpServer.addressFormattedWith((address) =>
  Effect.succeed(address)
)
