/**
 * The gateway's settings, resolved from the one settings table (src/settings.ts): the limits, the
 * idle timeout, and `COZE_WS_BASE` checked to be a ws(s) URL.
 *
 * @example
 * const settings = gatewaySettings(validateSettings(env)) // throws ConfigError('COZE_WS_BASE', …)
 */
import { ConfigError } from '../config-error.js'
import { fixFor, type Settings } from '../settings.js'

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

/** The gateway's settings, from the validated settings table. @throws ConfigError for a bad COZE_WS_BASE. */
export function gatewaySettings (settings: Settings): GatewaySettings {
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
    throw new ConfigError('COZE_WS_BASE', `is not a URL: ${fixFor('COZE_WS_BASE')}`)
  }
  if (url.protocol !== 'wss:' && url.protocol !== 'ws:') {
    throw new ConfigError('COZE_WS_BASE', `must be ws(s), not ${url.protocol.replace(/:$/, '')}: ${fixFor('COZE_WS_BASE')}`)
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError('COZE_WS_BASE', `must not contain credentials, a query or a fragment: ${fixFor('COZE_WS_BASE')}`)
  }
  return url
}
