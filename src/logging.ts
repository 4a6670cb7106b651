/**
 * What the service's logs may hold: pino's redaction paths, Fastify's request lines (at debug,
 * and not even built below it) and the request serializer. Secrets are not logged in the first
 * place; this file is the second guard, and it holds at every level, trace included.
 *
 * @example
 * Fastify({ logger: { redact: { paths: REDACT_PATHS, censor: '[redacted]' }, serializers: LOG_SERIALIZERS }, logController: new QuietRequests() })
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'

/**
 * Paths pino blanks in every log line, for the day somebody logs a header or a response by
 * mistake.
 */
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization',
  'access_token', 'accessToken', 'jwt', 'private_key', 'privateKey',
  '*.access_token', '*.accessToken', '*.jwt', '*.private_key', '*.privateKey', '*.authorization'
]

/**
 * Query parameter names worth seeing in a log: the API's own, and `authorization` (the gateway's
 * WebSocket URLs). Any other name may itself be a secret pasted in the wrong place.
 */
const KNOWN_PARAMETERS = new Set([
  'app', 'session_name', 'account_id', 'enterprise_id', 'ttl', 'device_id', 'custom_consumer', 'format', 'renew', 'strict', 'authorization'
])

/**
 * A request target fit for a log: the path, and of the query string only the names of known
 * parameters, never a value. `/token?session_name=alice&x` gives `/token?session_name=[redacted]&[redacted]`.
 */
export function loggableUrl (url: string): string {
  const mark = url.indexOf('?')
  if (mark === -1) return url
  const parameters = url.slice(mark + 1).split('&').filter((part) => part !== '').map((part) => {
    const name = part.split('=', 1)[0] as string
    return KNOWN_PARAMETERS.has(name) ? `${name}=[redacted]` : '[redacted]'
  })
  return `${url.slice(0, mark)}?${parameters.join('&')}`
}

/** Fastify's request serializer, with the query string's values left out. */
function serializeRequest (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: loggableUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket.remotePort
  }
}

/** pino serializers for the logger's `req` (Fastify's own `res` and `err` stay). */
export const LOG_SERIALIZERS = { req: serializeRequest }

/**
 * A line per request at info would drown the exchange lines under load, so Fastify's own request
 * lines go to debug, and are not even built unless debug is on (they cost a cached /token ~6 %).
 */
export class QuietRequests extends LogController {
  override isLogDisabled (request: FastifyRequest): boolean {
    return !(request.log as Logger).isLevelEnabled('debug')
  }

  override incomingRequest (request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return
    request.log.debug({ reqId: request.id, req: request }, 'incoming request')
  }

  override requestCompleted (_error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    reply.log.debug({ reqId: request.id, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}
