/**
 * Whether a caller may have what it asks for: a credential, a session name, an account or an
 * enterprise, a `ttl`, a gateway path. Framework-free: the same decision for `/token`, DELETE,
 * the page and the gateway.
 *
 * @example
 * const ask = askOf(caller, { sessionName: 'billing-42' }, 900)   // the caller's defaults applied
 * const refusal = authorize(caller, ask)
 * if (refusal !== undefined) throw refusal.field                    // 'session_name', 'ttl', ...
 */
import type { Caller } from './callers.js'
import { Patterns } from './patterns.js'

/** What a request asks for, after the caller's defaults. */
export interface Ask {
  /** The credential's name. */
  app: string
  sessionName?: string
  accountId?: string
  enterpriseId?: string
  /** The `duration_seconds` the token is asked for with. */
  ttl?: number
  /** A Coze API path through the gateway (after any selection prefix), without its query. */
  path?: string
}

/** The rule a request broke, named as the request's field. */
export type Rule = 'app' | 'session_name' | 'account_id' | 'enterprise_id' | 'ttl' | 'path'

export interface Refusal {
  field: Rule
  /** For people: names the caller and the value, never a secret. */
  message: string
}

/**
 * The caller's defaults for what a request leaves out. `ttl`: the caller's default, else the
 * service's capped at the caller's `max_ttl`, so that a short-lived caller need not name one.
 */
export function askOf (caller: Caller, named: Partial<Ask> & { app: string }, serviceTtl: number): Ask {
  const ask: Ask = { ...named }
  if (ask.sessionName === undefined && caller.defaults.sessionName !== undefined) ask.sessionName = caller.defaults.sessionName
  if (ask.ttl === undefined) ask.ttl = caller.defaults.ttl ?? Math.min(serviceTtl, caller.maxTtl ?? serviceTtl)
  return ask
}

/**
 * Undefined when the caller may have it; else the first rule broken, in the order of {@link Rule}.
 * @param defaultApp the registry's default credential: what a caller without `apps` may use.
 */
export function authorize (caller: Caller, ask: Ask, defaultApp: string | undefined): Refusal | undefined {
  if (caller.all) return undefined
  if (caller.apps === undefined ? ask.app !== defaultApp : !caller.apps.matches(ask.app)) {
    return refuse(caller, 'app', ask.app, caller.apps ?? new Patterns(defaultApp === undefined ? [] : [defaultApp]))
  }
  if (ask.sessionName !== undefined && caller.sessionNames?.matches(ask.sessionName) !== true) {
    return refuse(caller, 'session_name', ask.sessionName, caller.sessionNames)
  }
  if (ask.accountId !== undefined && caller.accounts?.matches(ask.accountId) !== true) {
    return refuse(caller, 'account_id', ask.accountId, caller.accounts)
  }
  if (ask.enterpriseId !== undefined && caller.enterprises?.matches(ask.enterpriseId) !== true) {
    return refuse(caller, 'enterprise_id', ask.enterpriseId, caller.enterprises)
  }
  if (ask.ttl !== undefined && caller.maxTtl !== undefined && ask.ttl > caller.maxTtl) {
    return { field: 'ttl', message: `caller ${caller.name} may not ask for ttl ${ask.ttl}: its max_ttl is ${caller.maxTtl}` }
  }
  if (ask.path !== undefined && caller.gateway?.matches(ask.path) !== true) {
    return refuse(caller, 'path', ask.path, caller.gateway)
  }
  return undefined
}

/** At most this many allowed values are listed in a refusal. */
const LISTED = 5

function refuse (caller: Caller, field: Rule, value: string, allowed: Patterns | undefined): Refusal {
  const shown = allowed?.source.slice(0, LISTED).map((pattern) => JSON.stringify(pattern)).join(', ')
  const more = allowed !== undefined && allowed.source.length > LISTED ? ', …' : ''
  const rights = shown === undefined || shown === '' ? `it may use no ${field}` : `allowed: ${shown}${more}`
  return { field, message: `caller ${caller.name} may not use ${field} ${JSON.stringify(value)} (${rights})` }
}
