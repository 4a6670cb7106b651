/**
 * The official Node SDK (@coze/api) with its base URL pointed at the sidecar and the caller
 * secret as its token, against the emulator, over real HTTP on 127.0.0.1.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { CozeAPI, ChatEventType, RoleType } from '@coze/api'
import { createReadStream, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { speechBytes } from '../../src/emulator/api.js'
import { SELECTION_HEADERS } from '../../src/gateway/selection.js'
import { APP_ID, tempDir } from '../fixtures/harness.js'
import { gatewayLines, SECRET, startGateway } from '../fixtures/gateway.js'

const client = (baseURL: string, extra: Partial<ConstructorParameters<typeof CozeAPI>[0]> = {}): CozeAPI =>
  new CozeAPI({ baseURL, token: SECRET, ...extra })

t.test('users.me and workspaces: the emulator sees a Coze token, never the caller secret', async (t) => {
  const { emulator, sidecar, url } = await startGateway(t)
  const me = await client(url).users.me()
  t.equal(me.user_name, 'service', 'the default token (no session)')
  const spaces = await client(url).workspaces.list()
  t.equal(spaces.total_count, 1)
  const calls = emulator.state.api.calls
  t.equal(calls.length, 2)
  for (const call of calls) {
    t.match(call.authorization, /^Bearer czs_[A-Za-z0-9]{64}$/, `${call.url}: a token the emulator issued`)
    t.notOk(call.url.includes(SECRET))
    t.notOk(call.headerNames.some((name) => SELECTION_HEADERS.has(name)), 'no selection header forwarded')
    t.ok(call.headerNames.includes('x-coze-client-user-agent'), 'the SDK\'s own headers are')
  }
  t.notOk(calls.some((call) => call.authorization?.includes(SECRET)), 'the caller secret never reached Coze')
  t.equal(emulator.state.exchangeCount, 1, 'one exchange for both calls')
  const lines = gatewayLines(sidecar)
  t.match(lines, [
    { method: 'GET', path: '/v1/users/me', family: 'v1', app: 'default', status: 200, coze_code: 0, logid: /^\d{14}[0-9A-F]{20}$/, replayed: false },
    { method: 'GET', path: '/v1/workspaces', status: 200, coze_code: 0 }
  ])
  t.ok((lines[0]?.bytes as number) > 50, 'bytes counted')
})

t.test('the SDK refuses nothing the sidecar refuses: a wrong secret is a 401 before Coze', async (t) => {
  const { emulator, url } = await startGateway(t)
  await t.rejects(new CozeAPI({ baseURL: url, token: 'not-the-secret' }).users.me(), { name: 'AuthenticationError', status: 401 })
  t.equal(emulator.state.api.calls.length, 0, 'Coze was not called')
})

t.test('chat.stream: events arrive as the emulator paces them', async (t) => {
  const { emulator, url } = await startGateway(t)
  const interval = 100
  emulator.state.api.streamIntervalMs = interval
  const arrivals: number[] = []
  const events: string[] = []
  let text = ''
  const stream = await client(url, { headers: { 'X-Coze-Session-Name': 'alice' } }).chat.stream({
    bot_id: '7400000000000000001',
    additional_messages: [{ role: RoleType.User, content: 'hi there', content_type: 'text' }]
  })
  for await (const part of stream) {
    arrivals.push(performance.now())
    events.push(part.event)
    if (part.event === ChatEventType.CONVERSATION_MESSAGE_DELTA) text += part.data.content
  }
  t.same(events.slice(0, 2), ['conversation.chat.created', 'conversation.chat.in_progress'])
  t.same(events.slice(-3), ['conversation.message.completed', 'conversation.chat.completed', 'done'])
  t.equal(text, 'Hello alice, you said: hi there', 'the deltas, in order, from alice\'s token')
  const gaps = arrivals.slice(1).map((at, index) => at - (arrivals[index] as number))
  const spread = (arrivals.at(-1) as number) - (arrivals[0] as number)
  t.comment(`${events.length} events, gaps (ms): ${gaps.map((gap) => gap.toFixed(0)).join(' ')}`)
  // A buffering proxy would deliver them all at once, at the end.
  t.ok(spread >= 0.8 * interval * (events.length - 1), `spread over ${spread.toFixed(0)} ms, as sent`)
  t.equal(emulator.state.api.streamsCompleted, 1)
})

t.test('files.upload: the bytes arrive intact', async (t) => {
  const { emulator, url } = await startGateway(t)
  const bytes = speechBytes('a file', 300_000)
  const path = join(tempDir(t), 'notes.bin')
  writeFileSync(path, bytes)
  const file = await client(url).files.upload({ file: createReadStream(path) })
  t.equal(file.bytes, bytes.length)
  t.equal(file.file_name, 'notes.bin')
  t.equal(emulator.state.api.uploads[0]?.sha256, createHash('sha256').update(bytes).digest('hex'))
})

t.test('audio.speech: binary answers stream back with Content-Disposition', async (t) => {
  const { url } = await startGateway(t)
  const response = await fetch(`${url}/v1/audio/speech`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ input: 'hello', voice_id: 'v1' })
  })
  t.equal(response.status, 200)
  t.equal(response.headers.get('content-disposition'), 'attachment; filename="speech.mp3"')
  t.equal(response.headers.get('x-accel-buffering'), 'no')
  t.ok(response.headers.get('x-tt-logid'))
  t.same(Buffer.from(await response.arrayBuffer()), speechBytes('hello'))
  const audio = await client(url).audio.speech.create({ input: 'hello', voice_id: 'v1' })
  t.same(Buffer.from(audio as ArrayBuffer), speechBytes('hello'), 'and through the SDK')
})

t.test('a revocation is healed by one replay', async (t) => {
  const { emulator, sidecar, url } = await startGateway(t)
  const sdk = client(url)
  await sdk.users.me()
  t.equal(emulator.state.revokeApp(APP_ID), 1, 'the token the sidecar holds is revoked')
  const me = await sdk.users.me()
  t.equal(me.user_name, 'service', 'the caller never saw the 4100')
  t.same(emulator.state.api.calls.map((call) => call.code), [0, 4100, 0])
  t.equal(emulator.state.exchangeCount, 2, 'one new token')
  t.match(gatewayLines(sidecar).at(-1), { status: 200, replayed: true })
  const metrics = await sidecar.app.inject('/metrics')
  t.match(metrics.body, /coze_gateway_replays_total\{outcome="healed"\} 1/)

  emulator.state.revokeApp(APP_ID)
  const events: string[] = []
  for await (const part of await sdk.chat.stream({ bot_id: '7' })) events.push(part.event)
  t.equal(events.at(-1), 'done', 'a stream is healed the same way')
  t.equal(emulator.state.exchangeCount, 3)
})

t.test('a 4100 paired with HTTP 200 is healed too', async (t) => {
  const { emulator, url } = await startGateway(t)
  emulator.state.api.authFailureStatus = 200
  await client(url).users.me()
  emulator.state.revokeApp(APP_ID)
  t.equal((await client(url).users.me()).user_name, 'service')
  t.same(emulator.state.api.calls.map((call) => [call.status, call.code]), [[200, 0], [200, 4100], [200, 0]])
})

t.test('a hopeless 4100 is not retried twice', async (t) => {
  const { emulator, sidecar, url } = await startGateway(t)
  emulator.state.api.refuseTokens(Infinity)
  await t.rejects(client(url).users.me(), { name: 'AuthenticationError', status: 401, code: 4100 }, 'Coze\'s refusal, as Coze sent it')
  t.equal(emulator.state.api.calls.length, 2, 'the first attempt and one replay')
  t.equal(emulator.state.exchangeCount, 2)
  t.match(gatewayLines(sidecar).at(-1), { status: 401, coze_code: 4100, replayed: true })
  const metrics = await sidecar.app.inject('/metrics')
  t.match(metrics.body, /coze_gateway_replays_total\{outcome="refused_again"\} 1/)
  t.match(metrics.body, /coze_gateway_requests_total\{family="v1",status="401",coze_code="4100"\} 1/)
})

t.test('per-session tokens: by header and by base-URL prefix', async (t) => {
  const { emulator, url } = await startGateway(t)
  t.equal((await client(url, { headers: { 'X-Coze-Session-Name': 'alice' } }).users.me()).user_name, 'alice')
  t.equal((await client(`${url}/sessions/bob`).users.me()).user_name, 'bob')
  t.equal((await client(`${url}/apps/default/sessions/user%2042`).users.me()).user_name, 'user 42', 'percent-decoded')
  t.equal((await client(url).users.me()).user_name, 'service')
  t.equal(emulator.state.exchangeCount, 4, 'a token per session')
  t.same(emulator.state.api.calls.map((call) => call.url), ['/v1/users/me', '/v1/users/me', '/v1/users/me', '/v1/users/me'], 'the prefix is never forwarded')
})

t.test('a WebSocket chat through the sidecar', async (t) => {
  const { emulator, url, wsUrl } = await startGateway(t)
  emulator.state.api.streamIntervalMs = 5
  const sdk = client(url, { baseWsURL: `${wsUrl}/sessions/carol` })
  const ws = await sdk.websockets.chat.create({ bot_id: '7400000000000000001' })
  const received: Array<{ event_type: string, data?: { content?: string } }> = []
  const completed = new Promise<void>((resolve, reject) => {
    ws.onmessage = (data) => {
      const event = data as { event_type: string, data?: { content?: string } }
      received.push(event)
      if (event.event_type === 'chat.created') {
        ws.send({ id: '1', event_type: 'conversation.message.create', data: { role: 'user', content_type: 'text', content: 'hello' } } as never)
      }
      if (event.event_type === 'conversation.chat.completed') resolve()
    }
    ws.onerror = (error) => reject(new Error(JSON.stringify(error)))
  })
  await completed
  const text = received.filter((event) => event.event_type === 'conversation.message.delta').map((event) => event.data?.content).join('')
  t.equal(text, 'Hello carol, you said: hello')
  const call = emulator.state.api.calls.at(-1)
  t.match(call?.authorization, /^Bearer czs_/)
  t.notOk(call?.url.includes(SECRET), 'coze-js\'s ?authorization= was taken out')
  t.notOk(call?.url.includes('authorization'))
  ws.close()
})
