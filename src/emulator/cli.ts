/**
 * `npm run emulator`: the Coze emulator as a standalone server on loopback, for trying the
 * sidecar without a Coze app and for rehearsing outages (`POST /_emulator/faults`).
 *
 * It registers one app. With `--key` (or `COZE_PRIVATE_KEY_FILE`) it registers that key's public
 * half; without, it makes a new key pair and writes the private key where the sidecar can read it.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { isEntryPoint, type ProcessLike } from '../entry-point.js'
import { cozeEmulator } from './plugin.js'
import { consoleFingerprint, type AppType } from './state.js'

export const USAGE = `usage: npm run emulator -- [options]

  --host ADDR          listen address (default 127.0.0.1)
  --port N             port (default 8090)
  --app-id ID          OAuth app id (default $COZE_APP_ID or 1000000000001)
  --key FILE           PEM key to register; a private key's public half is used
                       (default $COZE_PRIVATE_KEY_FILE; none: a new key is written to .demo/)
  --key-id KID         kid to register (default $COZE_KEY_ID, or the key's fingerprint)
  --type TYPE          normal | channel | privileged (default normal)
  --account ID         an account that authorized the app (repeatable)
  --enterprise ID      an enterprise that owns the app (repeatable)
  --audience AUD       the aud JWTs must carry (default HOST:PORT)
`

const APP_TYPES: readonly string[] = ['normal', 'channel', 'privileged']

/** Exit code for a wrong command line (EX_USAGE). */
const EX_USAGE = 64

/** Runs the emulator. Returns it once it listens, or undefined after a usage error or --help. */
export async function main (args: string[], proc: ProcessLike): Promise<FastifyInstance | undefined> {
  const usageError = (message: string): undefined => {
    proc.stderr.write(`emulator: ${message}\n${USAGE}`)
    proc.exit(EX_USAGE)
    return undefined
  }
  let values
  try {
    values = parseArgs({
      args,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '8090' },
        'app-id': { type: 'string' },
        key: { type: 'string' },
        'key-id': { type: 'string' },
        type: { type: 'string', default: 'normal' },
        account: { type: 'string', multiple: true, default: [] },
        enterprise: { type: 'string', multiple: true, default: [] },
        audience: { type: 'string' },
        help: { type: 'boolean', default: false }
      }
    }).values
  } catch (error) {
    return usageError((error as Error).message)
  }
  if (values.help) {
    proc.stdout.write(USAGE)
    proc.exit(0)
    return undefined
  }
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) return usageError('--port must be a port number from 0 to 65535')
  if (!APP_TYPES.includes(values.type)) return usageError('--type must be normal, channel or privileged')

  const appId = values['app-id'] ?? proc.env.COZE_APP_ID ?? '1000000000001'
  const keyFile = values.key ?? proc.env.COZE_PRIVATE_KEY_FILE
  let publicKey: KeyObject
  let privateKeyFile = keyFile
  if (keyFile === undefined) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
    privateKeyFile = resolve(proc.cwd(), '.demo', 'emulator-private-key.pem')
    await mkdir(dirname(privateKeyFile), { recursive: true, mode: 0o700 })
    await writeFile(privateKeyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    await chmod(privateKeyFile, 0o600) // writeFile's mode applies only to a new file
    publicKey = pair.publicKey
  } else {
    let pem: string
    try {
      pem = await readFile(resolve(proc.cwd(), keyFile), 'utf8')
    } catch (error) {
      return usageError(`--key ${keyFile}: cannot read it (${String((error as NodeJS.ErrnoException).code)})`)
    }
    try {
      publicKey = pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem)
    } catch {
      return usageError(`--key ${keyFile}: not a PEM key`)
    }
  }
  const kid = values['key-id'] ?? proc.env.COZE_KEY_ID ?? consoleFingerprint(publicKey)

  const app = Fastify({ logger: { level: 'info', stream: proc.stdout }, forceCloseConnections: true })
  await app.register(cozeEmulator, { control: true })
  let address: string
  try {
    address = await app.listen({ host: values.host, port })
  } catch (error) {
    await app.close()
    return usageError(`cannot listen on ${values.host}:${port} (${String((error as NodeJS.ErrnoException).code)})`)
  }
  // The default audience is the address as the sidecar will see it: host:port.
  const audience = values.audience ?? new URL(address).host
  app.cozeEmulator.registerApp({
    appId,
    name: 'emulated app',
    type: values.type as AppType,
    keys: [{ kid, publicKey }],
    audience,
    authorizedAccounts: values.account,
    enterprises: values.enterprise
  })
  proc.stdout.write(`
Coze emulator on ${address} (tokens it issues are NOT valid at Coze)
  app id:   ${appId}
  kid:      ${kid}
  audience: ${audience}

Run the sidecar against it:
  COZE_API_BASE=${address} COZE_APP_ID=${appId} COZE_KEY_ID=${kid} \\
  COZE_PRIVATE_KEY_FILE=${privateKeyFile} npm start

Rehearse an outage:
  curl -X POST ${address}/_emulator/faults -H 'content-type: application/json' -d '{"kind":"status","status":503,"times":5}'
`)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    proc.on(signal, () => { app.close().then(() => proc.exit(0), /* c8 ignore next */ () => proc.exit(1)) })
  }
  return app
}

/* c8 ignore next - true only under `npm run emulator`; test/emulator/cli.test.ts runs that as a process */
if (isEntryPoint(import.meta.url, process.argv[1])) await main(process.argv.slice(2), process)
