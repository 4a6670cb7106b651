/**
 * The gateway's settings: one JSON schema, validated once at start (env-schema, the engine of
 * @fastify/env), each bad value a {@link ConfigError} naming the setting and the fix.
 *
 * @example
 * const settings = gatewaySettings(env) // throws ConfigError('SIDECAR_GATEWAY_BODY_LIMIT', …)
 */
import envSchema from 'env-schema'
import { ConfigError } from '../errors.js'

const MiB = 1024 * 1024

export const gatewaySettingsSchema = {
  type: 'object',
  properties: {
    SIDECAR_GATEWAY: { type: 'string', enum: ['on', 'off'], default: 'on' },
    SIDECAR_GATEWAY_BODY_LIMIT: { type: 'integer', minimum: 1024, maximum: 64 * MiB, default: MiB },
    SIDECAR_GATEWAY_UPLOAD_LIMIT: { type: 'integer', minimum: 1024, maximum: 4096 * MiB, default: 512 * MiB },
    SIDECAR_GATEWAY_IDLE_TIMEOUT: { type: 'number', exclusiveMinimum: 0, maximum: 3600, default: 300 },
    COZE_WS_BASE: { type: 'string', minLength: 1 }
  }
} as const

type Setting = keyof typeof gatewaySettingsSchema.properties

const FIXES: Record<Setting, string> = {
  SIDECAR_GATEWAY: 'set it to on or off',
  SIDECAR_GATEWAY_BODY_LIMIT: `set it to a number of bytes from 1024 to ${64 * MiB}`,
  SIDECAR_GATEWAY_UPLOAD_LIMIT: `set it to a number of bytes from 1024 to ${4096 * MiB}`,
  SIDECAR_GATEWAY_IDLE_TIMEOUT: 'set it to a number of seconds above 0 and at most 3600',
  COZE_WS_BASE: 'set it to wss://ws.coze.cn or wss://ws.coze.com, or leave it unset to derive it from COZE_API_BASE'
}

export interface GatewaySettings {
  enabled: boolean
  /** Requests other than multipart are held up to this, so that they can be replayed. */
  bodyLimit: number
  /** Multipart uploads stream through up to this. */
  uploadLimit: number
  /** Longest silence allowed while waiting for Coze's headers or between body chunks. */
  idleTimeoutMs: number
  /** `COZE_WS_BASE`; unset: derived from the API base. */
  wsBase?: URL
}

/** Reads and checks the gateway's settings. Blank values count as unset. */
export function gatewaySettings (env: Record<string, string | undefined>): GatewaySettings {
  const data: Record<string, string> = {}
  for (const name of Object.keys(gatewaySettingsSchema.properties)) {
    const value = env[name]
    if (value !== undefined && value.trim() !== '') data[name] = value.trim()
  }
  let settings: { SIDECAR_GATEWAY: 'on' | 'off', SIDECAR_GATEWAY_BODY_LIMIT: number, SIDECAR_GATEWAY_UPLOAD_LIMIT: number, SIDECAR_GATEWAY_IDLE_TIMEOUT: number, COZE_WS_BASE?: string }
  try {
    settings = envSchema({ schema: structuredClone(gatewaySettingsSchema) as object, data, env: false }) as unknown as typeof settings
  } catch (error) {
    const problem = (error as { errors?: Array<{ instancePath: string, message: string }> }).errors?.[0]
    /* c8 ignore next - env-schema attaches ajv's errors to everything it throws */
    if (problem === undefined) throw error
    const setting = problem.instancePath.slice(1) as Setting
    throw new ConfigError(setting, `is invalid (${problem.message}): ${FIXES[setting]}`)
  }
  const result: GatewaySettings = {
    enabled: settings.SIDECAR_GATEWAY === 'on',
    bodyLimit: settings.SIDECAR_GATEWAY_BODY_LIMIT,
    uploadLimit: settings.SIDECAR_GATEWAY_UPLOAD_LIMIT,
    idleTimeoutMs: Math.round(settings.SIDECAR_GATEWAY_IDLE_TIMEOUT * 1000)
  }
  if (settings.COZE_WS_BASE !== undefined) result.wsBase = parseWsBase(settings.COZE_WS_BASE)
  return result
}

function parseWsBase (value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError('COZE_WS_BASE', `is not a URL: ${FIXES.COZE_WS_BASE}`)
  }
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') {
    throw new ConfigError('COZE_WS_BASE', `must be ws(s), not ${url.protocol.replace(/:$/, '')}: ${FIXES.COZE_WS_BASE}`)
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError('COZE_WS_BASE', `must not contain credentials, a query or a fragment: ${FIXES.COZE_WS_BASE}`)
  }
  return url
}
