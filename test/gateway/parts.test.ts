/**
 * The gateway's framework-free parts, table-driven: targets, selection, headers, the replay
 * decision, settings, the credential seam.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import t from 'tap'
import type { Credential } from '../../src/credentials/credential.js'
import { SelectionError } from '../../src/credentials/errors.js'
import { describeValidation } from '../../src/app.js'
import { deriveWsBase, registryCredentials } from '../../src/gateway/credentials.js'
import { downstreamHeaders, droppedHeaders, upstreamHeaders } from '../../src/gateway/headers.js'
import { UploadLimit } from '../../src/gateway/http.js'
import { forLog, parseTarget } from '../../src/gateway/paths.js'
import { cozeCode, isJson, isTokenRefusal } from '../../src/gateway/replay.js'
import { readSelection, relabel, type DescribeValidation } from '../../src/gateway/selection.js'
import { gatewaySettings } from '../../src/gateway/settings.js'
import { validateSettings } from '../../src/settings.js'
import { handshakeRefusal } from '../../src/gateway/websocket.js'
import { errors } from '../../src/errors.js'

const describe = describeValidation as DescribeValidation

t.test('parseTarget: what is forwarded, with which prefix and query', async (t) => {
  const cases: Array<[string, object]> = [
    ['/v3/chat', { family: 'v3', path: '/v3/chat', query: '', prefix: {} }],
    ['/v1/files/upload?', { family: 'v1', path: '/v1/files/upload', query: '' }],
    ['/open_api/v2/chat?a=1&&flag&b=2', { family: 'open_api', path: '/open_api/v2/chat', query: '?a=1&flag&b=2' }],
    ['/v1/chat?bot_id=7&Authorization=Bearer+secret%21', { path: '/v1/chat', query: '?bot_id=7', authorization: 'Bearer secret!' }],
    ['/v1/chat?authorization', { query: '', authorization: '' }],
    ['/apps/default/accounts/7351/sessions/u%2042/v1/users/me', { prefix: { app: 'default', accountId: '7351', sessionName: 'u 42' }, path: '/v1/users/me' }],
    ['/enterprises/volcano/v1/x', { prefix: { enterpriseId: 'volcano' } }]
  ]
  for (const [url, expected] of cases) t.match(parseTarget(url), expected, url)
  t.throws(() => parseTarget('/accounts/1/enterprises/2/v1/x'), { code: 'NOT_FOUND' }, 'an account or an enterprise, not both')
  t.throws(() => parseTarget('/enterprises/1/accounts/2/v1/x'), { code: 'NOT_FOUND' })
  t.throws(() => parseTarget('/v1/chat?authorization=%E0%A4%A'), { code: 'GATEWAY_PATH_REFUSED', field: 'path', message: /not valid percent-encoding/ })
  t.throws(() => parseTarget('http://evil.example/v1/x'), { code: 'GATEWAY_PATH_REFUSED', message: /origin-form/ })
  t.throws(() => parseTarget('*'), { code: 'GATEWAY_PATH_REFUSED' })
  t.throws(() => parseTarget('/apps'), { code: 'GATEWAY_PATH_REFUSED', message: /\/apps\/ must be followed by a value/ })
  t.equal(forLog(`/v1/${'x'.repeat(300)}?secret=1`), `/v1/${'x'.repeat(196)}…`)
  t.equal(forLog('/v1/a?secret=1'), '/v1/a')
})

t.test('readSelection: headers and prefix, validated as /token validates', async (t) => {
  t.same(readSelection({ 'x-coze-session-name': 'a', 'x-coze-app': 'default' }, {}, describe), {
    app: 'default', input: { session_name: 'a' }, labels: { app: 'X-Coze-App', session_name: 'X-Coze-Session-Name' }
  })
  t.same(readSelection({}, { accountId: '7', sessionName: 's' }, describe).input, { account_id: '7', session_name: 's' })
  t.throws(() => readSelection({ 'x-coze-app': '' }, {}, describe), { field: 'X-Coze-App', message: 'X-Coze-App must not be empty' })
})

t.test('relabel: only the sidecar\'s own field errors are renamed', async (t) => {
  const selection = readSelection({ 'x-coze-app': 'x' }, { sessionName: 's' }, describe)
  const plain = new Error('boom')
  t.equal(relabel(plain, selection), plain, 'not a sidecar error: as it is')
  const fieldless = new errors.NotFound('GET', '/')
  t.equal(relabel(fieldless, selection), fieldless)
  t.match(relabel(Object.assign(new errors.InvalidParameter('app names nothing'), { field: 'app' }), selection), { field: 'X-Coze-App', message: 'X-Coze-App: app names nothing' })
  t.match(relabel(Object.assign(new errors.InvalidParameter('session_name bad'), { field: 'session_name' }), selection), { field: 'session_name', message: 'session_name bad' })
  t.match(relabel(Object.assign(new errors.InvalidParameter('ttl bad'), { field: 'ttl' }), selection), { field: 'ttl' })
})

t.test('headers: what goes up and what comes down', async (t) => {
  const up = upstreamHeaders({
    host: 'localhost', authorization: 'Bearer caller', connection: 'close, X-Custom', 'x-custom': '1', 'x-kept': '2', 'metadata-flavor': 'Coze', 'x-coze-app': 'a'
  }, droppedHeaders('metadata-flavor'))
  t.same(up, { 'x-kept': '2', 'accept-encoding': 'identity' })
  t.same(upstreamHeaders({ 'x-kept': '1' }, droppedHeaders()), { 'x-kept': '1', 'accept-encoding': 'identity' }, 'no Connection header')
  t.same(downstreamHeaders({ connection: ['keep-alive', 'x-a'], 'x-a': '1', 'transfer-encoding': 'chunked', 'x-tt-logid': 'L', 'set-cookie': ['a', 'b'] }),
    { 'x-tt-logid': 'L', 'set-cookie': ['a', 'b'] })
})

t.test('the replay decision', async (t) => {
  const cases: Array<[number, string, boolean]> = [
    [401, '{"code":4100,"msg":"x"}', true],
    [200, '{"code":4100,"msg":"x"}', true],
    [200, '{"code":700012006}', true],
    [401, '{"code":700012006}', true],
    [403, '{"code":4100}', false],
    [401, 'not json', true],
    [200, '{"code":4101}', false],
    [403, '{"code":4101}', false],
    [429, '{"code":4013}', false],
    [200, '{"code":0}', false]
  ]
  for (const [status, body, refusal] of cases) t.equal(isTokenRefusal(status, cozeCode(Buffer.from(body))), refusal, `${status} ${body}`)
  t.equal(cozeCode(Buffer.from('[1]')), undefined)
  t.equal(cozeCode(Buffer.from('null')), undefined)
  t.equal(cozeCode(Buffer.from('{"code":"4100"}')), undefined, 'a string is no code')
  t.equal(cozeCode(Buffer.from('{"code":1e12}')), undefined, 'bounded')
  t.ok(isJson('application/json; charset=utf-8'))
  t.ok(isJson('application/problem+json'))
  t.notOk(isJson('text/event-stream'))
  t.notOk(isJson(undefined))
})

t.test('settings: defaults, values, COZE_WS_BASE', async (t) => {
  t.same(gatewaySettings(validateSettings({})), { enabled: true, bodyLimit: 1048576, uploadLimit: 536870912, idleTimeoutMs: 300_000 })
  t.match(gatewaySettings(validateSettings({ SIDECAR_GATEWAY: 'off', SIDECAR_GATEWAY_IDLE_TIMEOUT: '1.5', COZE_WS_BASE: 'wss://ws.coze.com', SIDECAR_GATEWAY_BODY_LIMIT: '' })), {
    enabled: false, idleTimeoutMs: 1500, bodyLimit: 1048576, wsBase: new URL('wss://ws.coze.com')
  })
  t.throws(() => gatewaySettings(validateSettings({ COZE_WS_BASE: 'wss://ws.coze.cn/?a=1' })), { setting: 'COZE_WS_BASE', message: /must not contain credentials, a query or a fragment/ })
})

t.test('the credential seam: ws base, unknown apps, dropping only the failed token', async (t) => {
  t.equal(deriveWsBase(new URL('https://api.coze.cn')).href, 'wss://ws.coze.cn/')
  t.equal(deriveWsBase(new URL('https://api.coze.com/base')).href, 'wss://ws.coze.com/base')
  t.equal(deriveWsBase(new URL('http://127.0.0.1:8090')).href, 'ws://127.0.0.1:8090/')
  const deleted: unknown[] = []
  let current = 'czs_a'
  const credential = (name: string, apiBase: string) => ({
    name,
    spec: { kind: 'jwt', apiBase },
    defaultRequest: { ttl: 900 },
    tokens: {
      get: async () => ({ accessToken: current }),
      cached: () => ({ accessToken: current }),
      delete: (request: unknown) => { deleted.push(request); return true },
      status: () => ({ token: { accessToken: current } })
    }
  }) as unknown as Credential
  const defaults = credential('default', 'https://api.coze.cn')
  const com = credential('com', 'https://api.coze.com')
  const registry = {
    select: (name?: string) => {
      if (name === undefined || name === 'default') return defaults
      if (name === 'com') return com
      throw new SelectionError('app', `app "${name}" is not configured`)
    }
  }
  const resolver = registryCredentials(registry, new URL('wss://ws.example'))
  const view = resolver.resolve(undefined)
  t.equal(resolver.resolve('default'), view, 'one view per credential')
  t.equal(view.wsBase.href, 'wss://ws.example/', 'COZE_WS_BASE is the default credential\'s')
  t.equal(resolver.resolve('com').wsBase.href, 'wss://ws.coze.com/', 'the others derive theirs')
  t.equal(registryCredentials(registry).resolve(undefined).wsBase.href, 'wss://ws.coze.cn/')
  t.throws(() => resolver.resolve('other'), { name: 'SelectionError', field: 'app', message: 'app "other" is not configured' }, 'the registry\'s SelectionError, answered as a 400 by the plugin')
  view.tokens.delete({ ttl: 900 }, 'czs_old')
  t.same(deleted, [], 'a token already replaced is not dropped again')
  view.tokens.delete({ ttl: 900 }, 'czs_a')
  view.tokens.delete({ ttl: 900 })
  t.equal(deleted.length, 2)
  current = 'czs_b'
  t.equal((await view.tokens.get({ ttl: 900 }, 1)).accessToken, 'czs_b')
  // A reload applies a new spec.
  ;(defaults as { spec: object }).spec = { ...defaults.spec, apiBase: 'https://api.coze.com' }
  t.equal(resolver.resolve(undefined).apiBase.href, 'https://api.coze.com/', 'a base changed by a reload makes a new view')
})

t.test('UploadLimit passes bytes up to the limit, then fails', async (t) => {
  const chunks: Buffer[] = []
  const limit = new UploadLimit(10)
  limit.on('data', (chunk: Buffer) => chunks.push(chunk))
  await pipeline(Readable.from([Buffer.alloc(4), Buffer.alloc(6)]), limit)
  t.equal(Buffer.concat(chunks).length, 10)
  const over = new UploadLimit(10)
  over.resume()
  await t.rejects(pipeline(Readable.from([Buffer.alloc(8), Buffer.alloc(8)]), over), { code: 'GATEWAY_UPLOAD_TOO_LARGE', statusCode: 413 })
  t.ok(over.exceeded)
})

t.test('handshake refusals: Coze\'s 4xx kept, anything else 502', async (t) => {
  t.match(handshakeRefusal(401), { code: 'COZE_WS_REFUSED', statusCode: 401, message: /HTTP 401/ })
  t.match(handshakeRefusal(500), { statusCode: 502 })
  t.match(handshakeRefusal(200), { statusCode: 502 })
})
