// The set-up the bench, soak and cache-memory scripts share: a fresh RSA key in a temporary
// folder (the sidecar's COZE_PRIVATE_KEY_FILE), and the Coze emulator in this process on a free
// loopback port with one app that knows the key. Not part of the service or the tests.
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { cozeEmulator } from '../dist/emulator/plugin.js'
import { consoleFingerprint } from '../dist/emulator/state.js'

/** The app the scripts' sidecars are configured for. */
export const SCRATCH_APP_ID = '1000000000001'

/**
 * @param {string} prefix the temporary folder's name prefix, e.g. `coze-soak-`
 * @param {object} [fastifyOptions] the emulator's Fastify options
 */
export async function scratchEmulator (prefix, fastifyOptions = { forceCloseConnections: true }) {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const keyFile = join(dir, 'private_key.pem')
  writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  const emulator = Fastify(fastifyOptions)
  await emulator.register(cozeEmulator)
  const emulatorUrl = await emulator.listen({ host: '127.0.0.1', port: 0 })
  const kid = consoleFingerprint(pair.publicKey)
  emulator.cozeEmulator.registerApp({ appId: SCRATCH_APP_ID, audience: new URL(emulatorUrl).host, keys: [{ kid, publicKey: pair.publicKey }] })
  return { dir, pair, keyFile, emulator, emulatorUrl, kid }
}
