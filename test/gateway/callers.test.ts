/**
 * The gateway under per-caller rules (SIDECAR_CALLERS_FILE): a narrow caller may call only its
 * path, with its sessions, its ttl and its credential; a broad one anything; a refusal is a 403
 * naming the rule, logged with the caller's name and never reaching Coze.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { BROAD_SECRET, ELSEWHERE_SECRET, NARROW_SECRET, OTHER_SECRET, bearer, sha256, writeCallers } from '../fixtures/callers.js'
import { tempDir } from '../fixtures/harness.js'
import { gatewayLines, startGateway } from '../fixtures/gateway.js'

t.test('a narrow caller through the gateway: its path, its sessions, its defaults; refusals name the rule', async (t) => {
  const dir = tempDir(t)
  const { emulator, sidecar, url } = await startGateway(t, { SIDECAR_CALLERS_FILE: writeCallers(dir) })
  const call = async (path: string, secret: string, headers: Record<string, string> = {}, body: object = { bot_id: 'b', user_id: 'u', additional_messages: [] }) => {
    const answer = await request(`${url}${path}`, { method: 'POST', headers: { ...bearer(secret), 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
    return { status: answer.statusCode, body: await answer.body.json() as Record<string, unknown> }
  }
  const before = emulator.state.api.calls.length

  const allowed = await call('/v3/chat', NARROW_SECRET, { 'x-coze-session-name': 'billing-7' })
  t.equal(allowed.status, 200, 'its path, one of its sessions')
  const minted = emulator.state.records.at(-1)
  t.match(minted, { claims: { session_name: 'billing-7' }, body: { duration_seconds: 600 } }, 'a token for that session, at most its max_ttl')
  t.equal(emulator.state.api.calls.length, before + 1)

  const table: Array<[string, string, Record<string, string>, string]> = [
    ['/v1/files/upload', NARROW_SECRET, {}, 'path'],
    ['/v3/chat', NARROW_SECRET, { 'x-coze-session-name': 'ops-1' }, 'session_name'],
    ['/v3/chat', NARROW_SECRET, { 'x-coze-account-id': '7351' }, 'account_id'],
    ['/apps/default/sessions/ops-2/v3/chat', NARROW_SECRET, {}, 'session_name'],
    ['/v3/chat', OTHER_SECRET, {}, 'app']
  ]
  for (const [path, secret, headers, field] of table) {
    const refused = await call(path, secret, headers)
    t.equal(refused.status, 403, `${path} ${JSON.stringify(headers)}`)
    t.match(refused.body, { code: 'CALLER_NOT_ALLOWED', field }, field)
    t.notMatch(JSON.stringify(refused.body), new RegExp(NARROW_SECRET), 'never the secret')
  }
  t.equal(emulator.state.api.calls.length, before + 1, 'no refusal reached Coze')

  const broad = await call('/v3/chat', BROAD_SECRET, { 'x-coze-session-name': 'anyone', 'x-coze-account-id': '7351' })
  t.equal(broad.status, 200, 'a broad caller: any session, any account')
  const elsewhere = await call('/v3/chat', ELSEWHERE_SECRET)
  t.match(elsewhere.body, { statusCode: 400, field: 'app', message: /app "billing" is not configured/ }, 'the caller\'s default app, as on /token')
  const unknown = await call('/v3/chat', 'not-a-caller-secret-0123456789')
  t.equal(unknown.status, 401)

  const withAccount = await call('/v3/chat', BROAD_SECRET, { 'x-coze-enterprise-id': 'volcano_210195' })
  t.not(withAccount.status, 403, 'a broad caller may name an enterprise')

  const lines = gatewayLines(sidecar)
  t.ok(lines.some((line) => line.caller === 'narrow' && line.status === 200), 'gateway lines name the caller')
  t.ok(lines.some((line) => line.caller === 'broad'))
  t.match(sidecar.logs.containing('caller not allowed'), [/"caller":"narrow","reason":"path"/, /"reason":"session_name"/, /"reason":"account_id"/, /"reason":"session_name"/, /"caller":"other","reason":"app"/])
  for (const secret of [NARROW_SECRET, BROAD_SECRET, OTHER_SECRET]) t.equal(sidecar.logs.containing(secret).length, 0, 'no secret in the logs')
  t.match((await sidecar.app.inject('/metrics')).body, /coze_token_caller_refusals_total\{caller="narrow",reason="path"\} 1/)
})

t.test('the service\'s default account counts as asked for, through the gateway as on /token', async (t) => {
  const dir = tempDir(t)
  const { emulator, url } = await startGateway(t, { SIDECAR_CALLERS_FILE: writeCallers(dir, { accounts: ['7351'] }), COZE_ACCOUNT_ID: '7351' })
  const chat = async (secret: string) => (await request(`${url}/v3/chat`, {
    method: 'POST', headers: { ...bearer(secret), 'content-type': 'application/json', 'x-coze-session-name': 'billing-1' }, body: JSON.stringify({ bot_id: 'b', user_id: 'u' })
  })).statusCode
  t.equal(await chat(NARROW_SECRET), 200, 'the narrow caller may use account 7351')
  t.match(emulator.state.records.at(-1), { path: '/api/permission/oauth2/account/7351/token' })
  const other = await startGateway(t, { SIDECAR_CALLERS_FILE: writeCallers(tempDir(t)), COZE_ACCOUNT_ID: '7351' })
  const refused = await request(`${other.url}/v3/chat`, {
    method: 'POST', headers: { ...bearer(NARROW_SECRET), 'content-type': 'application/json', 'x-coze-session-name': 'billing-1' }, body: '{}'
  })
  t.equal(refused.statusCode, 403)
  t.match(await refused.body.json(), { code: 'CALLER_NOT_ALLOWED', field: 'account_id' }, 'a caller without accounts may not use the default account')
})

t.test('a static token through the gateway: the caller\'s app and path rules still apply', async (t) => {
  const dir = tempDir(t)
  const folder = join(dir, 'creds')
  mkdirSync(folder)
  writeFileSync(join(folder, 'pat.json'), JSON.stringify({ client_type: 'static_token', access_token: 'pat_0123456789abcdefghij' }))
  writeFileSync(join(dir, 'callers.json'), JSON.stringify({
    callers: { tool: { secret_sha256: sha256(NARROW_SECRET), apps: ['pat'], gateway: ['/v1/users/*'] } }
  }))
  const { emulator, url } = await startGateway(t, { SIDECAR_CALLERS_FILE: join(dir, 'callers.json'), COZE_OAUTH_CONFIG_DIR: folder })
  const get = async (path: string) => {
    const answer = await request(`${url}${path}`, { headers: { ...bearer(NARROW_SECRET), 'x-coze-app': 'pat' } })
    return { status: answer.statusCode, body: await answer.body.text() }
  }
  const seen = await get('/v1/users/me')
  t.not(seen.status, 403, 'its app and its path')
  t.ok(emulator.state.api.calls.some((call) => call.authorization === 'Bearer pat_0123456789abcdefghij'), 'the static token went to Coze')
  const refused = await get('/v1/workspaces')
  t.equal(refused.status, 403)
  t.match(JSON.parse(refused.body), { code: 'CALLER_NOT_ALLOWED', field: 'path' })
})
