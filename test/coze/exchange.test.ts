import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, MockAgent } from 'undici'
import { exchangeJwt, ExchangeError, scrub, type ExchangeHttp } from '../../src/coze/exchange.js'
import { GRANT_TYPE } from '../../src/coze/variants.js'
import { until } from '../fixtures/flush.js'

type Handler = (request: IncomingMessage, response: ServerResponse, body: string) => void

/** A raw HTTP server on 127.0.0.1 answering each request with the next handler. */
async function scripted (t: Test, ...handlers: Handler[]): Promise<{ http: ExchangeHttp, seen: Array<{ url: string, headers: IncomingMessage['headers'], body: string }> }> {
  const seen: Array<{ url: string, headers: IncomingMessage['headers'], body: string }> = []
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => { body += chunk.toString() })
    request.on('end', () => {
      seen.push({ url: request.url ?? '', headers: request.headers, body })
      const handler = handlers.shift()
      if (handler === undefined) throw new Error('unexpected request')
      handler(request, response, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const dispatcher = new Agent({ connect: { timeout: 1000 } })
  t.teardown(async () => {
    await dispatcher.destroy()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { http: { baseUrl: `http://127.0.0.1:${port}/prefix`, dispatcher, headersTimeoutMs: 300, bodyTimeoutMs: 300, exchangeTimeoutMs: 5_000, userAgent: 'test' }, seen }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_request, response) => {
  response.writeHead(status, { 'content-type': 'application/json', 'x-tt-logid': 'LOGID1', ...headers })
  response.end(typeof body === 'string' ? body : JSON.stringify(body))
}

const BODY = { grant_type: GRANT_TYPE, duration_seconds: 900 } as const

const attempt = (http: ExchangeHttp) => exchangeJwt(http, '/api/permission/oauth2/token', 'a.b.c', BODY)

t.test('a valid answer: the token, the absolute expiry, the logid and Coze\'s clock', async (t) => {
  const { http, seen } = await scripted(t, json(200, { access_token: 'czs_x', expires_in: 1_900_000_000 }, { date: 'Tue, 24 Nov 2026 10:00:00 GMT' }))
  const issued = await attempt(http)
  t.same(issued, { accessToken: 'czs_x', expiresIn: 1_900_000_000, logid: 'LOGID1', serverDate: Date.parse('Tue, 24 Nov 2026 10:00:00 GMT') })
  const [sent] = seen
  t.equal(sent?.url, '/prefix/api/permission/oauth2/token', 'the base URL\'s path is a prefix')
  t.match(sent?.headers, { 'content-type': 'application/json', authorization: 'Bearer a.b.c', 'user-agent': 'test' })
  t.same(JSON.parse(sent?.body ?? ''), BODY)
})

t.test('a valid answer without a logid or a Date header', async (t) => {
  const { http } = await scripted(t, (_request, response) => {
    response.sendDate = false
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ access_token: 'czs_y', expires_in: 1_900_000_000 }))
  })
  t.same(await attempt(http), { accessToken: 'czs_y', expiresIn: 1_900_000_000 })
})

t.test('a repeated header counts once', async (t) => {
  const { http } = await scripted(t, (_request, response) => {
    response.setHeader('x-tt-logid', ['FIRST', 'SECOND'])
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ access_token: 'czs_z', expires_in: 1_900_000_000 }))
  })
  t.equal((await attempt(http)).logid, 'FIRST')
})

t.test('a transport error without a code is still "unreachable"', async (t) => {
  const mock = new MockAgent()
  mock.disableNetConnect()
  t.teardown(() => mock.close())
  mock.get('http://127.0.0.1:9').intercept({ path: '/api/permission/oauth2/token', method: 'POST' }).replyWithError(new Error('kaboom'))
  const error = await attempt({ baseUrl: 'http://127.0.0.1:9', dispatcher: mock, headersTimeoutMs: 100, bodyTimeoutMs: 100, userAgent: 'x' }).catch((e: unknown) => e)
  t.match(error, { kind: 'unreachable', message: 'network error' })
})

t.test('answers that are not tokens', async (t) => {
  const table: Array<[string, Handler, Partial<ExchangeError>, RegExp]> = [
    ['Coze\'s OAuth error', json(401, { error_code: 'invalid_client', error_message: 'invalid jwt: kid not been registred', error: 'invalid_client' }),
      { kind: 'refused', status: 401, errorCode: 'invalid_client', errorMessage: 'invalid jwt: kid not been registred', logid: 'LOGID1', retryable: false }, /kid not been registred/],
    ['an error code without a message', json(400, { error: 'invalid_request' }), { kind: 'refused', errorCode: 'invalid_request' }, /invalid_request/],
    ['the OpenAPI envelope', json(401, { code: 4100, msg: 'authentication is invalid' }), { kind: 'refused', errorCode: '4100', errorMessage: 'authentication is invalid' }, /authentication/],
    ['internal_error with 400', json(400, { error_code: 'internal_error', error_message: 'Service internal error.' }), { kind: 'unavailable', retryable: true }, /internal/],
    ['a 500 with a code', json(500, { error_code: 'oops' }), { kind: 'unavailable' }, /oops/],
    ['429 with a code', json(429, { error_code: 'slow_down' }, { 'retry-after': '3' }), { kind: 'rate_limited', retryAfterMs: 3000 }, /slow_down/],
    ['429 without a body', json(429, '', { 'retry-after': 'Tue, 24 Nov 2026 10:00:05 GMT', date: 'Tue, 24 Nov 2026 10:00:00 GMT' }), { kind: 'rate_limited', retryAfterMs: 5000 }, /429/],
    ['429 with a date but no Date header', (_q, r) => { r.sendDate = false; json(429, '', { 'retry-after': 'Tue, 24 Nov 2026 10:00:05 GMT' })(_q, r, '') }, { kind: 'rate_limited', retryAfterMs: undefined }, /429/],
    ['503 HTML', (_q, r) => { r.writeHead(503, { 'content-type': 'text/html' }); r.end('<html>busy</html>') }, { kind: 'unavailable', status: 503 }, /HTTP 503/],
    ['408', json(408, ''), { kind: 'unavailable' }, /408/],
    ['404 HTML: a wrong base URL', (_q, r) => { r.writeHead(404); r.end('<html>not found</html>') }, { kind: 'refused', status: 404 }, /404 without a Coze error code/],
    ['a redirect', (_q, r) => { r.writeHead(302, { location: 'http://evil.example/' }); r.end() }, { kind: 'refused', status: 302 }, /redirect \(not followed/],
    ['200 with a JSON array', json(200, '[]'), { kind: 'bad_response' }, /not a JSON object/],
    ['200 HTML', (_q, r) => { r.writeHead(200, { 'content-type': 'text/html' }); r.end('<html></html>') }, { kind: 'bad_response', retryable: true }, /not a JSON object/],
    ['200 without access_token', json(200, { expires_in: 1_900_000_000 }), { kind: 'bad_response' }, /without a string access_token/],
    ['200 with an empty token', json(200, { access_token: '', expires_in: 1_900_000_000 }), { kind: 'bad_response' }, /access_token/],
    ['200 with a fractional expires_in', json(200, { access_token: 'x', expires_in: 1.5 }), { kind: 'bad_response' }, /integer expires_in/],
    ['200 with an expires_in beyond what a Date can hold', json(200, { access_token: 'x', expires_in: 8.64e12 + 1 }), { kind: 'bad_response', retryable: true }, /at most 8640000000000/],
    ['200 with expires_in as text', json(200, { access_token: 'x', expires_in: '1900000000' }), { kind: 'bad_response' }, /integer expires_in/],
    ['200 with an error body', json(200, { error_code: 'invalid_client', error_message: 'nope' }), { kind: 'refused', errorCode: 'invalid_client' }, /nope/],
    ['a huge body', (_q, r) => { r.writeHead(200); r.end('x'.repeat(70 * 1024)) }, { kind: 'bad_response' }, /larger than 65536 bytes/],
    ['no answer in time', () => {}, { kind: 'timeout', retryable: true }, /UND_ERR_HEADERS_TIMEOUT/],
    ['a body that stalls', (_q, r) => { r.writeHead(200, { 'x-tt-logid': 'SLOW' }); r.write('{') }, { kind: 'timeout', logid: 'SLOW', status: 200 }, /UND_ERR_BODY_TIMEOUT/],
    ['a dropped connection', (request) => { request.socket.destroy() }, { kind: 'unreachable' }, /UND_ERR_SOCKET|ECONNRESET/]
  ]
  for (const [name, handler, expected, message] of table) {
    const { http } = await scripted(t, handler)
    const error = await attempt(http).catch((e: unknown) => e)
    t.type(error, ExchangeError, name)
    t.match(error, expected, name)
    t.match((error as Error).message, message, name)
  }
})

t.test('an answer that drips its body is abandoned once the whole exchange outlasts its bound', async (t) => {
  let closed = false
  const { http } = await scripted(t, (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'x-tt-logid': 'DRIP' })
    response.write('{')
    // A byte every 50 ms: never a gap long enough for the body timeout (300 ms).
    const drip = setInterval(() => response.write(' '), 50)
    response.on('close', () => { clearInterval(drip); closed = true })
  })
  const started = performance.now()
  const error = await attempt({ ...http, exchangeTimeoutMs: 500 }).catch((e: unknown) => e)
  t.match(error, { kind: 'timeout', status: 200, logid: 'DRIP', retryable: true })
  t.match((error as Error).message, /no complete answer within 500 ms \(abandoned\)/)
  t.ok(performance.now() - started < 5_000, 'bounded')
  await until(() => closed, 'the dripping connection to be cut')
})

t.test('the exchange bound covers the headers too, and keeps a Coze answer\'s own kind', async (t) => {
  const { http } = await scripted(t, () => {})
  const error = await attempt({ ...http, headersTimeoutMs: 5_000, exchangeTimeoutMs: 200 }).catch((e: unknown) => e)
  t.match(error, { kind: 'timeout', status: undefined, logid: undefined })
  t.match((error as Error).message, /within 200 ms/)
})

t.test('nobody listening: unreachable', async (t) => {
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.destroy())
  const error = await attempt({ baseUrl: 'http://127.0.0.1:1', dispatcher, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, userAgent: 'x' }).catch((e: unknown) => e)
  t.match(error, { kind: 'unreachable', message: 'ECONNREFUSED', retryable: true })
})

t.test('Coze\'s words are scrubbed of anything shaped like a secret, and bounded', async (t) => {
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxIn0.c2lnbmF0dXJl'
  t.equal(scrub(`invalid jwt: ${jwt}`, 100), 'invalid jwt: [redacted]')
  t.equal(scrub('token czs_RQOhsc7vmUzK4bNgb7hn expired', 100), 'token [redacted] expired')
  t.equal(scrub('pat_abcdefgh1234', 100), '[redacted]')
  t.equal(scrub('a'.repeat(20), 10), `${'a'.repeat(10)}...`)
  const { http } = await scripted(t, json(401, { error_code: 'invalid_client', error_message: `bad ${jwt}` }))
  const error = await attempt(http).catch((e: ExchangeError) => e)
  t.equal((error as ExchangeError).errorMessage, 'bad [redacted]')
})
