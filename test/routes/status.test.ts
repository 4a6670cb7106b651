import t from 'tap'
import { FakeClock } from '../fixtures/clock.js'
import { APP_ID, startEmulator, startSidecar } from '../fixtures/harness.js'

const SECRET = 'a-caller-secret-0123456789'

t.test('GET /status: per credential, before any exchange, after one, and during an outage; never a token', async (t) => {
  const emulator = await startEmulator(t)
  const clock = new FakeClock()
  const { app } = await startSidecar(t, emulator, {}, { clock })
  const empty = await app.inject('/status')
  t.equal(empty.statusCode, 200)
  t.same(empty.json(), { credentials: { default: { kind: 'jwt', app_id: APP_ID, api_base: emulator.url, cached_tokens: 0 } } })

  const token = (await app.inject('/token')).json()
  await app.inject('/token?session_name=u1')
  const ok = (await app.inject('/status')).json()
  const credential = ok.credentials.default
  t.match(credential, {
    app_id: APP_ID,
    last_exchange: { at: new Date(clock.now()).toISOString(), outcome: 'ok', variant: 'developer', reason: 'miss', duration_ms: Number, logid: /^\d{14}[0-9A-F]{20}$/ },
    cached_tokens: 2,
    default_token: { expires_at: token.expires_at, stale: false },
    clock_skew_seconds: Number
  })
  t.notOk('last_error' in credential)
  const refreshAt = Date.parse(credential.default_token.refresh_at)
  const expiresAt = Date.parse(token.expires_at)
  t.ok(refreshAt > clock.now() && refreshAt < expiresAt, 'refreshed before it expires')
  t.ok(Math.abs(credential.clock_skew_seconds) < 5, 'the emulator and the fake clock agree within seconds')

  emulator.state.setEnabled(APP_ID, false)
  t.equal((await app.inject('/token?session_name=u2')).statusCode, 502)
  const failing = (await app.inject('/status')).json().credentials.default
  t.match(failing, {
    last_exchange: { outcome: 'refused' },
    last_error: { code: 'COZE_ACCESS_DENY', message: /deactivated/, coze: { error_code: 'access_deny', logid: /^\d{14}/ } },
    default_token: { expires_at: token.expires_at },
    cached_tokens: 3
  })
  const text = JSON.stringify(failing)
  t.notMatch(text, token.access_token, 'no token')
  t.notMatch(text, /czs_/)
})

t.test('GET /status is guarded like /token', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_AUTH_TOKEN: SECRET })
  t.equal((await app.inject('/status')).statusCode, 401)
  t.equal((await app.inject({ url: '/status', headers: { host: 'evil.example' } })).statusCode, 403)
  const allowed = await app.inject({ url: '/status', headers: { authorization: `Bearer ${SECRET}` } })
  t.equal(allowed.statusCode, 200)
  t.equal(allowed.headers['cache-control'], 'no-store')
})
