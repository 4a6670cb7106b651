/**
 * JSON schemas for the HTTP API: every input bounded (lengths, character sets, ranges, no
 * unknown fields), every output declared, so that serialization drops anything undeclared.
 */
import { ID_VARIANTS } from '../coze/variants.js'
import { CREDENTIAL_NAME_PATTERN, PRINTABLE } from '../settings.js'

const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength, pattern: PRINTABLE }) as const
const textList = { type: 'array', maxItems: 100, items: text(128) } as const

/** Words for pattern failures, per field, for the 400's message. */
export const PATTERN_HINTS: Record<string, string> & { default: string } = {
  ...Object.fromEntries(ID_VARIANTS.map((variant) => [variant.id.field, `must be ${variant.id.hint}`])),
  app: 'must be the name of a configured credential: letters, digits, _ and - only, at most 64',
  default: 'must not contain control characters or bidirectional overrides'
}

const [account, enterprise] = ID_VARIANTS

/** Selects one token: the same fields on GET (query) and DELETE, minus `scope` and `session_context`. */
const selectorProperties = {
  app: { type: 'string', pattern: CREDENTIAL_NAME_PATTERN, description: 'The credential to use (`SIDECAR_DEFAULT_APP`, or the only one, when absent).' },
  session_name: { ...text(256), description: 'Business-side user id; Coze isolates conversations per session name.' },
  [account.id.field]: { type: 'string', pattern: account.id.pattern, description: 'Cross-account: the account (or organization) id.' },
  [enterprise.id.field]: { type: 'string', pattern: enterprise.id.pattern, description: 'Enterprise privileged app: the enterprise id.' },
  ttl: { type: 'integer', minimum: 1, maximum: 86399, description: '`duration_seconds` to ask Coze for.' },
  device_id: { ...text(128), description: '`session_context.device_info.device_id`.' },
  custom_consumer: { ...text(128), description: '`session_context.device_info.custom_consumer`.' }
} as const

export const tokenQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...selectorProperties,
    format: { type: 'string', enum: ['json', 'text'], description: '`text` answers with the bare token.' },
    renew: { type: 'boolean', description: 'A new token from Coze even while the cached one is valid, which is kept until the new one arrives (and if it does not).' }
  }
} as const

export const selectorQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: selectorProperties
} as const

/** The channel variant's scope (docs/coze-protocol.md §3.3), including coze-go's two extra permissions. */
const scopeSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    account_permission: {
      type: 'object',
      additionalProperties: false,
      required: ['permission_list'],
      properties: { permission_list: textList }
    },
    attribute_constraint: {
      type: 'object',
      additionalProperties: false,
      properties: {
        connector_bot_chat_attribute: {
          type: 'object',
          additionalProperties: false,
          required: ['bot_id_list'],
          properties: { bot_id_list: textList }
        }
      }
    },
    workspace_permission: {
      type: 'object',
      additionalProperties: false,
      properties: { workspace_id_list: textList, permission_list: textList }
    },
    workflow_permission: {
      type: 'object',
      additionalProperties: false,
      properties: { workflow_id_list: textList, permission_list: textList }
    }
  }
} as const

const sessionContextSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['device_info'],
  properties: {
    device_info: {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: { device_id: text(128), custom_consumer: text(128) }
    }
  }
} as const

export const tokenBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...selectorProperties,
    scope: scopeSchema,
    session_context: sessionContextSchema
  }
} as const

export const tokenResponseSchema = {
  type: 'object',
  required: ['access_token', 'token_type'],
  properties: {
    access_token: { type: 'string' },
    token_type: { type: 'string', enum: ['Bearer'] },
    expires_in: { type: 'integer', description: 'Absolute expiry in Unix seconds, as Coze gives it (not a duration). Always there for OAuth tokens; absent for a static token whose file gives no expires_at.' },
    expires_at: { type: 'string', format: 'date-time', description: 'The same instant in RFC 3339.' }
  }
} as const

export const errorResponseSchema = {
  type: 'object',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
    field: { type: 'string', description: 'The parameter a 400 is about; the rule a 403 CALLER_NOT_ALLOWED broke.' },
    coze: {
      type: 'object',
      description: 'What Coze answered, when it answered.',
      properties: {
        error_code: { type: 'string' },
        error_message: { type: 'string' },
        logid: { type: 'string' }
      }
    }
  }
} as const

export const errorResponses = {
  '4xx': errorResponseSchema,
  '5xx': errorResponseSchema
} as const

/** The fields a caller may send, as the schemas above let them through. */
export interface TokenInput {
  app?: string
  session_name?: string
  account_id?: string
  enterprise_id?: string
  ttl?: number
  device_id?: string
  custom_consumer?: string
  scope?: Record<string, unknown>
  session_context?: { device_info: { device_id?: string, custom_consumer?: string } }
  format?: 'json' | 'text'
  renew?: boolean
}
