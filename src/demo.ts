/**
 * Demo mode (`SIDECAR_DEMO=true`): the sidecar end to end on a machine with no Coze app. A key
 * of its own in `.demo/` (made once, reused after; kept in memory only where `.demo/` cannot be
 * written, as in a read-only container), the Coze emulator in the same process on a loopback
 * port, the key registered there, and the Coze settings that point the sidecar at it. The
 * sidecar is handed the key itself (`COZE_PRIVATE_KEY`), not the file's name, so the key it signs
 * with is the key the emulator knows, whatever another process does to the file meanwhile.
 * Tokens it hands out are NOT valid at Coze.
 *
 * @example
 * const demo = await startDemo({ cwd: process.cwd() })
 * const app = buildApp({ env: { ...process.env, ...demo.env }, cwd: process.cwd() })
 * app.addHook('onClose', () => demo.close())
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { resolve } from 'node:path'
import Fastify from 'fastify'
import type { Clock } from './clock.js'
import type { Env } from './config.js'
import { loadOrCreateKey, newKey } from './key-file.js'

/** The demo's OAuth app id (the emulator CLI's default too). */
export const DEMO_APP_ID = '1000000000001'
/** An account that has authorized the demo app, so that the cross-account variant can be tried. */
export const DEMO_ACCOUNT_ID = '7351234567890'
/** The enterprise whose privileged app the demo app is, so that the enterprise variant can be tried. */
export const DEMO_ENTERPRISE_ID = 'volcano_210195'

/** The Coze app settings the demo replaces: what is left of the user's would not match its app. */
const REPLACED = [
  'COZE_APP_ID', 'COZE_KEY_ID', 'COZE_PRIVATE_KEY_FILE', 'COZE_PRIVATE_KEY', 'COZE_API_BASE',
  'COZE_JWT_AUDIENCE', 'COZE_ACCOUNT_ID', 'COZE_ENTERPRISE_ID', 'COZE_OAUTH_CONFIG'
] as const

export interface DemoOptions {
  /** `.demo/` is made here. */
  cwd: string
  /** The emulator's clock (its `iat`/`exp` checks and the tokens' expiry). Default: the system's. */
  clock?: Pick<Clock, 'now'>
}

export interface Demo {
  /** Settings to lay over the user's: every Coze app setting, pointing at the emulator. */
  env: Env
  /** The emulator's base URL, `http://127.0.0.1:PORT`. */
  url: string
  /** The demo key's file; undefined when `.demo/` could not be written and the key is in memory only. */
  keyFile?: string
  /** Why the key is in memory only, for a warning at start. */
  warning?: string
  /** Stops the emulator. */
  close: () => Promise<void>
}

/** True for the values of `SIDECAR_DEMO` that turn it on. */
export function demoWanted (value: string | undefined): boolean {
  return value === 'true' || value === '1'
}

/**
 * The settings to build the app with: `env` as it is, or, when its `SIDECAR_DEMO` asks for the
 * demo, the demo started and its settings laid over `env`. For the service and `coze-token` alike.
 */
export async function withDemo (env: Env, cwd: string): Promise<{ env: Env, demo?: Demo }> {
  if (!demoWanted(env.SIDECAR_DEMO)) return { env }
  const demo = await startDemo({ cwd })
  return { env: { ...env, ...demo.env }, demo }
}

/**
 * Starts the emulator on 127.0.0.1 (a free port) with the demo app and key registered, and
 * returns the settings that point the sidecar at it.
 */
export async function startDemo (options: DemoOptions): Promise<Demo> {
  const file = resolve(options.cwd, '.demo', 'private-key.pem')
  let privateKey: KeyObject
  let keyFile: string | undefined = file
  let warning: string | undefined
  try {
    privateKey = (await loadOrCreateKey(file)).key
  } catch (error) {
    // EROFS, EACCES... (a read-only container): a demo needs no key on disk.
    const code = String((error as NodeJS.ErrnoException).code)
    privateKey = newKey()
    keyFile = undefined
    warning = `demo mode: cannot write ${file} (${code}); the demo key is kept in memory and is new at every start`
  }
  // The emulator is loaded only here: a service that is not a demo never pays for it (issue 12).
  const [{ cozeEmulator }, { consoleFingerprint }] = await Promise.all([import('./emulator/plugin.js'), import('./emulator/state.js')])
  const publicKey = createPublicKey(privateKey)
  const kid = consoleFingerprint(publicKey)

  const emulator = Fastify({ logger: false, forceCloseConnections: true })
  const clock = options.clock
  await emulator.register(cozeEmulator, clock === undefined ? {} : { now: () => clock.now() })
  const url = await emulator.listen({ host: '127.0.0.1', port: 0 })
  emulator.cozeEmulator.registerApp({
    appId: DEMO_APP_ID,
    name: 'demo app',
    // A privileged app, so that the README's enterprise example works; it gets the other
    // variants' tokens too.
    type: 'privileged',
    keys: [{ kid, publicKey }],
    // What the sidecar (and coze-go, coze-py) put in aud by default: the host:port of
    // COZE_API_BASE; coze-java sends the host alone.
    audience: [new URL(url).host, new URL(url).hostname],
    authorizedAccounts: [DEMO_ACCOUNT_ID],
    enterprises: [DEMO_ENTERPRISE_ID]
  })

  const env: Env = Object.fromEntries(REPLACED.map((name) => [name, undefined]))
  Object.assign(env, {
    COZE_APP_ID: DEMO_APP_ID,
    COZE_KEY_ID: kid,
    COZE_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    COZE_API_BASE: url,
    SIDECAR_DEMO: 'true'
  })
  return {
    env,
    url,
    ...(keyFile === undefined ? {} : { keyFile }),
    ...(warning === undefined ? {} : { warning }),
    close: () => emulator.close()
  }
}
