/**
 * The parts of undici the service uses, each imported from its own module.
 *
 * undici's index also loads fetch, WebSocket, EventSource, the caches, the mock agents, every
 * interceptor and a second HTTP parser: about 9 MiB of memory and 50 ms of every start (issue 12)
 * for code the sidecar never runs (and, in the bundle, a megabyte of it to parse). undici has no
 * `exports` map, so these files are reachable by design; `test/undici.test.ts` proves they are the
 * very classes and methods the index exports, so an upgrade that moves them fails the tests, not a
 * deployment. The version is pinned to a minor (`~7.x` in package.json) for the same reason.
 *
 * @example
 * const dispatcher = new EnvHttpProxyAgent({ connect: { timeout: 5_000 } })
 * const response = await dispatcher.request({ origin: 'https://api.coze.cn', path: '/v1/users/me', method: 'GET' })
 */
import type * as Undici from 'undici'
import envHttpProxyAgent from 'undici/lib/dispatcher/env-http-proxy-agent.js'
import dispatcher from 'undici/lib/dispatcher/dispatcher.js'
import api from 'undici/lib/api/index.js'

export const EnvHttpProxyAgent = envHttpProxyAgent as typeof Undici.EnvHttpProxyAgent

// As undici's index does: `request`, `stream`, `pipeline`, `upgrade` and `connect` on every dispatcher.
Object.assign((dispatcher as typeof Undici.Dispatcher).prototype, api)
