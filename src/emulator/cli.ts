/**
 * `npm run emulator`: the Coze emulator as a standalone server on loopback, for trying the
 * sidecar without a Coze app and for rehearsing outages (`POST /_emulator/faults`).
 *
 * It registers one app. With `--key` (or `COZE_PRIVATE_KEY_FILE`) it registers that key's public
 * half; without, it makes a new key pair and writes the private key where the sidecar can read it.
 */
import { generateKeyPairSync, createPublicKey, createPrivateKey } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import { cozeEmulator } from './plugin.js'
import { consoleFingerprint, type AppType } from './state.js'

const usage = `usage: npm run emulator -- [options]

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

const { values } = parseArgs({
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
})

if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}
const port = Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`emulator: --port must be a port number\n${usage}`)
  process.exit(64)
}
if (!['normal', 'channel', 'privileged'].includes(values.type)) {
  process.stderr.write(`emulator: --type must be normal, channel or privileged\n${usage}`)
  process.exit(64)
}

const appId = values['app-id'] ?? process.env.COZE_APP_ID ?? '1000000000001'
const keyFile = values.key ?? process.env.COZE_PRIVATE_KEY_FILE
let publicKey
let privateKeyFile: string | undefined
if (keyFile !== undefined) {
  const pem = await readFile(keyFile, 'utf8')
  publicKey = pem.includes('PRIVATE KEY') ? createPublicKey(createPrivateKey(pem)) : createPublicKey(pem)
} else {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
  privateKeyFile = resolve('.demo', 'emulator-private-key.pem')
  await mkdir(dirname(privateKeyFile), { recursive: true, mode: 0o700 })
  await writeFile(privateKeyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  publicKey = pair.publicKey
}
const kid = values['key-id'] ?? process.env.COZE_KEY_ID ?? consoleFingerprint(publicKey)

const app = Fastify({ logger: { level: 'info' }, forceCloseConnections: true })
await app.register(cozeEmulator, {
  apps: [{
    appId,
    name: 'emulated app',
    type: values.type as AppType,
    keys: [{ kid, publicKey }],
    audience: values.audience ?? `${values.host.includes(':') ? `[${values.host}]` : values.host}:${port}`,
    authorizedAccounts: values.account,
    enterprises: values.enterprise
  }]
})
const address = await app.listen({ host: values.host, port })
const registered = app.cozeEmulator.apps.get(appId)
process.stdout.write(`
Coze emulator on ${address} (tokens it issues are NOT valid at Coze)
  app id:   ${appId}
  kid:      ${kid}
  audience: ${registered?.audience ?? ''}

Run the sidecar against it:
  COZE_API_BASE=${address} COZE_APP_ID=${appId} COZE_KEY_ID=${kid} \\
  COZE_PRIVATE_KEY_FILE=${privateKeyFile ?? keyFile ?? ''} npm start

Rehearse an outage:  curl -X POST ${address}/_emulator/faults -H 'content-type: application/json' -d '{"kind":"status","status":503,"times":5}'
`)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
}
