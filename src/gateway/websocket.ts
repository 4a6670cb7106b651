/**
 * WebSockets through the gateway (`/v1/chat`, `/v1/audio/speech`, …): the upstream socket to the
 * credential's WS base is opened with the selected token *before* the caller's handshake
 * completes, so that a refusal can still be an HTTP answer; then frames pass both ways and either
 * side closing closes the other.
 *
 * Coze refuses a bad token at the handshake (HTTP 401, which coze-js reports as code 401) or with
 * an `error` event whose `data.code` is 4100 right after it (coze-js
 * `examples/coze-js-node/src/websockets/chat.ts`). Coze speaks first on every WS path
 * (`chat.created`, `speech.created`, …), so the gateway waits briefly for that first event: a
 * refusal there, as for HTTP, drops the token and connects once more with a fresh one.
 *
 * `ws` is the client (undici's WebSocket cannot set the `Authorization` header the handshake needs).
 *
 * @example
 * const opened = await openUpstreamSocket(request, job, upstream) // in a preHandler
 * bridgeWebSocket(callerSocket, opened, upstream)                 // once the caller is upgraded
 */
import type { FastifyRequest } from 'fastify'
import WebSocket, { type RawData } from 'ws'
import { details, errors, type SidecarError } from '../errors.js'
import { upstreamHeaders } from './headers.js'
import { noteLogid, type Job, type Upstream } from './http.js'
import { gatewayErrors } from './errors.js'
import { isTokenRefusal, TOKEN_REFUSAL_CODES } from './replay.js'

/** How long Coze's first event is waited for before the caller's handshake completes anyway. */
export const FIRST_EVENT_WAIT_MS = 2_000

export interface OpenedUpstream {
  socket: WebSocket
  /** What Coze sent before the caller was upgraded, in order. */
  queued: Array<{ data: RawData, binary: boolean }>
  /** Coze's close, when it closed before the caller was upgraded. */
  closed?: { code: number, reason: Buffer }
  job: Job
}

type Attempt =
  | { kind: 'open', opened: OpenedUpstream }
  | { kind: 'refused', status: number }

/** Connects to Coze with the selected token; once more with a fresh one after a token refusal. */
export async function openUpstreamSocket (request: FastifyRequest, job: Job, upstream: Upstream): Promise<OpenedUpstream> {
  const { credential, tokenRequest, target, tally } = job
  const base = credential.wsBase
  const url = `${base.origin}${base.pathname.replace(/\/+$/, '')}${target.path}${target.query}`
  const headers = upstreamHeaders(request.headers, upstream.dropped)
  delete headers['accept-encoding']
  let token = (await credential.tokens.get(tokenRequest, upstream.deadlineMs)).accessToken
  for (;;) {
    const attempt = await connect(url, { ...headers, authorization: `Bearer ${token}` }, job, upstream, tally.replayed)
    if (attempt.kind === 'open' || tally.replayed) {
      if (tally.replayed) upstream.metrics.replay(attempt.kind === 'open')
      if (attempt.kind === 'open') return attempt.opened
      throw handshakeRefusal(attempt.status)
    }
    credential.tokens.delete(tokenRequest, token)
    token = (await credential.tokens.get(tokenRequest, upstream.deadlineMs)).accessToken
    tally.replayed = true
  }
}

/** Coze's handshake answer for the caller: its 4xx as it is, anything else as 502. */
export function handshakeRefusal (status: number): SidecarError {
  const error = new gatewayErrors.WebSocketRefused(String(status)) as SidecarError
  if (status >= 400 && status < 500) error.statusCode = status
  return error
}

/** One handshake. On the last chance, an `error` event is Coze's answer for the caller, not a refusal to act on. */
function connect (url: string, headers: Record<string, string | string[]>, job: Job, upstream: Upstream, lastChance: boolean): Promise<Attempt> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers, handshakeTimeout: upstream.deadlineMs, perMessageDeflate: false })
    const opened: OpenedUpstream = { socket, queued: [], job }
    let waiting: NodeJS.Timeout | undefined
    const settle = (attempt: Attempt): void => {
      clearTimeout(waiting)
      socket.removeListener('message', first)
      resolve(attempt)
    }
    const first = (data: RawData, binary: boolean): void => {
      if (!lastChance && !binary && refusesToken(data)) {
        socket.removeAllListeners('close')
        socket.on('error', () => {})
        socket.terminate()
        settle({ kind: 'refused', status: 200 })
        return
      }
      opened.queued.push({ data, binary })
      settle({ kind: 'open', opened })
    }
    socket.on('unexpected-response', (_request, response) => {
      const status = response.statusCode as number
      noteLogid(job.tally, response.headers)
      response.resume()
      socket.on('error', () => {})
      socket.terminate()
      if (isTokenRefusal(status, undefined)) settle({ kind: 'refused', status })
      else reject(handshakeRefusal(status))
    })
    socket.once('error', (error: Error & { code?: string }) => {
      reject(details(new errors.UpstreamUnreachable(error.code ?? 'the WebSocket connection failed'), { retryAfter: 1 }))
    })
    socket.once('upgrade', (response) => noteLogid(job.tally, response.headers))
    socket.once('open', () => {
      socket.on('message', first)
      waiting = setTimeout(() => settle({ kind: 'open', opened }), FIRST_EVENT_WAIT_MS).unref()
      // Closed before saying anything: the caller is upgraded and then closed the same way.
      socket.once('close', (code, reason) => {
        opened.closed = { code, reason }
        settle({ kind: 'open', opened })
      })
    })
  })
}

/** An `error` event carrying one of Coze's token-refusal codes. */
function refusesToken (data: RawData): boolean {
  try {
    const event = JSON.parse(data.toString()) as { event_type?: unknown, data?: { code?: unknown } }
    return event.event_type === 'error' && TOKEN_REFUSAL_CODES.has(event.data?.code as number)
  } catch {
    return false
  }
}

/** Close codes a peer may send (RFC 6455 §7.4): not 1005, 1006, 1015, which only describe a close. */
function sendable (code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
}

function closeWith (socket: WebSocket, code: number, reason: Buffer): void {
  if (socket.readyState === WebSocket.CLOSED || socket.readyState === WebSocket.CLOSING) return
  if (sendable(code)) socket.close(code, reason)
  else socket.close()
}

/** Frames both ways; either side's close (its code and reason) closes the other. */
export function bridgeWebSocket (caller: WebSocket, opened: OpenedUpstream, _upstream: Upstream): void {
  const coze = opened.socket
  const tally = opened.job.tally
  const toCaller = (data: RawData, binary: boolean): void => {
    // A Buffer: ws's default binaryType.
    tally.bytes += (data as Buffer).length
    caller.send(data, { binary })
  }
  for (const { data, binary } of opened.queued) toCaller(data, binary)
  opened.queued.length = 0
  coze.on('message', toCaller)
  caller.on('message', (data, binary) => { if (coze.readyState === WebSocket.OPEN) coze.send(data, { binary }) })
  coze.removeAllListeners('close')
  coze.on('close', (code, reason) => closeWith(caller, code, reason))
  caller.on('close', (code, reason) => closeWith(coze, code, reason))
  // The caller's errors end at @fastify/websocket's errorHandler (plugin.ts), which terminates it: its close closes Coze's.
  coze.on('error', () => caller.terminate())
  if (opened.closed !== undefined) closeWith(caller, opened.closed.code, opened.closed.reason)
}
