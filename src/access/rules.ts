/**
 * Who may take a token: the checks every token and page request passes, in the spirit of the
 * local token endpoints that got this right (GCE's `Metadata-Flavor`, Vault's
 * `X-Vault-Request`, AWS's container authorization token; reference: the sidecar anchors §5).
 *
 * Framework-free: headers in, an error or nothing out.
 *
 * @example
 * const admitted = admit(request.headers, policy)
 * if (admitted instanceof Error) throw admitted // else admitted is the caller
 */
import type { IncomingHttpHeaders } from 'node:http'
import { isIP } from 'node:net'
import { details, errors, type SidecarError } from '../errors.js'
import { ANONYMOUS, type Caller } from './callers.js'

export interface AccessPolicy {
  /**
   * When set, callers must present a secret it knows as `Authorization: Bearer <secret>`
   * (`SIDECAR_AUTH_TOKEN`, `SIDECAR_CALLERS_FILE`); without it, everyone is `anonymous`.
   */
  callers?: { identify: (authorization: string | undefined) => Caller | undefined }
  /** The listen address (`HOST`). */
  listenHost: string
  /** Further host names allowed in `Host` (`SIDECAR_ALLOWED_HOSTS`), lower case; `*` allows any. */
  allowedHosts: ReadonlySet<string>
  /** `SIDECAR_REQUIRE_HEADER`: a header (lower-case name) that must carry this value. */
  requiredHeader?: { name: string, value: string }
  /** `SIDECAR_REJECT_FORWARDED`: refuse requests that came through a proxy. */
  rejectForwarded: boolean
}

/** True for the addresses only this machine can reach. */
export function isLoopback (host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '')
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' ||
    isLoopbackV4(name) || (name.startsWith('::ffff:') && isLoopbackV4(name.slice(7)))
}

/** 127.0.0.0/8, as a real address: `127.0.0.256` is not one. */
function isLoopbackV4 (name: string): boolean {
  return name.startsWith('127.') && isIP(name) === 4
}

/** True for the "any interface" addresses. */
export function isWildcard (host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]'
}

/**
 * The host name of a `Host` header (or a listen address): without the port, brackets or a
 * trailing dot, lower case. A bare IPv6 address (`::1`, from `HOST`) has no port to strip.
 */
export function hostName (header: string): string {
  const bracketed = /^\[([^\]]*)\]/.exec(header)
  // At least two colons before asking isIP: its IPv6 pattern is a large regular expression, and
  // `localhost:8080` or `127.0.0.1:8080` (nearly every Host) cannot be an address of that kind.
  const bareIpv6 = bracketed === null && header.indexOf(':') !== header.lastIndexOf(':') && isIP(header) === 6
  const name = bracketed !== null ? bracketed[1] as string : bareIpv6 ? header : header.replace(/:\d*$/, '')
  return name.toLowerCase().replace(/\.$/, '')
}

/**
 * Whether a `Host` is one this sidecar answers for. A DNS rebinding attack always arrives with
 * the attacker's host name, so names are checked: localhost, the listen address, the allow-list.
 * IP literals are the listen address or, when listening on every interface, any of them.
 */
export function hostAllowed (host: string, policy: AccessPolicy): boolean {
  if (policy.allowedHosts.has('*') || policy.allowedHosts.has(host)) return true
  if (isLoopback(host) || host === hostName(policy.listenHost)) return true
  return isWildcard(policy.listenHost) && isIP(host) !== 0
}

export interface AccessOptions {
  /**
   * A route that serves no token (the token page's HTML shell and its assets): every rule but the
   * caller secret applies. A browser's navigation cannot send `Authorization`, so the page has to
   * load without it; the tokens it shows come from `/token`, which still asks for the secret.
   */
  skipSecret?: boolean
  /**
   * The request came over the unix socket (`SIDECAR_SOCKET`): no browser can reach it and no DNS
   * name points at it, so its `Host` (whatever the client's URL said) is not checked.
   */
  viaSocket?: boolean
}

/** Hosts already judged, per policy: callers send the same few `Host` values again and again. */
const judged = new WeakMap<AccessPolicy, Map<string, string | undefined>>()
/** Enough for every name a sidecar answers to; a flood of invented ones just starts it over. */
const JUDGED_MAX = 64

/** Undefined when the `Host` header is allowed, else the host name (quoted) for the error. */
function hostRefusal (header: string, policy: AccessPolicy): string | undefined {
  // Nearly every request carries the same Host as the one before it.
  if (last.policy === policy && last.header === header) return last.refusal
  const refusal = judge(header, policy)
  last = { policy, header, refusal }
  return refusal
}

/** The last decision, the hot path's answer without a map lookup. */
let last: { policy?: AccessPolicy, header?: string, refusal: string | undefined } = { refusal: undefined }

function judge (header: string, policy: AccessPolicy): string | undefined {
  let memo = judged.get(policy)
  if (memo === undefined) judged.set(policy, memo = new Map())
  if (memo.has(header)) return memo.get(header)
  const host = hostName(header)
  const refusal = hostAllowed(host, policy) ? undefined : JSON.stringify(host)
  if (memo.size >= JUDGED_MAX) memo.clear()
  memo.set(header, refusal)
  return refusal
}

/** What {@link checkRequestTarget} reads of a request: Node's `IncomingMessage` has it. */
export interface RequestHead {
  url?: string | undefined
  rawHeaders: string[]
  headers: IncomingHttpHeaders
}

/**
 * The request line and `Host`, checked before anything reads them (RFC 9112 §3.2), for every
 * route. More than one `Host` is a 400, as the RFC requires (Node keeps the first and says
 * nothing). An absolute-form target (`GET http://evil.example/token`) must name the same
 * authority as `Host`: the RFC says the target's authority decides, and Fastify, these access
 * rules and anything behind them read `Host`, so a request on which the two disagree is refused
 * rather than served by whichever a component happens to read.
 */
export function checkRequestTarget (head: RequestHead): SidecarError | undefined {
  let hosts = 0
  for (let i = 0; i < head.rawHeaders.length; i += 2) {
    const name = head.rawHeaders[i] as string
    // Every request of every route passes here: only four-letter names are lower-cased.
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++
  }
  if (hosts > 1) {
    return details(new errors.InvalidParameter(`the request has ${hosts} Host headers; exactly one is allowed (RFC 9112 §3.2)`), { field: 'host' }) as SidecarError
  }
  const url = head.url ?? '/'
  if (url.startsWith('/') || url === '*') return undefined
  const authority = authorityOf(url)
  if (authority === undefined) {
    return details(new errors.InvalidParameter('the request target must be a path, or an http(s) URL'), { field: 'url' }) as SidecarError
  }
  const host = head.headers.host ?? ''
  if (authority !== authorityOf(`http://${host}`)) {
    return details(new errors.InvalidParameter(`the request target names ${JSON.stringify(authority)} but Host names ${JSON.stringify(host)}; they must agree`), { field: 'host' }) as SidecarError
  }
  return undefined
}

/** `host[:port]` of an http(s) URL, normalized as URL parsing does (default port dropped). */
function authorityOf (url: string): string | undefined {
  try {
    const target = new URL(url)
    return target.protocol === 'http:' || target.protocol === 'https:' ? target.host : undefined
  } catch {
    return undefined
  }
}

/** The first rule the request breaks, as the error to answer with, or undefined. */
export function checkAccess (headers: IncomingHttpHeaders, policy: AccessPolicy, options: AccessOptions = {}): SidecarError | undefined {
  const admitted = admit(headers, policy, options)
  return admitted instanceof Error ? admitted : undefined
}

/**
 * The caller a request comes from, or the first rule it breaks as the error to answer with.
 * Undefined for a request admitted without its secret (`skipSecret`): nobody is identified.
 */
export function admit (headers: IncomingHttpHeaders, policy: AccessPolicy, options: AccessOptions = {}): SidecarError | Caller | undefined {
  if (policy.rejectForwarded && (headers['x-forwarded-for'] !== undefined || headers.forwarded !== undefined)) {
    return new errors.ForwardedRequest() as SidecarError
  }
  const required = policy.requiredHeader
  if (required !== undefined && headers[required.name] !== required.value) {
    return new errors.MissingRequiredHeader(`${required.name}: ${required.value}`) as SidecarError
  }
  if (options.viaSocket !== true) {
    const refusal = hostRefusal(headers.host ?? '', policy)
    if (refusal !== undefined) return new errors.HostNotAllowed(refusal) as SidecarError
  }
  if (headers['sec-fetch-site'] === 'cross-site') return new errors.CrossSiteRequest() as SidecarError
  // A browser sends Origin on cross-origin requests (and on POST, DELETE): it must be this origin.
  const origin = headers.origin
  if (origin !== undefined && !sameOrigin(origin, String(headers.host))) return new errors.CrossSiteRequest() as SidecarError
  if (options.skipSecret === true) return undefined
  if (policy.callers === undefined) return ANONYMOUS
  return policy.callers.identify(headers.authorization) ?? new errors.Unauthorized() as SidecarError
}

function sameOrigin (origin: string, host: string): boolean {
  try {
    return new URL(origin).host === new URL(`http://${host}`).host
  } catch {
    return false // "null", or not a URL
  }
}
