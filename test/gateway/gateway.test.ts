/**
 * The gateway over real HTTP on 127.0.0.1: what is forwarded and what is refused (open-proxy
 * attempts), selection errors, bodies and their bounds, headers both ways, streams, timeouts,
 * aborts, and what is not replayed.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { APP_ID, startEmulator, startSidecar } from '../fixtures/harness.js'
import { gatewayLines, SECRET, startGateway } from '../fixtures/gateway.js'
import { until } from '../fixtures/flush.js'

const auth = { authorization: `Bearer ${SECRET}` }

interface Answer { status: number, headers: IncomingHttpHeaders, body: string }

/** A request with the target exactly as given (fetch would normalize `..` away). */
function raw (base: string, method: string, path: string, headers: Record<string, string> = auth, body?: string | Buffer): Promise<Answer> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Bytes straight onto a socket, for request lines no HTTP client will send; the first line back (or '' when closed). */
function rawLine (base: string, text: string): Promise<string> {
  const { hostname, port } = new URL(base)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text))
    let got = ''
    socket.on('data', (chunk) => { got += chunk.toString() })
    socket.on('close', () => resolve(got.split('\r\n')[0] as string))
    socket.on('error', reject)
    socket.setTimeout(5_000, () => socket.destroy())
  })
}

/** Requests to /v1/test/hang received, and those whose connection closed. */
let hangsStarted = 0
let hangsClosed = 0

/** Test-only upstream routes beside the emulator's Coze API. */
function testRoutes (app: FastifyInstance): void {
  app.all('/v1/test/echo', async (request) => ({ code: 0, method: request.method, url: request.url, headers: request.headers, body: request.body }))
  app.get('/v1/test/hang', (request, _reply) => {
    hangsStarted++
    request.raw.once('close', () => { hangsClosed++ })
    return new Promise(() => {})
  })
  app.get('/v1/test/limited', async (_request, reply) => reply.code(429).header('retry-after', '7').send({ code: 4013, msg: 'rate limited' }))
  app.get('/v1/test/forbidden', async (_request, reply) => reply.code(403).send({ code: 4101, msg: 'no permission' }))
  app.get('/v1/test/text-401', async (_request, reply) => reply.code(401).type('text/plain').send('no'))
  app.get('/v1/test/big', async () => ({ code: 0, data: 'x'.repeat(100_000) }))
  app.get('/v1/test/broken-json', (_request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'application/json' })
    reply.raw.write('{"code":0,"da')
    setImmediate(() => reply.raw.destroy())
  })
  // Without Content-Length: the gateway finds out the size by reading.
  const chunked = (parts: string[]) => async (_request: unknown, reply: FastifyReply) => reply.type('application/json').send(Readable.from(parts.map((part) => Buffer.from(part))))
  app.get('/v1/test/chunked-big', chunked(['{"code":0,"data":"', 'y'.repeat(70_000), 'z'.repeat(10_000), '"}']))
  app.get('/v1/test/chunked-small', chunked(['{"code":4', '013,"msg":"two chunks"}']))
  app.get('/v1/test/hop', async (_request, reply) => reply.header('connection', 'x-private').header('x-private', 'hop').header('keep-alive', 'timeout=5').send({ code: 0 }))
}

t.test('open-proxy attempts are refused before Coze', async (t) => {
  const { emulator, url } = await startGateway(t)
  const refusals: Array<[string, string, number, string]> = [
    ['GET', '/v1/../api/permission/oauth2/token', 400, 'GATEWAY_PATH_REFUSED'],
    ['POST', '/v3/chat/../../api/permission/oauth2/token', 400, 'GATEWAY_PATH_REFUSED'],
    ['GET', '/v1/%2e%2e/api/permission/oauth2/token', 400, 'GATEWAY_PATH_REFUSED'],
    ['GET', '/v1/%2E./x', 400, 'GATEWAY_PATH_REFUSED'],
    ['GET', '/v1/./users/me', 400, 'GATEWAY_PATH_REFUSED'],
    ['GET', '/v1/files%2f..%2f..%2fapi', 400, 'GATEWAY_PATH_REFUSED'],
    ['GET', '/v1/files%252e%252e/x', 400, 'GATEWAY_PATH_REFUSED'],
    ['GET', '/v1/a\\..\\b', 400, 'GATEWAY_PATH_REFUSED'],
    ['GET', '/sessions/%E0%A4%A/v1/users/me', 400, 'FST_ERR_BAD_URL'],
    ['GET', '/sessions//v1/users/me', 400, 'GATEWAY_PATH_REFUSED'],
    ['POST', '/api/permission/oauth2/token', 404, 'NOT_FOUND'],
    ['POST', '/api/permission/oauth2/account/7351/token', 404, 'NOT_FOUND'],
    ['GET', '/v2/chat', 404, 'NOT_FOUND'],
    ['GET', '/v1', 404, 'NOT_FOUND'],
    ['GET', '/v1/', 404, 'NOT_FOUND'],
    ['GET', '/sessions/a/token', 404, 'NOT_FOUND'],
    ['GET', '/apps/default/v2/x', 404, 'NOT_FOUND'],
    ['GET', '/sessions/a/apps/default/v1/users/me', 404, 'NOT_FOUND'],
    ['GET', '/_emulator/state', 404, 'NOT_FOUND']
  ]
  for (const [method, path, status, code] of refusals) {
    const answer = await raw(url, method, path)
    t.equal(answer.status, status, `${method} ${path}: ${status}`)
    t.equal(JSON.parse(answer.body).code, code, `${method} ${path}: ${code}`)
  }
  // Absolute-form targets and CONNECT, as a forward proxy would get them.
  const absolute = await rawLine(url, `GET http://127.0.0.1:9/v1/users/me HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${SECRET}\r\nconnection: close\r\n\r\n`)
  t.match(absolute, /^HTTP\/1\.1 4\d\d /, `absolute form: ${absolute}`)
  const connectLine = await rawLine(url, `CONNECT ${new URL(emulator.url).host} HTTP/1.1\r\nhost: ${new URL(emulator.url).host}\r\nauthorization: Bearer ${SECRET}\r\n\r\n`)
  t.notMatch(connectLine, /^HTTP\/1\.1 2\d\d/, `CONNECT: ${connectLine === '' ? 'connection closed' : connectLine}`)
  t.equal(emulator.state.api.calls.length, 0, 'nothing reached Coze\'s API')
  t.equal(emulator.state.exchangeCount, 0, 'nor its token endpoint')
})

t.test('access rules: the caller secret, Host and cross-site, as for /token', async (t) => {
  const { emulator, url } = await startGateway(t)
  const none = await raw(url, 'GET', '/v1/users/me', {})
  t.equal(none.status, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="coze-token-sidecar"')
  t.equal((await raw(url, 'GET', '/v1/users/me', { authorization: 'Bearer wrong-secret-wrong-secret' })).status, 401)
  t.equal(JSON.parse((await raw(url, 'GET', '/v1/users/me', { ...auth, host: 'evil.example' })).body).code, 'HOST_NOT_ALLOWED')
  t.equal(JSON.parse((await raw(url, 'POST', '/v3/chat', { ...auth, origin: 'https://evil.example' })).body).code, 'CROSS_SITE_REQUEST')
  t.equal((await raw(url, 'GET', '/v1/users/me?authorization=Bearer%20' + SECRET, {})).status, 401, 'the query credential is for WebSockets only')
  t.equal(emulator.state.api.calls.length, 0)
})

t.test('selection errors: 400s that name the header or the prefix field', async (t) => {
  const { emulator, url } = await startGateway(t)
  const cases: Array<[string, Record<string, string>, string, RegExp]> = [
    ['/v1/users/me', { 'x-coze-account-id': 'abc' }, 'X-Coze-Account-Id', /^X-Coze-Account-Id must be a numeric Coze account/],
    ['/v1/users/me', { 'x-coze-enterprise-id': 'a b' }, 'X-Coze-Enterprise-Id', /^X-Coze-Enterprise-Id must be an enterprise id/],
    ['/v1/users/me', { 'x-coze-session-name': '' }, 'X-Coze-Session-Name', /^X-Coze-Session-Name must not be empty/],
    ['/v1/users/me', { 'x-coze-device-id': 'x'.repeat(129) }, 'X-Coze-Device-Id', /^X-Coze-Device-Id must be at most 128 characters/],
    ['/v1/users/me', { 'x-coze-account-id': '1', 'x-coze-enterprise-id': 'e' }, 'X-Coze-Enterprise-Id', /cannot be used together/],
    ['/v1/users/me', { 'x-coze-device-id': 'd', 'x-coze-custom-consumer': 'c' }, 'X-Coze-Custom-Consumer', /cannot be used together/],
    ['/v1/users/me', { 'x-coze-app': 'other' }, 'X-Coze-App', /^X-Coze-App: app "other" is not configured \(configured: default\)/],
    ['/apps/other/v1/users/me', {}, 'app', /^app "other" is not configured/],
    ['/accounts/abc/v1/users/me', {}, 'account_id', /^account_id must be a numeric Coze account/],
    ['/sessions/a%00b/v1/users/me', {}, 'session_name', /^session_name must not contain control characters/],
    ['/sessions/a/v1/users/me', { 'x-coze-session-name': 'b' }, 'X-Coze-Session-Name', /both select session_name/]
  ]
  for (const [path, headers, field, message] of cases) {
    const answer = await raw(url, 'GET', path, { ...auth, ...headers })
    const body = JSON.parse(answer.body)
    t.equal(answer.status, 400, `${path} ${JSON.stringify(headers)}`)
    t.match(body, { code: 'INVALID_PARAMETER', field, message }, `${field}: ${body.message}`)
  }
  t.equal(emulator.state.api.calls.length, 0)
  t.equal(emulator.state.exchangeCount, 0)
})

t.test('selection by prefix: accounts, enterprises, sessions, in that order', async (t) => {
  const { emulator, url } = await startGateway(t)
  const answer = await raw(url, 'GET', '/apps/default/accounts/7351/sessions/dave/v1/users/me')
  t.equal(JSON.parse(answer.body).data.user_name, 'dave')
  const issued = [...emulator.state.tokens.values()]
  t.match(issued, [{ accountId: '7351', sessionName: 'dave' }], 'a cross-account token for that session')
  const enterprise = await raw(url, 'GET', '/enterprises/volcano_1/v1/users/me')
  t.equal(enterprise.status, 502, 'the emulator\'s app is no privileged app')
  t.equal(JSON.parse(enterprise.body).code, 'COZE_ACCESS_DENY', 'the token failure in the sidecar\'s shape')
})

t.test('headers both ways; queries kept; bodies passed as bytes', async (t) => {
  const emulator = await startEmulator(t, { routes: testRoutes })
  const { url } = await startGateway(t, { SIDECAR_REQUIRE_HEADER: 'Metadata-Flavor: Coze' }, {}, emulator)
  const sent = {
    ...auth,
    'metadata-flavor': 'Coze',
    'content-type': 'application/json',
    cookie: 'session=1',
    'x-forwarded-for': '10.0.0.1',
    'x-coze-session-name': 'erin',
    'x-coze-client-user-agent': '{"lang":"node"}',
    'user-agent': 'coze-js/1.3.9',
    'accept-encoding': 'gzip',
    connection: 'keep-alive, x-hop',
    'x-hop': 'dropped',
    'x-kept': 'kept'
  }
  const answer = await raw(url, 'POST', '/v1/test/echo?a=1&authorization=Bearer%20x&b=%20two', sent, '{"hello":"world"}')
  t.equal(answer.status, 200)
  const echo = JSON.parse(answer.body)
  t.equal(echo.url, '/v1/test/echo?a=1&b=%20two', 'the query as sent, minus authorization')
  t.same(echo.body, { hello: 'world' }, 'the body, as sent')
  t.match(echo.headers, {
    authorization: /^Bearer czs_/,
    'content-type': 'application/json',
    'x-coze-client-user-agent': '{"lang":"node"}',
    'user-agent': 'coze-js/1.3.9',
    'accept-encoding': 'identity',
    'x-kept': 'kept',
    'content-length': '17'
  })
  for (const name of ['cookie', 'x-forwarded-for', 'x-coze-session-name', 'metadata-flavor', 'x-hop']) {
    t.notOk(name in echo.headers, `${name} is not forwarded`)
  }
  t.equal(echo.headers.host, new URL(emulator.url).host, 'Host is Coze\'s')

  const large = await raw(url, 'POST', '/v1/test/echo', { ...auth, 'metadata-flavor': 'Coze', 'content-type': 'application/json' }, JSON.stringify({ text: 'x'.repeat(200_000) }))
  t.equal(JSON.parse(large.body).body.text.length, 200_000, 'bodies beyond the routes\' 16 KiB, up to SIDECAR_GATEWAY_BODY_LIMIT')
  const hop = await raw(url, 'GET', '/v1/test/hop', { ...auth, 'metadata-flavor': 'Coze' })
  t.notOk('x-private' in hop.headers, 'a header Coze\'s Connection names is dropped')
  t.not(hop.headers['keep-alive'], 'timeout=5', 'Coze\'s Keep-Alive is not passed on (the sidecar has its own)')
  const big = await raw(url, 'GET', '/v1/test/big', { ...auth, 'metadata-flavor': 'Coze' })
  t.equal(JSON.parse(big.body).data.length, 100_000, 'a JSON answer beyond the peek streams through intact')
  const chunkedBig = await raw(url, 'GET', '/v1/test/chunked-big', { ...auth, 'metadata-flavor': 'Coze' })
  t.equal(JSON.parse(chunkedBig.body).data, 'y'.repeat(70_000) + 'z'.repeat(10_000), 'also when its length shows only while reading')
  const chunkedSmall = await raw(url, 'GET', '/v1/test/chunked-small', { ...auth, 'metadata-flavor': 'Coze' })
  t.same(JSON.parse(chunkedSmall.body), { code: 4013, msg: 'two chunks' })
})

t.test('what passes through untouched: 429 with Retry-After, 4101, Coze\'s 404, a second 401', async (t) => {
  const emulator = await startEmulator(t, { routes: testRoutes })
  const { sidecar, url } = await startGateway(t, {}, {}, emulator)
  const broken = await raw(url, 'GET', '/v1/test/broken-json')
  t.equal(broken.status, 503, 'Coze cut off mid-JSON: the sidecar\'s 503, not half an answer')
  t.match(JSON.parse(broken.body), { code: 'UPSTREAM_UNREACHABLE' })
  const limited = await raw(url, 'GET', '/v1/test/limited')
  t.equal(limited.status, 429)
  t.equal(limited.headers['retry-after'], '7')
  t.same(JSON.parse(limited.body), { code: 4013, msg: 'rate limited' })
  const forbidden = await raw(url, 'GET', '/v1/test/forbidden')
  t.equal(forbidden.status, 403)
  t.same(JSON.parse(forbidden.body), { code: 4101, msg: 'no permission' })
  const missing = await raw(url, 'POST', '/open_api/v2/chat', { ...auth, 'content-type': 'application/json' }, '{}')
  t.equal(missing.status, 404, 'Coze\'s own 404, as Coze sent it')
  t.match(JSON.parse(missing.body), { message: 'Route POST:/open_api/v2/chat not found' })
  const text = await raw(url, 'GET', '/v1/test/text-401')
  t.equal(text.status, 401)
  t.equal(text.body, 'no')
  t.equal(emulator.state.exchangeCount, 2, 'a plain 401 was replayed once with a fresh token')
  t.match(gatewayLines(sidecar).map((line) => [line.path, line.status, line.coze_code, line.replayed]), [
    ['/v1/test/broken-json', 503, undefined, false],
    ['/v1/test/limited', 429, 4013, false],
    ['/v1/test/forbidden', 403, 4101, false],
    ['/open_api/v2/chat', 404, undefined, false],
    ['/v1/test/text-401', 401, undefined, true]
  ])
})

t.test('bodies: held up to the limit, uploads bounded, neither replayed beyond it', async (t) => {
  const { emulator, url } = await startGateway(t, { SIDECAR_GATEWAY_BODY_LIMIT: '1024', SIDECAR_GATEWAY_UPLOAD_LIMIT: '2048' })
  const json = await raw(url, 'POST', '/v3/chat', { ...auth, 'content-type': 'application/json' }, JSON.stringify({ bot_id: 'x'.repeat(2000) }))
  t.equal(json.status, 413)
  t.match(JSON.parse(json.body), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', field: 'body' })
  const declared = await raw(url, 'POST', '/v1/files/upload', { ...auth, 'content-type': 'multipart/form-data; boundary=x', 'content-length': '4096' }, Buffer.alloc(4096))
  t.equal(declared.status, 413)
  t.equal(JSON.parse(declared.body).code, 'GATEWAY_UPLOAD_TOO_LARGE')
  const chunked = await raw(url, 'POST', '/v1/files/upload', { ...auth, 'content-type': 'multipart/form-data; boundary=x', 'transfer-encoding': 'chunked' }, Buffer.alloc(4096))
  t.equal(chunked.status, 413, 'a chunked upload is cut at the limit')
  t.equal(JSON.parse(chunked.body).code, 'GATEWAY_UPLOAD_TOO_LARGE')

  // An upload refused for its token is not replayed: its bytes are gone.
  const form = new FormData()
  form.append('file', new Blob([Buffer.from('hello')]), 'a.txt')
  const ok = await fetch(`${url}/v1/files/upload`, { method: 'POST', headers: auth, body: form })
  t.equal((await ok.json() as { data: { bytes: number } }).data.bytes, 5)
  emulator.state.revokeApp(APP_ID)
  const refused = await fetch(`${url}/v1/files/upload`, { method: 'POST', headers: auth, body: form })
  t.equal(refused.status, 401)
  t.match(await refused.json(), { code: 4100 })
  t.equal(emulator.state.api.calls.filter((call) => call.url === '/v1/files/upload').length, 2, 'one call each, no replay')
})

t.test('streams: workflow events with PING, unbuffered headers, abort on disconnect, idle timeout', async (t) => {
  const { emulator, url } = await startGateway(t, { SIDECAR_GATEWAY_IDLE_TIMEOUT: '0.5' })
  const workflow = await fetch(`${url}/v1/workflow/stream_run`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ workflow_id: '7', parameters: { a: 1 } })
  })
  t.equal(workflow.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.equal(workflow.headers.get('x-accel-buffering'), 'no')
  t.notOk(workflow.headers.get('content-encoding'), 'never compressed')
  const text = await workflow.text()
  t.same([...text.matchAll(/^event: ?(\S+)$/gm)].map((match) => match[1]), ['Message', 'PING', 'Message', 'Done'])

  // The caller goes away mid-stream: the emulator's stream ends early. (node:http, not fetch:
  // an aborted fetch leaves a spare connection open that would hold up the sidecar's close.)
  emulator.state.api.streamIntervalMs = 200
  await new Promise<void>((resolve, reject) => {
    const { hostname, port } = new URL(url)
    const req = httpRequest({ host: hostname, port, method: 'POST', path: '/v3/chat', agent: false, headers: { ...auth, 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => { res.destroy(); resolve() })
    })
    req.on('error', reject)
    req.end(JSON.stringify({ bot_id: '7', stream: true }))
  })
  await until(() => emulator.state.api.streamsAborted === 1, 'the upstream stream to be aborted')
  t.pass('the caller\'s disconnect aborted the upstream request')

  // Silence beyond SIDECAR_GATEWAY_IDLE_TIMEOUT cuts the stream.
  emulator.state.api.streamIntervalMs = 3_000
  const silent = await fetch(`${url}/v3/chat`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ bot_id: '7', stream: true })
  })
  t.equal(silent.status, 200)
  await t.rejects(silent.text(), 'the stream ends in an error after the idle timeout')
  await until(() => emulator.state.api.streamsAborted === 2, 'the silent upstream stream to be given up')
})

t.test('Coze gone or silent: the sidecar\'s 503 and 504', async (t) => {
  const emulator = await startEmulator(t, { routes: testRoutes })
  const { url } = await startGateway(t, { SIDECAR_GATEWAY_IDLE_TIMEOUT: '0.3' }, {}, emulator)
  const hang = await raw(url, 'GET', '/v1/test/hang')
  t.equal(hang.status, 504)
  t.match(JSON.parse(hang.body), { code: 'UPSTREAM_TIMEOUT', message: /SIDECAR_GATEWAY_IDLE_TIMEOUT/ })
  // A caller that gives up while Coze is silent: the request to Coze is cut too.
  await new Promise<void>((resolve) => {
    const { hostname, port } = new URL(url)
    const req = httpRequest({ host: hostname, port, path: '/v1/test/hang', agent: false, headers: auth })
    req.on('error', () => resolve())
    req.end()
    until(() => hangsStarted === 2, 'the request to reach Coze').then(() => req.destroy(), resolve)
  })
  await until(() => hangsClosed === 2, 'the upstream request to be aborted')
  t.pass('the caller\'s disconnect aborted the upstream request before its headers')
  await emulator.app.close()
  const gone = await raw(url, 'GET', '/v1/users/me')
  t.equal(gone.status, 503)
  t.equal(gone.headers['retry-after'], '1')
  t.match(JSON.parse(gone.body), { code: 'UPSTREAM_UNREACHABLE', message: /^Coze could not be reached: ECONNREFUSED$/ })
})

t.test('LOG_LEVEL=warn: no line per request, still counted', async (t) => {
  const { sidecar, url } = await startGateway(t, { LOG_LEVEL: 'warn' })
  const answer = await raw(url, 'GET', '/v1/users/me')
  t.equal(answer.status, 200)
  // Counted when the answer's connection is done with it, a moment after the caller has it.
  const counted = /coze_gateway_requests_total\{family="v1",status="200",coze_code="0"\} 1/
  let text = ''
  for (const deadline = Date.now() + 5_000; !counted.test(text) && Date.now() < deadline;) text = (await sidecar.app.inject('/metrics')).body
  t.match(text, counted)
  t.same(gatewayLines(sidecar), [], 'no gateway line at warn')
})

t.test('SIDECAR_GATEWAY=off serves no Coze path', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_GATEWAY: 'off' })
  const answer = await app.inject('/v1/users/me')
  t.equal(answer.statusCode, 404)
  t.equal(answer.json().code, 'NOT_FOUND')
})

t.test('bad gateway settings stop the start, naming the setting', async (t) => {
  const emulator = await startEmulator(t)
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ SIDECAR_GATEWAY: 'maybe' }, /^SIDECAR_GATEWAY: is invalid .*set it to on or off$/],
    [{ SIDECAR_GATEWAY_BODY_LIMIT: '10' }, /^SIDECAR_GATEWAY_BODY_LIMIT: /],
    [{ SIDECAR_GATEWAY_IDLE_TIMEOUT: '0' }, /^SIDECAR_GATEWAY_IDLE_TIMEOUT: /],
    [{ COZE_WS_BASE: 'not a url' }, /^COZE_WS_BASE: is not a URL/],
    [{ COZE_WS_BASE: 'https://ws.coze.cn' }, /^COZE_WS_BASE: must be ws\(s\), not https/],
    [{ COZE_WS_BASE: 'wss://u:p@ws.coze.cn' }, /^COZE_WS_BASE: must not contain credentials/]
  ]
  for (const [env, message] of cases) {
    await t.rejects(startSidecar(t, emulator, env), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})
