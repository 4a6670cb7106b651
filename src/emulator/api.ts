/**
 * The emulator's Coze API: the calls an app makes with the tokens the emulator issued, so that
 * the gateway can be tested and users can rehearse. Every route answers 4100 for a token that is
 * unknown, expired or revoked (HTTP status `state.api.authFailureStatus`: 401 or 200), in Coze's
 * envelope `{code, msg, detail: {logid}}` with `X-Tt-Logid`.
 *
 * - `POST /v3/chat`: JSON, or with `stream: true` SSE with Coze's event names
 *   (`conversation.chat.created` … `done`), one event every `state.api.streamIntervalMs`.
 * - `POST /v1/workflow/stream_run`: SSE `Message`, `PING`, `Done`.
 * - `POST /v1/files/upload`: multipart, part `file`; the bytes' SHA-256 is kept for tests.
 * - `POST /v1/audio/speech`: audio bytes with `Content-Disposition` ({@link speechBytes}).
 * - `GET /v1/users/me`, `GET /v1/workspaces`.
 * - WebSocket `/v1/chat`: `chat.created` on connect; a `conversation.message.create` is answered
 *   with `conversation.chat.created`, deltas, `conversation.message.completed`,
 *   `conversation.chat.completed`.
 *
 * Shapes follow cozepy's test data and coze-js's types; only the fields SDKs read are filled in.
 *
 * @example
 * state.api.streamIntervalMs = 100
 * state.revokeApp(appId) // every call with the app's current tokens now answers 4100
 */
import { createHash, randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Response } from 'undici'
import { WebSocketServer, type WebSocket } from 'ws'
import { newLogid, type EmulatorState, type IssuedRecord } from './state.js'

export interface CozeApiOptions {
  state: EmulatorState
  now: () => number
}

const UPLOAD_LIMIT = 64 * 1024 * 1024

/** The audio the emulator "speaks" for `input`: deterministic, so a test can compare bytes. */
export function speechBytes (input: string, size = 256 * 1024): Buffer {
  const out = Buffer.alloc(size)
  let block = createHash('sha256').update(input).digest()
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at)
    block = createHash('sha256').update(block).digest()
  }
  return out
}

/** The bearer token of a request: the `Authorization` header, or the WebSocket query parameter. */
function bearer (authorization: string | undefined): string | undefined {
  return /^Bearer (\S+)$/.exec(authorization ?? '')?.[1]
}

interface ChatBody {
  bot_id?: unknown
  user_id?: unknown
  stream?: unknown
  additional_messages?: Array<{ role?: unknown, content?: unknown }>
}

/** What the bot answers: who it is talking to (the token's session), and what was said. */
function answerText (record: IssuedRecord, said: unknown): string {
  return `Hello ${record.sessionName ?? 'service'}, you said: ${typeof said === 'string' ? said : ''}`
}

function lastUserMessage (body: ChatBody): unknown {
  const messages = Array.isArray(body.additional_messages) ? body.additional_messages : []
  return messages.filter((message) => message?.role === 'user').at(-1)?.content
}

/** An answer's text in a few deltas, word by word. */
function deltas (text: string): string[] {
  return text.split(/(?<= )/)
}

export async function cozeApi (app: FastifyInstance, { state, now }: CozeApiOptions): Promise<void> {
  const api = state.api

  /** The token's record, or undefined after answering 4100 (and recording the call either way). */
  const authenticate = (request: FastifyRequest, reply: FastifyReply): IssuedRecord | undefined => {
    const logid = newLogid(now())
    reply.header('x-tt-logid', logid)
    const token = bearer(request.headers.authorization)
    const record = api.takeRefusal() || token === undefined ? undefined : state.lookup(token)
    const call = {
      at: now(),
      method: request.method,
      url: request.url,
      ...(request.headers.authorization === undefined ? {} : { authorization: request.headers.authorization }),
      headerNames: Object.keys(request.headers),
      status: record === undefined ? api.authFailureStatus : 200,
      code: record === undefined ? 4100 : 0,
      ...(record?.sessionName === undefined ? {} : { sessionName: record.sessionName })
    }
    api.record(call)
    if (record === undefined) {
      reply.code(api.authFailureStatus).send({ code: 4100, msg: 'authentication is invalid', detail: { logid } })
    }
    return record
  }

  const ok = (reply: FastifyReply, data: unknown): FastifyReply =>
    reply.send({ code: 0, msg: '', data, detail: { logid: reply.getHeader('x-tt-logid') } })

  /** Events as SSE, one every `streamIntervalMs`; the stream ends early when the caller goes away. */
  const sse = (reply: FastifyReply, events: Array<{ id?: number, event: string, data: string }>): FastifyReply => {
    const gone = new AbortController()
    reply.raw.once('close', () => gone.abort())
    const interval = api.streamIntervalMs
    async function * produce (): AsyncGenerator<string> {
      try {
        for (const [index, { id, event, data }] of events.entries()) {
          if (index > 0) await sleep(interval, undefined, { signal: gone.signal })
          yield `${id === undefined ? '' : `id: ${id}\n`}event:${event}\ndata:${data}\n\n`
        }
        api.streamsCompleted++
      } catch {
        api.streamsAborted++
      }
    }
    return reply.type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache')
      .send(Readable.from(produce(), { objectMode: false, highWaterMark: 1 }))
  }

  app.get('/v1/users/me', async (request, reply) => {
    const record = authenticate(request, reply)
    if (record === undefined) return reply
    return ok(reply, {
      user_id: `emulated-${record.appId}`,
      user_name: record.sessionName ?? 'service',
      nick_name: record.sessionName ?? 'Service account',
      avatar_url: ''
    })
  })

  app.get('/v1/workspaces', async (request, reply) => {
    const record = authenticate(request, reply)
    if (record === undefined) return reply
    return ok(reply, {
      workspaces: [{
        id: '7000000000000000001',
        name: 'Emulated workspace',
        icon_url: '',
        owner_uid: `emulated-${record.appId}`,
        role_type: 'owner',
        admin_uids: [],
        description: 'A workspace served by the coze-token-sidecar emulator',
        enterprise_id: record.enterpriseId ?? '',
        joined_status: 'joined',
        workspace_type: 'personal'
      }],
      total_count: 1
    })
  })

  app.post('/v3/chat', async (request, reply) => {
    const record = authenticate(request, reply)
    if (record === undefined) return reply
    const body = (request.body ?? {}) as ChatBody
    if (typeof body.bot_id !== 'string' || body.bot_id === '') {
      return reply.send({ code: 4000, msg: 'The requested API parameter bot_id is invalid.', detail: { logid: reply.getHeader('x-tt-logid') } })
    }
    const chat = {
      id: `74${String(now()).padStart(17, '0')}`,
      conversation_id: `73${String(now()).padStart(17, '0')}`,
      bot_id: body.bot_id,
      created_at: Math.floor(now() / 1000),
      last_error: { code: 0, msg: '' },
      status: 'in_progress'
    }
    if (body.stream !== true) return ok(reply, chat)
    const text = answerText(record, lastUserMessage(body))
    const message = { id: randomUUID(), conversation_id: chat.conversation_id, bot_id: chat.bot_id, chat_id: chat.id, role: 'assistant', type: 'answer', content_type: 'text' }
    const usage = { token_count: 42, output_count: 21, input_count: 21 }
    return sse(reply, [
      { event: 'conversation.chat.created', data: JSON.stringify({ ...chat, status: 'created' }) },
      { event: 'conversation.chat.in_progress', data: JSON.stringify(chat) },
      ...deltas(text).map((content) => ({ event: 'conversation.message.delta', data: JSON.stringify({ ...message, content }) })),
      { event: 'conversation.message.completed', data: JSON.stringify({ ...message, content: text }) },
      { event: 'conversation.chat.completed', data: JSON.stringify({ ...chat, status: 'completed', usage }) },
      { event: 'done', data: '"[DONE]"' }
    ])
  })

  app.post('/v1/workflow/stream_run', async (request, reply) => {
    const record = authenticate(request, reply)
    if (record === undefined) return reply
    const body = (request.body ?? {}) as { workflow_id?: unknown, parameters?: unknown }
    const node = { node_is_finish: true, node_seq_id: '0', node_title: 'End', node_id: '900001' }
    return sse(reply, [
      { id: 0, event: 'Message', data: JSON.stringify({ ...node, node_is_finish: false, content: `workflow ${String(body.workflow_id)} started for ${record.sessionName ?? 'service'}` }) },
      { id: 1, event: 'PING', data: '{}' },
      { id: 2, event: 'Message', data: JSON.stringify({ ...node, content: JSON.stringify(body.parameters ?? {}) }) },
      { id: 3, event: 'Done', data: JSON.stringify({ debug_url: '' }) }
    ])
  })

  app.post('/v1/audio/speech', async (request, reply) => {
    const record = authenticate(request, reply)
    if (record === undefined) return reply
    const input = String((request.body as { input?: unknown } | undefined)?.input ?? '')
    const audio = speechBytes(input)
    const parts = [audio.subarray(0, audio.length / 2), audio.subarray(audio.length / 2)]
    return reply.type('audio/mpeg').header('content-disposition', 'attachment; filename="speech.mp3"')
      .send(Readable.from(parts, { objectMode: false }))
  })

  await app.register(async function uploads (scope) {
    scope.addContentTypeParser(/^multipart\/form-data/, { parseAs: 'buffer', bodyLimit: UPLOAD_LIMIT }, (_request, body, done) => done(null, body))
    scope.post('/v1/files/upload', async (request, reply) => {
      const record = authenticate(request, reply)
      if (record === undefined) return reply
      let file: unknown
      try {
        const form = await new Response(request.body as Buffer, { headers: { 'content-type': request.headers['content-type'] as string } }).formData()
        file = form.get('file')
      } catch {
        file = undefined
      }
      if (file === null || typeof file !== 'object') {
        return reply.send({ code: 4000, msg: 'The requested API parameter file is invalid.', detail: { logid: reply.getHeader('x-tt-logid') } })
      }
      const blob = file as { name: string, arrayBuffer: () => Promise<ArrayBuffer> }
      const bytes = Buffer.from(await blob.arrayBuffer())
      const upload = { id: `75${String(now()).padStart(17, '0')}`, fileName: blob.name, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }
      api.addUpload(upload)
      return ok(reply, { id: upload.id, bytes: upload.bytes, file_name: upload.fileName, created_at: Math.floor(now() / 1000) })
    })
  })

  websocketChat(app, state, now)
}

/** WebSocket `/v1/chat`: the handshake is checked like an HTTP call; then a short, paced chat. */
function websocketChat (app: FastifyInstance, state: EmulatorState, now: () => number): void {
  const api = state.api
  const server = new WebSocketServer({ noServer: true })
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(request.url as string, 'http://emulator')
    if (url.pathname !== '/v1/chat') {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    const logid = newLogid(now())
    const authorization = request.headers.authorization ?? url.searchParams.get('authorization') ?? undefined
    const token = bearer(authorization)
    const record = api.takeRefusal() || token === undefined ? undefined : state.lookup(token)
    api.record({
      at: now(),
      method: 'GET',
      url: request.url as string,
      ...(request.headers.authorization === undefined ? {} : { authorization: request.headers.authorization }),
      headerNames: Object.keys(request.headers),
      status: record === undefined ? api.authFailureStatus : 101,
      code: record === undefined ? 4100 : 0,
      ...(record?.sessionName === undefined ? {} : { sessionName: record.sessionName })
    })
    if (record === undefined && api.authFailureStatus === 401) {
      const body = JSON.stringify({ code: 4100, msg: 'authentication is invalid', detail: { logid } })
      socket.end(`HTTP/1.1 401 Unauthorized\r\nconnection: close\r\ncontent-type: application/json\r\nx-tt-logid: ${logid}\r\ncontent-length: ${body.length}\r\n\r\n${body}`)
      return
    }
    server.handleUpgrade(request, socket, head, (ws) => {
      const send = (eventType: string, data: unknown): void => {
        ws.send(JSON.stringify({ id: randomUUID(), event_type: eventType, data, detail: { logid } }))
      }
      if (record === undefined) {
        send('error', { code: 4100, msg: 'authentication is invalid' })
        ws.close(1000)
        return
      }
      ws.on('close', (code) => api.wsCloses.push(code))
      chatSession(ws, record, send, api.streamIntervalMs, url.searchParams.get('bot_id') ?? '')
    })
  }
  app.server.on('upgrade', onUpgrade)
  app.addHook('preClose', async () => {
    app.server.removeListener('upgrade', onUpgrade)
    for (const client of server.clients) client.terminate()
    server.close()
  })
}

function chatSession (ws: WebSocket, record: IssuedRecord, send: (type: string, data: unknown) => void, interval: number, botId: string): void {
  const gone = new AbortController()
  ws.on('close', () => gone.abort())
  send('chat.created', {})
  ws.on('message', (raw) => {
    let event: { event_type?: unknown, data?: { content?: unknown } }
    try {
      event = JSON.parse(raw.toString()) as typeof event
    } catch {
      send('error', { code: 4000, msg: 'the event is not JSON' })
      return
    }
    if (event.event_type === 'chat.update') {
      send('chat.updated', event.data ?? {})
      return
    }
    if (event.event_type !== 'conversation.message.create') return
    const text = answerText(record, event.data?.content)
    const chat = { id: randomUUID(), conversation_id: randomUUID(), bot_id: botId, status: 'in_progress' }
    const reply = async (): Promise<void> => {
      send('conversation.chat.created', chat)
      for (const content of deltas(text)) {
        await sleep(interval, undefined, { signal: gone.signal })
        send('conversation.message.delta', { ...chat, role: 'assistant', type: 'answer', content })
      }
      send('conversation.message.completed', { ...chat, role: 'assistant', type: 'answer', content: text })
      send('conversation.chat.completed', { ...chat, status: 'completed' })
    }
    reply().catch(() => {})
  })
}
