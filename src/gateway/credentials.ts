/**
 * The seam between the gateway and the credentials it calls Coze with: a name in (`X-Coze-App`,
 * `/apps/{app}`), a credential out. Today there is one credential, `default`, built from the
 * app's token cache and settings; a registry of named credentials implements the same interface.
 *
 * @example
 * const credentials = singleCredential({ tokens: app.tokens, apiBase: app.config.apiBase, defaultRequest: app.config.defaultRequest })
 * const credential = credentials.resolve(request.headers['x-coze-app']) // 400 naming `app` when unknown
 * const { accessToken } = await credential.tokens.get(tokenRequest, 5_000)
 */
import type { TokenRequest } from '../coze/variants.js'
import { details, errors } from '../errors.js'
import type { TokenCache } from '../token/cache.js'

export interface GatewayTokens {
  /** A valid token for `request` (cached, or from Coze within `deadlineMs`); throws the sidecar's errors. */
  get: (request: TokenRequest, deadlineMs: number) => Promise<{ accessToken: string }>
  /**
   * Drops the cached token for `request`, but only while it is still `failed` (when given): the
   * first of many callers refused with the same revoked token drops it, the others then share the
   * one exchange that replaces it instead of each starting their own.
   */
  delete: (request: TokenRequest, failed?: string) => void
}

export interface GatewayCredential {
  name: string
  tokens: GatewayTokens
  /** Where `/v1/…` goes: `https://api.coze.cn`, or the emulator. */
  apiBase: URL
  /** Where WebSockets go: `wss://ws.coze.cn`, derived from `apiBase` unless set. */
  wsBase: URL
  /** The token request of a caller that selects nothing. */
  defaultRequest: TokenRequest
}

export interface CredentialResolver {
  /** @throws INVALID_PARAMETER (400, field `app`) for a name no credential has. */
  resolve: (app: string | undefined) => GatewayCredential
}

/**
 * The WebSocket base the SDKs derive from an API base: `api.` becomes `ws.` in the host
 * (cozepy `http_base_url_to_ws`), https becomes wss. A host without `api.` (the emulator on
 * 127.0.0.1) keeps its host.
 */
export function deriveWsBase (apiBase: URL): URL {
  const url = new URL(apiBase.href)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  if (url.hostname.startsWith('api.')) url.hostname = `ws.${url.hostname.slice(4)}`
  return url
}

export interface SingleCredentialOptions {
  tokens: Pick<TokenCache, 'get' | 'delete' | 'status'>
  /** `config.apiBase`. */
  apiBase: string
  /** `COZE_WS_BASE`, when set. */
  wsBase?: URL
  defaultRequest: TokenRequest
}

export const DEFAULT_APP = 'default'

/** Today's one credential, named `default`. */
export function singleCredential (options: SingleCredentialOptions): CredentialResolver {
  const cache = options.tokens
  const apiBase = new URL(options.apiBase)
  const credential: GatewayCredential = {
    name: DEFAULT_APP,
    apiBase,
    wsBase: options.wsBase ?? deriveWsBase(apiBase),
    defaultRequest: options.defaultRequest,
    tokens: {
      get: (request, deadlineMs) => cache.get(request, deadlineMs),
      delete: (request, failed) => {
        if (failed === undefined || cache.status(request).token?.accessToken === failed) cache.delete(request)
      }
    }
  }
  return {
    resolve: (app) => {
      if (app === undefined || app === DEFAULT_APP) return credential
      throw details(new errors.InvalidParameter(`app names no configured credential (configured: ${DEFAULT_APP})`), { field: 'app' })
    }
  }
}
