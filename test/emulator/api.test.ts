/**
 * The emulator's Coze API on its own: every route refuses what Coze refuses (4100 with the
 * status knob), answers what it answers, and the control route sets its knobs.
 */
import t from 'tap'
import WebSocket from 'ws'
import { ApiState } from '../../src/emulator/api-state.js'
import { APP_ID, startEmulator, type Emulator } from '../fixtures/harness.js'

function issue (emulator: Emulator, sessionName?: string): string {
  const state = emulator.state
  return state.issue({ appId: APP_ID, expiresAt: state.nowSeconds() + 900, ...(sessionName === undefined ? {} : { sessionName }) })
}

t.test('every route answers 4100 without a valid token, with the status knob', async (t) => {
  const emulator = await startEmulator(t)
  const routes: Array<[string, string]> = [
    ['GET', '/v1/users/me'], ['GET', '/v1/workspaces'], ['POST', '/v3/chat'], ['POST', '/v1/workflow/stream_run'],
    ['POST', '/v1/audio/speech'], ['POST', '/v1/files/upload']
  ]
  for (const [method, url] of routes) {
    const none = await emulator.app.inject({ method: method as 'GET', url })
    t.equal(none.statusCode, 401, `${method} ${url} without a token`)
    t.match(none.json(), { code: 4100, msg: 'authentication is invalid', detail: { logid: none.headers['x-tt-logid'] } })
    const unknown = await emulator.app.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer czs_unknown' } })
    t.equal(unknown.json().code, 4100)
  }
  emulator.state.api.authFailureStatus = 200
  t.equal((await emulator.app.inject('/v1/users/me')).statusCode, 200, 'or 200, as coze-studio does')
  t.same(emulator.state.api.calls.map((call) => call.code), new Array(13).fill(4100))
  t.notOk('authorization' in (emulator.state.api.calls[0] as object), 'no Authorization, none recorded')
  t.equal(emulator.state.api.calls[1]?.authorization, 'Bearer czs_unknown', 'the inbound Authorization, verbatim')
})

t.test('chat, workflow, speech and upload with an issued token', async (t) => {
  const emulator = await startEmulator(t)
  emulator.state.api.streamIntervalMs = 0
  const authorization = `Bearer ${issue(emulator)}`
  const chat = await emulator.app.inject({ method: 'POST', url: '/v3/chat', headers: { authorization }, payload: { bot_id: '7' } })
  t.match(chat.json(), { code: 0, data: { bot_id: '7', status: 'in_progress' } }, 'non-stream')
  const noBot = await emulator.app.inject({ method: 'POST', url: '/v3/chat', headers: { authorization } })
  t.match(noBot.json(), { code: 4000, msg: /bot_id/ }, 'no body: Coze\'s 4000')
  const stream = await emulator.app.inject({ method: 'POST', url: '/v3/chat', headers: { authorization }, payload: { bot_id: '7', stream: true, additional_messages: [{ role: 'assistant', content: 'x' }] } })
  t.match(stream.body, /event:conversation\.message\.completed\ndata:\{.*"content":"Hello service, you said: "/, "only the user's messages are answered")
  t.match(stream.body, /event:done\ndata:"\[DONE\]"\n\n$/)
  const workflow = await emulator.app.inject({ method: 'POST', url: '/v1/workflow/stream_run', headers: { authorization } })
  t.match(workflow.body, /^id: 0\nevent:Message\ndata:.*workflow undefined started for service/)
  t.match(workflow.body, /id: 2\nevent:Message\ndata:.*"content":"\{\}"/)
  const speech = await emulator.app.inject({ method: 'POST', url: '/v1/audio/speech', headers: { authorization } })
  t.equal(speech.rawPayload.length, 256 * 1024, 'audio for an empty input')
  const notForm = await emulator.app.inject({ method: 'POST', url: '/v1/files/upload', headers: { authorization, 'content-type': 'multipart/form-data; boundary=x' }, payload: 'garbage' })
  t.match(notForm.json(), { code: 4000, msg: /file/ })
  const form = new FormData()
  form.append('other', 'x')
  const request = new Request('http://x', { method: 'POST', body: form })
  const noFile = await emulator.app.inject({
    method: 'POST', url: '/v1/files/upload', headers: { authorization, 'content-type': request.headers.get('content-type') as string }, payload: Buffer.from(await request.arrayBuffer())
  })
  t.match(noFile.json(), { code: 4000, msg: /file/ }, 'a form without a file part')
})

t.test('WebSocket /v1/chat: the handshake, chat.update, what it ignores', async (t) => {
  const emulator = await startEmulator(t)
  emulator.state.api.streamIntervalMs = 0
  const base = emulator.url.replace(/^http/, 'ws')
  const token = issue(emulator, 'ivy')
  const socket = new WebSocket(`${base}/v1/chat?authorization=Bearer%20${token}`)
  const events: Array<{ event_type: string, data: Record<string, unknown> }> = []
  socket.on('message', (data) => events.push(JSON.parse(data.toString())))
  await new Promise((resolve) => socket.once('open', resolve))
  socket.send('not json')
  socket.send(JSON.stringify({ event_type: 'chat.update', data: { a: 1 } }))
  socket.send(JSON.stringify({ event_type: 'chat.update' }))
  socket.send(JSON.stringify({ event_type: 'input_audio_buffer.append' }))
  socket.send(JSON.stringify({ event_type: 'conversation.message.create' }))
  await new Promise<void>((resolve) => { const check = (): void => { if (events.some((event) => event.event_type === 'conversation.chat.completed')) resolve(); else setImmediate(check) }; check() })
  t.same(events.slice(0, 4).map((event) => event.event_type), ['chat.created', 'error', 'chat.updated', 'chat.updated'])
  t.same(events[2]?.data, { a: 1 })
  t.same(events[3]?.data, {})
  t.match(events.find((event) => event.event_type === 'conversation.message.completed')?.data, { content: 'Hello ivy, you said: ' })
  t.notOk('authorization' in (emulator.state.api.calls[0] as object), 'a query credential: no header recorded')
  socket.close()

  const refused = new WebSocket(`${base}/v1/chat`)
  const status = await new Promise((resolve) => refused.once('unexpected-response', (_request, response) => resolve(response.statusCode)))
  t.equal(status, 401, 'no token: 401 at the handshake')
  const elsewhere = new WebSocket(`${base}/v1/nothing`)
  t.equal(await new Promise((resolve) => elsewhere.once('unexpected-response', (_request, response) => resolve(response.statusCode))), 404)
})

t.test('the control route sets the API\'s knobs', async (t) => {
  const emulator = await startEmulator(t)
  const set = await emulator.app.inject({ method: 'PUT', url: '/_emulator/api', payload: { stream_interval_ms: 7, auth_failure_status: 200, refuse_tokens: 1 } })
  t.equal(set.statusCode, 204)
  t.equal(emulator.state.api.streamIntervalMs, 7)
  t.equal(emulator.state.api.authFailureStatus, 200)
  const token = issue(emulator)
  t.equal((await emulator.app.inject({ url: '/v1/users/me', headers: { authorization: `Bearer ${token}` } })).json().code, 4100, 'refused once')
  t.equal((await emulator.app.inject({ url: '/v1/users/me', headers: { authorization: `Bearer ${token}` } })).json().code, 0)
  t.equal((await emulator.app.inject({ method: 'PUT', url: '/_emulator/api', payload: {} })).statusCode, 204, 'nothing to change')
  t.equal((await emulator.app.inject({ method: 'PUT', url: '/_emulator/api', payload: { auth_failure_status: 500 } })).statusCode, 400)
})

t.test('ApiState keeps bounded records', async (t) => {
  const api = new ApiState()
  for (let i = 0; i < 1_005; i++) {
    api.record({ at: i, method: 'GET', url: '/', headerNames: [], status: 200, code: 0 })
    api.addUpload({ id: String(i), fileName: 'f', bytes: 1, sha256: '' })
  }
  t.equal(api.calls.length, 1_000)
  t.equal(api.calls[0]?.at, 5)
  t.equal(api.uploads.length, 1_000)
  t.equal(api.uploads[0]?.id, '5')
})
