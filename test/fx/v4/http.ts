/**
 * The Effect 4 half of the per-major HTTP test helpers (`#test/http`): the same names as
 * `test/fx/v3/http.ts`, with the same meaning, on `effect/http` and `@effect/platform-node` 4.
 */
import { createServer } from "node:http"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as HttpEffect from "effect/http/HttpEffect"
import * as HttpServer from "effect/http/HttpServer"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { HttpApp } from "#fx/http"

export { HttpServerRequest, HttpServerResponse } from "#fx/http"

/** The socket peer of a web request, moved to `remoteAddress` by {@link webHandler}. */
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
    return peer === undefined ? request : request.modify({ remoteAddress: Option.some(peer) })
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

/** Runs `app` as a web handler in the current context and answers a function that sends one request. */
export const webHandler = <E, R>(app: HttpApp<E, R | Scope.Scope>): Effect.Effect<Send, never, R> =>
  Effect.map(Effect.context<R>(), (context) => {
    const handler = HttpEffect.toWebHandlerWith<R, R | Scope.Scope | HttpServerRequest.HttpServerRequest, never>(context)(
      withPeer(app)
    )
    return sendTo((request) => handler(request))
  })

/** A JSON response. */
export const json = (
  body: unknown,
  options: { readonly status?: number; readonly headers?: Readonly<Record<string, string>> } = {}
): HttpServerResponse.HttpServerResponse => HttpServerResponse.jsonUnsafe(body, options)

/** `app` served by a real Node HTTP server on 127.0.0.1, on a free port (see {@link baseUrl}). */
export const serve = <E, R>(app: HttpApp<E, R>) =>
  HttpServer.serve(app).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })))

/** The served app's URL, `http://127.0.0.1:<port>`. */
export const baseUrl: Effect.Effect<string, never, HttpServer.HttpServer> = HttpServer.addressFormattedWith((address) =>
  Effect.succeed(address)
)
