/**
 * One POST to Coze's token endpoint, and a strict reading of the answer (docs/coze-protocol.md §5, §6).
 * No retries here: one call is one attempt with one JWT. The caller decides what to do with a
 * failure from its `kind` and `retryable`.
 *
 * @example
 * const issued = await exchangeJwt(http, '/api/permission/oauth2/token', jwt, { grant_type, duration_seconds: 900 })
 * issued.expiresIn // absolute Unix seconds, as Coze gives it
 */
import type { Dispatcher } from 'undici'
import type { TokenRequestBody } from './variants.js'

export interface ExchangeHttp {
  /** `https://api.coze.cn`, or the emulator's base. Any path in it is kept as a prefix. */
  baseUrl: string
  /** Passed in, never global, so that tests and the service choose timeouts and pools. */
  dispatcher: Dispatcher
  /** Time allowed for Coze's status line and headers, after the request is sent. */
  headersTimeoutMs: number
  /** Time allowed between two chunks of Coze's body. */
  bodyTimeoutMs: number
  /**
   * Time allowed for the whole exchange, from connecting to the last byte of the body. The two
   * above bound gaps only: a body dripping one byte a second would pass them for hours, and every
   * caller of that token would join the wedged exchange. Default: headers plus body timeout.
   */
  exchangeTimeoutMs?: number
  userAgent: string
}

/** A token as Coze issued it. */
export interface IssuedToken {
  accessToken: string
  /** Absolute expiry, Unix seconds: Coze's `expires_in` is a timestamp, not a duration. */
  expiresIn: number
  /** Coze's `X-Tt-Logid`, to quote when asking Coze about a request. */
  logid?: string
  /** Coze's clock when it answered (its `Date` header), ms since the epoch. */
  serverDate?: number
}

export type ExchangeErrorKind =
  | 'refused' // Coze said no with an OAuth error: retrying cannot help
  | 'unavailable' // 5xx or internal_error
  | 'rate_limited' // 429
  | 'bad_response' // not a token answer
  | 'unreachable' // no HTTP answer at all
  | 'timeout' // no answer in time

/** A failed attempt, with everything Coze said about it and nothing secret. */
export class ExchangeError extends Error {
  readonly kind: ExchangeErrorKind
  /** HTTP status of Coze's answer, when there was one. */
  readonly status?: number
  readonly errorCode?: string
  readonly errorMessage?: string
  readonly logid?: string
  /** Coze's `Retry-After`, in ms. */
  readonly retryAfterMs?: number

  constructor (kind: ExchangeErrorKind, message: string, extra: {
    status?: number
    errorCode?: string
    errorMessage?: string
    logid?: string
    retryAfterMs?: number
  } = {}) {
    super(message)
    this.name = 'ExchangeError'
    this.kind = kind
    Object.assign(this, extra)
  }

  /**
   * The same failure with a sentence added for whoever reads it: what the sidecar found out
   * about the cause (the key is registered in the other region, say).
   */
  withHint (hint: string): ExchangeError {
    const copy = new ExchangeError(this.kind, `${this.message}; ${hint}`, {
      ...(this.status === undefined ? {} : { status: this.status }),
      ...(this.errorCode === undefined ? {} : { errorCode: this.errorCode }),
      ...(this.errorMessage === undefined ? {} : { errorMessage: this.errorMessage }),
      ...(this.logid === undefined ? {} : { logid: this.logid }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs })
    })
    return copy
  }

  /** Network errors, timeouts, 5xx, 429 and garbled answers may pass; Coze's refusals will not. */
  get retryable (): boolean {
    return this.kind !== 'refused'
  }
}

/** Coze's answers are small; anything bigger is not a token response and is not read further. */
const MAX_BODY_BYTES = 64 * 1024

const NETWORK_TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/**
 * The largest `expires_in` a token may have: JavaScript's Date ends at 8.64e15 ms (year 275760).
 * Beyond it the expiry cannot even be written down; it is a garbled answer, not a long token.
 */
const MAX_EXPIRES_IN = 8.64e12

/** Sends one token request and returns the token, or throws an {@link ExchangeError}. */
export async function exchangeJwt (
  http: ExchangeHttp, path: string, jwt: string, body: TokenRequestBody
): Promise<IssuedToken> {
  const limitMs = http.exchangeTimeoutMs ?? http.headersTimeoutMs + http.bodyTimeoutMs
  // Not AbortSignal.timeout: its timer cannot be cleared, so each exchange left a Timeout, a
  // WeakRef and a FinalizationRegistry cell (and the signal) waiting for the timer or a full GC:
  // they outlived the young generation and were promoted, about 1 KB per exchange (3.5 → 2.5 KB
  // promoted per exchange under a fill, issue 12). This timer is cleared when the exchange ends.
  const abort = new AbortController()
  const timer = setTimeout(() => abort.abort(new DOMException(`no complete answer within ${limitMs} ms`, 'TimeoutError')), limitMs)
  timer.unref()
  const signal = abort.signal
  try {
    return await exchangeOnce(http, path, jwt, body, signal).finally(() => clearTimeout(timer))
  } catch (error) {
    // The abort surfaces as a transport failure; Coze's own answers and undici's timeouts keep theirs.
    if (!signal.aborted || (error as ExchangeError).kind !== 'unreachable') throw error
    // Abandoned: the abort destroyed the socket; the attempt is reported (and logged) as a timeout.
    const { status, logid } = error as ExchangeError
    throw new ExchangeError('timeout', `no complete answer within ${limitMs} ms (abandoned)`, {
      ...(status === undefined ? {} : { status }), ...(logid === undefined ? {} : { logid })
    })
  }
}

async function exchangeOnce (
  http: ExchangeHttp, path: string, jwt: string, body: TokenRequestBody, signal: AbortSignal
): Promise<IssuedToken> {
  let response: Dispatcher.ResponseData
  try {
    const url = new URL(http.baseUrl + path)
    response = await http.dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: `Bearer ${jwt}`,
        'user-agent': http.userAgent
      },
      body: JSON.stringify(body),
      headersTimeout: http.headersTimeoutMs,
      bodyTimeout: http.bodyTimeoutMs,
      signal
    })
  } catch (error) {
    throw networkError(error)
  }

  const logid = headerValue(response.headers['x-tt-logid'])
  const serverDate = Date.parse(headerValue(response.headers.date) ?? '')
  const status = response.statusCode
  let text: string
  try {
    text = await readLimited(response.body)
  } catch (error) {
    const failure = error instanceof ExchangeError ? error : networkError(error)
    // Coze answered (the headers came), so its logid and status help whoever asks Coze why.
    throw new ExchangeError(failure.kind, failure.message, { status, ...(logid === undefined ? {} : { logid }) })
  }
  const json = parseJsonObject(text)
  const context = {
    status,
    ...(logid === undefined ? {} : { logid }),
    retryAfterMs: retryAfterMs(headerValue(response.headers['retry-after']), serverDate)
  }

  if (status >= 200 && status < 300 && json !== undefined) {
    const { access_token: accessToken, expires_in: expiresIn } = json
    if (typeof accessToken === 'string' && accessToken.length > 0 && Number.isSafeInteger(expiresIn) &&
      (expiresIn as number) > 0 && (expiresIn as number) <= MAX_EXPIRES_IN) {
      return {
        accessToken,
        expiresIn: expiresIn as number,
        ...(logid === undefined ? {} : { logid }),
        ...(Number.isNaN(serverDate) ? {} : { serverDate })
      }
    }
  }

  const cozeError = readCozeError(json)
  if (cozeError !== undefined) {
    const kind: ExchangeErrorKind = cozeError.code === 'internal_error' || status >= 500
      ? 'unavailable'
      : status === 429 ? 'rate_limited' : 'refused'
    throw new ExchangeError(kind, cozeError.message ?? cozeError.code, {
      ...context, errorCode: cozeError.code, ...(cozeError.message === undefined ? {} : { errorMessage: cozeError.message })
    })
  }
  if (status === 429) throw new ExchangeError('rate_limited', 'HTTP 429 Too Many Requests', context)
  if (status >= 500 || status === 408) throw new ExchangeError('unavailable', `HTTP ${status}`, context)
  if (status >= 300 && status < 400) {
    // Redirects are not followed: the JWT would go wherever the Location says.
    throw new ExchangeError('refused', `HTTP ${status} redirect (not followed; check COZE_API_BASE)`, context)
  }
  if (status >= 400) throw new ExchangeError('refused', `HTTP ${status} without a Coze error code`, context)
  throw new ExchangeError('bad_response', json === undefined
    ? `HTTP ${status} with a body that is not a JSON object`
    : `HTTP ${status} without a string access_token and an integer expires_in (Unix seconds, at most ${MAX_EXPIRES_IN})`, context)
}

function networkError (error: unknown): ExchangeError {
  const code = (error as { code?: unknown } | undefined)?.code
  const name = typeof code === 'string' ? code : 'network error'
  if (NETWORK_TIMEOUTS.has(name)) return new ExchangeError('timeout', `no answer in time (${name})`)
  return new ExchangeError('unreachable', name)
}

function headerValue (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

async function readLimited (body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) {
      body.destroy()
      throw new ExchangeError('bad_response', `answer larger than ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function parseJsonObject (text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

/**
 * Coze's OAuth endpoints answer `{error_code, error_message, error}`; its OpenAPI envelope is
 * `{code, msg}`. Both are read, so that a proxy or a wrong base URL still gives a clear message.
 */
function readCozeError (json: Record<string, unknown> | undefined): { code: string, message?: string } | undefined {
  if (json === undefined) return undefined
  const code = json.error_code ?? json.error ?? (typeof json.code === 'number' && json.code !== 0 ? String(json.code) : undefined)
  if (typeof code !== 'string' || code.length === 0) return undefined
  const message = json.error_message ?? json.error_description ?? json.msg
  return { code: scrub(code, 64), ...(typeof message === 'string' && message.length > 0 ? { message: scrub(message, 512) } : {}) }
}

const SECRET_SHAPES = [
  /eyJ[\w-]*\.[\w-]*\.[\w-]*/g, // a JWT
  /\b(czs|czu|pat|sat)_[A-Za-z0-9]{8,}/g // a Coze access token or personal access token
]

/**
 * Coze's words are relayed to callers and logs, so anything shaped like a JWT or a token is
 * blanked first, and the length is bounded.
 */
export function scrub (text: string, maxLength: number): string {
  let out = text
  for (const shape of SECRET_SHAPES) out = out.replace(shape, '[redacted]')
  return out.length > maxLength ? `${out.slice(0, maxLength)}...` : out
}

/**
 * `Retry-After` as ms: delta-seconds, or an HTTP date measured against Coze's own `Date` header
 * (never against our clock, which may be wrong). Anything else is ignored.
 */
function retryAfterMs (value: string | undefined, serverDate: number): number | undefined {
  if (value === undefined) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  if (Number.isNaN(at) || Number.isNaN(serverDate)) return undefined
  return Math.max(0, at - serverDate)
}
