/**
 * No secret ever leaves: with logs at trace, every scenario that touches a token, a JWT or the
 * key is run, and every log line and every non-token response is searched for them.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { BROAD_SECRET, DEFAULT_SECRET, ELSEWHERE_SECRET, NARROW_SECRET, OTHER_SECRET, bearer, sha256, writeCallers } from './fixtures/callers.js'
import { until } from './fixtures/flush.js'
import { FakeClock } from './fixtures/clock.js'
import { ACCOUNT_ID, APP_ID, CHANNEL_APP_ID, ENTERPRISE_ID, PRIVILEGED_APP_ID, startEmulator, startSidecar, tempDir, type Sidecar } from './fixtures/harness.js'
import { keys, pemBody } from './fixtures/keys.js'

/** Every 40-character window of the key's base64, stepping by 20: any leak of the key shows. */
function keyFragments (pem: string): string[] {
  const body = pemBody(pem)
  const fragments: string[] = []
  for (let i = 0; i + 40 <= body.length; i += 20) fragments.push(body.slice(i, i + 40))
  return fragments
}

t.test('tokens, JWTs and the key never appear in logs or error responses', async (t) => {
  const emulator = await startEmulator(t)
  const clock = new FakeClock()
  const sidecars = [
    // On a fake clock, so no retries: their back-off would wait for the clock to move.
    await startSidecar(t, emulator, { LOG_LEVEL: 'trace', SIDECAR_RETRY_ATTEMPTS: '1' }, { clock }),
    await startSidecar(t, emulator, { LOG_LEVEL: 'trace', COZE_APP_ID: CHANNEL_APP_ID, COZE_PRIVATE_KEY: keys.pkcs1 }),
    await startSidecar(t, emulator, { LOG_LEVEL: 'trace', COZE_APP_ID: PRIVILEGED_APP_ID, COZE_ENTERPRISE_ID: ENTERPRISE_ID }),
    await startSidecar(t, emulator, { LOG_LEVEL: 'trace', COZE_KEY_ID: 'wrong-kid' }),
    await startSidecar(t, emulator, { LOG_LEVEL: 'trace', COZE_API_BASE: 'http://127.0.0.1:1', SIDECAR_RETRY_BUDGET: '0' })
  ]
  const [main, channel, enterprise, wrongKid, unreachable] = sidecars as [Sidecar, Sidecar, Sidecar, Sidecar, Sidecar]
  /** Every response that is not a token: errors, probes, 204s. */
  const exposed: string[] = []
  const call = async (sidecar: Sidecar, options: InjectOptions | string): Promise<void> => {
    const response = await sidecar.app.inject(options)
    if (response.statusCode !== 200 || /\/readyz|\/status/.test(String(options))) exposed.push(response.body)
  }

  // Every variant, both formats, POST with scope and session context, DELETE, probes.
  await call(main, '/token')
  await call(main, '/token?format=text')
  await call(main, `/token?account_id=${ACCOUNT_ID}&session_name=alice&device_id=d1`)
  await call(main, { method: 'POST', url: '/token', payload: { session_context: { device_info: { custom_consumer: 'c' } } } })
  await call(main, { method: 'DELETE', url: '/token' })
  await call(main, '/readyz')
  await call(main, '/readyz?strict=true')
  await call(main, '/status')
  await call(channel, { method: 'POST', url: '/token', payload: { scope: { account_permission: { permission_list: ['Connector.botChat'] } } } })
  await call(enterprise, '/token')
  // Refusals, outages, garbage and bad input.
  await call(wrongKid, '/token')
  await call(wrongKid, '/readyz?strict=true')
  await call(wrongKid, '/status')
  await call(unreachable, '/token')
  await call(main, '/token?account_id=999')
  emulator.state.setEnabled(APP_ID, false)
  await call(main, '/token?session_name=disabled')
  emulator.state.setEnabled(APP_ID, true)
  emulator.state.injectFault({ kind: 'html' })
  await call(main, '/token?session_name=html')
  emulator.state.injectFault({ kind: 'expired' })
  await call(main, '/token?session_name=expired')
  emulator.state.injectFault({ kind: 'status', status: 401, errorCode: 'invalid_client' })
  await call(main, '/token?session_name=echo')
  await call(main, '/token?ttl=0')
  await call(main, { method: 'POST', url: '/token', headers: { 'content-type': 'application/json' }, payload: '{"scope":' })
  await call(main, '/nowhere')
  // A refresh that fails while the old token is served stale.
  emulator.state.injectFault({ kind: 'status', status: 503 }, Infinity)
  clock.advance(850_000)
  await call(main, '/token')
  emulator.state.clearFaults()

  const tokens = [...emulator.state.tokens.keys()]
  const jwts = emulator.state.records.flatMap((record) => record.jwt === undefined ? [] : [record.jwt])
  t.ok(tokens.length >= 6, `${tokens.length} tokens were issued`)
  t.ok(jwts.length >= 10, `${jwts.length} JWTs were sent`)
  const lines = sidecars.flatMap((sidecar) => sidecar.logs.raw)
  t.ok(lines.length > 50, `${lines.length} log lines at trace`)
  t.ok(lines.some((line) => line.includes('coze token exchange')), 'the exchanges were logged')

  const haystacks = [...lines, ...exposed]
  const needles = [
    ...tokens.map((token) => ['an access token', token] as const),
    ...jwts.flatMap((jwt) => [['a JWT', jwt] as const, ['a JWT signature', jwt.split('.')[2] as string] as const]),
    ...keyFragments(keys.pkcs8).map((fragment) => ['the PKCS#8 key', fragment] as const),
    ...keyFragments(keys.pkcs1).map((fragment) => ['the PKCS#1 key', fragment] as const)
  ]
  const leaks = needles.flatMap(([what, needle]) => haystacks.filter((text) => text.includes(needle)).map((text) => `${what} in: ${text.slice(0, 200)}`))
  t.same(leaks, [], 'no secret in any log line or error response')
  t.notOk(haystacks.some((text) => /czs_[A-Za-z0-9]{20}/.test(text)), 'nothing shaped like a Coze token either')
  t.notOk(haystacks.some((text) => /eyJ[\w-]{10,}\.eyJ/.test(text)), 'nothing shaped like a JWT either')
})

t.test('caller secrets never appear in logs or responses: identified, refused, rotated, broken', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const file = writeCallers(dir)
  const clock = new FakeClock()
  const sidecar = await startSidecar(t, emulator, {
    LOG_LEVEL: 'trace', SIDECAR_CALLERS_FILE: file, SIDECAR_AUTH_TOKEN: DEFAULT_SECRET, SIDECAR_RETRY_ATTEMPTS: '1'
  }, { clock })
  const responses: string[] = []
  const call = async (options: InjectOptions): Promise<void> => { responses.push((await sidecar.app.inject(options)).body) }
  const rotated = 'broad-rotated-secret-0123456789'
  for (const secret of [NARROW_SECRET, BROAD_SECRET, OTHER_SECRET, ELSEWHERE_SECRET, DEFAULT_SECRET, 'an-unknown-secret-0123456789']) {
    for (const url of ['/token', '/token?session_name=ops-1', `/token?account_id=${ACCOUNT_ID}&ttl=3600`, '/token/rights']) {
      await call({ url, headers: bearer(secret) })
    }
    await call({ method: 'DELETE', url: '/token?session_name=ops-1', headers: bearer(secret) })
    await call({ method: 'POST', url: '/token', headers: bearer(secret), payload: { session_name: 'billing-2', ttl: 9999 } })
  }
  // A rotated secret_file, then a broken callers file and a secret_file too short.
  writeFileSync(join(dir, 'broad.secret'), rotated)
  clock.advance(2_000)
  await until(() => sidecar.logs.containing('callers reloaded').length === 1, 'the reload')
  await call({ url: '/token', headers: bearer(rotated) })
  writeFileSync(join(dir, 'broad.secret'), 'tiny')
  clock.advance(2_000)
  await until(() => sidecar.logs.containing('callers reload failed').length === 1, 'the failed reload')
  writeFileSync(file, `{"callers": {"x": {"secret_sha256": "${sha256(NARROW_SECRET)}", "session_names": "${NARROW_SECRET}"}}}`)
  clock.advance(2_000)
  await until(() => sidecar.logs.containing('callers reload failed').length === 2, 'the second failed reload')

  const lines = sidecar.logs.raw
  t.ok(lines.some((line) => line.includes('"caller":"narrow"')), 'the caller\'s name is logged')
  t.ok(lines.some((line) => line.includes('caller not allowed')), 'and its refusals')
  const haystacks = [...lines, ...responses]
  const secrets = [NARROW_SECRET, BROAD_SECRET, OTHER_SECRET, ELSEWHERE_SECRET, DEFAULT_SECRET, rotated, 'an-unknown-secret-0123456789']
  const leaks = secrets.flatMap((secret) => haystacks.filter((text) => text.includes(secret)).map((text) => `${secret} in: ${text.slice(0, 200)}`))
  t.same(leaks, [], 'no caller secret in any log line (trace included) or response')
  t.notOk(haystacks.some((text) => text.includes(sha256(NARROW_SECRET))), 'nor a secret\'s digest')
})
