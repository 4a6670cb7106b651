/**
 * The gateway: Coze's API served at the sidecar's root, so that an SDK's base URL is simply
 * `http://127.0.0.1:8080`. Each request passes the same access rules as `/token` (the caller
 * secret is the caller's bearer token), selects a token by the `X-Coze-*` headers or a base-URL
 * prefix, and goes to the selected credential's API base with that token in place of the
 * caller's `Authorization`. WebSockets go to the credential's WS base the same way.
 *
 * Registered in a scope of its own (it replaces the content-type parsers: bodies pass through as
 * bytes). `SIDECAR_GATEWAY=off` registers nothing.
 *
 * @example
 * app.register(gatewayPlugin, { env, describeValidation })
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import fastifyWebsocket from '@fastify/websocket'
import { pipeline } from 'node:stream'
import type { Caller } from '../access/callers.js'
import { callerTokenRequest } from '../access/guard.js'
import { admit } from '../access/rules.js'
import { viaUnixSocket } from '../listen.js'
import { gatewayErrors } from './errors.js'
import { registryCredentials, type CredentialResolver, type GatewayCredential } from './credentials.js'
import { droppedHeaders } from './headers.js'
import { forward, UploadLimit, type Tally, type Upstream } from './http.js'
import { GatewayMetrics } from './metrics.js'
import { forLog, parseTarget, type GatewayTarget } from './paths.js'
import { readSelection, relabel, selectionRequest, type DescribeValidation } from './selection.js'
import { gatewaySettings } from './settings.js'
import { bridgeWebSocket, openUpstreamSocket, type OpenedUpstream } from './websocket.js'
import type { TokenRequest } from '../coze/variants.js'

export interface GatewayPluginOptions {
  /** How a schema violation becomes a 400's field and message: the app's, as for `/token`. */
  describeValidation: DescribeValidation
  /** Where credentials come from. Default: the app's credential registry. */
  credentials?: CredentialResolver
}

interface GatewayState {
  tally: Tally
  target?: GatewayTarget
  /** The upstream WebSocket, opened before the caller's upgrade completes. */
  socket?: OpenedUpstream
  /** The caller's WebSocket handshake completed. */
  upgraded?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    gateway: GatewayState | null
  }
}

/** The first path segments the gateway answers for. */
const ROOTS = ['v1', 'v3', 'open_api', 'apps', 'accounts', 'enterprises', 'sessions']

export async function gatewayPlugin (scope: FastifyInstance, options: GatewayPluginOptions): Promise<void> {
  const config = scope.config
  const settings = gatewaySettings(config.settings)
  if (!settings.enabled) return
  const credentials = options.credentials ?? registryCredentials(scope.credentials, settings.wsBase)
  const metrics = new GatewayMetrics(scope.metrics.registry)
  const upstream: Upstream = {
    dispatcher: scope.cozeDispatcher,
    idleTimeoutMs: settings.idleTimeoutMs,
    deadlineMs: config.requestDeadlineMs,
    dropped: droppedHeaders(scope.access.requiredHeader?.name),
    metrics
  }

  // Bodies are bytes to pass on, never parsed: held (bounded) so that they can be replayed,
  // multipart streamed through (bounded) without replay.
  scope.removeAllContentTypeParsers()
  scope.addContentTypeParser(/^multipart\//i, (request, payload, done) => {
    if (Number(request.headers['content-length']) > settings.uploadLimit) {
      done(new gatewayErrors.UploadTooLarge(String(settings.uploadLimit)), undefined)
      return
    }
    const limited = new UploadLimit(settings.uploadLimit)
    pipeline(payload, limited, () => {})
    done(null, limited)
  })
  scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: settings.bodyLimit }, (_request, body, done) => done(null, body))

  // First, so that its hooks run before the access check: a refused handshake's socket is then
  // closed by it once the refusal is written.
  await scope.register(fastifyWebsocket, {
    options: { maxPayload: settings.bodyLimit },
    // A client that goes away mid-frame: nothing to report but the close.
    errorHandler: (_error, socket) => { socket.terminate() }
  })
  scope.decorateRequest('gateway', null)
  scope.addHook('onRequest', (request, reply, done) => {
    const state: GatewayState = { tally: { started: performance.now(), family: '', path: '', bytes: 0, replayed: false } }
    request.gateway = state
    // An upgraded request's response never finishes: its line is written when the socket closes.
    const ends = request.headers.upgrade === undefined ? reply.raw : request.raw.socket
    ends.once('close', () => logRequest(scope, request, reply, state, metrics))
    let problem: unknown
    try {
      state.target = parseTarget(request.url, request.method)
      state.tally.family = request.headers.upgrade === undefined ? state.target.family : 'ws'
      state.tally.path = state.target.path
    } catch (error) {
      problem = error
      state.tally.path = forLog(request.url)
    }
    // A browser's WebSocket cannot send headers: coze-js puts the credential in the query.
    const fromQuery = state.target?.authorization
    const headers = fromQuery !== undefined && request.headers.authorization === undefined && request.headers.upgrade !== undefined
      ? { ...request.headers, authorization: fromQuery }
      : request.headers
    const admitted = admit(headers, scope.access, { viaSocket: viaUnixSocket(request.raw.socket) })
    if (admitted instanceof Error) {
      if (admitted.statusCode === 401) scope.metrics.refused(undefined, 'secret')
      done(admitted)
      return
    }
    request.caller = admitted as Caller
    done(problem as Error | undefined)
  })

  /** The credential and token request this request selects; 400s name the caller's field. */
  const select = (request: FastifyRequest): { credential: GatewayCredential, tokenRequest: TokenRequest, target: GatewayTarget, state: GatewayState } => {
    const state = request.gateway as GatewayState
    const target = state.target as GatewayTarget
    const selection = readSelection(request.headers, target.prefix, options.describeValidation)
    // The caller's rights (SIDECAR_CALLERS_FILE) as on /token, with the Coze path as `path`.
    const { credential, tokenRequest } = callerTokenRequest(scope, request, request.caller as Caller, {
      ...selection.input, ...(selection.app === undefined ? {} : { app: selection.app })
    }, {
      select: (name) => {
        let view: GatewayCredential
        try {
          view = credentials.resolve(name)
        } catch (error) {
          throw relabel(error, selection)
        }
        state.tally.app = view.name
        return view
      },
      source: (view) => view.source,
      make: (view, input) => selectionRequest({ ...selection, input }, view.source)
    }, target.path)
    return { credential, tokenRequest, target, state }
  }

  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { credential, tokenRequest, target, state } = select(request)
    return forward(request, reply, { credential, tokenRequest, target, tally: state.tally }, upstream)
  }

  // Coze's API is Coze's to describe: the gateway's routes stay out of /openapi.json.
  const schema = { hide: true }
  for (const root of ROOTS) {
    scope.route({ method: ['DELETE', 'OPTIONS', 'PATCH', 'POST', 'PUT'], url: `/${root}/*`, schema, handler })
    scope.route({
      method: 'GET',
      url: `/${root}/*`,
      schema,
      // The upstream socket is opened before the caller's handshake completes, so that Coze's
      // refusal can still be an HTTP answer.
      preHandler: async (request) => {
        if (!request.ws) return
        const { credential, tokenRequest, target, state } = select(request)
        state.socket = await openUpstreamSocket(request, { credential, tokenRequest, target, tally: state.tally }, upstream)
      },
      handler,
      wsHandler: (socket, request) => {
        const state = request.gateway as GatewayState
        state.upgraded = true
        bridgeWebSocket(socket, state.socket as OpenedUpstream, upstream)
      }
    })
  }
}

/** One line per gateway request; never a query string, a token or a secret. */
function logRequest (scope: FastifyInstance, request: FastifyRequest, reply: FastifyReply, state: GatewayState, metrics: GatewayMetrics): void {
  const tally = state.tally
  // 499: the caller went away before the answer was complete (nginx's convention).
  const status = state.upgraded === true ? 101 : reply.raw.writableFinished ? reply.statusCode : 499
  const family = tally.family === '' ? 'none' : tally.family
  metrics.request(family, status, tally.cozeCode, tally.ttfbMs === undefined ? undefined : tally.ttfbMs / 1000)
  // LOG_LEVEL=warn turns the line off: then it is not even built.
  if (!(scope.log as Logger).isLevelEnabled('info')) return
  scope.log.info({
    gateway: {
      method: request.method,
      path: tally.path,
      family,
      ...(tally.app === undefined ? {} : { app: tally.app }),
      ...(request.caller === undefined ? {} : { caller: request.caller.name }),
      status,
      ...(tally.cozeCode === undefined ? {} : { coze_code: tally.cozeCode }),
      ...(tally.logid === undefined ? {} : { logid: tally.logid }),
      duration_ms: Math.round(performance.now() - tally.started),
      bytes: tally.bytes,
      replayed: tally.replayed
    }
  }, 'gateway request')
}
