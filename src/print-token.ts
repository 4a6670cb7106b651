#!/usr/bin/env node
/**
 * `coze-token`: prints one access token for the configured app and exits, for scripts and CI jobs
 * (like `gcloud auth print-access-token`). The same configuration and the same errors as the
 * service: it builds the app and asks its own /token route, without listening on a port.
 *
 *   TOKEN=$(coze-token)                       # the default request
 *   coze-token --session-name user-42 --ttl 600
 *   coze-token --json                         # the service's JSON answer
 *
 * Exit codes: 0 with the token on stdout; 1 when no token could be had (the service's error on
 * stderr); 64 for a wrong command line; 78 for a bad setting.
 */
import { parseArgs } from 'node:util'
import { buildApp } from './app.js'
import { withDemo } from './demo.js'
import { isEntryPoint, type ProcessLike } from './entry-point.js'
import type { Env } from './config.js'
import { ConfigError } from './config-error.js'

export const USAGE = `usage: coze-token [options]

  --app NAME             the credential to use (SIDECAR_DEFAULT_APP, or the only one, when absent)
  --session-name NAME    a token for this session name (Coze isolates conversations per name)
  --account-id ID        cross-account: the account or organization id
  --enterprise-id ID     enterprise privileged app: the enterprise id
  --ttl SECONDS          duration_seconds to ask for (1-86399)
  --device-id ID         session_context.device_info.device_id
  --custom-consumer ID   session_context.device_info.custom_consumer
  --json                 print the JSON answer instead of the bare token

Configured like the service: COZE_APP_ID, COZE_KEY_ID, COZE_PRIVATE_KEY_FILE (or
coze_oauth_config.json), COZE_API_BASE...; SIDECAR_DEMO=true for a demo token (NOT valid
at Coze); see the README. It holds the key, so the rules of SIDECAR_CALLERS_FILE do not
apply to it.
`

const SELECTORS = {
  app: 'app',
  'session-name': 'session_name',
  'account-id': 'account_id',
  'enterprise-id': 'enterprise_id',
  ttl: 'ttl',
  'device-id': 'device_id',
  'custom-consumer': 'custom_consumer'
} as const

/** Prints one token (or the error) and returns the exit code it also passed to `proc.exit`. */
export async function main (args: string[], proc: ProcessLike): Promise<number> {
  const exit = (code: number): number => {
    proc.exit(code)
    return code
  }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({
      args,
      options: {
        ...Object.fromEntries(Object.keys(SELECTORS).map((name) => [name, { type: 'string' as const }])),
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false }
      }
    }).values
  } catch (error) {
    proc.stderr.write(`coze-token: ${(error as Error).message}\n${USAGE}`)
    return exit(64)
  }
  if (values.help === true) {
    proc.stdout.write(USAGE)
    return exit(0)
  }

  // SIDECAR_DEMO=true: a token from the demo's emulator, as the service would hand out.
  const { env, demo } = await withDemo(proc.env, proc.cwd())
  // Logs would mix with the token on stdout: the command speaks through stderr, and only on failure.
  const settings: Env = { ...env, LOG_LEVEL: 'silent' }
  // The command reads the private key itself, so no caller's rules could bind it: it takes tokens
  // with every right, as the operator it is, and leaves SIDECAR_CALLERS_FILE unread. It never
  // listens, so HOST (whose check asks for a caller secret off loopback) does not concern it.
  if (settings.SIDECAR_CALLERS_FILE !== undefined && settings.SIDECAR_CALLERS_FILE !== '') {
    delete settings.SIDECAR_CALLERS_FILE
    settings.HOST = '127.0.0.1'
  }
  const app = buildApp({ env: settings, cwd: proc.cwd() })
  if (demo !== undefined) app.addHook('onClose', demo.close)
  try {
    await app.ready()
  } catch (error) {
    await demo?.close()
    /* c8 ignore next - every start-up check throws a ConfigError; anything else keeps its stack */
    if (!(error instanceof ConfigError)) throw error
    proc.stderr.write(`coze-token: ${error.message}\n`)
    return exit(78)
  }
  try {
    const query = new URLSearchParams()
    for (const [option, field] of Object.entries(SELECTORS)) {
      const value = values[option]
      if (typeof value === 'string') query.set(field, value)
    }
    // The command holds the configuration, so it holds what the guard asks for too.
    const { secret, requiredHeader } = app.config.access
    const response = await app.inject({
      method: 'GET',
      url: `/token?${query.toString()}`,
      headers: {
        ...(secret === undefined ? {} : { authorization: `Bearer ${secret.value}` }),
        ...(requiredHeader === undefined ? {} : { [requiredHeader.name]: requiredHeader.value })
      }
    })
    const body = response.json<{ access_token?: string, code?: string, message?: string, coze?: { logid?: string } }>()
    if (response.statusCode !== 200) {
      const logid = body.coze?.logid === undefined ? '' : ` (Coze logid ${body.coze.logid})`
      proc.stderr.write(`coze-token: ${String(body.code)}: ${String(body.message)}${logid}\n`)
      return exit(1)
    }
    proc.stdout.write(values.json === true ? `${response.body}\n` : `${String(body.access_token)}\n`)
    return exit(0)
  } finally {
    await app.close()
  }
}

/* c8 ignore next - true only under `coze-token`; test/print-token.test.ts runs that as a process */
if (isEntryPoint(import.meta.url, process.argv[1])) await main(process.argv.slice(2), process)
