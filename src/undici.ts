/**
 * The parts of undici the service uses, each loaded from its own module.
 *
 * undici's index also loads fetch, WebSocket, EventSource, the caches, the mock agents, every
 * interceptor and a second HTTP parser: about 9 MiB of memory and 50 ms of every start (issue 12)
 * for code the sidecar never runs. undici has no `exports` map, so these files are reachable by
 * design; `test/undici.test.ts` proves they are the very classes and methods the index exports, so
 * an upgrade that moves them fails the tests, not a deployment. The version is pinned to a minor
 * (`~7.x` in package.json) for the same reason.
 *
 * @example
 * const dispatcher = new EnvHttpProxyAgent({ connect: { timeout: 5_000 } })
 * const response = await dispatcher.request({ origin: 'https://api.coze.cn', path: '/v1/users/me', method: 'GET' })
 */
import { createRequire } from 'node:module'
import type * as Undici from 'undici'

const require = createRequire(import.meta.url)

export const EnvHttpProxyAgent = require('undici/lib/dispatcher/env-http-proxy-agent.js') as typeof Undici.EnvHttpProxyAgent

const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as typeof Undici.Dispatcher
// As undici's index does: `request`, `stream`, `pipeline`, `upgrade` and `connect` on every dispatcher.
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js'))
