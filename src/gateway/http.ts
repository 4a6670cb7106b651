/**
 * One HTTP request through the gateway: sent to Coze with the selected token on the shared undici
 * dispatcher, answered back as it arrives, and replayed once with a fresh token when Coze refuses
 * the token before a byte has gone to the caller.
 *
 * Why undici and not @fastify/reply-from: the replay decision needs Coze's JSON body (a 4100 can
 * come with HTTP 200) before anything is sent, and the replay needs a new `Authorization`; reply-from's
 * retry hook sees only the status and resends the same headers, and its `onResponse` hands over a
 * response that would then have to be re-requested by hand anyway. A direct `dispatcher.request()`
 * does both in a few lines, with per-request timeouts (minutes for streams, not the token
 * exchange's seconds) and an abort signal tied to the caller. `npm run bench` measures it against
 * a bare reply-from proxy.
 *
 * @example
 * await forward(request, reply, { credential, tokenRequest, target, tally }, upstream)
 */
import { EventEmitter } from 'node:events'
import { PassThrough, pipeline, Transform, type Readable, type TransformCallback } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { TokenRequest } from '../coze/variants.js'
import { details, errors, type SidecarError } from '../errors.js'
import type { GatewayCredential } from './credentials.js'
import { gatewayErrors } from './errors.js'
import { downstreamHeaders, upstreamHeaders } from './headers.js'
import type { GatewayMetrics } from './metrics.js'
import type { GatewayTarget } from './paths.js'
import { cozeCode, isJson, isTokenRefusal } from './replay.js'

/** Coze's refusals are a few hundred bytes; a JSON answer longer than this streams through unread. */
export const PEEK_LIMIT = 64 * 1024

export interface Upstream {
  dispatcher: Dispatcher
  /** Longest wait for Coze's headers, and between two body chunks. */
  idleTimeoutMs: number
  /** How long a caller may wait for a token. */
  deadlineMs: number
  /** Request headers never forwarded. */
  dropped: ReadonlySet<string>
  metrics: GatewayMetrics
}

/** What the request's log line and metrics report. */
export interface Tally {
  started: number
  family: string
  path: string
  app?: string
  cozeCode?: number
  logid?: string
  bytes: number
  replayed: boolean
  ttfbMs?: number
}

export interface Job {
  credential: GatewayCredential
  tokenRequest: TokenRequest
  target: GatewayTarget
  tally: Tally
}

/**
 * A multipart body on its way through, cut at `limit` bytes: the upstream request fails and the
 * caller gets a 413 (when nothing was answered yet).
 */
export class UploadLimit extends Transform {
  readonly limit: number
  exceeded = false
  #seen = 0

  constructor (limit: number) {
    super()
    this.limit = limit
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.limit) {
      this.exceeded = true
      callback(new gatewayErrors.UploadTooLarge(String(this.limit)))
      return
    }
    callback(null, chunk)
  }
}

/** Sends the request to Coze (once more after a token refusal) and answers the caller. */
export async function forward (request: FastifyRequest, reply: FastifyReply, job: Job, upstream: Upstream): Promise<FastifyReply> {
  const { credential, tokenRequest, target, tally } = job
  const body = request.body as Buffer | UploadLimit | undefined
  const replayable = !(body instanceof UploadLimit)
  const headers = upstreamHeaders(request.headers, upstream.dropped)
  // The caller going away aborts the upstream request. undici takes an emitter of `abort` as well
  // as an AbortSignal, and an EventEmitter costs a small part of an AbortController per request.
  const abort = new EventEmitter()
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) abort.emit('abort') })
  // Streams may be silent for minutes (workflow nodes); the server's socket timeout is seconds.
  reply.raw.setTimeout(upstream.idleTimeoutMs + 1_000)
  const base = credential.apiBase
  const origin = base.origin
  const path = base.pathname.replace(/\/+$/, '') + target.path + target.query

  // A cached token at once, without a promise (as /token does); else the one the cache gets.
  let token = (credential.tokens.cached(tokenRequest) ?? await credential.tokens.get(tokenRequest, upstream.deadlineMs)).accessToken
  for (;;) {
    headers.authorization = `Bearer ${token}`
    let response: Dispatcher.ResponseData
    try {
      response = await upstream.dispatcher.request({
        origin,
        path,
        method: request.method as Dispatcher.HttpMethod,
        headers,
        body: body ?? null,
        signal: abort,
        headersTimeout: upstream.idleTimeoutMs,
        bodyTimeout: upstream.idleTimeoutMs
      })
    } catch (error) {
      throw upstreamFailure(error, body)
    }
    const status = response.statusCode
    noteLogid(tally, response.headers)
    const json = isJson(response.headers['content-type'])
    const length = Number(response.headers['content-length'] ?? NaN)
    if ((json || status === 401) && !(length > PEEK_LIMIT)) {
      // Coze cut off mid-answer: nothing was sent yet, so the caller gets the sidecar's 503.
      const peeked = await peek(response.body, PEEK_LIMIT).catch((error: unknown) => { throw upstreamFailure(error, body) })
      if (peeked.rest === undefined) {
        const whole = peeked.head
        const code = json ? cozeCode(whole) : undefined
        if (isTokenRefusal(status, code) && replayable && !tally.replayed) {
          credential.tokens.delete(tokenRequest, token)
          token = (await credential.tokens.get(tokenRequest, upstream.deadlineMs)).accessToken
          tally.replayed = true
          continue
        }
        if (tally.replayed) upstream.metrics.replay(!isTokenRefusal(status, code))
        if (code !== undefined) tally.cozeCode = code
        tally.ttfbMs = performance.now() - tally.started
        tally.bytes = whole.length
        return reply.code(status).headers(downstreamHeaders(response.headers)).send(whole)
      }
      return stream(reply, response, peeked.rest, tally, upstream)
    }
    return stream(reply, response, response.body, tally, upstream)
  }
}

function stream (reply: FastifyReply, response: Dispatcher.ResponseData, body: Readable, tally: Tally, upstream: Upstream): FastifyReply {
  if (tally.replayed) upstream.metrics.replay(response.statusCode !== 401)
  reply.raw.once('pipe', (source: Readable) => {
    source.on('data', (chunk: Buffer) => {
      tally.ttfbMs ??= performance.now() - tally.started
      tally.bytes += chunk.length
    })
  })
  reply.code(response.statusCode).headers(downstreamHeaders(response.headers))
  // nginx and its kind buffer streams unless told not to (coze-java#36: SSE delivered at the end).
  if (!isJson(response.headers['content-type'])) reply.header('x-accel-buffering', 'no')
  return reply.send(body)
}

/**
 * Reads up to `limit` bytes. `rest` is undefined when that was the whole body; otherwise it is
 * the whole body again (what was read, then the remainder), to stream on. Plain `data` events:
 * an async iterator costs a JSON answer measurably more (npm run bench).
 */
function peek (body: Readable, limit: number): Promise<{ head: Buffer, rest?: Readable }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      size += chunk.length
      if (size <= limit) return
      body.pause()
      body.off('data', onData).off('end', onEnd).off('error', reject)
      const rest = new PassThrough()
      for (const part of chunks) rest.write(part)
      pipeline(body, rest, () => {})
      resolve({ head: Buffer.alloc(0), rest })
    }
    const onEnd = (): void => resolve({ head: Buffer.concat(chunks, size) })
    body.on('data', onData).once('end', onEnd).once('error', reject)
  })
}

/** Keeps Coze's `X-Tt-Logid` for the log line: the id to quote to Coze support. */
export function noteLogid (tally: Tally, headers: Record<string, string | string[] | undefined>): void {
  const logid = headers['x-tt-logid']
  if (typeof logid === 'string') tally.logid = logid
}

/** undici's failure as the sidecar's error: never its message, which may name the host. */
function upstreamFailure (error: unknown, body: unknown): unknown {
  if (body instanceof UploadLimit && body.exceeded) return new gatewayErrors.UploadTooLarge(String(body.limit))
  const code = (error as { code?: unknown }).code
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return details(new errors.UpstreamTimeout('Coze did not answer within SIDECAR_GATEWAY_IDLE_TIMEOUT'), { retryAfter: 1 }) as SidecarError
  }
  // undici's errors carry a string code: ECONNREFUSED and the like, or UND_ERR_ABORTED when the
  // caller went away (then nobody reads this answer).
  return details(new errors.UpstreamUnreachable(String(code)), { retryAfter: 1 }) as SidecarError
}
