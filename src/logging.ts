/**
 * The logging policy: what pino redacts, and which request lines are written at all. The service
 * logs per exchange and per gateway request, not per HTTP request; secrets are never logged in
 * the first place, and redaction is the second guard.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'

/**
 * Paths pino blanks in every log line. Secrets are not logged in the first place; this is the
 * second guard, for the day somebody logs a header or a response by mistake.
 */
export const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization',
  'access_token', 'accessToken', 'jwt', 'private_key', 'privateKey',
  '*.access_token', '*.accessToken', '*.jwt', '*.private_key', '*.privateKey', '*.authorization'
]

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
