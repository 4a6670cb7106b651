/**
 * WebSockets through the gateway with the `ws` client (what coze-js uses in Node): where the
 * caller's credential may be, the replay at the handshake, and closes in both directions.
 */
import type { AddressInfo } from 'node:net'
import t from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { APP_ID } from '../fixtures/harness.js'
import { gatewayLines, SECRET, startGateway } from '../fixtures/gateway.js'
import { until } from '../fixtures/flush.js'

interface Event { event_type: string, data?: { code?: number, content?: string } }

/** Opens a socket; resolves with it and the events it received, or rejects with the HTTP status. */
function open (url: string, headers: Record<string, string> = {}): Promise<{ socket: WebSocket, events: Event[] }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers })
    const events: Event[] = []
    socket.on('message', (data) => events.push(JSON.parse(data.toString()) as Event))
    socket.once('open', () => resolve({ socket, events }))
    socket.once('unexpected-response', (_request, response) => reject(Object.assign(new Error(`HTTP ${String(response.statusCode)}`), { status: response.statusCode })))
    socket.once('error', reject)
  })
}

function closed (socket: WebSocket): Promise<{ code: number, reason: string }> {
  return new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
}

t.test('the caller\'s credential: in the header, or in the query as browsers must', async (t) => {
  const { emulator, sidecar, wsUrl } = await startGateway(t)
  const byHeader = await open(`${wsUrl}/v1/chat?bot_id=7`, { authorization: `Bearer ${SECRET}` })
  await until(() => byHeader.events.length > 0, 'chat.created')
  t.equal(byHeader.events[0]?.event_type, 'chat.created')
  byHeader.socket.close()
  const byQuery = await open(`${wsUrl}/sessions/frank/v1/chat?bot_id=7&authorization=Bearer%20${SECRET}`)
  byQuery.socket.send(JSON.stringify({ event_type: 'conversation.message.create', data: { content: 'yo' } }))
  await until(() => byQuery.events.some((event) => event.event_type === 'conversation.chat.completed'), 'the chat')
  t.equal(byQuery.events.filter((event) => event.event_type === 'conversation.message.delta').map((event) => event.data?.content).join(''), 'Hello frank, you said: yo')
  byQuery.socket.close(4000, 'bye')
  await until(() => emulator.state.api.wsCloses.length === 2, 'both sessions closed at the emulator')
  t.same(emulator.state.api.wsCloses, [1005, 4000], 'the caller\'s close code reached Coze')
  for (const call of emulator.state.api.calls) {
    t.match(call.authorization, /^Bearer czs_/)
    t.equal(call.url, '/v1/chat?bot_id=7', 'no credential in the upstream URL, no prefix')
  }
  await t.rejects(open(`${wsUrl}/v1/chat?bot_id=7`), { message: 'HTTP 401', status: 401 }, 'no credential: 401 at the handshake')
  await t.rejects(open(`${wsUrl}/v1/chat?authorization=Bearer%20wrong-secret-wrong`), { message: 'HTTP 401', status: 401 })
  await t.rejects(open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}`, origin: 'https://evil.example' }), { message: 'HTTP 403', status: 403 }, 'cross-site WebSocket hijacking refused')
  await t.rejects(open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}`, 'x-coze-account-id': 'x' }), { message: 'HTTP 400', status: 400 })
  t.equal(emulator.state.api.calls.length, 2, 'refused handshakes never reached Coze')
  await until(() => gatewayLines(sidecar).length >= 6, 'the log lines')
  t.match(gatewayLines(sidecar).slice(0, 2), [{ family: 'ws', path: '/v1/chat', status: 101 }, { family: 'ws', path: '/v1/chat', status: 101 }])
  t.notOk(sidecar.logs.raw.some((line) => line.includes(SECRET)), 'the query credential is not logged')
})

t.test('a revoked token refused at the handshake (HTTP 401) is replayed once', async (t) => {
  const { emulator, sidecar, wsUrl } = await startGateway(t)
  const first = await open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}` })
  first.socket.close()
  emulator.state.revokeApp(APP_ID)
  const second = await open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}` })
  await until(() => second.events.length > 0, 'chat.created')
  t.equal(second.events[0]?.event_type, 'chat.created', 'healed: the caller never saw the refusal')
  t.same(emulator.state.api.calls.map((call) => call.status), [101, 401, 101])
  second.socket.close()
  t.match(await sidecar.app.inject('/metrics').then((response) => response.body), /coze_gateway_replays_total\{outcome="healed"\} 1/)
})

t.test('a refusal as an error event right after the handshake is replayed once', async (t) => {
  const { emulator, wsUrl } = await startGateway(t)
  emulator.state.api.authFailureStatus = 200
  const first = await open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}` })
  first.socket.close()
  emulator.state.revokeApp(APP_ID)
  const second = await open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}` })
  await until(() => second.events.length > 0, 'chat.created')
  t.equal(second.events[0]?.event_type, 'chat.created')
  t.equal(emulator.state.exchangeCount, 2)
  second.socket.close()
})

t.test('hopeless refusals: one replay, then Coze\'s answer', async (t) => {
  const { emulator, wsUrl } = await startGateway(t)
  emulator.state.api.refuseTokens(Infinity)
  await t.rejects(open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}` }), { message: 'HTTP 401', status: 401 }, 'a handshake refused twice: Coze\'s 401')
  t.equal(emulator.state.api.calls.length, 2)

  emulator.state.api.authFailureStatus = 200
  const { socket, events } = await open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}` })
  const end = await closed(socket)
  t.match(events, [{ event_type: 'error', data: { code: 4100 } }], 'the second error event reaches the caller')
  t.equal(end.code, 1000, 'and Coze\'s close closes the caller')
  t.equal(emulator.state.api.calls.length, 4)
})

t.test('a Coze stand-in at COZE_WS_BASE: silence, text and binary first, an unknown path, a frame too large', async (t) => {
  const standIn = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((resolve) => standIn.once('listening', resolve))
  t.teardown(() => new Promise((resolve) => { for (const client of standIn.clients) client.terminate(); standIn.close(resolve) }))
  const seen: string[] = []
  standIn.on('connection', (socket, request) => {
    seen.push(`${request.url} ${request.headers.authorization?.slice(0, 11)}`)
    if (request.url === '/v1/text') socket.send('not json')
    if (request.url === '/v1/binary') socket.send(Buffer.from([1, 2, 3]))
    if (request.url === '/v1/close') socket.close(4001, 'no')
    socket.on('message', (data, binary) => socket.send(data, { binary }))
  })
  standIn.on('headers', (headers, request) => { if (request.url === '/v1/binary') headers.push('x-tt-logid: 20260101000000ABCDEF') })
  const { port } = standIn.address() as AddressInfo
  const { sidecar, wsUrl } = await startGateway(t, { COZE_WS_BASE: `ws://127.0.0.1:${port}`, SIDECAR_GATEWAY_BODY_LIMIT: '1024' })
  const headers = { authorization: `Bearer ${SECRET}` }

  const silent = new WebSocket(`${wsUrl}/v1/silent`, { headers })
  const echoed = await new Promise<string>((resolve, reject) => {
    silent.once('open', () => silent.send('echo'))
    silent.once('message', (data) => resolve(data.toString()))
    silent.once('error', reject)
  })
  t.equal(echoed, 'echo', 'a silent upstream is bridged after the wait, frames both ways')
  silent.close()

  const text = await new Promise<{ data: string, socket: WebSocket }>((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}/v1/text`, { headers })
    socket.once('message', (data) => resolve({ data: data.toString(), socket }))
    socket.once('error', reject)
  })
  t.equal(text.data, 'not json', 'a first frame that is not JSON is Coze\'s, passed on')
  text.socket.close()

  const binary = await new Promise<{ data: Buffer, socket: WebSocket }>((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}/v1/binary`, { headers })
    socket.once('message', (data) => resolve({ data: data as Buffer, socket }))
    socket.once('error', reject)
  })
  t.same([...binary.data], [1, 2, 3])
  const large = closed(binary.socket)
  binary.socket.send(Buffer.alloc(4096))
  t.equal((await large).code, 1009, 'a frame beyond SIDECAR_GATEWAY_BODY_LIMIT ends the caller\'s socket (1009: too big)')

  const early = await open(`${wsUrl}/v1/close`, headers)
  t.match(await closed(early.socket), { code: 4001, reason: 'no' }, 'closed by Coze before a word: the caller gets its close')

  t.ok(seen.every((line) => line.endsWith('Bearer czs_')), 'every handshake carried a Coze token')
  await until(() => gatewayLines(sidecar).length >= 3, 'the log lines')
  t.ok(gatewayLines(sidecar).some((line) => line.logid === '20260101000000ABCDEF'), 'the handshake\'s logid is logged')
})

t.test('a WS path Coze does not serve: its status, passed on', async (t) => {
  const { wsUrl } = await startGateway(t)
  await t.rejects(open(`${wsUrl}/v1/audio/nothing`, { authorization: `Bearer ${SECRET}` }), { message: 'HTTP 404', status: 404 })
})

t.test('Coze unreachable for a WebSocket: 503', async (t) => {
  const { wsUrl } = await startGateway(t, { COZE_WS_BASE: 'ws://127.0.0.1:1' })
  await t.rejects(open(`${wsUrl}/v1/chat`, { authorization: `Bearer ${SECRET}` }), { message: 'HTTP 503', status: 503 })
})
