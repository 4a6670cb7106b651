/**
 * Demo mode (`SIDECAR_DEMO=true`): the sidecar end to end on a machine with no Coze app. A key
 * of its own in `.demo/` (made once, reused after), the Coze emulator in the same process on a
 * loopback port, the key registered there, and the Coze settings that point the sidecar at it.
 * Tokens it hands out are NOT valid at Coze.
 *
 * @example
 * const demo = await startDemo({ cwd: process.cwd() })
 * const app = buildApp({ env: { ...process.env, ...demo.env }, cwd: process.cwd() })
 * app.addHook('onClose', () => demo.close())
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import Fastify from 'fastify'
import type { Clock } from './clock.js'
import type { Env } from './config.js'
import { cozeEmulator } from './emulator/plugin.js'
import { consoleFingerprint } from './emulator/state.js'
import { ConfigError } from './config-error.js'

/** The demo's OAuth app id (the emulator CLI's default too). */
export const DEMO_APP_ID = '1000000000001'
/** An account that has authorized the demo app, so that the cross-account variant can be tried. */
export const DEMO_ACCOUNT_ID = '7351234567890'

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
  /** The demo key's file. */
  keyFile: string
  /** Stops the emulator. */
  close: () => Promise<void>
}

/** True for the values of `SIDECAR_DEMO` that turn it on. */
export function demoWanted (value: string | undefined): boolean {
  return value === 'true' || value === '1'
}

/**
 * The demo's key: the one in `.demo/` when there is one, or a new RSA-2048 key written there
 * (mode 0600, in a 0700 folder that `.gitignore` names). A file that is not an RSA private key
 * any more is replaced: it is the demo's own, and worth nothing.
 */
async function demoKey (file: string): Promise<KeyObject> {
  try {
    const key = createPrivateKey(await readFile(file, 'utf8'))
    if (key.asymmetricKeyType === 'rsa' && Number(key.asymmetricKeyDetails?.modulusLength) >= 2048) {
      await chmod(file, 0o600)
      return key
    }
  } catch {
    // None yet, or not a key: a new one.
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  await chmod(file, 0o600) // writeFile's mode applies only to a new file
  return privateKey
}

/**
 * Starts the emulator on 127.0.0.1 (a free port) with the demo app and key registered, and
 * returns the settings that point the sidecar at it.
 * @throws ConfigError (`SIDECAR_DEMO`) when `.demo/` cannot be written.
 */
export async function startDemo (options: DemoOptions): Promise<Demo> {
  const dir = resolve(options.cwd, '.demo')
  const keyFile = resolve(dir, 'private-key.pem')
  let privateKey: KeyObject
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    privateKey = await demoKey(keyFile)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new ConfigError('SIDECAR_DEMO', `cannot write the demo key to ${keyFile} (${String(code)}); run it from a folder you can write to, or unset SIDECAR_DEMO`)
  }
  const publicKey = createPublicKey(privateKey)
  const kid = consoleFingerprint(publicKey)

  const emulator = Fastify({ logger: false, forceCloseConnections: true })
  const clock = options.clock
  await emulator.register(cozeEmulator, clock === undefined ? {} : { now: () => clock.now() })
  const url = await emulator.listen({ host: '127.0.0.1', port: 0 })
  emulator.cozeEmulator.registerApp({
    appId: DEMO_APP_ID,
    name: 'demo app',
    keys: [{ kid, publicKey }],
    // What the sidecar puts in aud by default: the host:port of COZE_API_BASE.
    audience: new URL(url).host,
    authorizedAccounts: [DEMO_ACCOUNT_ID]
  })

  const env: Env = Object.fromEntries(REPLACED.map((name) => [name, undefined]))
  Object.assign(env, {
    COZE_APP_ID: DEMO_APP_ID,
    COZE_KEY_ID: kid,
    COZE_PRIVATE_KEY_FILE: keyFile,
    COZE_API_BASE: url,
    SIDECAR_DEMO: 'true'
  })
  return { env, url, keyFile, close: () => emulator.close() }
}
