import t from 'tap'
import { apiBaseLabel, formatUtc, maskToken, renderPage, variantLabel, type PageModel } from '../../src/views/page.js'

const TOKEN = 'czs_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123'

const model = (extra: Partial<PageModel> = {}): PageModel => ({
  app: 'default',
  apps: ['default'],
  appId: '1127900106117',
  apiBase: 'https://api.coze.cn',
  defaultRequest: { ttl: 900 },
  demo: false,
  authRequired: false,
  host: '127.0.0.1:8080',
  version: '0.1.0',
  ...extra
})

t.test('labels', async (t) => {
  t.equal(apiBaseLabel('https://api.coze.cn'), 'coze.cn')
  t.equal(apiBaseLabel('https://api.coze.com'), 'coze.com')
  t.equal(apiBaseLabel('http://127.0.0.1:8090'), 'http://127.0.0.1:8090', 'anything else: the URL')
  t.equal(apiBaseLabel('https://api.coze.cn:8443'), 'https://api.coze.cn:8443', 'another port is another place')
  t.equal(variantLabel({}), 'Developer')
  t.equal(variantLabel({ accountId: '7351' }), 'Cross-account, account 7351')
  t.equal(variantLabel({ enterpriseId: 'volcano_1' }), 'Enterprise privileged app, enterprise volcano_1')
  t.equal(formatUtc(1_767_225_600), '2026-01-01 00:00:00 UTC')
})

t.test('maskToken: the ends only', async (t) => {
  t.equal(maskToken(TOKEN), `czs_${'•'.repeat(16)}0123`)
  t.notMatch(maskToken(TOKEN), /abc/)
  t.equal(maskToken('czs_short'), '•'.repeat(12), 'a short token is hidden whole')
  t.equal(maskToken('czs_0123456789ab'), `czs_${'•'.repeat(16)}89ab`)
})

t.test('renderPage: a token', async (t) => {
  const page = renderPage(model({ current: { token: { accessToken: TOKEN, expiresIn: 1_767_225_600, stale: true } } })).value
  t.match(page, /^<!doctype html>\n<html lang="en">/)
  t.match(page, '<link rel="stylesheet" href="/assets/page.css">')
  t.match(page, '<script src="/assets/page.js" defer></script>')
  t.match(page, '<dd id="api-base">coze.cn</dd>')
  t.match(page, `<code class="token full" id="token-value">${TOKEN}</code>`)
  t.match(page, '<time id="expires-at" datetime="2026-01-01T00:00:00.000Z">2026-01-01 00:00:00 UTC</time>')
  t.match(page, '<p class="note" id="stale">', 'a stale token says so')
  t.match(page, '<p id="token-empty" hidden>')
  t.match(page, '<dl class="facts" id="coze-details" hidden>')
  t.match(page, 'curl -H "Authorization: Bearer $TOKEN" https://api.coze.cn/v1/workspaces')
  t.notMatch(page, /Demo mode/)
})

t.test('renderPage: an error without Coze details; a fresh token is not flagged stale', async (t) => {
  const page = renderPage(model({ current: { error: { statusCode: 504, code: 'UPSTREAM_TIMEOUT', message: 'no answer' } } })).value
  t.match(page, '<div id="token-view" hidden>')
  t.match(page, '<span id="error-code">UPSTREAM_TIMEOUT</span>')
  t.match(page, '<dl class="facts" id="coze-details" hidden>')
  t.match(page, '<p id="token-empty" hidden>')
  const fresh = renderPage(model({ current: { token: { accessToken: TOKEN, expiresIn: 1, stale: false } } })).value
  t.match(fresh, '<p class="note" id="stale" hidden>')
})

t.test('renderPage: nothing yet (a caller secret is required)', async (t) => {
  const page = renderPage(model({ authRequired: true, demo: true })).value
  t.match(page, '<p id="token-empty">')
  t.match(page, '<div id="token-view" hidden>')
  t.match(page, '<div class="error" id="token-error" role="alert" hidden>')
  t.match(page, '<time id="expires-at" datetime=""></time>')
  t.match(page, 'id="demo-banner"')
  t.match(page, 'id="auth-form"')
})

t.test('renderPage: everything from outside is escaped', async (t) => {
  const evil = '"><script>alert(1)</script>'
  const page = renderPage(model({
    appId: evil,
    apiBase: 'http://127.0.0.1:1/"><script>',
    defaultRequest: { ttl: 900, enterpriseId: evil },
    host: 'localhost"><script>',
    current: {
      error: {
        statusCode: 502,
        code: evil,
        message: evil,
        coze: { error_code: evil, error_message: `onmouseover="alert(1)" ${evil}`, logid: evil }
      }
    }
  })).value
  t.notMatch(page, /<script>/, 'no script element but the page\'s own')
  t.notMatch(page, /"onmouseover|"><script/)
  t.equal(page.match(/<script\b/g)?.length, 1, 'only /assets/page.js')
  t.match(page, '<code id="coze-logid">&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</code>')
  t.match(page, '<dd id="coze-message">onmouseover=&quot;alert(1)&quot;')
})

t.test('the "Use it" box shows the call through the sidecar when the gateway is on', async (t) => {
  const off = renderPage(model()).value
  t.notMatch(off, /let the sidecar call Coze/)
  const on = renderPage(model({ gateway: true })).value
  t.match(on, /curl -s 'http:\/\/127\.0\.0\.1:8080\/v1\/workspaces'/)
  const several = renderPage(model({ gateway: true, apps: ['cn', 'com'], app: 'com' })).value
  t.match(several, /'http:\/\/127\.0\.0\.1:8080\/apps\/com\/v1\/workspaces'/, 'the picked credential, as a base-URL prefix')
})
