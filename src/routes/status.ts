/**
 * `GET /status`: each credential's state, for people and dashboards: the last exchange with Coze
 * and its outcome, Coze's last error code and logid, tokens cached, the default token's expiry
 * and next refresh, the clock skew. Never a token. Guarded like the token routes: it tells which
 * apps and accounts are in use.
 */
import type { FastifyInstance } from 'fastify'
import { errorResponses } from './schemas.js'

const at = { type: 'string', format: 'date-time' } as const

const credentialSchema = {
  type: 'object',
  required: ['kind', 'api_base', 'cached_tokens'],
  properties: {
    kind: { type: 'string', enum: ['jwt', 'static'], description: 'An OAuth JWT app, or a static access token.' },
    app_id: { type: 'string', description: 'The OAuth app id (absent for a static token).' },
    api_base: { type: 'string' },
    wrong_region: {
      type: 'object',
      description: 'Coze refused the key here, and the other region knows it: where, and what to change.',
      required: ['registered_at', 'setting'],
      properties: { registered_at: { type: 'string' }, setting: { type: 'string' } }
    },
    last_exchange: {
      type: 'object',
      description: 'The last exchange attempt with Coze, whatever its outcome.',
      required: ['at', 'outcome', 'variant', 'reason', 'duration_ms'],
      properties: {
        at,
        outcome: { type: 'string', description: 'ok, or the kind of failure: refused, unavailable, rate_limited, bad_response, unreachable, timeout, internal' },
        variant: { type: 'string' },
        reason: { type: 'string', enum: ['miss', 'refresh'] },
        duration_ms: { type: 'integer' },
        logid: { type: 'string' }
      }
    },
    last_error: {
      type: 'object',
      description: 'The last failed exchange attempt: the error a caller would have got.',
      required: ['at', 'code', 'message'],
      properties: {
        at,
        code: { type: 'string' },
        message: { type: 'string' },
        coze: {
          type: 'object',
          properties: { error_code: { type: 'string' }, error_message: { type: 'string' }, logid: { type: 'string' } }
        }
      }
    },
    cached_tokens: { type: 'integer', description: 'Distinct requests (session names, variants, ttls) with a cached token.' },
    default_token: {
      type: 'object',
      description: 'The default request\'s token (never the token itself), while one is cached.',
      required: ['stale'],
      properties: {
        expires_at: at,
        refresh_at: { ...at, description: 'When it is refreshed in the background, if callers keep using it.' },
        stale: { type: 'boolean', description: 'True while its refresh is failing.' }
      }
    },
    clock_skew_seconds: { type: 'number', description: 'Coze\'s clock minus ours, from its last Date header.' }
  }
} as const

export async function statusRoutes (app: FastifyInstance): Promise<void> {
  app.get('/status', {
    logLevel: 'warn',
    schema: {
      summary: 'Each credential\'s state: last exchange, Coze\'s last error, tokens cached, expiry and refresh, clock skew',
      response: {
        200: {
          type: 'object',
          required: ['credentials'],
          properties: { credentials: { type: 'object', additionalProperties: credentialSchema } }
        },
        ...errorResponses
      }
    }
  }, async () => ({
    credentials: Object.fromEntries(app.credentials.all().map((credential) => [credential.name, app.credentialStatus(credential.name).read()]))
  }))
}
