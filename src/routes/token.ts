/**
 * `/token`: GET a token, POST for the fields a query cannot carry (`scope`, `session_context`),
 * DELETE to drop a cached one. A thin adapter: the work is in `token/cache.ts`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fastJson from 'fast-json-stringify'
import Negotiator from 'negotiator'
import type { Caller } from '../access/callers.js'
import { callerTokenRequest, type CallerRoute } from '../access/guard.js'
import { ID_VARIANTS, type TokenRequest } from '../coze/variants.js'
import type { Credential } from '../credentials/credential.js'
import { SelectionError } from '../credentials/errors.js'
import { errors, details } from '../errors.js'
import type { ServedToken } from '../token/cache.js'
import {
  errorResponses, selectorQuerySchema, tokenBodySchema, tokenQuerySchema, tokenResponseSchema, type TokenInput
} from './schemas.js'

/** POST bodies are a few hundred bytes; 16 KiB leaves room for a long scope and no more. */
export const TOKEN_BODY_LIMIT = 16 * 1024

const tokenResponses = {
  200: {
    description: 'A token with at least its serve margin of life left.',
    content: {
      'application/json': { schema: tokenResponseSchema },
      'text/plain': { schema: { type: 'string', description: 'The bare access token (`?format=text` or `Accept: text/plain`).' } }
    }
  },
  ...errorResponses
} as const

/** The fields that select a session or a variant: a static token has none of those. */
const SESSION_FIELDS = ['session_name', ...ID_VARIANTS.map((variant) => variant.id.field), 'ttl', 'device_id', 'custom_consumer', 'scope', 'session_context'] as const

/**
 * The caller's fields as a token request, with the credential's defaults for what it leaves out.
 * @throws INVALID_PARAMETER for combinations the schema cannot express, and for session
 * selectors sent to a static token.
 */
export function toTokenRequest (input: TokenInput, credential: Pick<Credential, 'name' | 'spec' | 'defaultRequest'>): TokenRequest {
  if (credential.spec.kind === 'static') {
    const field = SESSION_FIELDS.find((name) => input[name] !== undefined)
    if (field !== undefined) {
      throw new SelectionError(field, `${field} cannot be used with app "${credential.name}": it is a static access token, with no session isolation and no variants`)
    }
    return credential.defaultRequest
  }
  const defaults = credential.defaultRequest
  // Nothing selected (a plain GET /token): the credential's own request, the same object every time.
  if (!SESSION_FIELDS.some((name) => input[name] !== undefined)) return defaults
  const [account, enterprise] = ID_VARIANTS
  if (input[account.id.field] !== undefined && input[enterprise.id.field] !== undefined) {
    throw details(new errors.InvalidParameter(`${account.id.field} and ${enterprise.id.field} cannot be used together: a token is either cross-account or enterprise`), { field: enterprise.id.field })
  }
  if (input.device_id !== undefined && input.custom_consumer !== undefined) {
    throw details(new errors.InvalidParameter('device_id and custom_consumer cannot be used together: Coze takes one of the two'), { field: 'custom_consumer' })
  }
  if (input.session_context !== undefined && (input.device_id !== undefined || input.custom_consumer !== undefined)) {
    throw details(new errors.InvalidParameter('session_context cannot be used together with device_id or custom_consumer'), { field: 'session_context' })
  }
  const request: TokenRequest = { ttl: input.ttl ?? defaults.ttl }
  // The caller's id, else the configured default one: at most one variant with an id.
  const chosen = ID_VARIANTS.find((variant) => input[variant.id.field] !== undefined)
  if (chosen !== undefined) request[chosen.id.request] = input[chosen.id.field] as string
  else {
    const fallback = ID_VARIANTS.find((variant) => defaults[variant.id.request] !== undefined)
    if (fallback !== undefined) request[fallback.id.request] = defaults[fallback.id.request] as string
  }
  if (input.session_name !== undefined) request.sessionName = input.session_name
  if (input.session_context !== undefined) request.sessionContext = input.session_context
  else if (input.device_id !== undefined) request.sessionContext = { device_info: { device_id: input.device_id } }
  else if (input.custom_consumer !== undefined) request.sessionContext = { device_info: { custom_consumer: input.custom_consumer } }
  if (input.scope !== undefined) request.scope = input.scope
  return request
}

/**
 * The token's JSON, serialized by the response schema itself (so an undeclared field cannot
 * leave), once per token: a cached token is the same object until it is replaced.
 */
const serializeToken = fastJson(tokenResponseSchema as unknown as Parameters<typeof fastJson>[0]) as (token: object) => string
const tokenJson = new WeakMap<ServedToken, string>()

function jsonOf (token: ServedToken): string {
  const known = tokenJson.get(token)
  if (known !== undefined) return known
  const json = serializeToken({ access_token: token.accessToken, token_type: 'Bearer', expires_in: token.expiresIn, expires_at: token.expiresAt })
  tokenJson.set(token, json)
  return json
}

const FORMATS = ['application/json', 'text/plain']

/** Whether the caller's `Accept` ranks the bare token above JSON (ties go to JSON, listed first). */
function prefersText (headers: FastifyRequest['headers']): boolean {
  return new Negotiator({ headers }).mediaType(FORMATS) === 'text/plain'
}

// No `Vary: Accept` although the answer depends on it: it is `no-store`, so no cache keeps it.
function sendToken (request: FastifyRequest, reply: FastifyReply, token: ServedToken, format: TokenInput['format']): FastifyReply {
  if (token.stale) reply.header('x-token-stale', 'true')
  // Negotiation only when the caller asked for something in particular: curl's */* and
  // browsers' lists with */* at the end get JSON without parsing the header.
  const accept = request.headers.accept
  const wantsText = format === 'text' ||
    (format === undefined && accept !== undefined && accept !== '*/*' && prefersText(request.headers))
  if (wantsText) return reply.type('text/plain; charset=utf-8').send(token.accessToken)
  return reply.type('application/json; charset=utf-8').send(jsonOf(token))
}

/** How `/token` finds its credential and builds a token request (src/access/guard.ts). */
function tokenRoute (app: FastifyInstance): CallerRoute<Credential, TokenInput> {
  return {
    select: (name) => app.credentials.select(name),
    source: (credential) => credential,
    make: (credential, input) => toTokenRequest(input, credential)
  }
}

/**
 * Answers with the token for `input`: a cached one at once, without a promise (the hot path),
 * else the one the cache gets from Coze.
 */
function serve (app: FastifyInstance, route: CallerRoute<Credential, TokenInput>, request: FastifyRequest, reply: FastifyReply, input: TokenInput, format: TokenInput['format']): FastifyReply | Promise<FastifyReply> {
  // The guard sets the caller on every route of this scope.
  const caller = request.caller as Caller
  const { credential, tokenRequest } = callerTokenRequest(app, request, caller, input, route)
  // Callers with rights of their own were counted as they were admitted.
  if (caller.all) app.metrics.request(caller.name)
  if (input.renew === true) return credential.tokens.renew(tokenRequest, app.config.requestDeadlineMs).then((token) => sendToken(request, reply, token, format))
  const hit = credential.tokens.cached(tokenRequest)
  if (hit !== undefined) return sendToken(request, reply, hit, format)
  return credential.tokens.get(tokenRequest, app.config.requestDeadlineMs, caller.name).then((token) => sendToken(request, reply, token, format))
}

/** A POST or DELETE without a body means "no fields", like an empty query string. */
function emptyBodyIsNoFields (request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  if (request.body === undefined || request.body === null) request.body = {}
  done()
}

/** The routes of the guarded scope (src/app.ts), which also marks every answer `no-store`. */
export async function tokenRoutes (app: FastifyInstance): Promise<void> {
  const route = tokenRoute(app)
  app.get('/token', {
    schema: {
      summary: 'Get an access token',
      description: 'The cached token for these selectors, or a new one from Coze.',
      querystring: tokenQuerySchema,
      response: tokenResponses
    }
  }, (request, reply) => {
    const input = request.query as TokenInput
    return serve(app, route, request, reply, input, input.format)
  })

  app.post('/token', {
    bodyLimit: TOKEN_BODY_LIMIT,
    preValidation: emptyBodyIsNoFields,
    schema: {
      summary: 'Get an access token (with scope or session_context)',
      querystring: { type: 'object', additionalProperties: false, properties: { format: tokenQuerySchema.properties.format } },
      body: tokenBodySchema,
      response: tokenResponses
    }
  }, (request, reply) => serve(app, route, request, reply, request.body as TokenInput, (request.query as TokenInput).format))

  app.delete('/token', {
    bodyLimit: TOKEN_BODY_LIMIT,
    preValidation: emptyBodyIsNoFields,
    schema: {
      summary: 'Drop a cached token',
      description: 'The next request for these selectors gets a new token from Coze: after a 4100 that follows a revocation.',
      querystring: selectorQuerySchema,
      body: tokenBodySchema,
      response: { 204: { type: 'null', description: 'Dropped (or nothing was cached).' }, ...errorResponses }
    }
  }, async (request, reply) => {
    const query = request.query as TokenInput
    const body = request.body as TokenInput
    const inBody = Object.keys(body).length > 0
    if (inBody && Object.keys(query).length > 0) {
      throw details(new errors.InvalidParameter('give the selectors either in the query or in the JSON body, not both'), { field: 'body' })
    }
    // A caller cannot drop a token it could not take.
    const { credential, tokenRequest } = callerTokenRequest(app, request, request.caller as Caller, inBody ? body : query, route)
    credential.tokens.delete(tokenRequest)
    return reply.code(204).send()
  })
}
