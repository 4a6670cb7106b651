/**
 * Which request targets the gateway forwards, and what a base-URL prefix selects. Framework-free:
 * a request target in, a forwarded path (or a refusal) out.
 *
 * Forwarded: Coze's API path families `/v1/…`, `/v3/…` and `/open_api/…` (reference §2), after
 * an optional selection prefix `/apps/{app}`, then `/accounts/{id}` or `/enterprises/{id}`, then
 * `/sessions/{name}`, in that order. Nothing else: not the token endpoints, not a `.` or `..`
 * segment (also percent-encoded), not an absolute-form target, not an encoded slash or backslash
 * (an upstream that decodes them would see a different path than the one checked here).
 *
 * @example
 * parseTarget('/sessions/user-42/v3/chat?conversation_id=1')
 * // { family: 'v3', path: '/v3/chat', query: '?conversation_id=1', prefix: { sessionName: 'user-42' } }
 */
import { details, errors, type SidecarError } from '../errors.js'
import { gatewayErrors } from './errors.js'

export type Family = 'v1' | 'v3' | 'open_api'

const FAMILIES: ReadonlySet<string> = new Set<Family>(['v1', 'v3', 'open_api'])

/** What a base-URL prefix selects (percent-decoded). */
export interface PrefixSelection {
  app?: string
  accountId?: string
  enterpriseId?: string
  sessionName?: string
}

export interface GatewayTarget {
  family: Family
  /** The path to forward, as the caller sent it (still percent-encoded), without the prefix. */
  path: string
  /** `?…` as sent, minus any `authorization` parameter; `''` when nothing is left. */
  query: string
  prefix: PrefixSelection
  /** The value of an `authorization` query parameter (how browsers authenticate WebSockets). */
  authorization?: string
}

/** `%2e` (dot), `%2f` (slash), `%5c` (backslash), also double-encoded (`%252e`). */
const ENCODED_SEPARATOR = /%(?:25)*(?:2e|2f|5c)/i

function refused (reason: string): SidecarError {
  return details(new gatewayErrors.PathRefused(reason), { field: 'path' }) as SidecarError
}

function decode (part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw refused('it is not valid percent-encoding')
  }
}

/**
 * The target of a gateway request.
 * @throws GATEWAY_PATH_REFUSED (400) for targets that try to leave Coze's API paths, NOT_FOUND
 * (404) for paths that are not Coze API paths at all.
 */
export function parseTarget (url: string, method = 'GET'): GatewayTarget {
  if (!url.startsWith('/')) throw refused('only origin-form request targets (/v1/…) are forwarded')
  const mark = url.indexOf('?')
  const rawPath = mark === -1 ? url : url.slice(0, mark)
  if (rawPath.includes('\\') || ENCODED_SEPARATOR.test(rawPath)) {
    throw refused('encoded dots, slashes and backslashes are not forwarded')
  }
  const segments = rawPath.slice(1).split('/')
  if (segments.some((segment) => segment === '.' || segment === '..')) throw refused('. and .. segments are not forwarded')

  const prefix: PrefixSelection = {}
  let at = 0
  const take = (name: string): string | undefined => {
    if (segments[at] !== name) return undefined
    const value = segments[at + 1]
    if (value === undefined || value === '') throw refused(`/${name}/ must be followed by a value`)
    at += 2
    return decode(value)
  }
  const app = take('apps')
  if (app !== undefined) prefix.app = app
  const account = take('accounts')
  if (account !== undefined) prefix.accountId = account
  const enterprise = account === undefined ? take('enterprises') : undefined
  if (enterprise !== undefined) prefix.enterpriseId = enterprise
  const session = take('sessions')
  if (session !== undefined) prefix.sessionName = session

  const family = segments[at]
  if (family === undefined || !FAMILIES.has(family) || at + 1 >= segments.length || segments[at + 1] === '') {
    throw new errors.NotFound(method, forLog(rawPath))
  }
  const path = '/' + segments.slice(at).join('/')
  const target: GatewayTarget = { family: family as Family, path, query: '', prefix }
  if (mark !== -1) splitQuery(url.slice(mark + 1), target)
  return target
}

/** Keeps every parameter as sent, except `authorization`, which is taken out. */
function splitQuery (query: string, target: GatewayTarget): void {
  const kept: string[] = []
  for (const part of query.split('&')) {
    if (part === '') continue
    const equals = part.indexOf('=')
    const name = equals === -1 ? part : part.slice(0, equals)
    if (name.toLowerCase() === 'authorization') {
      target.authorization = equals === -1 ? '' : decode(part.slice(equals + 1).replace(/\+/g, ' '))
    } else {
      kept.push(part)
    }
  }
  target.query = kept.length === 0 ? '' : `?${kept.join('&')}`
}

/**
 * A path for a log line or an error message: at most 200 characters, never a query string. The
 * prefix (session names are end users' ids) is dropped when the target parses.
 */
export function forLog (path: string): string {
  const bare = path.split('?', 1)[0] as string
  return bare.length > 200 ? `${bare.slice(0, 200)}…` : bare
}
