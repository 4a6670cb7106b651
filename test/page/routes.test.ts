import { readFile } from 'node:fs/promises'
import t from 'tap'
import { errors } from '../../src/errors.js'
import { CONTENT_SECURITY_POLICY, errorView } from '../../src/routes/page.js'
import { APP_ID, startEmulator, startSidecar } from '../fixtures/harness.js'

const SECRET = 'page-route-secret-0123456789abcdef'

const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store'
}

t.test('GET /: the default token, masked and in a <details>, with its expiry; the security headers', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const response = await app.inject({ url: '/', headers: { host: '127.0.0.1:8080' } })
  t.equal(response.statusCode, 200)
  t.match(response.headers, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' })
  t.equal(CONTENT_SECURITY_POLICY, PAGE_HEADERS['content-security-policy'])
  const token = (await app.inject('/token')).json()
  const body = response.body
  t.match(body, `<code class="token" id="token-masked">czs_${'•'.repeat(16)}${token.access_token.slice(-4)}</code>`)
  t.match(body, new RegExp(`<details id="token-reveal">\\s*<summary>.*Show.*</summary>\\s*<code class="token full" id="token-value">${token.access_token}</code>`))
  t.match(body, `<time id="expires-at" datetime="${token.expires_at}">${token.expires_at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>`)
  t.match(body, `<code id="app-id">${APP_ID}</code>`)
  t.match(body, `<dd id="api-base">${emulator.url}</dd>`)
  t.match(body, '<span id="variant">Developer</span>')
  t.match(body, 'data-auth="none"')
  t.match(body, "curl -s 'http://127.0.0.1:8080/token?format=text'", 'the curl line names the host asked for')
  t.notMatch(body, /Demo mode/, 'no demo banner outside demo mode')
  t.notMatch(body, /id="auth"/, 'no secret form without a secret')
  t.notMatch(body, /<script>|style="/, 'no inline script or style')
  t.match(body, '<div class="error" id="token-error" role="alert" hidden>', 'no error')
  t.equal(emulator.state.exchangeCount, 1, 'the page and /token share the cached token')
})

t.test('GET /: the variant, the API base label and the demo banner', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_ACCOUNT_ID: '7351', SIDECAR_DEMO: 'true' })
  const body = (await app.inject('/')).body
  t.match(body, '<span id="variant">Cross-account, account 7351</span>')
  t.match(body, 'Demo mode:</strong> these tokens come from a built-in Coze emulator and are <strong>NOT</strong> valid at Coze')
})

t.test('GET /: when Coze refuses, its error code, message and logid, escaped', async (t) => {
  const emulator = await startEmulator(t)
  const { app, logs } = await startSidecar(t, emulator)
  emulator.state.setEnabled(APP_ID, false)
  const response = await app.inject('/')
  t.equal(response.statusCode, 200, 'the page itself is fine')
  const body = response.body
  t.match(body, '<div class="error" id="token-error" role="alert">')
  t.match(body, '<span id="error-code">COZE_ACCESS_DENY</span>')
  t.match(body, '<span id="error-status">502</span>')
  t.match(body, '<code id="coze-code">access_deny</code>')
  const logid = /<code id="coze-logid">([^<]*)<\/code>/.exec(body)?.[1]
  t.match(logid, /^\d{14}[0-9A-F]{20}$/)
  t.ok(logs.exchanges.some((exchange) => exchange.logid === logid), 'the logid Coze sent')
  t.match(body, '<div id="token-view" hidden>', 'no token')
  t.notMatch(body, /czs_/)
})

t.test('GET /: an unexpected error is an internal error on the page, its details in the log', async (t) => {
  const emulator = await startEmulator(t)
  const { app, logs } = await startSidecar(t, emulator)
  app.credentials.select().tokens.get = async () => { throw new TypeError('a bug with <b>markup</b>') }
  const body = (await app.inject('/')).body
  t.match(body, '<span id="error-code">INTERNAL_ERROR</span>')
  t.match(body, '<p id="error-message">internal error</p>')
  t.notMatch(body, /a bug/, 'nothing of the bug on the page')
  t.ok(logs.lines.some((line) => line.level === 50 && (line.err as { message?: string })?.message === 'a bug with <b>markup</b>'))
})

t.test('errorView: the JSON error shape', async (t) => {
  t.same(errorView(new errors.UpstreamTimeout('too slow')), { statusCode: 504, code: 'UPSTREAM_TIMEOUT', message: 'too slow' })
  const refused = Object.assign(new errors.CozeInvalidClient('kid'), { coze: { error_code: 'invalid_client', logid: 'L1' } })
  t.same(errorView(refused), { statusCode: 502, code: 'COZE_INVALID_CLIENT', message: 'Coze refused the JWT: kid', coze: { error_code: 'invalid_client', logid: 'L1' } })
  const fastify = Object.assign(new Error('x'), { code: 'FST_ERR_SOMETHING', statusCode: 500 })
  t.same(errorView(fastify), { statusCode: 500, code: 'INTERNAL_ERROR', message: 'internal error' })
  t.same(errorView('not an error'), { statusCode: 500, code: 'INTERNAL_ERROR', message: 'internal error' })
})

t.test('the assets: served from memory, with the same headers', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const css = await app.inject('/assets/page.css')
  t.equal(css.statusCode, 200)
  t.match(css.headers, { ...PAGE_HEADERS, 'content-type': 'text/css; charset=utf-8' })
  t.equal(css.body, await readFile(new URL('../../src/views/assets/page.css', import.meta.url), 'utf8'))
  const js = await app.inject('/assets/page.js')
  t.equal(js.statusCode, 200)
  t.match(js.headers, { ...PAGE_HEADERS, 'content-type': 'text/javascript; charset=utf-8' })
  t.equal(js.body, await readFile(new URL('../../src/views/assets/page.js', import.meta.url), 'utf8'))
  t.equal((await app.inject('/assets/other.js')).statusCode, 404, 'nothing else')
  t.equal((await app.inject('/assets/..%2Fpage.ts')).statusCode, 404)
  t.equal((await app.inject({ method: 'HEAD', url: '/' })).statusCode, 200)
})

t.test('with a caller secret: the page and its assets load without it, carry no token, and /token still needs it', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_AUTH_TOKEN: SECRET })
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers, PAGE_HEADERS)
  t.match(page.body, 'data-auth="required"')
  t.match(page.body, '<form id="auth-form" class="inline-form" hidden>')
  t.match(page.body, /<input type="password" id="secret"(?![^>]*name=)[^>]*>/, 'the secret field has no name: never submitted')
  t.match(page.body, '<p id="token-empty">Enter the caller secret above to get a token.</p>')
  t.notMatch(page.body, /czs_/, 'no token')
  t.match(page.body, 'curl -s -H &quot;Authorization: Bearer $SIDECAR_AUTH_TOKEN&quot;', 'the curl line sends the secret')
  t.equal(emulator.state.exchangeCount, 0, 'nor was one asked for')
  t.equal((await app.inject('/assets/page.js')).statusCode, 200)
  t.equal((await app.inject('/assets/page.css')).statusCode, 200)
  t.equal((await app.inject('/token')).statusCode, 401)
  t.equal((await app.inject({ method: 'DELETE', url: '/token' })).statusCode, 401)
  t.equal((await app.inject({ url: '/token', headers: { authorization: `Bearer ${SECRET}` } })).statusCode, 200)
})

t.test('every other access rule applies to the page and its assets', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, {
    SIDECAR_AUTH_TOKEN: SECRET, SIDECAR_REQUIRE_HEADER: 'Metadata-Flavor: Coze', SIDECAR_REJECT_FORWARDED: 'true'
  })
  const ok = { host: 'localhost:8080', 'metadata-flavor': 'Coze' }
  const table: Array<[string, Record<string, string>, string]> = [
    ['a rebinding Host', { ...ok, host: 'evil.example:8080' }, 'HOST_NOT_ALLOWED'],
    ['cross-site', { ...ok, 'sec-fetch-site': 'cross-site' }, 'CROSS_SITE_REQUEST'],
    ['a foreign Origin', { ...ok, origin: 'https://evil.example' }, 'CROSS_SITE_REQUEST'],
    ['forwarded', { ...ok, 'x-forwarded-for': '1.2.3.4' }, 'FORWARDED_REQUEST'],
    ['no required header', { host: ok.host }, 'MISSING_REQUIRED_HEADER']
  ]
  for (const url of ['/', '/assets/page.js', '/assets/page.css']) {
    t.equal((await app.inject({ url, headers: ok })).statusCode, 200, `${url} with the right headers`)
    for (const [name, headers, code] of table) {
      const response = await app.inject({ url, headers })
      t.equal(response.statusCode, 403, `${url}: ${name}`)
      t.equal(response.json().code, code)
      t.match(response.headers, PAGE_HEADERS, 'a refusal carries the headers too')
    }
  }
})
