/**
 * The seam between the gateway and the credentials it calls Coze with: a name in (`X-Coze-App`,
 * `/apps/{app}`), a credential of the registry out, with the API and WebSocket bases it calls.
 *
 * @example
 * const credentials = registryCredentials(app.credentials, settings.wsBase)
 * const credential = credentials.resolve(request.headers['x-coze-app']) // 400 naming `app` when unknown
 * const { accessToken } = await credential.tokens.get(tokenRequest, 5_000)
 */
import type { TokenRequest } from '../coze/variants.js'
import type { Credential } from '../credentials/credential.js'

export interface GatewayTokens {
  /** The cached token for `request` while it may be handed out, without a promise; else undefined. */
  cached: (request: TokenRequest) => { accessToken: string } | undefined
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
  /** The registry's credential: its kind decides which selectors it takes. */
  source: Pick<Credential, 'name' | 'spec' | 'defaultRequest'>
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

/** The registry's side of the seam: a credential by name, or the default one. */
export interface CredentialSource {
  /** @throws SelectionError (field `app`) for an unknown name, or none named and no default. */
  select: (name?: string) => Credential
}

/**
 * The registry's credentials as the gateway sees them. `COZE_WS_BASE` (`wsBase`) is the WebSocket
 * base of the credential the environment configures, `default`; every other credential derives
 * its own from its API base, as the SDKs do.
 */
export function registryCredentials (registry: CredentialSource, wsBase?: URL): CredentialResolver {
  // One view per version of a credential: a reload applies a new spec (base, defaults), and so
  // makes a new view, without any work per request.
  const views = new WeakMap<Credential['spec'], GatewayCredential>()
  return {
    resolve: (app) => {
      // A SelectionError for an unknown name: the plugin answers it as the 400 naming `app`.
      const credential = registry.select(app)
      let view = views.get(credential.spec)
      if (view === undefined) {
        view = viewOf(credential, credential.name === 'default' ? wsBase : undefined)
        views.set(credential.spec, view)
      }
      return view
    }
  }
}

function viewOf (credential: Credential, wsBase: URL | undefined): GatewayCredential {
  const apiBase = new URL(credential.spec.apiBase)
  const cache = credential.tokens
  return {
    name: credential.name,
    source: credential,
    apiBase,
    wsBase: wsBase ?? deriveWsBase(apiBase),
    defaultRequest: credential.defaultRequest,
    tokens: {
      cached: (request) => cache.cached(request),
      get: (request, deadlineMs) => cache.get(request, deadlineMs),
      delete: (request, failed) => {
        if (failed === undefined || cache.status(request).token?.accessToken === failed) cache.delete(request)
      }
    }
  }
}
