import t from 'tap'
import { jwtVerify } from 'jose'
import { request } from 'undici'
import { keys } from '../fixtures/keys.js'
import {
  ACCOUNT_ID, APP_ID, CHANNEL_APP_ID, ENTERPRISE_ID, KID, PRIVILEGED_APP_ID,
  startEmulator, startSidecar, type Emulator
} from '../fixtures/harness.js'

const GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

/** The last exchange the emulator accepted, with its JWT verified here, independently. */
async function lastExchange (emulator: Emulator) {
  const record = emulator.state.records.at(-1)
  if (record?.jwt === undefined) throw new Error('no exchange recorded')
  const { payload, protectedHeader } = await jwtVerify(record.jwt, keys.publicKey, {
    algorithms: ['RS256'], issuer: record.appId ?? '', audience: new URL(emulator.url).host
  })
  return { record, payload, header: protectedHeader }
}

t.test('developer variant: GET /token', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const before = Math.floor(Date.now() / 1000)
  const response = await app.inject({ method: 'GET', url: '/token' })
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  t.match(response.headers['content-type'], /^application\/json/)
  const body = response.json()
  t.same(Object.keys(body).sort(), ['access_token', 'expires_at', 'expires_in', 'token_type'])
  t.match(body, { access_token: /^czs_[A-Za-z0-9]{64}$/, token_type: 'Bearer' })
  t.ok(body.expires_in >= before + 900 && body.expires_in <= before + 902, 'expires_in is absolute, as Coze gave it')
  t.equal(body.expires_at, new Date(body.expires_in * 1000).toISOString())

  const { record, payload, header } = await lastExchange(emulator)
  t.equal(record.path, '/api/permission/oauth2/token')
  t.same(header, { alg: 'RS256', typ: 'JWT', kid: KID })
  t.equal(payload.iss, APP_ID)
  t.equal(payload.aud, new URL(emulator.url).host)
  t.ok(Math.abs((payload.iat as number) - before) <= 2, 'iat is now')
  t.equal((payload.exp as number) - (payload.iat as number), 600, 'a short-lived JWT')
  t.match(payload.jti, /^[0-9a-f]{64}$/, '32 random bytes')
  t.notOk('session_name' in payload)
  t.notOk('session_context' in payload)
  t.same(record.body, { grant_type: GRANT, duration_seconds: 900 }, 'no scope when none is given')

  // The token is one the (emulated) Coze accepts.
  const me = await request(`${emulator.url}/v1/workspaces`, { headers: { authorization: `Bearer ${body.access_token}` } })
  t.equal(me.statusCode, 200)
  t.match(await me.body.json(), { code: 0, data: { total_count: 1 } })
})

t.test('every JWT is new: a second exchange carries a different jti', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  await app.inject('/token?session_name=a')
  const first = await lastExchange(emulator)
  await app.inject('/token?session_name=b')
  const second = await lastExchange(emulator)
  t.not(first.payload.jti, second.payload.jti)
})

t.test('session_name goes into the JWT, and tokens of different sessions never mix', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const alice = (await app.inject('/token?session_name=alice')).json()
  t.equal((await lastExchange(emulator)).payload.session_name, 'alice')
  const bob = (await app.inject('/token?session_name=bob')).json()
  t.equal((await lastExchange(emulator)).payload.session_name, 'bob')
  const aliceAgain = (await app.inject('/token?session_name=alice')).json()
  t.not(alice.access_token, bob.access_token)
  t.equal(aliceAgain.access_token, alice.access_token)
  t.equal(emulator.state.tokens.get(alice.access_token)?.sessionName, 'alice')
  t.equal(emulator.state.tokens.get(bob.access_token)?.sessionName, 'bob')
  t.equal(emulator.state.exchangeCount, 2)
})

t.test('cross-account variant: account_id in the path, from the query or the default', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const response = await app.inject(`/token?account_id=${ACCOUNT_ID}`)
  t.equal(response.statusCode, 200)
  const { record } = await lastExchange(emulator)
  t.equal(record.path, `/api/permission/oauth2/account/${ACCOUNT_ID}/token`)
  t.same(record.body, { grant_type: GRANT, duration_seconds: 900 })

  const byDefault = await startSidecar(t, emulator, { COZE_ACCOUNT_ID: ACCOUNT_ID })
  t.equal((await byDefault.app.inject('/token')).statusCode, 200)
  t.equal((await lastExchange(emulator)).record.path, `/api/permission/oauth2/account/${ACCOUNT_ID}/token`)
})

t.test('enterprise privileged app: enterprise_id in the path, from the query or the default', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_APP_ID: PRIVILEGED_APP_ID })
  const response = await app.inject(`/token?enterprise_id=${ENTERPRISE_ID}`)
  t.equal(response.statusCode, 200)
  const { record, payload } = await lastExchange(emulator)
  t.equal(record.path, `/api/permission/oauth2/enterprise_id/${ENTERPRISE_ID}/token`)
  t.equal(payload.iss, PRIVILEGED_APP_ID)
  t.equal(emulator.state.tokens.get(response.json().access_token)?.enterpriseId, ENTERPRISE_ID)

  const byDefault = await startSidecar(t, emulator, { COZE_APP_ID: PRIVILEGED_APP_ID, COZE_ENTERPRISE_ID: ENTERPRISE_ID })
  t.equal((await byDefault.app.inject('/token')).statusCode, 200)
  t.equal((await lastExchange(emulator)).record.path, `/api/permission/oauth2/enterprise_id/${ENTERPRISE_ID}/token`)
  // Naming an account overrides the default enterprise (one variant per token).
  const other = await byDefault.app.inject(`/token?account_id=${ACCOUNT_ID}`)
  t.equal(other.statusCode, 502, 'the privileged app is not authorized by that account')
  t.equal(emulator.state.records.at(-1)?.path, `/api/permission/oauth2/account/${ACCOUNT_ID}/token`)
})

t.test('channel variant: POST with a scope, sent to Coze verbatim', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_APP_ID: CHANNEL_APP_ID })
  const scope = {
    account_permission: { permission_list: ['Connector.botChat'] },
    attribute_constraint: { connector_bot_chat_attribute: { bot_id_list: ['7400000000000000001'] } }
  }
  const response = await app.inject({ method: 'POST', url: '/token', payload: { scope, session_name: 'u-1', ttl: 600 } })
  t.equal(response.statusCode, 200)
  const { record, payload } = await lastExchange(emulator)
  t.equal(record.path, '/api/permission/oauth2/token')
  t.same(record.body, { grant_type: GRANT, duration_seconds: 600, scope })
  t.equal(payload.session_name, 'u-1')
  // A different scope is a different token.
  const narrower = await app.inject({ method: 'POST', url: '/token', payload: { scope: { account_permission: { permission_list: ['Connector.botChat'] } }, session_name: 'u-1', ttl: 600 } })
  t.not(narrower.json().access_token, response.json().access_token)
})

t.test('session_context: from device_id, custom_consumer, or the object itself', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  await app.inject('/token?device_id=dev-1')
  t.same((await lastExchange(emulator)).payload.session_context, { device_info: { device_id: 'dev-1' } })
  await app.inject('/token?custom_consumer=shop-9')
  t.same((await lastExchange(emulator)).payload.session_context, { device_info: { custom_consumer: 'shop-9' } })
  const response = await app.inject({ method: 'POST', url: '/token', payload: { session_context: { device_info: { device_id: 'dev-2' } } } })
  t.equal(response.statusCode, 200)
  t.same((await lastExchange(emulator)).payload.session_context, { device_info: { device_id: 'dev-2' } })
})

t.test('ttl becomes duration_seconds, and is part of the cache key', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_TOKEN_TTL: '1200' })
  const byDefault = (await app.inject('/token')).json()
  t.equal((await lastExchange(emulator)).record.body && (emulator.state.records.at(-1)?.body as { duration_seconds: number }).duration_seconds, 1200)
  const short = (await app.inject('/token?ttl=60')).json()
  t.equal((emulator.state.records.at(-1)?.body as { duration_seconds: number }).duration_seconds, 60)
  t.not(short.access_token, byDefault.access_token)
  t.ok(short.expires_in < byDefault.expires_in)
})

t.test('the bare token for scripts: ?format=text or Accept: text/plain', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const json = (await app.inject('/token')).json()
  const text = await app.inject('/token?format=text')
  t.equal(text.statusCode, 200)
  t.match(text.headers['content-type'], /^text\/plain/)
  t.equal(text.body, json.access_token)
  const accept = await app.inject({ url: '/token', headers: { accept: 'text/plain' } })
  t.equal(accept.body, json.access_token)
  const prefersJson = await app.inject({ url: '/token', headers: { accept: 'application/json, text/plain;q=0.5' } })
  t.equal(prefersJson.json().access_token, json.access_token)
  const any = await app.inject({ url: '/token', headers: { accept: '*/*' } })
  t.equal(any.json().access_token, json.access_token, 'curl\'s */* gets JSON')
  const post = await app.inject({ method: 'POST', url: '/token?format=text', payload: {} })
  t.equal(post.body, json.access_token)
  t.equal((await app.inject({ method: 'POST', url: '/token' })).json().access_token, json.access_token, 'a POST without a body means no fields')
})

t.test('DELETE /token drops the cached token: recovery after a revocation', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const first = (await app.inject('/token?session_name=s')).json()
  emulator.state.revokeApp(APP_ID)
  const me = await request(`${emulator.url}/v1/users/me`, { headers: { authorization: `Bearer ${first.access_token}` } })
  t.equal(me.statusCode, 401)
  t.match(await me.body.json(), { code: 4100 })
  t.equal((await app.inject('/token?session_name=s')).json().access_token, first.access_token, 'still cached')

  const deleted = await app.inject({ method: 'DELETE', url: '/token?session_name=s' })
  t.equal(deleted.statusCode, 204)
  t.equal(deleted.body, '')
  const fresh = (await app.inject('/token?session_name=s')).json()
  t.not(fresh.access_token, first.access_token)
  const again = await request(`${emulator.url}/v1/users/me`, { headers: { authorization: `Bearer ${fresh.access_token}` } })
  t.equal(again.statusCode, 200)
  await again.body.dump()

  // Selectors in a JSON body work too (for scoped tokens).
  const byBody = await app.inject({ method: 'DELETE', url: '/token', payload: { session_name: 's' } })
  t.equal(byBody.statusCode, 204)
  t.not((await app.inject('/token?session_name=s')).json().access_token, fresh.access_token)
})

t.test('1,000 simultaneous requests on a cold cache cause exactly one POST to Coze', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const responses = await Promise.all(Array.from({ length: 1000 }, () => app.inject('/token?session_name=herd')))
  t.ok(responses.every((response) => response.statusCode === 200), 'all served')
  t.equal(new Set(responses.map((response) => response.json().access_token)).size, 1)
  t.equal(emulator.state.exchangeCount, 1)
})

t.test('over real HTTP: the sidecar listening on 127.0.0.1', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  const responses = await Promise.all(Array.from({ length: 50 }, async () => {
    const response = await request(`${address}/token?format=text`)
    return { status: response.statusCode, token: await response.body.text() }
  }))
  t.ok(responses.every((response) => response.status === 200))
  t.equal(new Set(responses.map((response) => response.token)).size, 1)
  t.equal(emulator.state.exchangeCount, 1)
})

t.test('Coze refusing: 502 with Coze\'s code, message and logid', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const table = [
    { name: 'an account that did not authorize the app', url: '/token?account_id=999', code: 'COZE_ACCESS_DENY', cozeCode: 'access_deny' },
    { name: 'an enterprise route for a normal app', url: `/token?enterprise_id=${ENTERPRISE_ID}`, code: 'COZE_ACCESS_DENY', cozeCode: 'access_deny' }
  ]
  for (const row of table) {
    const response = await app.inject(row.url)
    t.equal(response.statusCode, 502, row.name)
    t.equal(response.headers['cache-control'], 'no-store')
    t.match(response.json(), {
      statusCode: 502,
      code: row.code,
      error: 'Bad Gateway',
      coze: { error_code: row.cozeCode, error_message: String, logid: /^\d{14}[0-9A-F]{20}$/ }
    }, row.name)
  }
  emulator.state.setEnabled(APP_ID, false)
  const disabled = await app.inject('/token?session_name=d')
  t.match(disabled.json(), { code: 'COZE_ACCESS_DENY', coze: { error_message: /deactivated by the owner/ } })
  emulator.state.setEnabled(APP_ID, true)
  t.equal((await app.inject('/token?session_name=d')).statusCode, 200, 'a refusal is not cached')
})

t.test('a key Coze does not know: 502 COZE_INVALID_CLIENT, exactly one attempt', async (t) => {
  const emulator = await startEmulator(t)
  const { app, logs } = await startSidecar(t, emulator, { COZE_KEY_ID: 'not-the-registered-kid' })
  const response = await app.inject('/token')
  t.match(response.json(), {
    statusCode: 502,
    code: 'COZE_INVALID_CLIENT',
    message: /kid not been registred/,
    coze: { error_code: 'invalid_client', error_message: 'invalid jwt: kid not been registred' }
  })
  t.equal(emulator.state.exchangeCount, 1)
  t.equal(logs.exchanges.length, 1)
  t.match(logs.containing('COZE_KEY_ID does not match'), [/fingerprint/], 'the mismatch was warned about at start')
})

t.test('Coze unreachable: 503 UPSTREAM_UNREACHABLE with Retry-After', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_API_BASE: 'http://127.0.0.1:1', SIDECAR_RETRY_BUDGET: '0' })
  const response = await app.inject('/token')
  t.equal(response.statusCode, 503)
  t.match(response.json(), { code: 'UPSTREAM_UNREACHABLE', message: /ECONNREFUSED/ })
  t.match(response.headers['retry-after'], /^\d+$/)
})

t.test('Coze timing out: 504 UPSTREAM_TIMEOUT', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { COZE_HTTP_TIMEOUT: '0.2', SIDECAR_RETRY_BUDGET: '0' })
  emulator.state.injectFault({ kind: 'hang' })
  const response = await app.inject('/token')
  t.equal(response.statusCode, 504)
  t.match(response.json(), { code: 'UPSTREAM_TIMEOUT', message: /did not answer in time/ })
})

t.test('unknown routes: 404 in the same error shape', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const response = await app.inject('/tokens?x=1')
  t.equal(response.statusCode, 404)
  t.same(response.json(), { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'Route GET /tokens not found' })
})

t.test('bad input: 400 naming the field, Coze never asked', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const long = 'x'.repeat(257)
  const get = [
    ['/token?ttl=0', 'ttl', /ttl must be >= 1/],
    ['/token?ttl=86400', 'ttl', /ttl must be <= 86399/],
    ['/token?ttl=abc', 'ttl', /ttl must be an integer/],
    ['/token?ttl=1.5', 'ttl', /ttl must be an integer/],
    ['/token?ttl=1&ttl=2', 'ttl', /ttl must be an integer/],
    [`/token?account_id=${ACCOUNT_ID}&enterprise_id=${ENTERPRISE_ID}`, 'enterprise_id', /cannot be used together/],
    ['/token?session_name=', 'session_name', /session_name must not be empty/],
    [`/token?session_name=${long}`, 'session_name', /at most 256 characters/],
    ['/token?session_name=a%00b', 'session_name', /control characters/],
    ['/token?session_name=a%C2%85b', 'session_name', /control characters/], // U+0085, a C1 line break
    ['/token?session_name=a%C2%9Bb', 'session_name', /control characters/], // U+009B, a C1 escape
    ['/token?session_name=a%E2%80%AEb', 'session_name', /bidirectional overrides/], // U+202E
    ['/token?device_id=a%E2%81%A6b', 'device_id', /bidirectional overrides/], // U+2066
    ['/token?account_id=abc', 'account_id', /numeric/],
    ['/token?account_id=', 'account_id', /numeric/],
    ['/token?enterprise_id=a%20b', 'enterprise_id', /enterprise id/],
    // Dot segments: `..` would send the request to /api/permission/oauth2/token (a developer token).
    ['/token?enterprise_id=..', 'enterprise_id', /not \. or \.\./],
    ['/token?enterprise_id=.', 'enterprise_id', /not \. or \.\./],
    ['/token?enterprise_id=%2E%2E', 'enterprise_id', /not \. or \.\./],
    ['/token?device_id=a&custom_consumer=b', 'custom_consumer', /cannot be used together/],
    ['/token?format=xml', 'format', /one of: json, text/],
    ['/token?sesion_name=typo', 'sesion_name', /not a known parameter/]
  ] as const
  for (const [url, field, message] of get) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 400, url)
    t.match(response.json(), { statusCode: 400, code: 'INVALID_PARAMETER', error: 'Bad Request', field, message }, url)
  }
  const post = [
    [{ scope: 'all' }, 'scope', /scope must be an object/],
    [{ scope: {} }, 'scope', /scope/],
    [{ scope: { account_permission: { permission_list: [1] } } }, 'scope.account_permission.permission_list[0]', /must be a string/],
    [{ scope: { account_permission: {} } }, 'scope.account_permission.permission_list', /is required/],
    [{ scope: { everything: true } }, 'scope.everything', /not a known field/],
    [{ session_context: { device_info: { device_id: 'a', custom_consumer: 'b' } } }, 'session_context.device_info', /exactly one of device_id, custom_consumer/],
    [{ session_context: { device_info: {} } }, 'session_context.device_info', /exactly one/],
    [{ session_context: { device_info: { device_id: 'a' } }, device_id: 'b' }, 'session_context', /cannot be used together/],
    [{ ttl: '900x' }, 'ttl', /integer/],
    [{ enterprise_id: '..' }, 'enterprise_id', /not \. or \.\./],
    [{ unknown: 1 }, 'unknown', /not a known field/],
    [{ ttl: '900' }, 'ttl', /integer/],
    [[1, 2], 'body', /body must be a JSON object/]
  ] as const
  for (const [payload, field, message] of post) {
    const response = await app.inject({ method: 'POST', url: '/token', payload: payload as object })
    t.equal(response.statusCode, 400, JSON.stringify(payload))
    t.match(response.json(), { code: 'INVALID_PARAMETER', field, message }, JSON.stringify(payload))
  }
  const raw = [
    [{ 'content-type': 'application/json' }, '{"ttl":', 400, 'body'],
    [{ 'content-type': 'text/plain' }, 'ttl=900', 415, 'body'],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, 'ttl=900', 415, 'body'],
    [{ 'content-type': 'application/json' }, JSON.stringify({ session_name: 'x'.repeat(20_000) }), 413, 'body']
  ] as const
  for (const [headers, payload, status, field] of raw) {
    const response = await app.inject({ method: 'POST', url: '/token', headers, payload })
    t.equal(response.statusCode, status, `${headers['content-type']} ${payload.slice(0, 10)}`)
    t.match(response.json(), { statusCode: status, code: String, field })
  }
  const both = await app.inject({ method: 'DELETE', url: '/token?session_name=a', payload: { session_name: 'b' } })
  t.match(both.json(), { statusCode: 400, field: 'body', message: /either in the query or in the JSON body/ })
  const badDelete = await app.inject({ method: 'DELETE', url: '/token?ttl=0' })
  t.match(badDelete.json(), { statusCode: 400, field: 'ttl' })
  t.equal(emulator.state.exchangeCount, 0, 'no bad input reached Coze')
})

t.test('GET /token?renew=true: a new token from Coze; the cached one is kept until it arrives, and if it does not', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_RETRY_BUDGET: '0' })
  const first = (await app.inject('/token')).json()
  const renewed = await app.inject('/token?renew=true')
  t.equal(renewed.statusCode, 200)
  t.not(renewed.json().access_token, first.access_token, 'a new token')
  t.equal((await app.inject('/token')).json().access_token, renewed.json().access_token, 'which the cache now hands out')
  t.equal(emulator.state.exchangeCount, 2)

  emulator.state.setEnabled(APP_ID, false)
  const refused = await app.inject('/token?renew=true')
  t.equal(refused.statusCode, 502)
  t.match(refused.json(), { code: 'COZE_ACCESS_DENY' })
  t.equal((await app.inject('/token')).json().access_token, renewed.json().access_token, 'the cached token is still served')

  emulator.state.setEnabled(APP_ID, true)
  emulator.state.injectFault({ kind: 'status', status: 503 }, Infinity)
  t.equal((await app.inject('/token?renew=true&session_name=u1')).statusCode, 503, 'Coze down')
  const backingOff = await app.inject('/token?renew=true&session_name=u1')
  t.equal(backingOff.statusCode, 503, 'then answered at once while backing off')
  t.match(backingOff.headers['retry-after'], /^\d+$/)
  t.match((await app.inject('/token?renew=nope')).json(), { statusCode: 400, field: 'renew' })
})
