/**
 * Coze misbehaving, through the emulator's failure modes, with time on an injected clock: the
 * apps behind the sidecar notice nothing while a valid token exists, get a fast, honest error
 * when none does, and the sidecar recovers on its own.
 */
import t, { type Test } from 'tap'
import { decodeJwt } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import { FakeClock } from '../fixtures/clock.js'
import { startEmulator, startSidecar, type Emulator } from '../fixtures/harness.js'

/**
 * Awaits `promise` while moving the fake clock on in `stepMs` steps, letting real I/O run
 * between steps; bounded so a broken test fails instead of hanging.
 */
async function drive<T> (clock: FakeClock, promise: Promise<T>, stepMs = 50, maxSteps = 4_000): Promise<T> {
  const state = { settled: false } // set by the promise, between the loop's awaits
  const watched = promise.finally(() => { state.settled = true })
  for (let step = 0; !state.settled; step++) {
    if (step >= maxSteps) throw new Error('the request did not settle')
    await new Promise((resolve) => setTimeout(resolve, 1))
    if (!state.settled) clock.advance(stepMs)
  }
  return await watched
}

const jtis = (emulator: Emulator): unknown[] =>
  emulator.state.records.filter((record) => record.jwt !== undefined).map((record) => decodeJwt(record.jwt as string).jti)

async function setup (t: Test, env: Record<string, string> = {}) {
  const clock = new FakeClock()
  // Coze and the sidecar share the clock, as they share the real one outside tests.
  const emulator = await startEmulator(t, { now: () => clock.now() })
  const sidecar = await startSidecar(t, emulator, env, { clock })
  const get = (url = '/token'): Promise<LightMyRequestResponse> => drive(clock, sidecar.app.inject(url))
  return { emulator, clock, get, ...sidecar }
}

t.test('a 500, then success: retried with a new JWT, the caller gets a token', async (t) => {
  const { emulator, get, logs } = await setup(t)
  emulator.state.injectFault({ kind: 'status', status: 500 })
  const response = await get()
  t.equal(response.statusCode, 200)
  t.equal(emulator.state.exchangeCount, 2)
  t.match(logs.exchanges, [{ attempt: 1, outcome: 'unavailable', status: 500, error_code: 'internal_error', logid: String }, { attempt: 2, outcome: 'ok' }])
})

t.test('429 with Retry-After: the retry waits for it', async (t) => {
  const { emulator, clock, app } = await setup(t)
  emulator.state.injectFault({ kind: 'status', status: 429, retryAfter: '3' })
  const pending = app.inject('/token')
  while (emulator.state.exchangeCount === 0) await new Promise((resolve) => setTimeout(resolve, 1))
  await new Promise((resolve) => setTimeout(resolve, 20))
  clock.advance(2_900)
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(emulator.state.exchangeCount, 1, 'not before Retry-After')
  const response = await drive(clock, pending)
  t.equal(response.statusCode, 200)
  t.equal(emulator.state.exchangeCount, 2)
})

t.test('every kind of garbage is retried, each attempt with a new JWT', async (t) => {
  const faults = [{ kind: 'drop' }, { kind: 'html' }, { kind: 'html', status: 502 }, { kind: 'no_token' }, { kind: 'expired' }] as const
  for (const fault of faults) {
    const { emulator, get } = await setup(t)
    emulator.state.injectFault(fault)
    const response = await get()
    t.equal(response.statusCode, 200, fault.kind)
    t.equal(emulator.state.exchangeCount, 2, `${fault.kind}: one retry`)
    const sent = jtis(emulator)
    t.equal(new Set(sent).size, sent.length, `${fault.kind}: no JWT sent twice`)
  }
})

t.test('invalid_client: exactly one attempt, a 502 with Coze\'s words', async (t) => {
  for (const code of ['invalid_client', 'invalid_request', 'unsupported_grant_type', 'access_deny']) {
    const { emulator, get } = await setup(t)
    emulator.state.injectFault({ kind: 'status', status: code === 'access_deny' ? 403 : 401, errorCode: code })
    const response = await get()
    t.equal(response.statusCode, 502, code)
    t.match(response.json(), { coze: { error_code: code, logid: String } })
    t.equal(emulator.state.exchangeCount, 1, `${code}: never retried`)
  }
})

t.test('a hang past the deadline: the caller gets 504 at the deadline', async (t) => {
  const { emulator, get } = await setup(t, { SIDECAR_REQUEST_DEADLINE: '2' })
  emulator.state.injectFault({ kind: 'hang' })
  const response = await get()
  t.equal(response.statusCode, 504)
  t.match(response.json(), { code: 'UPSTREAM_TIMEOUT', message: /within the deadline of 2 s/ })
})

t.test('refresh ahead: a token in use is replaced before its margin without anyone waiting', async (t) => {
  const { emulator, clock, app } = await setup(t, { COZE_TOKEN_TTL: '60' })
  const first = (await app.inject('/token')).json()
  await app.inject('/token') // in use
  // 60 s token: margin 30 s, refreshed between 18 s and 24 s into its life.
  clock.advance(24_000)
  while (emulator.state.exchangeCount < 2) await new Promise((resolve) => setTimeout(resolve, 1))
  await new Promise((resolve) => setTimeout(resolve, 10))
  const next = await app.inject('/token')
  t.not(next.json().access_token, first.access_token, 'the new token, at once')
  t.equal(emulator.state.exchangeCount, 2)
})

t.test('an outage longer than a token\'s life: stale while valid, then fast 503s, then recovery', async (t) => {
  const { emulator, clock, app, get } = await setup(t, { COZE_TOKEN_TTL: '60' })
  const first = (await app.inject('/token')).json()
  await app.inject('/token') // in use
  emulator.state.injectFault({ kind: 'status', status: 503 }, Infinity)

  // Inside its life the token keeps being served, stale once past the serve margin.
  clock.advance(40_000)
  const stale = await get()
  t.equal(stale.statusCode, 200)
  t.equal(stale.json().access_token, first.access_token)
  t.equal(stale.headers['x-token-stale'], 'true')

  // Never once expired: 5 s before expiry and after, an honest 503 with Retry-After, at once.
  clock.advance(20_000)
  const started = emulator.state.exchangeCount
  const refused = await drive(clock, Promise.all(Array.from({ length: 50 }, async () => await app.inject('/token'))))
  t.ok(refused.every((response) => response.statusCode === 503), 'no expired token served')
  t.match(refused[0]?.json(), { code: 'COZE_UNAVAILABLE', coze: { error_code: 'internal_error' } })
  t.ok(refused.every((response) => /^\d+$/.test(String(response.headers['retry-after']))))
  t.ok(emulator.state.exchangeCount - started <= 4, `50 callers caused ${emulator.state.exchangeCount - started} exchanges, not 50`)
  t.equal((await drive(clock, app.inject('/readyz?strict=true'))).statusCode, 503, 'not strictly ready while no token can be had')
  t.equal((await app.inject('/readyz')).statusCode, 200, 'but ready to serve: Coze\'s outage is not the pod\'s')
  t.equal((await app.inject('/healthz')).statusCode, 200, 'and alive')

  // Coze comes back: the sidecar recovers without a restart, within its back-off.
  emulator.state.clearFaults()
  clock.advance(61_000)
  const recovered = await get()
  t.equal(recovered.statusCode, 200, recovered.body)
  t.not(recovered.json().access_token, first.access_token)
  t.equal((await drive(clock, app.inject('/readyz?strict=true'))).statusCode, 200)
})
