/**
 * Which headers cross the gateway. Framework-free.
 *
 * Upstream: everything the caller sent except hop-by-hop headers (RFC 9110 §7.6.1, plus any the
 * `Connection` header names), the caller's credential (`Authorization`, cookies), the sidecar's
 * own selection headers and required header, and what only describes the caller's side (`Host`,
 * `Origin`, `Referer`, `Sec-Fetch-*`, `X-Forwarded-*`, `Forwarded`). `Accept-Encoding` becomes
 * `identity`: the replay decision reads Coze's JSON, and streams must not sit in a decompressor.
 *
 * Downstream: everything Coze sent except hop-by-hop headers; `X-Tt-Logid`, `Content-Disposition`
 * and `Retry-After` among them.
 *
 * @example
 * const headers = upstreamHeaders(request.headers, dropped)
 * headers.authorization = `Bearer ${token}`
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { SELECTION_HEADERS } from './selection.js'

const HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings'
]
const HOP_BY_HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP)
/** The usual `Connection` values, which name no header of their own. */
const PLAIN_CONNECTION = new Set(['keep-alive', 'close'])

/** Never forwarded to Coze, whatever the caller sends. */
const NOT_UPSTREAM = [
  ...HOP_BY_HOP, 'host', 'authorization', 'cookie', 'expect', 'accept-encoding',
  'origin', 'referer', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip',
  'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest', 'sec-fetch-user',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol',
  ...SELECTION_HEADERS
]

/** The set of request headers to drop, with the `SIDECAR_REQUIRE_HEADER` name (lower case) when set. */
export function droppedHeaders (requiredHeader?: string): ReadonlySet<string> {
  return new Set([...NOT_UPSTREAM, ...(requiredHeader === undefined ? [] : [requiredHeader])])
}

const NONE: string[] = []

/** Names listed in a `Connection` header: hop-by-hop for this message. */
function connectionListed (value: string | string[] | undefined): string[] {
  // Every request and answer carries one of these: nothing to split.
  if (value === undefined || (typeof value === 'string' && PLAIN_CONNECTION.has(value.toLowerCase()))) return NONE
  return (Array.isArray(value) ? value.join(',') : value).split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '')
}

/** The caller's headers as they go to Coze, without a credential: the caller sets `authorization`. */
export function upstreamHeaders (inbound: IncomingHttpHeaders, dropped: ReadonlySet<string>): Record<string, string | string[]> {
  const listed = connectionListed(inbound.connection)
  const out: Record<string, string | string[]> = {}
  for (const name of Object.keys(inbound)) {
    if (dropped.has(name) || (listed.length > 0 && listed.includes(name))) continue
    out[name] = inbound[name] as string | string[]
  }
  out['accept-encoding'] = 'identity'
  return out
}

/** Coze's response headers as they go to the caller. */
export function downstreamHeaders (inbound: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = connectionListed(inbound.connection)
  const out: OutgoingHttpHeaders = {}
  for (const name of Object.keys(inbound)) {
    if (HOP_BY_HOP_SET.has(name) || (listed.length > 0 && listed.includes(name))) continue
    out[name] = inbound[name]
  }
  return out
}
