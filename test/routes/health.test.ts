import t from 'tap'
import { APP_ID, startEmulator, startSidecar } from '../fixtures/harness.js'

t.test('/healthz: the process is up, whatever Coze does', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_API_BASE: 'http://127.0.0.1:1' })
  const response = await app.inject('/healthz')
  t.equal(response.statusCode, 200)
  t.same(response.json(), { status: 'ok' })
  t.equal(emulator.state.exchangeCount, 0, 'no token needed')
})

t.test('/readyz: ready while the sidecar can serve, whatever Coze does; never asks Coze', async (t) => {
  const emulator = await startEmulator(t)
  emulator.state.setEnabled(APP_ID, false)
  const { app } = await startSidecar(t, emulator)
  const refused = await app.inject('/token')
  t.equal(refused.statusCode, 502, 'Coze refuses the app')
  const ready = await app.inject('/readyz')
  t.equal(ready.statusCode, 200, 'still ready: a Coze outage must not take every pod out of its Service')
  t.same(ready.json(), { status: 'ready' })
  t.equal(emulator.state.exchangeCount, 1, 'the probe asked Coze nothing')

  const { app: unreachable } = await startSidecar(t, emulator, { COZE_API_BASE: 'http://127.0.0.1:1' })
  t.equal((await unreachable.inject('/readyz')).statusCode, 200, 'Coze unreachable: ready')
  t.match((await unreachable.inject('/readyz?nope=1')).json(), { statusCode: 400, field: 'nope' }, 'unknown parameters are refused')
})

t.test('/readyz?strict=true: also a token for the default request, and says why not otherwise', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const ready = await app.inject('/readyz?strict=true')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
  t.equal((await app.inject('/readyz?strict=true')).statusCode, 200)
  t.equal(emulator.state.exchangeCount, 1, 'the probe uses the cache')

  emulator.state.setEnabled(APP_ID, false)
  const { app: other } = await startSidecar(t, emulator)
  const refused = await other.inject('/readyz?strict=true')
  t.equal(refused.statusCode, 503)
  t.match(refused.json(), {
    statusCode: 503,
    code: 'NOT_READY',
    error: 'Service Unavailable',
    message: /^not ready: no token for the default request of default: Coze denied access: app: test app is currently deactivated/,
    coze: { error_code: 'access_deny', logid: String }
  })
  emulator.state.setEnabled(APP_ID, true)
  t.equal((await other.inject('/readyz?strict=true')).statusCode, 200, 'ready again without a restart')
})

t.test('/readyz?strict=true when Coze cannot be reached: 503 with Retry-After', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_API_BASE: 'http://127.0.0.1:1', SIDECAR_RETRY_BUDGET: '0' })
  const response = await app.inject('/readyz?strict=true')
  t.equal(response.statusCode, 503)
  t.match(response.json(), { code: 'NOT_READY', message: /Coze could not be reached: ECONNREFUSED/ })
  t.match(response.headers['retry-after'], /^\d+$/)
})
