/**
 * The sidecar against a Coze that misbehaves on purpose (issue 14): a Retry-After without a
 * sense of proportion, a body that drips, an expires_in beyond the Date range. Real HTTP on
 * 127.0.0.1, the real clock; every wait is bounded.
 */
import t from 'tap'
import type { Emulator } from './fixtures/harness.js'
import { startSidecar } from './fixtures/harness.js'
import { answer, startHostileCoze, type HostileHandler } from './fixtures/hostile-coze.js'
import { until } from './fixtures/flush.js'
import { FakeClock } from './fixtures/clock.js'

const asEmulator = (url: string): Emulator => ({ url }) as Emulator

t.test('a 429 with an absurd Retry-After: callers are told a minute at most', async (t) => {
  const twoDays = new Date(Date.now() + 2 * 86_400_000).toUTCString()
  for (const retryAfter of ['100000', twoDays, '99999999999999999999']) {
    const coze = await startHostileCoze(t)
    const { app } = await startSidecar(t, asEmulator(coze.url), { SIDECAR_RETRY_ATTEMPTS: '1' })
    coze.script.push(answer(429, { error_code: 'rate_limited' }, { 'retry-after': retryAfter }))
    const response = await app.inject('/token')
    t.equal(response.statusCode, 503, retryAfter)
    t.equal(response.json().code, 'COZE_RATE_LIMITED')
    const relayed = Number(response.headers['retry-after'])
    t.ok(relayed >= 1 && relayed <= 60, `Retry-After relayed: ${String(response.headers['retry-after'])}`)
  }
})

t.test('an expires_in beyond the Date range: 502 COZE_BAD_RESPONSE, with the back-off, no stack', async (t) => {
  const coze = await startHostileCoze(t)
  const { app, logs } = await startSidecar(t, asEmulator(coze.url), { SIDECAR_RETRY_ATTEMPTS: '1' }, { random: () => 0 })
  coze.script.push(answer(200, { access_token: 'czs_farfuture', expires_in: 9e12 }))
  const first = await app.inject('/token')
  t.equal(first.statusCode, 502)
  t.equal(first.json().code, 'COZE_BAD_RESPONSE')
  const second = await app.inject('/token')
  t.equal(second.statusCode, 502, 'the next caller is answered at once, from the back-off')
  t.equal(second.headers['retry-after'], '1')
  t.equal(coze.paths.length, 1, 'Coze asked once')
  t.same(logs.containing('unexpected error'), [], 'no 500, no stack in the log')
  t.same(logs.containing('czs_farfuture'), [])
})

t.test('a body that drips: the attempt is abandoned and logged, and a later exchange gets the token', async (t) => {
  const coze = await startHostileCoze(t)
  let cut = false
  const drip: HostileHandler = (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'x-tt-logid': 'DRIP' })
    response.write('{')
    const timer = setInterval(() => response.write(' '), 50)
    response.on('close', () => { clearInterval(timer); cut = true })
  }
  coze.script.push(drip)
  // The sidecar's clock is the test's; the exchange's own bound is real time (it is undici's).
  const clock = new FakeClock()
  const { app, logs } = await startSidecar(t, asEmulator(coze.url), {
    SIDECAR_RETRY_ATTEMPTS: '1', SIDECAR_REQUEST_DEADLINE: '0.2', COZE_HTTP_TIMEOUT: '0.5'
  }, { random: () => 0, clock })
  const pending = app.inject('/token')
  await until(() => coze.paths.length === 1, 'the exchange')
  clock.advance(200)
  const first = await pending
  t.equal(first.statusCode, 504, 'the caller is not held past its deadline')
  await until(() => logs.exchanges.some((exchange) => exchange.outcome === 'timeout'), 'the abandoned attempt in the log')
  t.match(logs.exchanges.at(-1), { outcome: 'timeout', logid: 'DRIP', error: /abandoned/ })
  await until(() => cut, 'the dripping connection to be cut')
  t.equal((await app.inject('/token')).statusCode, 504, 'backing off: answered at once')
  // Coze has recovered: once the 1 s back-off has passed, a new exchange serves the token.
  clock.advance(1_000)
  const later = await app.inject('/token')
  t.equal(later.statusCode, 200, 'a token once Coze answers again')
  t.equal(coze.paths.length, 2, 'one new exchange')
})
