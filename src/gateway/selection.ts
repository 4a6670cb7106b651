/**
 * Which token a gateway request is made with: the `X-Coze-*` selection headers, or the same
 * selection as a base-URL prefix, validated exactly as `/token`'s parameters are (the same
 * schema, the same 400s), with the field named as the caller wrote it. Framework-free.
 *
 * @example
 * readSelection({ 'x-coze-session-name': 'user-42' }, {}, describeValidation)
 * // { input: { session_name: 'user-42' }, labels: { session_name: 'X-Coze-Session-Name' } }
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { ErrorObject, ValidateFunction } from 'ajv'
import type { TokenRequest } from '../coze/variants.js'
import type { Credential } from '../credentials/credential.js'
import { details, errors, toSidecarError, type SidecarError } from '../errors.js'
import { selectorQuerySchema, type TokenInput } from '../routes/schemas.js'
import { toTokenRequest } from '../routes/token.js'
import { validatorCompiler } from '../schema-compilers.js'
import type { PrefixSelection } from './paths.js'

type Field = 'app' | 'session_name' | 'account_id' | 'enterprise_id' | 'device_id' | 'custom_consumer'

/** The selection headers, their `/token` field, and how the caller spelled them. */
const HEADERS: ReadonlyArray<readonly [string, Field, string]> = [
  ['x-coze-app', 'app', 'X-Coze-App'],
  ['x-coze-session-name', 'session_name', 'X-Coze-Session-Name'],
  ['x-coze-account-id', 'account_id', 'X-Coze-Account-Id'],
  ['x-coze-enterprise-id', 'enterprise_id', 'X-Coze-Enterprise-Id'],
  ['x-coze-device-id', 'device_id', 'X-Coze-Device-Id'],
  ['x-coze-custom-consumer', 'custom_consumer', 'X-Coze-Custom-Consumer']
]

/** Lower-case names of the selection headers: never forwarded. */
export const SELECTION_HEADERS: ReadonlySet<string> = new Set(HEADERS.map(([name]) => name))

const PREFIX: ReadonlyArray<readonly [keyof PrefixSelection, Field, string]> = [
  ['app', 'app', '/apps/'],
  ['sessionName', 'session_name', '/sessions/'],
  ['accountId', 'account_id', '/accounts/'],
  ['enterpriseId', 'enterprise_id', '/enterprises/']
]

const { properties } = selectorQuerySchema
/**
 * /token's own schemas for these fields; `app` is printable text, as the registry's names will be.
 * Compiled by the routes' own compiler, for text parts, on the first request that selects anything
 * (header values are strings, and these fields have no defaults: its coercion changes nothing).
 */
const validate = validatorCompiler({
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      app: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[^\\u0000-\\u001F\\u007F]+$' },
      session_name: properties.session_name,
      account_id: properties.account_id,
      enterprise_id: properties.enterprise_id,
      device_id: properties.device_id,
      custom_consumer: properties.custom_consumer
    }
  },
  method: 'GET',
  url: '/{gateway}',
  httpPart: 'headers'
}) as ValidateFunction

/**
 * Ajv's complaint as a field and a sentence: the app's `describeValidation`, the one `/token`'s
 * 400s come from (passed in, so that this module does not import the app that imports it).
 */
export type DescribeValidation = (problem: ErrorObject, context: string) => { field: string, message: string }

export interface Selection {
  app?: string
  input: TokenInput
  /** How each given field is named in a 400: its header, or the `/token` field for the prefix. */
  labels: Partial<Record<Field, string>>
}

function invalid (field: string, message: string): SidecarError {
  return details(new errors.InvalidParameter(message), { field }) as SidecarError
}

/**
 * The selection a request makes.
 * @throws INVALID_PARAMETER naming the header (or the prefix's field) at fault.
 */
export function readSelection (headers: IncomingHttpHeaders, prefix: PrefixSelection, describe: DescribeValidation): Selection {
  const values: Partial<Record<Field, string>> = {}
  const labels: Partial<Record<Field, string>> = {}
  for (const [name, field, label] of HEADERS) {
    // Node joins a repeated header with ", " (only Set-Cookie is an array).
    const value = headers[name] as string | undefined
    if (value === undefined) continue
    values[field] = value
    labels[field] = label
  }
  for (const [key, field, segment] of PREFIX) {
    const value = prefix[key]
    if (value === undefined) continue
    if (labels[field] !== undefined) {
      throw invalid(labels[field] as string, `${labels[field] as string} and the ${segment} path prefix both select ${field}; use one of them`)
    }
    values[field] = value
    labels[field] = field
  }
  // Nothing selected (most calls): nothing to validate.
  if (Object.keys(values).length !== 0 && !validate(values)) {
    const problem = (validate.errors as ErrorObject[])[0] as ErrorObject
    const { field, message } = describe(problem, 'querystring')
    const label = labels[field as Field] as string
    // describeValidation's messages start with the field's name.
    throw invalid(label, label + message.slice(field.length))
  }
  const { app, ...input } = values
  return { ...(app === undefined ? {} : { app }), input, labels }
}

/**
 * The selection as a token request, with the credential's defaults for what it leaves out.
 * @throws INVALID_PARAMETER for combinations `/token` refuses too, naming the caller's field.
 */
export function selectionRequest (selection: Selection, credential: Pick<Credential, 'name' | 'spec' | 'defaultRequest'>): TokenRequest {
  try {
    return toTokenRequest(selection.input, credential)
  } catch (error) {
    throw relabel(error, selection)
  }
}

/** A 400 about `app` or another field, named as the caller wrote it. */
export function relabel (caught: unknown, selection: Selection): unknown {
  // The registry's and the routes' errors alike: a SelectionError becomes its 400 here.
  const error = toSidecarError(caught)
  if (error?.field === undefined) return caught
  const label = selection.labels[error.field as Field]
  if (label === undefined || label === error.field) return error
  error.field = label
  error.message = `${label}: ${error.message}`
  return error
}
