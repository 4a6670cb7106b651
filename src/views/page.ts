/**
 * The token page (`GET /`): pure functions from what the sidecar knows to HTML. Everything
 * interpolated is escaped (see `html.ts`); the page's behaviour is in `assets/page.js`, its look
 * in `assets/page.css`, both served by the app itself so that the CSP can forbid everything else.
 *
 * Without JavaScript the page still shows the default token (masked, with a `<details>` to show
 * it) and its expiry; the script adds Copy, New token, the countdown and the request form.
 *
 * @example
 * const page = renderPage({ appId: '1127900106117', apiBase: 'https://api.coze.cn', ... }).value
 */
import { variantLabel, type TokenRequest } from '../coze/variants.js'
import { html, type SafeHtml } from './html.js'

/** An error as the JSON API answers it, so that the script and the server render the same thing. */
export interface ErrorView {
  statusCode: number
  code: string
  message: string
  coze?: { error_code?: string, error_message?: string, logid?: string }
}

export interface TokenView {
  accessToken: string
  /** Absolute expiry, Unix seconds; unknown for some static tokens. */
  expiresIn?: number
  stale: boolean
}

export interface PageModel {
  /** The credential shown, and every configured one (a picker when there are several). */
  app: string
  apps: string[]
  /** Undefined for a static token. */
  appId?: string
  /** `Config.apiBase`. */
  apiBase: string
  /** The request of callers that name nothing: its variant is shown. */
  defaultRequest: Pick<TokenRequest, 'accountId' | 'enterpriseId' | 'ttl'>
  demo: boolean
  /**
   * The caller secret is required: the page carries no token, and asks for the secret instead
   * (a browser's navigation cannot send `Authorization`).
   */
  authRequired: boolean
  /** The default request's token, or why there is none. Absent when `authRequired`. */
  current?: { token: TokenView } | { error: ErrorView }
  /** Coze's API is served through the sidecar (`SIDECAR_GATEWAY`): the page shows how. */
  gateway?: boolean
  /** The `Host` the page was asked for (already checked against the allow-list), for the curl line. */
  host: string
  version: string
}

/** "coze.cn" and "coze.com" for Coze's two API bases; the URL for anything else (the emulator). */
export function apiBaseLabel (apiBase: string): string {
  const host = new URL(apiBase).host
  if (host === 'api.coze.cn') return 'coze.cn'
  if (host === 'api.coze.com') return 'coze.com'
  return apiBase
}

export { variantLabel }

/**
 * A token as it may be shown at a glance: its first 4 and last 4 characters (`czs_` and enough
 * to tell two tokens apart), the rest as bullets. Short tokens are hidden whole.
 */
export function maskToken (token: string): string {
  if (token.length < 16) return '•'.repeat(12)
  return `${token.slice(0, 4)}${'•'.repeat(16)}${token.slice(-4)}`
}

/** Unix seconds as `2025-01-31 12:00:00 UTC`: the server does not know the reader's time zone. */
export function formatUtc (seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
}

function tokenPanel (model: PageModel): SafeHtml {
  const current = model.current
  const token = current !== undefined && 'token' in current ? current.token : undefined
  const error = current !== undefined && 'error' in current ? current.error : undefined
  const coze = error?.coze
  const expiresIn = token?.expiresIn
  const expires = expiresIn === undefined ? undefined : new Date(expiresIn * 1000).toISOString()
  return html`
    <section class="card" id="token-panel" aria-labelledby="token-heading">
      <h2 id="token-heading">Access token</h2>
      <p class="muted">For <span id="token-for">the default request</span></p>
      <p id="token-empty"${token !== undefined || error !== undefined ? html` hidden` : ''}>Enter the caller secret above to get a token.</p>
      <div id="token-view"${token === undefined ? html` hidden` : ''}>
        <div class="token-row">
          <span class="sr-only">Token, masked:</span>
          <code class="token" id="token-masked">${token === undefined ? '' : maskToken(token.accessToken)}</code>
          <button type="button" id="copy" hidden>Copy</button>
        </div>
        <details id="token-reveal">
          <summary><span class="when-closed">Show</span><span class="when-open">Hide</span><span class="sr-only"> the full token</span></summary>
          <code class="token full" id="token-value">${token?.accessToken}</code>
        </details>
        <dl class="facts">
          <dt>Expires</dt>
          <dd><time id="expires-at" datetime="${expires}">${expiresIn === undefined ? (token === undefined ? '' : 'not known (a static token)') : formatUtc(expiresIn)}</time>
            <span id="countdown"></span></dd>
          <dt>Type</dt>
          <dd><code>Bearer</code></dd>
        </dl>
        <p class="note" id="stale"${token?.stale === true ? '' : html` hidden`}>Coze is not answering: this is the previous token, served while it is still valid.</p>
      </div>
      <div class="error" id="token-error" role="alert"${error === undefined ? html` hidden` : ''}>
        <p class="error-title"><span id="error-code">${error?.code}</span> <span class="muted">HTTP <span id="error-status">${error?.statusCode}</span></span></p>
        <p id="error-message">${error?.message}</p>
        <dl class="facts" id="coze-details"${coze === undefined ? html` hidden` : ''}>
          <div id="coze-code-row"${coze?.error_code === undefined ? html` hidden` : ''}>
            <dt>Coze error code</dt>
            <dd><code id="coze-code">${coze?.error_code}</code></dd>
          </div>
          <div id="coze-message-row"${coze?.error_message === undefined ? html` hidden` : ''}>
            <dt>Coze message</dt>
            <dd id="coze-message">${coze?.error_message}</dd>
          </div>
          <div id="coze-logid-row"${coze?.logid === undefined ? html` hidden` : ''}>
            <dt>logid</dt>
            <dd><code id="coze-logid">${coze?.logid}</code> <span class="muted">(quote it to Coze support)</span></dd>
          </div>
        </dl>
      </div>
      <div class="actions">
        <button type="button" id="new-token" hidden>New token</button>
        <span id="status" role="status" aria-live="polite"></span>
      </div>
      <noscript><p class="muted">Reload the page to see the current token. Copy, New token and the form below need JavaScript.</p></noscript>
    </section>`
}

function authPanel (): SafeHtml {
  // The input has no name: even a form submitted without the script sends nothing anywhere.
  return html`
    <section class="card" id="auth" aria-labelledby="auth-heading">
      <h2 id="auth-heading">Caller secret</h2>
      <p>This sidecar hands out tokens only to callers that send a secret it knows (<code>SIDECAR_AUTH_TOKEN</code>, or a caller's in <code>SIDECAR_CALLERS_FILE</code>).
        The page keeps it in this tab's memory only and sends it as an <code>Authorization</code> header, never in a URL.</p>
      <form id="auth-form" class="inline-form" hidden>
        <label for="secret">Secret</label>
        <input type="password" id="secret" autocomplete="off" spellcheck="false">
        <button type="submit">Unlock</button>
        <button type="button" id="forget" hidden>Forget it</button>
      </form>
      <p id="auth-status" role="status" aria-live="polite"></p>
      <noscript><p>Without JavaScript the page cannot send the secret: use <code>curl -H "Authorization: Bearer $SIDECAR_AUTH_TOKEN"</code>.</p></noscript>
    </section>`
}

function requestPanel (host: string, curlAuth: string): SafeHtml {
  return html`
    <section class="card" id="request" aria-labelledby="request-heading">
      <h2 id="request-heading">A token for someone else</h2>
      <p class="muted" id="caller-rights" role="status" hidden></p>
      <form id="request-form" hidden>
        <p class="muted" id="request-hint">Fill in any of these; leave them all empty for the default request.
          An account id and an enterprise id cannot be combined.</p>
        <div class="fields">
          <label for="session-name">Session name <span class="muted">(your user's id)</span></label>
          <input id="session-name" name="session_name" maxlength="256" autocomplete="off" aria-describedby="request-hint">
          <label for="account-id">Account id <span class="muted">(cross-account)</span></label>
          <input id="account-id" name="account_id" inputmode="numeric" pattern="[0-9]{1,20}" maxlength="20" autocomplete="off" aria-describedby="request-hint">
          <label for="enterprise-id">Enterprise id <span class="muted">(privileged app)</span></label>
          <input id="enterprise-id" name="enterprise_id" pattern="[A-Za-z0-9_.:*\\-]{1,128}" maxlength="128" autocomplete="off" aria-describedby="request-hint">
        </div>
        <button type="submit">Get token</button>
      </form>
      <noscript><p>This form needs JavaScript; or ask directly: <code>curl -s${curlAuth} 'http://${host}/token?session_name=user-42'</code>.</p></noscript>
    </section>`
}

/** A plain GET form: picking a credential works without JavaScript. */
function appPicker (model: PageModel): SafeHtml {
  return html`
      <form id="app-form" class="inline-form" method="get" action="/">
        <label for="app-select">Credential</label>
        <select id="app-select" name="app">${model.apps.map((name) => html`<option value="${name}"${name === model.app ? html` selected` : ''}>${name}</option>`)}</select>
        <button type="submit">Show</button>
      </form>`
}

/** The same call made by the sidecar itself (the gateway): the base-URL prefix picks the credential. */
function throughSidecar (model: PageModel, curlAuth: string): SafeHtml {
  const prefix = model.apps.length > 1 ? `apps/${model.app}/` : ''
  return html`

# or let the sidecar call Coze with the right token (any SDK's base URL works the same way):
curl -s${curlAuth} 'http://${model.host}/${prefix}v1/workspaces'`
}

/** The whole page. */
export function renderPage (model: PageModel): SafeHtml {
  const curlAuth = model.authRequired ? ' -H "Authorization: Bearer $SIDECAR_AUTH_TOKEN"' : ''
  return html`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <meta name="referrer" content="no-referrer">
  <title>Coze access token · coze-token-sidecar</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/assets/page.css">
  <script src="/assets/page.js" defer></script>
</head>
<body data-auth="${model.authRequired ? 'required' : 'none'}" data-app="${model.app}">
  ${model.demo ? html`<p class="banner" id="demo-banner" role="note"><strong>Demo mode:</strong> these tokens come from a built-in Coze emulator and are <strong>NOT</strong> valid at Coze</p>` : ''}
  <main>
    <header>
      <h1>Coze access token</h1>
      <p class="muted">coze-token-sidecar ${model.version}</p>
    </header>
    <section class="card" aria-labelledby="app-heading">
      <h2 id="app-heading">OAuth app</h2>
      ${model.apps.length > 1 ? appPicker(model) : ''}
      <dl class="facts">
        <dt>Credential</dt>
        <dd><code id="app-name">${model.app}</code></dd>
        <dt>App id</dt>
        <dd>${model.appId === undefined ? html`<span id="app-id">a static access token</span>` : html`<code id="app-id">${model.appId}</code>`}</dd>
        <dt>API base</dt>
        <dd id="api-base">${apiBaseLabel(model.apiBase)}</dd>
        <dt>Default request</dt>
        <dd>${model.appId === undefined
          ? html`<span id="variant">The token as configured</span><span class="muted">, no sessions</span>`
          : html`<span id="variant">${variantLabel(model.defaultRequest)}</span><span class="muted">, ${model.defaultRequest.ttl} s tokens</span>`}</dd>
      </dl>
    </section>
    ${model.authRequired ? authPanel() : ''}
    ${tokenPanel(model)}
    ${requestPanel(model.host, curlAuth)}
    <section class="card" aria-labelledby="use-heading">
      <h2 id="use-heading">Use it</h2>
      <pre><code>TOKEN=$(curl -s${curlAuth}${model.authRequired ? ' \\\n ' : ''} 'http://${model.host}/token?${model.apps.length > 1 ? `app=${model.app}&` : ''}format=text')
curl -H "Authorization: Bearer $TOKEN" ${model.apiBase}/v1/workspaces${model.gateway === true ? throughSidecar(model, curlAuth) : ''}</code></pre>
    </section>
  </main>
</body>
</html>
`
}
