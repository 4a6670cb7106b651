/**
 * The error contract at the HTTP edge: every error leaves in Fastify's shape
 * `{statusCode, code, error, message}`, plus `field` for 400s and `coze` when Coze answered.
 * Errors of the domain (`token/`, `coze/`, `credentials/`) are mapped to their status here;
 * anything unexpected is a 500 whose details stay in the log.
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { errors, details, isSidecarError, toSidecarError, type SidecarError } from './errors.js'
import { PATTERN_HINTS } from './routes/schemas.js'

interface ValidationProblem {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  /** Ajv always writes one. */
  message: string
}

/** Ajv's first complaint as a field name and a sentence a person can act on. */
export function describeValidation (problem: ValidationProblem, context: string): { field: string, message: string } {
  const path = problem.instancePath.split('/').slice(1)
    .map((part, index) => /^\d+$/.test(part) ? `[${part}]` : `${index === 0 ? '' : '.'}${part}`).join('')
  const where = context === 'querystring' ? 'parameter' : 'field'
  const p = problem.params
  switch (problem.keyword) {
    case 'required': {
      const field = [path, String(p.missingProperty)].filter(Boolean).join('.')
      return { field, message: `${field} is required` }
    }
    case 'additionalProperties': {
      const field = [path, String(p.additionalProperty)].filter(Boolean).join('.')
      return { field, message: `${field} is not a known ${where}` }
    }
  }
  const field = path === '' ? context : path
  const leaf = problem.instancePath.slice(problem.instancePath.lastIndexOf('/') + 1)
  switch (problem.keyword) {
    case 'type': return { field, message: path === '' ? `${context} must be a JSON object` : `${field} must be ${article(String(p.type))}` }
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
      return { field, message: `${field} must be ${String(p.comparison)} ${String(p.limit)}` }
    // Every minLength in the schemas is 1.
    case 'minLength': return { field, message: `${field} must not be empty` }
    case 'maxLength': return { field, message: `${field} must be at most ${String(p.limit)} characters` }
    case 'pattern': return { field, message: `${field} ${PATTERN_HINTS[leaf] ?? PATTERN_HINTS.default}` }
    case 'enum': return { field, message: `${field} must be one of: ${(p.allowedValues as unknown[]).join(', ')}` }
    case 'maxItems': return { field, message: `${field} must have at most ${String(p.limit)} items` }
    case 'minProperties': case 'maxProperties':
      if (leaf === 'device_info') return { field, message: `${field} must have exactly one of device_id, custom_consumer` }
  }
  return { field, message: `${field} ${problem.message}` }
}

function article (type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

/** Fastify's own 4xx errors that are about the request body. */
const BODY_ERRORS = new Set([
  'FST_ERR_CTP_INVALID_MEDIA_TYPE', 'FST_ERR_CTP_EMPTY_JSON_BODY', 'FST_ERR_CTP_INVALID_JSON_BODY',
  'FST_ERR_CTP_BODY_TOO_LARGE', 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'
])

/**
 * Every error leaves in Fastify's shape `{statusCode, code, error, message}`, plus `field` for
 * 400s and `coze` when Coze answered. Anything unexpected is a 500 whose details stay in the log.
 */
export function errorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): unknown {
  let known: SidecarError
  // The domain's errors and the catalogue's own.
  const domain = toSidecarError(error)
  if (domain !== undefined) {
    known = domain
  } else if (error.validation !== undefined && error.validation.length > 0) {
    const { field, message } = describeValidation(error.validation[0] as ValidationProblem, error.validationContext as string)
    known = details(new errors.InvalidParameter(message), { field }) as SidecarError
  } else if (isSidecarError(error) && error.statusCode < 500 && error.code.startsWith('FST_')) {
    // Fastify's own client errors (media type, JSON syntax, size): their messages are safe.
    known = BODY_ERRORS.has(error.code) ? details(error, { field: 'body' }) : error
  } else {
    request.log.error({ reqId: request.id, err: error }, 'unexpected error')
    known = new errors.Internal() as SidecarError
  }
  return sendError(reply, known)
}

/** Sends `known` in the service's error shape, with its headers. */
export function sendError (reply: FastifyReply, known: SidecarError): FastifyReply {
  if (known.retryAfter !== undefined) reply.header('retry-after', String(known.retryAfter))
  if (known.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="coze-token-sidecar"')
  return reply.code(known.statusCode).send({
    statusCode: known.statusCode,
    code: known.code,
    error: STATUS_CODES[known.statusCode] as string,
    message: known.message,
    ...(known.field === undefined ? {} : { field: known.field }),
    ...(known.coze === undefined ? {} : { coze: known.coze })
  })
}
