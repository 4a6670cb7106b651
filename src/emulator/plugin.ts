/**
 * A strict Coze OAuth emulator, as a Fastify plugin: the three JWT token paths, the two
 * protected routes used to verify tokens, and control routes to register apps and inject faults
 * (docs/coze-protocol.md §14). For tests, for rehearsing outages, and for the demo mode.
 *
 * @example
 * const emulator = Fastify()
 * await emulator.register(cozeEmulator, { apps: [{ appId: '1127900106117', audience: '127.0.0.1:8090', keys: [{ publicKey: pem }] }] })
 * await emulator.listen({ host: '127.0.0.1', port: 8090 })
 * emulator.cozeEmulator.injectFault({ kind: 'status', status: 500 })
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { cozeApi } from './api.js'
import { checkTokenRequest, type OAuthRefusal } from './checks.js'
import { EmulatorState, newLogid, type EmulatorAppInput, type EmulatorKnobs, type Fault } from './state.js'

export interface CozeEmulatorOptions {
  /** Bring your own state (to share it, or to inspect it from a test). */
  state?: EmulatorState
  /** The emulator's clock, ms since the epoch. */
  now?: () => number
  knobs?: Partial<EmulatorKnobs>
  apps?: EmulatorAppInput[]
  /** Serve `/_emulator/*` control routes. Default true. */
  control?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    cozeEmulator: EmulatorState
  }
}

const TOKEN_PATHS = {
  developer: '/api/permission/oauth2/token',
  account: '/api/permission/oauth2/account/:accountId/token',
  enterprise: '/api/permission/oauth2/enterprise_id/:enterpriseId/token'
} as const

function sendRefusal (reply: FastifyReply, refusal: OAuthRefusal): FastifyReply {
  return reply.code(refusal.status).send({
    error_code: refusal.code,
    error_message: refusal.message,
    error: refusal.code,
    error_description: refusal.message
  })
}

export const cozeEmulator = fp(async function cozeEmulator (app: FastifyInstance, options: CozeEmulatorOptions) {
  const now = options.now ?? Date.now
  const state = options.state ?? new EmulatorState({ now, knobs: options.knobs })
  for (const input of options.apps ?? []) state.registerApp(input)
  app.decorate('cozeEmulator', state)

  // Hung requests are released when the emulator closes, or close would wait for them forever.
  const held = new Set<Socket>()
  app.addHook('preClose', async () => {
    for (const socket of held) socket.destroy()
  })

  app.register(async function tokenEndpoint (scope) {
    // Coze answers bad bodies with its own error shape, so bodies reach the checks unparsed.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_request, body, done) => done(null, body))

    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      const logid = newLogid(now())
      reply.header('x-tt-logid', logid)
      state.exchangeCount++
      const params = request.params as { accountId?: string, enterpriseId?: string }
      const path = request.url.split('?', 1)[0] as string

      const fault = state.takeFault()
      if (fault !== undefined) {
        state.record({ at: now(), path, status: fault.kind === 'status' ? fault.status : 0, fault: fault.kind })
        // A delay, then the normal answer; every other fault is the answer.
        if (fault.kind === 'delay') await sleep(fault.ms)
        else return answerFault(fault, request, reply)
      }

      const result = await checkTokenRequest(state, {
        ...(params.accountId === undefined ? {} : { accountId: params.accountId }),
        ...(params.enterpriseId === undefined ? {} : { enterpriseId: params.enterpriseId }),
        contentType: request.headers['content-type'],
        authorization: request.headers.authorization,
        rawBody: request.body
      })
      const jwt = request.headers.authorization?.replace(/^Bearer /, '')
      if ('refusal' in result) {
        const { partial, refusal } = result
        state.record({
          at: now(),
          path,
          status: refusal.status,
          errorCode: refusal.code,
          ...(partial.app === undefined ? {} : { appId: partial.app.appId }),
          ...(partial.kid === undefined ? {} : { kid: partial.kid }),
          ...(jwt === undefined ? {} : { jwt }),
          ...(partial.header === undefined ? {} : { header: partial.header }),
          ...(partial.claims === undefined ? {} : { claims: partial.claims }),
          ...(partial.body === undefined ? {} : { body: partial.body })
        })
        return sendRefusal(reply, refusal)
      }
      const { accepted } = result
      const expiresAt = state.nowSeconds() + accepted.durationSeconds
      const token = state.issue({
        appId: accepted.app.appId,
        expiresAt,
        ...(typeof accepted.claims.session_name === 'string' ? { sessionName: accepted.claims.session_name } : {}),
        ...(accepted.claims.session_context === undefined ? {} : { sessionContext: accepted.claims.session_context }),
        ...(accepted.body.scope === undefined || accepted.body.scope === null ? {} : { scope: accepted.body.scope }),
        ...(params.accountId === undefined ? {} : { accountId: params.accountId }),
        ...(params.enterpriseId === undefined ? {} : { enterpriseId: params.enterpriseId })
      })
      state.record({
        at: now(),
        path,
        status: 200,
        appId: accepted.app.appId,
        kid: accepted.kid,
        jwt: jwt as string, // accepted, so it was there
        header: accepted.header,
        claims: accepted.claims,
        body: accepted.body
      })
      // expires_in is an absolute Unix time at Coze, not a duration (docs/coze-protocol.md §5).
      return reply.send({ access_token: token, expires_in: expiresAt, ...(state.knobs.tokenType ? { token_type: 'Bearer' } : {}) })
    }

    function answerFault (fault: Exclude<Fault, { kind: 'delay' }>, request: FastifyRequest, reply: FastifyReply): FastifyReply {
      switch (fault.kind) {
        case 'status': {
          if (fault.retryAfter !== undefined) reply.header('retry-after', fault.retryAfter)
          const code = fault.errorCode ?? (fault.status === 429 ? 'too_many_requests' : 'internal_error')
          const message = fault.status === 429 ? 'Too many requests, please retry later.' : 'Service internal error.'
          return reply.code(fault.status).send({ error_code: code, error_message: message, error: code, error_description: message })
        }
        case 'html':
          return reply.code(fault.status ?? 200).type('text/html; charset=utf-8')
            .send('<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>')
        case 'no_token':
          return reply.send({ expires_in: state.nowSeconds() + 900 })
        case 'expired':
          return reply.send({ access_token: 'czs_alreadyExpiredTokenFromTheEmulatorsFaultInjection', expires_in: state.nowSeconds() - 60 })
        case 'hang':
          reply.hijack()
          held.add(request.raw.socket)
          request.raw.socket.once('close', () => held.delete(request.raw.socket))
          return reply
        case 'drop':
          reply.hijack()
          request.raw.socket.destroy()
          return reply
      }
    }

    scope.post(TOKEN_PATHS.developer, handler)
    scope.post(TOKEN_PATHS.account, handler)
    scope.post(TOKEN_PATHS.enterprise, handler)
  })

  // The Coze API the tokens are for: chat, workflows, files, audio, users, workspaces, WebSockets.
  await app.register(cozeApi, { state, now })

  if (options.control !== false) app.register(controlRoutes, { state })
}, { name: 'coze-emulator', fastify: '5.x' })

const faultSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['kind'],
  properties: {
    kind: { type: 'string', enum: ['status', 'delay', 'hang', 'html', 'drop', 'no_token', 'expired'] },
    status: { type: 'integer', minimum: 100, maximum: 599 },
    retry_after: { type: 'string', maxLength: 64 },
    error_code: { type: 'string', maxLength: 64 },
    ms: { type: 'integer', minimum: 0, maximum: 600_000 },
    times: { type: 'integer', minimum: 0, maximum: 1_000_000, description: '0: until cleared' }
  }
} as const

/** `/_emulator/*`: inspect the emulator and tell it to fail, over HTTP (never shows a JWT or a token). */
async function controlRoutes (app: FastifyInstance, { state }: { state: EmulatorState }): Promise<void> {
  app.get('/_emulator/state', async () => ({
    apps: [...state.apps.values()].map((entry) => ({
      app_id: entry.appId,
      name: entry.name,
      type: entry.type,
      enabled: entry.enabled,
      audience: entry.audience,
      kids: [...entry.keys.keys()]
    })),
    exchanges: state.exchangeCount,
    tokens: state.tokens.size,
    recent: state.records.slice(-20).map(({ at, path, status, errorCode, appId, fault }) => ({
      at: new Date(at).toISOString(), path, status, error_code: errorCode, app_id: appId, fault
    }))
  }))

  app.post('/_emulator/faults', { schema: { body: faultSchema } }, async (request, reply) => {
    const body = request.body as { kind: Fault['kind'], status?: number, retry_after?: string, error_code?: string, ms?: number, times?: number }
    let fault: Fault
    switch (body.kind) {
      case 'status': fault = { kind: 'status', status: body.status ?? 500, ...(body.retry_after === undefined ? {} : { retryAfter: body.retry_after }), ...(body.error_code === undefined ? {} : { errorCode: body.error_code }) }; break
      case 'delay': fault = { kind: 'delay', ms: body.ms ?? 1000 }; break
      case 'html': fault = { kind: 'html', ...(body.status === undefined ? {} : { status: body.status }) }; break
      default: fault = { kind: body.kind }
    }
    state.injectFault(fault, body.times === 0 ? Infinity : body.times ?? 1)
    return reply.code(204).send()
  })

  app.delete('/_emulator/faults', async (_request, reply) => {
    state.clearFaults()
    return reply.code(204).send()
  })

  // The Coze API's knobs: stream pace, the HTTP status paired with 4100, forced token refusals.
  app.put('/_emulator/api', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        properties: {
          stream_interval_ms: { type: 'integer', minimum: 0, maximum: 60_000 },
          auth_failure_status: { type: 'integer', enum: [200, 401] },
          refuse_tokens: { type: 'integer', minimum: 0, maximum: 1_000_000, description: 'the next N calls answer 4100 whatever their token' }
        }
      }
    }
  }, async (request, reply) => {
    const body = request.body as { stream_interval_ms?: number, auth_failure_status?: 200 | 401, refuse_tokens?: number }
    if (body.stream_interval_ms !== undefined) state.api.streamIntervalMs = body.stream_interval_ms
    if (body.auth_failure_status !== undefined) state.api.authFailureStatus = body.auth_failure_status
    if (body.refuse_tokens !== undefined) state.api.refuseTokens(body.refuse_tokens)
    return reply.code(204).send()
  })

  app.post('/_emulator/apps/:appId/:action', {
    schema: {
      params: {
        type: 'object',
        properties: { appId: { type: 'string', maxLength: 64 }, action: { type: 'string', enum: ['enable', 'disable', 'revoke'] } }
      }
    }
  }, async (request, reply) => {
    const { appId, action } = request.params as { appId: string, action: 'enable' | 'disable' | 'revoke' }
    if (!state.apps.has(appId)) return reply.code(404).send({ message: `no app ${appId}` })
    if (action === 'revoke') return { revoked: state.revokeApp(appId) }
    state.setEnabled(appId, action === 'enable')
    return reply.code(204).send()
  })
}
