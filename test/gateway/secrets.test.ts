/**
 * No secret leaves through the gateway (the approach of test/secrets.test.ts): with logs at
 * trace, every gateway path that touches the caller secret or a token is run, and every log line
 * and every answer the sidecar wrote itself is searched for them, and for query strings.
 */
import t from 'tap'
import WebSocket from 'ws'
import { CozeAPI } from '@coze/api'
import { APP_ID } from '../fixtures/harness.js'
import { pemBody, keys } from '../fixtures/keys.js'
import { until } from '../fixtures/flush.js'
import { SECRET, startGateway } from '../fixtures/gateway.js'

t.test('the caller secret, tokens and the key never appear in logs or the sidecar\'s answers', async (t) => {
  const { emulator, sidecar, url, wsUrl } = await startGateway(t, { LOG_LEVEL: 'trace' })
  emulator.state.api.streamIntervalMs = 1
  const exposed: string[] = []
  const call = async (path: string, init: RequestInit = {}): Promise<void> => {
    const response = await fetch(`${url}${path}`, init)
    exposed.push(await response.text())
  }
  const sdk = new CozeAPI({ baseURL: url, token: SECRET })
  await sdk.users.me()
  for await (const part of await new CozeAPI({ baseURL: `${url}/sessions/grace`, token: SECRET }).chat.stream({ bot_id: '7' })) exposed.push(JSON.stringify(part))
  emulator.state.revokeApp(APP_ID)
  await sdk.users.me()
  emulator.state.api.refuseTokens(2)
  await t.rejects(sdk.users.me())
  await call(`/v1/users/me?authorization=Bearer%20${SECRET}&q=1`, { headers: { authorization: `Bearer ${SECRET}` } })
  await call('/v1/users/me', { headers: { authorization: `Bearer ${SECRET}x` } })
  await call('/v1/users/me', { headers: { authorization: `Bearer ${SECRET}`, 'x-coze-account-id': SECRET } })
  await call(`/sessions/s/v2/x?authorization=${SECRET}`, { headers: { authorization: `Bearer ${SECRET}` } })
  const socket = new WebSocket(`${wsUrl}/v1/chat?bot_id=7&authorization=Bearer%20${SECRET}`)
  await new Promise((resolve, reject) => { socket.once('message', resolve); socket.once('error', reject) })
  socket.close()
  await until(() => sidecar.logs.raw.filter((line) => line.includes('"gateway"')).length >= 9, 'every gateway line')

  const lines = sidecar.logs.raw
  t.ok(lines.length > 20, `${lines.length} log lines at trace`)
  const tokens = [...emulator.state.tokens.keys()]
  const jwts = emulator.state.records.flatMap((record) => record.jwt === undefined ? [] : [record.jwt])
  t.ok(tokens.length >= 2, `${tokens.length} tokens issued`)
  const body = pemBody(keys.pkcs8)
  const haystacks = [...lines, ...exposed.filter((text) => !text.includes('"code":0'))]
  const needles: Array<[string, string]> = [
    ['the caller secret', SECRET],
    ...tokens.map((token): [string, string] => ['an access token', token]),
    ...jwts.map((jwt): [string, string] => ['a JWT', jwt]),
    ['the key', body.slice(40, 80)]
  ]
  const leaks = needles.flatMap(([what, needle]) => haystacks.filter((text) => text.includes(needle)).map((text) => `${what} in: ${text.slice(0, 200)}`))
  t.same(leaks, [], 'no secret in any log line or answer')
  t.notOk(lines.some((line) => /authorization=[^[]|q=1/.test(line)), 'no query string value in any log line (names of known parameters at most)')
  t.notOk(lines.some((line) => /czs_[A-Za-z0-9]{20}/.test(line)), 'nothing shaped like a Coze token')
  t.ok(lines.some((line) => line.includes('"incoming request"')), 'the debug request lines were written, without their query')
})
