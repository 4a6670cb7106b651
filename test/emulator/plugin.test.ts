import { randomBytes } from 'node:crypto'
import t from 'tap'
import { SignJWT, type JWTPayload } from 'jose'
import { request } from 'undici'
import Fastify from 'fastify'
import { cozeEmulator } from '../../src/emulator/plugin.js'
import { EmulatorState, consoleFingerprint } from '../../src/emulator/state.js'
import { keys } from '../fixtures/keys.js'
import { ACCOUNT_ID, APP_ID, CHANNEL_APP_ID, ENTERPRISE_ID, KID, PRIVILEGED_APP_ID, startEmulator, type Emulator } from '../fixtures/harness.js'

const GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

interface Ask {
  path?: string
  header?: Record<string, unknown>
  claims?: JWTPayload
  body?: unknown
  rawBody?: string
  contentType?: string
  authorization?: string | null
  key?: typeof keys.privateKey
  noBody?: boolean
}

/** Signs a JWT the way an SDK would (or, with overrides, the way it should not). */
async function jwtFor (emulator: Emulator, ask: Ask): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({
    iss: APP_ID, aud: new URL(emulator.url).host, iat: now, exp: now + 600, jti: randomBytes(16).toString('hex'), ...ask.claims
  }).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: KID, ...ask.header } as never).sign(ask.key ?? keys.privateKey)
}

async function post (emulator: Emulator, ask: Ask = {}) {
  const jwt = await jwtFor(emulator, ask)
  const headers: Record<string, string> = { 'content-type': ask.contentType ?? 'application/json' }
  if (ask.authorization !== null) headers.authorization = ask.authorization ?? `Bearer ${jwt}`
  const response = await request(`${emulator.url}${ask.path ?? '/api/permission/oauth2/token'}`, {
    method: 'POST',
    headers,
    body: ask.noBody === true ? undefined : ask.rawBody ?? JSON.stringify(ask.body ?? { grant_type: GRANT, duration_seconds: 900 })
  })
  const text = await response.body.text()
  return { status: response.statusCode, headers: response.headers, json: JSON.parse(text) as Record<string, unknown>, jwt }
}

t.test('accepts what the SDKs send and answers like Coze', async (t) => {
  const emulator = await startEmulator(t)
  const now = Math.floor(Date.now() / 1000)
  const ok = await post(emulator)
  t.equal(ok.status, 200)
  t.same(Object.keys(ok.json).sort(), ['access_token', 'expires_in'])
  t.match(ok.json.access_token, /^czs_[A-Za-z0-9]{64}$/)
  t.ok((ok.json.expires_in as number) - now >= 900 && (ok.json.expires_in as number) - now <= 901, 'expires_in is absolute')
  t.match(ok.headers['x-tt-logid'], /^\d{14}[0-9A-F]{20}$/)

  const sdkBodies = [
    { duration_seconds: 900, grant_type: GRANT, scope: null }, // coze-py
    { client_id: APP_ID, grant_type: GRANT }, // coze-go, no duration
    { grant_type: GRANT, duration_seconds: 86399 }, // the maximum
    { grant_type: GRANT, scope: { account_permission: { permission_list: ['Connector.botChat'] }, attribute_constraint: { connector_bot_chat_attribute: { bot_id_list: ['b1'] } } } },
    { grant_type: GRANT, scope: { attribute_constraint: { connector_bot_chat_attribute: null } } },
    { grant_type: GRANT, scope: { account_permission: null, attribute_constraint: null, workspace_permission: { workspace_id_list: ['1'], permission_list: ['x'] } } }
  ]
  for (const body of sdkBodies) {
    t.equal((await post(emulator, { body })).status, 200, JSON.stringify(body))
  }
  t.equal((await post(emulator, { contentType: 'application/json; charset=utf-8' })).status, 200, 'coze-go\'s content type')
  t.equal((await post(emulator, { claims: { jti: 'a1b2c3d4e5f60718' } })).status, 200, '16-char jti (coze-go/java)')
  t.equal((await post(emulator, { claims: { exp: now + 86399 } })).status, 200, 'a JWT as long as the token (coze-java)')
  t.equal((await post(emulator, { claims: { session_name: 'u1', session_context: { device_info: { custom_consumer: 'c' } } } })).status, 200)
  const noDuration = await post(emulator, { body: { grant_type: GRANT } })
  t.ok((noDuration.json.expires_in as number) - now >= 900, 'duration_seconds defaults to 900')
})

t.test('refuses what Coze refuses, in Coze\'s error shape', async (t) => {
  const emulator = await startEmulator(t)
  const now = Math.floor(Date.now() / 1000)
  const table: Array<[string, Ask, number, string, RegExp]> = [
    ['form body', { contentType: 'application/x-www-form-urlencoded', rawBody: 'grant_type=x' }, 400, 'invalid_request', /invalid request: body/],
    ['not JSON', { rawBody: '{' }, 400, 'invalid_request', /invalid request: body/],
    ['a JSON array', { rawBody: '[]' }, 400, 'invalid_request', /invalid request: body/],
    ['wrong grant type', { body: { grant_type: 'client_credentials' } }, 400, 'unsupported_grant_type', /not supported grant type: client_credentials/],
    ['no grant type', { body: { duration_seconds: 900 } }, 400, 'unsupported_grant_type', /^not supported grant type: $/],
    ['no body at all', { noBody: true }, 400, 'invalid_request', /invalid request: body/],
    ['empty Authorization', { authorization: '' }, 401, 'invalid_client', /invalid jwt: missing or malformed/],
    ['no Authorization', { authorization: null }, 401, 'invalid_client', /invalid jwt: missing or malformed/],
    ['Basic auth', { authorization: 'Basic abc' }, 401, 'invalid_client', /malformed/],
    ['not a JWT', { authorization: 'Bearer a.b.c' }, 401, 'invalid_client', /not a JWT/],
    ['alg PS256', { header: { alg: 'PS256' } }, 401, 'invalid_client', /alg must be RS256/],
    ['no typ', { header: { typ: undefined } }, 401, 'invalid_client', /typ must be JWT/],
    ['no kid', { header: { kid: undefined } }, 401, 'invalid_client', /kid is missing/],
    ['unknown kid', { header: { kid: 'nope' } }, 401, 'invalid_client', /^invalid jwt: kid not been registred$/],
    ['unknown app', { claims: { iss: '999' } }, 401, 'invalid_client', /kid not been registred/],
    ['iss not a string', { claims: { iss: 1127900106117 as unknown as string } }, 401, 'invalid_client', /kid not been registred/],
    ['wrong key', { key: keys.otherPrivateKey }, 401, 'invalid_client', /signature/],
    ['wrong aud', { claims: { aud: 'api.coze.cn' } }, 401, 'invalid_client', /aud must be/],
    ['aud as a list', { claims: { aud: [new URL(emulator.url).host] } }, 401, 'invalid_client', /aud must be/],
    ['expired JWT', { claims: { iat: now - 1000, exp: now - 100 } }, 401, 'invalid_client', /expired/],
    ['JWT from the future', { claims: { iat: now + 120, exp: now + 600 } }, 401, 'invalid_client', /future/],
    ['exp before iat', { claims: { iat: now, exp: now - 1 } }, 401, 'invalid_client', /later than iat/],
    ['fractional iat', { claims: { iat: now + 0.5 } }, 401, 'invalid_client', /integers/],
    ['JWT too long-lived', { claims: { iat: now, exp: now + 86_401 } }, 401, 'invalid_client', /lifetime too long/],
    ['no jti', { claims: { jti: '' } }, 401, 'invalid_client', /jti is missing/],
    ['session_name not a string', { claims: { session_name: 7 } }, 400, 'invalid_request', /session_name/],
    ['session_context without ids', { claims: { session_context: { device_info: {} } } }, 400, 'invalid_request', /session_context/],
    ['session_context a string', { claims: { session_context: 'device' } }, 400, 'invalid_request', /session_context/],
    ['session_context with a device_info string', { claims: { session_context: { device_info: 'd1' } } }, 400, 'invalid_request', /session_context/],
    ['session_context with an empty id', { claims: { session_context: { device_info: { device_id: '' } } } }, 400, 'invalid_request', /session_context/],
    ['duration 0', { body: { grant_type: GRANT, duration_seconds: 0 } }, 400, 'invalid_request', /duration_seconds/],
    ['duration 86400', { body: { grant_type: GRANT, duration_seconds: 86400 } }, 400, 'invalid_request', /duration_seconds/],
    ['duration as text', { body: { grant_type: GRANT, duration_seconds: '900' } }, 400, 'invalid_request', /duration_seconds/],
    ['scope a string', { body: { grant_type: GRANT, scope: 'all' } }, 400, 'invalid_request', /scope/],
    ['scope with bad permissions', { body: { grant_type: GRANT, scope: { account_permission: { permission_list: [1] } } } }, 400, 'invalid_request', /scope/],
    ['scope with a list as constraint', { body: { grant_type: GRANT, scope: { attribute_constraint: [] } } }, 400, 'invalid_request', /scope/],
    ['scope with bot ids not a list', { body: { grant_type: GRANT, scope: { attribute_constraint: { connector_bot_chat_attribute: { bot_id_list: 'b1' } } } } }, 400, 'invalid_request', /scope/],
    ['unauthorized account', { path: '/api/permission/oauth2/account/1/token' }, 403, 'access_deny', /account 1 has not authorized/],
    ['account mismatch in the body', { path: `/api/permission/oauth2/account/${ACCOUNT_ID}/token`, body: { grant_type: GRANT, account_id: 2 } }, 400, 'invalid_request', /account_id/],
    ['enterprise route, normal app', { path: `/api/permission/oauth2/enterprise_id/${ENTERPRISE_ID}/token` }, 403, 'access_deny', /invalid app type/],
    ['other enterprise', { path: '/api/permission/oauth2/enterprise_id/other/token', claims: { iss: PRIVILEGED_APP_ID } }, 403, 'access_deny', /not the owner/],
    ['enterprise mismatch in the body', { path: `/api/permission/oauth2/enterprise_id/${ENTERPRISE_ID}/token`, claims: { iss: PRIVILEGED_APP_ID }, body: { grant_type: GRANT, enterprise_id: 'x' } }, 400, 'invalid_request', /enterprise_id/]
  ]
  for (const [name, ask, status, code, message] of table) {
    const answer = await post(emulator, ask)
    t.equal(answer.status, status, name)
    t.same(Object.keys(answer.json).sort(), ['error', 'error_code', 'error_description', 'error_message'], name)
    t.equal(answer.json.error_code, code, name)
    t.equal(answer.json.error, code, name)
    t.match(answer.json.error_message, message, name)
    t.match(answer.headers['x-tt-logid'], /^\d{14}[0-9A-F]{20}$/, name)
  }
  t.equal(emulator.state.tokens.size, 0, 'nothing was issued')
})

t.test('a JWT is accepted once', async (t) => {
  const emulator = await startEmulator(t)
  const first = await post(emulator)
  t.equal(first.status, 200)
  const replay = await request(`${emulator.url}/api/permission/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${first.jwt}` },
    body: JSON.stringify({ grant_type: GRANT })
  })
  t.equal(replay.statusCode, 401)
  t.match(await replay.body.json(), { error_code: 'invalid_client', error_message: 'invalid jwt: jti has been used' })
})

t.test('apps: disabled, channel without a channel, privileged, cross-account', async (t) => {
  const emulator = await startEmulator(t)
  emulator.state.setEnabled(APP_ID, false)
  const disabled = await post(emulator)
  t.match(disabled, { status: 403, json: { error_code: 'access_deny', error_message: 'app: test app is currently deactivated by the owner' } })
  emulator.state.setEnabled(APP_ID, true)
  t.equal((await post(emulator)).status, 200)

  emulator.state.apps.get(CHANNEL_APP_ID)!.channelBound = false
  const unbound = await post(emulator, { claims: { iss: CHANNEL_APP_ID } })
  t.match(unbound, { status: 403, json: { error_message: 'connector app should bind connector id' } })

  const enterprise = await post(emulator, { path: `/api/permission/oauth2/enterprise_id/${ENTERPRISE_ID}/token`, claims: { iss: PRIVILEGED_APP_ID } })
  t.equal(enterprise.status, 200)
  const account = await post(emulator, { path: `/api/permission/oauth2/account/${ACCOUNT_ID}/token`, body: { grant_type: GRANT, account_id: Number(ACCOUNT_ID) } })
  t.equal(account.status, 200, 'coze-go repeats the account id in the body')
  t.equal(emulator.state.setEnabled('nope', true), false)
})

t.test('what coze-go and coze-java send: a 17-digit account id as a JSON number, an empty session_context, an aud without a port', async (t) => {
  const emulator = await startEmulator(t)
  const { host, hostname } = new URL(emulator.url)
  const organization = '73512345678901234' // 17 digits: beyond a double's 53 bits
  emulator.state.registerApp({ appId: '555', name: 'sdk app', audience: [host, hostname], keys: [{ kid: KID, publicKey: keys.publicKey }], authorizedAccounts: [organization] })
  const path = `/api/permission/oauth2/account/${organization}/token`
  // coze-go: getAccessTokenReq.AccountID is an *int64, written as a JSON number (auth.go).
  const goBody = `{"client_id":"555","grant_type":"${GRANT}","duration_seconds":900,"account_id":${organization}}`
  const go = await post(emulator, { path, claims: { iss: '555', session_context: {} }, rawBody: goBody })
  t.equal(go.status, 200, 'coze-go\'s body and its empty SessionContext')
  t.equal((await post(emulator, { path, claims: { iss: '555' }, body: { grant_type: GRANT, account_id: organization } })).status, 200, 'the id as a string')
  const other = await post(emulator, { path, claims: { iss: '555' }, rawBody: `{"grant_type":"${GRANT}","account_id":73512345678901000}` })
  t.match(other, { status: 400, json: { error_message: 'invalid request: account_id' } }, 'another id is still refused')
  const fractional = await post(emulator, { path, claims: { iss: '555' }, body: { grant_type: GRANT, account_id: 1.5 } })
  t.equal(fractional.status, 400, 'not an id')
  // coze-java: aud is java.net.URL#getHost(), never a port (OAuthClient.java, JWTOAuthClient.java).
  t.equal((await post(emulator, { claims: { iss: '555', aud: hostname } })).status, 200, 'aud without the port')
  t.equal((await post(emulator, { claims: { iss: '555', aud: host } })).status, 200, 'aud with it')
  t.match(await post(emulator, { claims: { iss: '555', aud: 'api.coze.cn' } }), { status: 401, json: { error_message: `invalid jwt: aud must be ${host}` } })
  t.throws(() => emulator.state.registerApp({ appId: '556', audience: [], keys: [{ publicKey: keys.publicKey }] }), /at least one audience/)
})

t.test('protected routes: a valid token works, a revoked, expired or disabled one gets 4100', async (t) => {
  let clock = Date.now()
  const emulator = await startEmulator(t, { now: () => clock })
  const { json } = await post(emulator, { claims: { session_name: 'alice' } })
  const token = json.access_token as string
  const get = async (path: string, bearer = token) => {
    const response = await request(`${emulator.url}${path}`, { headers: { authorization: `Bearer ${bearer}` } })
    return { status: response.statusCode, logid: response.headers['x-tt-logid'], json: await response.body.json() as Record<string, unknown> }
  }
  const me = await get('/v1/users/me')
  t.match(me, { status: 200, json: { code: 0, msg: '', data: { user_id: String, user_name: 'alice', nick_name: 'alice', avatar_url: '' }, detail: { logid: me.logid } } })
  t.match(await get('/v1/workspaces'), { status: 200, json: { code: 0, data: { workspaces: [{ id: String, name: String }], total_count: 1 } } })
  t.match(await get('/v1/users/me', 'czs_unknown'), { status: 401, json: { code: 4100, msg: 'authentication is invalid' } })
  emulator.state.setEnabled(APP_ID, false)
  t.equal((await get('/v1/users/me')).status, 401, 'disabled: suspended')
  emulator.state.setEnabled(APP_ID, true)
  t.equal((await get('/v1/users/me')).status, 200, 're-enabled: restored')
  clock += 901_000
  t.equal((await get('/v1/users/me')).status, 401, 'expired')
  clock -= 901_000
  t.equal(emulator.state.revokeApp(APP_ID), 1)
  t.equal((await get('/v1/users/me')).status, 401, 'revoked')
  const none = await request(`${emulator.url}/v1/users/me`)
  t.equal(none.statusCode, 401)
  await none.body.dump()
})

t.test('knobs: token_type on success, a shared state, a typ-less JWT tolerated', async (t) => {
  const state = new EmulatorState({ knobs: { tokenType: true, requireTyp: false } })
  const app = Fastify()
  await app.register(cozeEmulator, { state, control: false })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  state.registerApp({ appId: APP_ID, audience: new URL(url).host, keys: [{ publicKey: keys.publicKey }] })
  const emulator = { url, state, app }
  t.equal(app.cozeEmulator, state)
  const answer = await post(emulator, { header: { typ: undefined } })
  t.match(answer, { status: 200, json: { token_type: 'Bearer', access_token: /^czs_/ } })
  const me = await request(`${url}/v1/users/me`, { headers: { authorization: `Bearer ${answer.json.access_token as string}` } })
  t.match(await me.body.json(), { data: { user_name: 'service', nick_name: 'Service account' } }, 'no session name')
  const control = await request(`${url}/_emulator/state`)
  t.equal(control.statusCode, 404, 'control routes off')
  await control.body.dump()
})

t.test('faults, injected in-process', async (t) => {
  const emulator = await startEmulator(t)
  const { state } = emulator
  state.injectFault({ kind: 'status', status: 500 })
  t.match(await post(emulator), { status: 500, json: { error_code: 'internal_error', error_message: 'Service internal error.' } })
  state.injectFault({ kind: 'status', status: 429, retryAfter: '7' })
  const limited = await post(emulator)
  t.match(limited, { status: 429, json: { error_code: 'too_many_requests' } })
  t.equal(limited.headers['retry-after'], '7')
  state.injectFault({ kind: 'no_token' })
  const noToken = await post(emulator)
  t.equal(noToken.status, 200)
  t.notOk('access_token' in noToken.json)
  state.injectFault({ kind: 'expired' })
  t.ok(((await post(emulator)).json.expires_in as number) < Date.now() / 1000)
  state.injectFault({ kind: 'delay', ms: 50 })
  const started = Date.now()
  t.equal((await post(emulator)).status, 200)
  t.ok(Date.now() - started >= 45, 'delayed, then answered normally')
  state.injectFault({ kind: 'html' }, 2)
  for (let i = 0; i < 2; i++) {
    const jwt = await jwtFor(emulator, {})
    const html = await request(`${emulator.url}/api/permission/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` }, body: '{}' })
    t.match(html.headers['content-type'], /text\/html/)
    t.match(await html.body.text(), /<html>/)
  }
  state.injectFault({ kind: 'drop' })
  await t.rejects(post(emulator), { code: 'UND_ERR_SOCKET' }, 'the connection is dropped')
  state.injectFault({ kind: 'status', status: 503 }, Infinity)
  t.equal((await post(emulator)).status, 503)
  t.equal((await post(emulator)).status, 503)
  state.clearFaults()
  t.equal((await post(emulator)).status, 200)
  t.ok(state.records.some((record) => record.fault === 'drop'))
})

t.test('a hung request is released when the emulator closes', async (t) => {
  const app = Fastify()
  await app.register(cozeEmulator, { apps: [{ appId: APP_ID, audience: 'x', keys: [{ publicKey: keys.spki }] }] })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  app.cozeEmulator.injectFault({ kind: 'hang' })
  const hung = request(`${url}/api/permission/oauth2/token`, { method: 'POST', body: '{}' }).catch((error: Error) => error)
  while (app.cozeEmulator.exchangeCount === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  await app.close()
  t.match(await hung, { code: 'UND_ERR_SOCKET' })
})

t.test('control routes over HTTP (no JWT or token is ever shown)', async (t) => {
  const emulator = await startEmulator(t)
  const json = { 'content-type': 'application/json' }
  const fault = await request(`${emulator.url}/_emulator/faults`, { method: 'POST', headers: json, body: JSON.stringify({ kind: 'status', status: 503, retry_after: '2', times: 2 }) })
  t.equal(fault.statusCode, 204)
  t.match(await post(emulator), { status: 503, headers: { 'retry-after': '2' } })
  t.equal((await post(emulator)).status, 503)
  t.equal((await post(emulator)).status, 200, 'two times, then normal')
  const queued = [{ kind: 'delay' }, { kind: 'html' }, { kind: 'delay', ms: 1 }, { kind: 'html', status: 502 }, { kind: 'status', error_code: 'x' }, { kind: 'drop', times: 0 }]
  for (const body of queued) {
    const response = await request(`${emulator.url}/_emulator/faults`, { method: 'POST', headers: json, body: JSON.stringify(body) })
    t.equal(response.statusCode, 204, JSON.stringify(body))
  }
  const started = Date.now()
  t.equal((await post(emulator)).status, 200, 'a delay of 1 s by default, then a normal answer')
  t.ok(Date.now() - started >= 950)
  await t.rejects(post(emulator), SyntaxError, 'an HTML page (200 by default)')
  const bad = await request(`${emulator.url}/_emulator/faults`, { method: 'POST', headers: json, body: JSON.stringify({ kind: 'meteor' }) })
  t.equal(bad.statusCode, 400)
  await bad.body.dump()
  const cleared = await request(`${emulator.url}/_emulator/faults`, { method: 'DELETE' })
  t.equal(cleared.statusCode, 204)
  t.equal((await post(emulator)).status, 200)

  t.equal((await request(`${emulator.url}/_emulator/apps/${APP_ID}/disable`, { method: 'POST' })).statusCode, 204)
  t.equal((await post(emulator)).status, 403)
  t.equal((await request(`${emulator.url}/_emulator/apps/${APP_ID}/enable`, { method: 'POST' })).statusCode, 204)
  const issued = emulator.state.tokens.size
  t.ok(issued > 0)
  const revoke = await request(`${emulator.url}/_emulator/apps/${APP_ID}/revoke`, { method: 'POST' })
  t.same(await revoke.body.json(), { revoked: issued })
  t.equal(emulator.state.tokens.size, 0)
  const missing = await request(`${emulator.url}/_emulator/apps/999/disable`, { method: 'POST' })
  t.equal(missing.statusCode, 404)
  await missing.body.dump()

  const state = await request(`${emulator.url}/_emulator/state`)
  const text = await state.body.text()
  t.match(JSON.parse(text), { apps: [{ app_id: APP_ID, kids: [KID] }, {}, {}], exchanges: Number, recent: Array })
  t.notMatch(text, /czs_|eyJ/, 'no token or JWT in the state')
})

t.test('state: keys, fingerprints and bounds', async (t) => {
  const state = new EmulatorState()
  t.throws(() => state.registerApp({ appId: '1', audience: 'a', keys: [] }), /1 to 3 keys/)
  const { kids } = state.registerApp({ appId: '1', audience: 'a', keys: [{ publicKey: keys.privateKey }, { kid: 'second', publicKey: keys.spki }] })
  t.same(kids, [consoleFingerprint(keys.publicKey), 'second'], 'a private key registers its public half')
  t.equal(state.takeFault(), undefined)
  for (let i = 0; i < 1100; i++) state.record({ at: i, path: '/', status: 200 })
  t.equal(state.records.length, 1000, 'records are bounded')
  t.equal(state.records[0]?.at, 100)
  t.equal(state.useJti('1', 'j', state.nowSeconds() + 10), true)
  t.equal(state.useJti('1', 'j', state.nowSeconds() + 10), false)
  t.equal(state.useJti('2', 'j', state.nowSeconds() + 10), true, 'per app')
})

t.test('state: the token and jti stores stay bounded under a flood', async (t) => {
  let now = 1_700_000_000_000
  const state = new EmulatorState({ now: () => now })
  for (let i = 0; i < 100_000; i++) state.issue({ appId: '1', expiresAt: 1_700_000_000 + (i < 50_000 ? -1 : 900) })
  t.equal(state.tokens.size, 100_000)
  state.issue({ appId: '1', expiresAt: 1_700_000_900 })
  t.equal(state.tokens.size, 50_001, 'expired tokens pruned when full')
  for (let i = 0; i < 49_999; i++) state.issue({ appId: '1', expiresAt: 1_700_000_900 })
  state.issue({ appId: '1', expiresAt: 1_700_000_900 })
  t.ok(state.tokens.size <= 100_000, 'still bounded when every token is live')
  for (let i = 0; i < 100_000; i++) state.useJti('1', String(i), 1_700_000_900)
  now += 1_000_000
  t.equal(state.useJti('1', 'new', 1_700_002_000), true)
  t.ok(state.useJti('1', '5', 1_700_002_000), 'expired jtis were forgotten')
})
