/**
 * Callers on the real routes: every allowed and refused combination on GET, POST and DELETE
 * /token for a narrow and a broad caller, the file edited and broken at run time, start-up.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import type { Caller } from '../../src/access/callers.js'
import { authorizeCall } from '../../src/access/guard.js'
import { buildApp } from '../../src/app.js'
import { ConfigError } from '../../src/errors.js'
import { FakeClock } from '../fixtures/clock.js'
import { until } from '../fixtures/flush.js'
import { ACCOUNT_ID, ENTERPRISE_ID, PRIVILEGED_APP_ID, sidecarEnv, startEmulator, startSidecar, tempDir } from '../fixtures/harness.js'
import {
  BROAD_SECRET, DEFAULT_SECRET, ELSEWHERE_SECRET, NARROW_SECRET, OTHER_SECRET, bearer, sha256, writeCallers
} from '../fixtures/callers.js'

const SECRETS = [NARROW_SECRET, BROAD_SECRET, OTHER_SECRET, ELSEWHERE_SECRET, DEFAULT_SECRET]

t.test('GET and POST /token: what each caller may take', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const { app, logs } = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: writeCallers(dir), SIDECAR_AUTH_TOKEN: DEFAULT_SECRET })
  const table: Array<[string, string, string, number, string?]> = [
    // caller secret, query, what, status, refused field
    [NARROW_SECRET, '', 'the default request', 200],
    [NARROW_SECRET, 'session_name=billing-42', 'a billing session', 200],
    [NARROW_SECRET, 'session_name=billing-42&ttl=600', 'at max_ttl', 200],
    [NARROW_SECRET, 'session_name=ops-1', 'another session', 403, 'session_name'],
    [NARROW_SECRET, 'session_name=xbilling-1', 'a name that only contains the prefix', 403, 'session_name'],
    [NARROW_SECRET, 'ttl=601', 'beyond max_ttl', 403, 'ttl'],
    [NARROW_SECRET, `account_id=${ACCOUNT_ID}`, 'an account', 403, 'account_id'],
    [NARROW_SECRET, `enterprise_id=${ENTERPRISE_ID}`, 'an enterprise', 403, 'enterprise_id'],
    [NARROW_SECRET, 'session_name=ops-1&ttl=9999', 'session first, then ttl', 403, 'session_name'],
    [BROAD_SECRET, '', 'the default request', 200],
    [BROAD_SECRET, 'session_name=ops-1&ttl=3600', 'any session, a long ttl', 200],
    [BROAD_SECRET, `account_id=${ACCOUNT_ID}&session_name=alice`, 'an account', 200],
    [OTHER_SECRET, '', 'the default credential, not its app', 403, 'app'],
    [ELSEWHERE_SECRET, '', 'its default app, which this sidecar does not hold', 400, 'app'],
    [DEFAULT_SECRET, `session_name=anyone&account_id=${ACCOUNT_ID}&ttl=86399`, 'SIDECAR_AUTH_TOKEN: everything', 200],
    ['wrong-secret-0123456789abcdef', '', 'an unknown secret', 401]
  ]
  for (const [secret, query, what, status, field] of table) {
    const response = await app.inject({ url: `/token${query === '' ? '' : '?'}${query}`, headers: bearer(secret) })
    t.equal(response.statusCode, status, `GET ${what}: ${status}`)
    if (status === 403) {
      t.match(response.json(), { statusCode: 403, code: 'CALLER_NOT_ALLOWED', error: 'Forbidden', field }, `GET ${what}: the rule`)
    }
    if (field !== undefined) t.equal(response.json().field, field, `GET ${what}: field ${field}`)
    t.notOk(SECRETS.some((known) => response.body.includes(known)), `${what}: no secret in the answer`)
  }
  const post = await app.inject({ method: 'POST', url: '/token', headers: bearer(NARROW_SECRET), payload: { session_name: 'ops-1', device_id: 'd' } })
  t.match(post.json(), { statusCode: 403, field: 'session_name', message: 'caller narrow may not use session_name "ops-1" (allowed: "billing-*")' })
  const allowed = await app.inject({ method: 'POST', url: '/token', headers: bearer(NARROW_SECRET), payload: { session_name: 'billing-7', session_context: { device_info: { device_id: 'd' } } } })
  t.equal(allowed.statusCode, 200, 'POST within the rules')
  // A narrow caller that names no ttl gets the service's 900 s capped at its max_ttl.
  const short = emulator.state.records.filter((record) => (record.body as { duration_seconds?: number }).duration_seconds === 600)
  t.ok(short.length >= 1, 'the narrow caller\'s default request asked Coze for 600 s')

  const refusals = logs.lines.filter((line) => line.msg === 'caller not allowed')
  t.same(refusals.map((line) => [line.caller, line.reason]), [
    ['narrow', 'session_name'], ['narrow', 'session_name'], ['narrow', 'ttl'], ['narrow', 'account_id'],
    ['narrow', 'enterprise_id'], ['narrow', 'session_name'], ['other', 'app'], ['narrow', 'session_name']
  ], 'every refusal is logged with the caller and the rule')
  t.match(refusals[0], { level: 40, method: 'GET', route: '/token' })
  const exchanges = logs.exchanges
  t.ok(exchanges.some((exchange) => exchange.caller === 'narrow'), 'exchanges name the caller that waited for them')
  t.ok(exchanges.some((exchange) => exchange.caller === 'broad'))
  t.ok(exchanges.some((exchange) => exchange.caller === 'default'))
  for (const secret of SECRETS) t.equal(logs.containing(secret).length, 0, 'no secret in the logs')

  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /coze_token_caller_requests_total\{caller="narrow"\} 4/)
  t.match(metrics, /coze_token_caller_requests_total\{caller="broad"\} 3/)
  t.match(metrics, /coze_token_caller_refusals_total\{caller="narrow",reason="session_name"\} 4/)
  t.match(metrics, /coze_token_caller_refusals_total\{caller="other",reason="app"\} 1/)
  t.match(metrics, /coze_token_caller_refusals_total\{caller="\(unknown\)",reason="secret"\} 1/)
  t.match(metrics, /coze_token_caller_exchanges_total\{caller="narrow",outcome="ok"\} \d/)
})

t.test('DELETE /token: a caller cannot drop a token it could not take', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: writeCallers(tempDir(t)) })
  const take = async (secret: string, query: string): Promise<string> =>
    (await app.inject({ url: `/token?${query}`, headers: bearer(secret) })).json().access_token as string
  const ops = await take(BROAD_SECRET, 'session_name=ops-1')
  const table: Array<[string, string, number, string?]> = [
    [NARROW_SECRET, 'session_name=ops-1', 403, 'session_name'],
    [NARROW_SECRET, `account_id=${ACCOUNT_ID}`, 403, 'account_id'],
    [NARROW_SECRET, 'ttl=900', 403, 'ttl'],
    [OTHER_SECRET, '', 403, 'app'],
    [NARROW_SECRET, 'session_name=billing-1', 204],
    [BROAD_SECRET, `enterprise_id=${ENTERPRISE_ID}`, 204]
  ]
  for (const [secret, query, status, field] of table) {
    const response = await app.inject({ method: 'DELETE', url: `/token?${query}`, headers: bearer(secret) })
    t.equal(response.statusCode, status, `DELETE ${query}`)
    if (field !== undefined) t.match(response.json(), { code: 'CALLER_NOT_ALLOWED', field })
  }
  t.equal(await take(BROAD_SECRET, 'session_name=ops-1'), ops, 'the refused DELETE dropped nothing')
  const body = await app.inject({ method: 'DELETE', url: '/token', headers: bearer(NARROW_SECRET), payload: { session_name: 'ops-1' } })
  t.match(body.json(), { statusCode: 403, field: 'session_name' }, 'selectors in the body are checked too')
  const billing = await take(NARROW_SECRET, 'session_name=billing-1')
  t.equal((await app.inject({ method: 'DELETE', url: '/token?session_name=billing-1', headers: bearer(NARROW_SECRET) })).statusCode, 204)
  t.not(await take(NARROW_SECRET, 'session_name=billing-1'), billing, 'an allowed DELETE drops its own token')
})

t.test('the callers file is re-read on change; a broken one keeps the last good rules and logs one line', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const file = writeCallers(dir)
  const clock = new FakeClock()
  const { app, logs } = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: file }, { clock })
  const status = async (secret: string, query: string): Promise<number> =>
    (await app.inject({ url: `/token?${query}`, headers: bearer(secret) })).statusCode
  t.equal(await status(NARROW_SECRET, 'session_name=billing-1'), 200)
  t.equal(await status(NARROW_SECRET, 'session_name=ops-1'), 403)
  t.match(logs.lines.find((line) => line.msg === 'callers loaded'), { callers: ['narrow', 'broad', 'other', 'elsewhere'] })

  writeCallers(dir, { session_names: ['ops-*'] })
  clock.advance(2_000)
  await until(() => logs.containing('callers reloaded').length === 1, 'the reload')
  t.equal(await status(NARROW_SECRET, 'session_name=ops-1'), 200, 'the new rules, without a restart')
  t.equal(await status(NARROW_SECRET, 'session_name=billing-1'), 403, 'the old ones are gone')

  writeFileSync(file, '{"callers": {"narrow": {"secret_sha256": "' + sha256(NARROW_SECRET) + '", "session_names": ["ok", 7]}}}')
  clock.advance(2_000)
  await until(() => logs.containing('callers reload failed').length === 1, 'the failed reload')
  const failed = logs.lines.filter((line) => line.msg === 'callers reload failed; the last good callers stay in service')
  t.equal(failed.length, 1, 'one error line')
  t.match(failed[0], { level: 50, reason: `${file}: callers.narrow.session_names[1] must be a string` }, 'naming the file and the field')
  t.equal(await status(NARROW_SECRET, 'session_name=ops-1'), 200, 'the last good rules stay')
  t.equal(await status(BROAD_SECRET, ''), 200, 'all of them')
  // The watches' timers are set again once their look is over.
  const timers = clock.pending
  clock.advance(2_000)
  await until(() => clock.pending === timers, 'the next look')
  t.equal(logs.containing('callers reload failed').length, 1, 'an unchanged broken file is not reported again')

  writeCallers(dir)
  clock.advance(2_000)
  await until(() => logs.containing('callers reloaded').length === 2, 'the second reload')
  t.equal(await status(NARROW_SECRET, 'session_name=billing-1'), 200, 'the file is back as it was')
  // The broad caller's secret_file rotates.
  writeFileSync(join(dir, 'broad.secret'), 'broad-rotated-0123456789abcdef')
  clock.advance(2_000)
  await until(() => logs.containing('callers reloaded').length === 3, 'the reload of the secret')
  t.equal(await status(BROAD_SECRET, ''), 401, 'the old secret of a rotated secret_file')
  t.equal(await status('broad-rotated-0123456789abcdef', ''), 200, 'the new one')

  // A secret_file that appears only in the new file is watched from then on.
  writeFileSync(join(dir, 'late.secret'), 'late-secret-0123456789abcdefgh')
  writeFileSync(file, JSON.stringify({ callers: { late: { secret_file: 'late.secret' } } }))
  clock.advance(2_000)
  await until(() => logs.containing('callers reloaded').length === 4, 'the fourth reload')
  t.equal(await status('late-secret-0123456789abcdefgh', ''), 200)
  writeFileSync(join(dir, 'late.secret'), 'late-rotated-0123456789abcdefgh')
  clock.advance(2_000)
  await until(() => logs.containing('callers reloaded').length === 5, 'the new secret_file\'s change')
  t.equal(await status('late-rotated-0123456789abcdefgh', ''), 200)
  rmSync(file)
  clock.advance(2_000)
  await until(() => logs.containing('callers reload failed').length === 2, 'a removed file')
  t.match(logs.containing('callers reload failed')[1], /callers\.json: \(the file\) cannot be read \(ENOENT\)/)
  t.equal(await status('late-rotated-0123456789abcdefgh', ''), 200, 'a removed file keeps the last good rules')
  for (const secret of [...SECRETS, 'late-rotated-0123456789abcdefgh', 'broad-rotated-0123456789abcdef']) {
    t.equal(logs.containing(secret).length, 0, 'no secret in the logs')
  }
})

t.test('at start a broken callers file refuses to start, naming the file and the field', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const file = join(dir, 'callers.json')
  const start = async (env: Record<string, string>): Promise<unknown> => {
    const app = buildApp({ env: sidecarEnv(emulator, env), cwd: dir })
    try {
      await app.ready()
      return undefined
    } catch (error) {
      return error
    } finally {
      await app.close()
    }
  }
  writeFileSync(file, JSON.stringify({ callers: { billing: { secret_sha256: sha256(NARROW_SECRET), max_ttl: 100000 } } }))
  const error = await start({ SIDECAR_CALLERS_FILE: 'callers.json' })
  t.ok(error instanceof ConfigError)
  t.equal((error as ConfigError).setting, 'SIDECAR_CALLERS_FILE')
  t.equal((error as Error).message, `SIDECAR_CALLERS_FILE: ${file}: callers.billing.max_ttl must be <= 86399`)
  t.match(await start({ SIDECAR_CALLERS_FILE: 'missing.json' }), { setting: 'SIDECAR_CALLERS_FILE', message: /missing\.json: \(the file\) cannot be read \(ENOENT\)/ })
  writeFileSync(file, JSON.stringify({ callers: { default: { secret_sha256: sha256(NARROW_SECRET) } } }))
  t.match(await start({ SIDECAR_CALLERS_FILE: file, SIDECAR_AUTH_TOKEN: DEFAULT_SECRET }), { message: /callers\.default is a name taken by SIDECAR_AUTH_TOKEN/ })
  t.equal(await start({ SIDECAR_CALLERS_FILE: file }), undefined, 'without SIDECAR_AUTH_TOKEN a caller may be called default')
  t.equal(await start({ SIDECAR_CALLERS_FILE: file, HOST: '0.0.0.0' }), undefined, 'callers are a caller secret: any address may be bound')
})

t.test('a caller of an enterprise app, and the service\'s default account', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const file = join(dir, 'callers.json')
  writeFileSync(file, JSON.stringify({
    callers: {
      acme: { secret_sha256: sha256(NARROW_SECRET), enterprises: [ENTERPRISE_ID] },
      plain: { secret_sha256: sha256(OTHER_SECRET) }
    }
  }))
  const enterprise = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: file, COZE_APP_ID: PRIVILEGED_APP_ID })
  t.equal((await enterprise.app.inject({ url: `/token?enterprise_id=${ENTERPRISE_ID}`, headers: bearer(NARROW_SECRET) })).statusCode, 200)
  t.match((await enterprise.app.inject({ url: '/token?enterprise_id=volcano_2', headers: bearer(NARROW_SECRET) })).json(), { field: 'enterprise_id' })
  // COZE_ACCOUNT_ID makes the default request cross-account: a caller without that account may not have it.
  const account = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: file, COZE_ACCOUNT_ID: ACCOUNT_ID })
  t.match((await account.app.inject({ url: '/token', headers: bearer(OTHER_SECRET) })).json(), { statusCode: 403, field: 'account_id' })
})

t.test('GET /token/rights: a caller sees its own rules, and nothing without its secret', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: writeCallers(tempDir(t)), SIDECAR_AUTH_TOKEN: DEFAULT_SECRET })
  const rights = async (headers: Record<string, string>) => await app.inject({ url: '/token/rights', headers })
  t.same((await rights(bearer(NARROW_SECRET))).json(), {
    caller: 'narrow', every_right: false, apps: ['default'], session_names: ['billing-*'], accounts: [], enterprises: [], gateway: ['/v3/chat'], max_ttl: 600, defaults: {}
  })
  t.same((await rights(bearer(ELSEWHERE_SECRET))).json(), {
    caller: 'elsewhere', every_right: false, apps: ['billing'], session_names: [], accounts: [], enterprises: [], gateway: [], defaults: { app: 'billing' }
  })
  t.same((await rights(bearer(DEFAULT_SECRET))).json(), {
    caller: 'default', every_right: true, apps: ['*'], session_names: ['*'], accounts: ['*'], enterprises: ['*'], gateway: ['*'], defaults: {}
  })
  const denied = await rights({})
  t.equal(denied.statusCode, 401)
  t.equal(denied.headers['cache-control'], 'no-store')
  const full = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: writeCallers(tempDir(t), { defaults: { session_name: 'billing-0', ttl: 60 } }) })
  t.match((await full.app.inject({ url: '/token/rights', headers: bearer(NARROW_SECRET) })).json(), { defaults: { session_name: 'billing-0', ttl: 60 } })
  const open = await startSidecar(t, emulator)
  t.match((await open.app.inject('/token/rights')).json(), { caller: 'anonymous', every_right: true }, 'no caller secret: anonymous, every right')
})

t.test('authorizeCall: the gateway\'s one call, with the path', async (t) => {
  const emulator = await startEmulator(t)
  const { app, logs } = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: writeCallers(tempDir(t)), SIDECAR_AUTH_TOKEN: DEFAULT_SECRET })
  const request = { id: 'req-1', method: 'POST', routeOptions: { url: '/*' } } as unknown as FastifyRequest
  const callers = app.callers as NonNullable<typeof app.callers>
  const narrow = callers.identify(bearer(NARROW_SECRET).authorization) as Caller
  t.same(authorizeCall(app, request, narrow, { app: 'default', sessionName: 'billing-1', path: '/v3/chat' }, 600), { app: 'default', sessionName: 'billing-1', path: '/v3/chat', ttl: 600 }, 'its defaults applied')
  t.throws(() => authorizeCall(app, request, narrow, { app: 'default', path: '/v1/files/upload' }, 600), { code: 'CALLER_NOT_ALLOWED', statusCode: 403, field: 'path' })
  t.throws(() => authorizeCall(app, request, narrow, { app: 'default', sessionName: 'ops-1', path: '/v3/chat' }, 600), { code: 'CALLER_NOT_ALLOWED', field: 'session_name' })
  const broad = callers.identify(bearer(BROAD_SECRET).authorization) as Caller
  t.match(authorizeCall(app, request, broad, { app: 'any', accountId: ACCOUNT_ID, path: '/v1/workflow/stream_run' }, 600), { app: 'any', accountId: ACCOUNT_ID })
  const other = callers.identify(bearer(OTHER_SECRET).authorization) as Caller
  t.throws(() => authorizeCall(app, request, other, { app: 'default', path: '/v3/chat' }, 600), { code: 'CALLER_NOT_ALLOWED', field: 'app' })
  t.throws(() => authorizeCall(app, request, other, { app: 'other', path: '/v3/chat' }, 600), { code: 'CALLER_NOT_ALLOWED', field: 'path' }, 'gateway absent: no gateway')
  t.same(logs.lines.filter((line) => line.msg === 'caller not allowed').map((line) => [line.caller, line.reason, line.reqId]),
    [['narrow', 'path', 'req-1'], ['narrow', 'session_name', 'req-1'], ['other', 'app', 'req-1'], ['other', 'path', 'req-1']])
  t.match((await app.inject('/metrics')).body, /coze_token_caller_refusals_total\{caller="narrow",reason="path"\} 1/)
})
