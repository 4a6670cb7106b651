/**
 * `GET /token/rights`: what the calling caller may take, for the token page (which offers only
 * that) and for people checking a callers file. In the guarded scope: it needs the caller's secret
 * and tells a caller only about itself. Lists are the patterns as written; `[]` is "none".
 */
import type { FastifyInstance } from 'fastify'
import type { Caller } from '../access/callers.js'
import type { Patterns } from '../access/patterns.js'
import { errorResponses } from './schemas.js'

const list = (description: string) => ({ type: 'array', items: { type: 'string' }, description }) as const

export const rightsResponseSchema = {
  type: 'object',
  required: ['caller', 'every_right', 'apps', 'session_names', 'accounts', 'enterprises', 'gateway', 'defaults'],
  properties: {
    caller: { type: 'string', description: 'The caller\'s name: `default` for SIDECAR_AUTH_TOKEN, `anonymous` without any caller secret.' },
    every_right: { type: 'boolean' },
    apps: list('Credential names, or `*`.'),
    session_names: list('Session name globs; `[]`: only requests that name no session.'),
    accounts: list('Account ids for cross-account tokens, or `*`.'),
    enterprises: list('Enterprise ids, or `*`.'),
    gateway: list('Coze API path globs through the gateway.'),
    max_ttl: { type: 'integer', description: 'The longest ttl it may ask for; absent: Coze\'s limit.' },
    defaults: {
      type: 'object',
      properties: { app: { type: 'string' }, session_name: { type: 'string' }, ttl: { type: 'integer' } }
    }
  }
} as const

const patterns = (allowed: Patterns | undefined): readonly string[] => allowed?.source ?? []

/** The caller's rights in the response's shape. */
export function rightsOf (caller: Caller, defaultApp: string | undefined): Record<string, unknown> {
  return {
    caller: caller.name,
    every_right: caller.all,
    apps: caller.apps === undefined ? (defaultApp === undefined ? [] : [defaultApp]) : patterns(caller.apps),
    session_names: patterns(caller.sessionNames),
    accounts: patterns(caller.accounts),
    enterprises: patterns(caller.enterprises),
    gateway: patterns(caller.gateway),
    ...(caller.maxTtl === undefined ? {} : { max_ttl: caller.maxTtl }),
    defaults: {
      ...(caller.defaults.app === undefined ? {} : { app: caller.defaults.app }),
      ...(caller.defaults.sessionName === undefined ? {} : { session_name: caller.defaults.sessionName }),
      ...(caller.defaults.ttl === undefined ? {} : { ttl: caller.defaults.ttl })
    }
  }
}

export async function rightsRoutes (app: FastifyInstance): Promise<void> {
  app.get('/token/rights', {
    schema: {
      summary: 'What this caller may take',
      description: 'The calling caller\'s rules from SIDECAR_CALLERS_FILE (every right for SIDECAR_AUTH_TOKEN, or without a caller secret).',
      response: { 200: rightsResponseSchema, ...errorResponses }
    }
  }, async (request) => rightsOf(request.caller as Caller, app.credentials.defaultName))
}
