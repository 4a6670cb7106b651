/**
 * `npm run emulator`: the Coze emulator as a standalone server on loopback, for trying the
 * sidecar without a Coze app and for rehearsing outages (`POST /_emulator/faults`).
 *
 * It registers one app. With `--key` (or `COZE_PRIVATE_KEY_FILE`) it registers that key's public
 * half; without, it uses the key in `.demo/emulator-private-key.pem`, made on the first run (by
 * the same writer as demo mode's key), so that a sidecar pointed at it keeps working across
 * restarts of the emulator.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { isEntryPoint, type ProcessLike } from '../entry-point.js'
import { loadOrCreateKey } from '../key-file.js'
import { cozeEmulator } from './plugin.js'
import { consoleFingerprint, DEFAULT_KNOBS, type AppType } from './state.js'

export const USAGE = `usage: npm run emulator -- [options]

  --host ADDR          listen address (default 127.0.0.1)
  --port N             port (default 8090)
  --app-id ID          OAuth app id (default $COZE_APP_ID or 1000000000001)
  --key FILE           PEM key to register; a private key's public half is used
                       (default $COZE_PRIVATE_KEY_FILE; none: a key made once in .demo/)
  --key-id KID         kid to register (default $COZE_KEY_ID, or the key's fingerprint)
  --type TYPE          normal | channel | privileged (default normal)
  --account ID         an account that authorized the app (repeatable)
  --enterprise ID      an enterprise that owns the app (repeatable)
  --audience AUD       an aud JWTs may carry (repeatable; default HOST:PORT, which
                       coze-go, coze-py and the sidecar send, and HOST, which coze-java sends)
  --max-jwt-lifetime S longest exp - iat accepted, in seconds (default ${DEFAULT_KNOBS.maxJwtLifetimeSeconds};
                       Coze's own limit is unknown)
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
        audience: { type: 'string', multiple: true, default: [] },
        'max-jwt-lifetime': { type: 'string', default: String(DEFAULT_KNOBS.maxJwtLifetimeSeconds) },
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
  const maxJwtLifetimeSeconds = Number(values['max-jwt-lifetime'])
  if (!Number.isSafeInteger(maxJwtLifetimeSeconds) || maxJwtLifetimeSeconds < 1) return usageError('--max-jwt-lifetime must be a whole number of seconds, 1 or more')

  const appId = values['app-id'] ?? proc.env.COZE_APP_ID ?? '1000000000001'
  const keyFile = values.key ?? proc.env.COZE_PRIVATE_KEY_FILE
  let publicKey: KeyObject
  let privateKeyFile = keyFile
  if (keyFile === undefined) {
    privateKeyFile = resolve(proc.cwd(), '.demo', 'emulator-private-key.pem')
    try {
      publicKey = createPublicKey((await loadOrCreateKey(privateKeyFile)).key)
    } catch (error) {
      return usageError(`cannot write ${privateKeyFile} (${String((error as NodeJS.ErrnoException).code)}); run it from a folder you can write to, or give --key`)
    }
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
  await app.register(cozeEmulator, { control: true, knobs: { maxJwtLifetimeSeconds } })
  let address: string
  try {
    address = await app.listen({ host: values.host, port })
  } catch (error) {
    await app.close()
    return usageError(`cannot listen on ${values.host}:${port} (${String((error as NodeJS.ErrnoException).code)})`)
  }
  // By default, what the SDKs derive from the base URL: host:port (coze-go, coze-py, the
  // sidecar), or the host alone (coze-java). At Coze, on the default port, the two agree.
  const audiences = values.audience.length > 0 ? values.audience : [new URL(address).host, new URL(address).hostname]
  app.cozeEmulator.registerApp({
    appId,
    name: 'emulated app',
    type: values.type as AppType,
    keys: [{ kid, publicKey }],
    audience: audiences,
    authorizedAccounts: values.account,
    enterprises: values.enterprise
  })
  proc.stdout.write(`
Coze emulator on ${address} (tokens it issues are NOT valid at Coze)
  app id:   ${appId}
  kid:      ${kid}
  audience: ${audiences.join(' or ')}

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
