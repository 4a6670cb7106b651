/**
 * The access settings, resolved: the caller secret (inline or from a file), the Host allow-list,
 * the required header, the forwarded rule, and the refusal to listen beyond loopback without a
 * secret.
 *
 * @example
 * const access = await resolveAccess(settings, readFile, warnings)
 */
import { resolve } from 'node:path'
import { ConfigError } from '../config-error.js'
import type { Settings } from '../settings.js'
import { readSecretFile, type CallerSecretError } from './caller-secret.js'
import { hostName, isLoopback } from './rules.js'

export interface AccessSettings {
  /** The caller secret, inline or from a file that can rotate. */
  secret?: { value: string, file?: string }
  /** `SIDECAR_CALLERS_FILE`, resolved: per-caller secrets and rights. */
  callersFile?: string
  allowUnauthenticated: boolean
  allowedHosts: string[]
  requiredHeader?: { name: string, value: string }
  rejectForwarded: boolean
}

export async function resolveAccess (settings: Settings, cwd: string, tcp: boolean, read: (path: string) => Promise<string>, warnings: string[]): Promise<AccessSettings> {
  if (settings.SIDECAR_AUTH_TOKEN !== undefined && settings.SIDECAR_AUTH_TOKEN_FILE !== undefined) {
    throw new ConfigError('SIDECAR_AUTH_TOKEN', 'is set together with SIDECAR_AUTH_TOKEN_FILE; set only one of them')
  }
  let secret: AccessSettings['secret']
  if (settings.SIDECAR_AUTH_TOKEN !== undefined) secret = { value: settings.SIDECAR_AUTH_TOKEN }
  if (settings.SIDECAR_AUTH_TOKEN_FILE !== undefined) {
    try {
      secret = { value: await readSecretFile(settings.SIDECAR_AUTH_TOKEN_FILE, read), file: settings.SIDECAR_AUTH_TOKEN_FILE }
    } catch (error) {
      throw new ConfigError('SIDECAR_AUTH_TOKEN_FILE', (error as CallerSecretError).message)
    }
  }
  const callersFile = settings.SIDECAR_CALLERS_FILE === undefined ? undefined : resolve(cwd, settings.SIDECAR_CALLERS_FILE)
  // On the socket alone (no TCP listener) HOST binds nothing: file permissions guard the socket.
  if (tcp && !isLoopback(hostName(settings.HOST)) && secret === undefined && callersFile === undefined) {
    if (!settings.SIDECAR_ALLOW_UNAUTHENTICATED) {
      throw new ConfigError('HOST', `${settings.HOST} is not a loopback address, so anyone who can reach it could take tokens; ` +
        'set SIDECAR_AUTH_TOKEN (or SIDECAR_AUTH_TOKEN_FILE) to a secret callers send as "Authorization: Bearer <secret>", ' +
        'or set SIDECAR_ALLOW_UNAUTHENTICATED=true to accept that risk')
    }
    warnings.push(`SIDECAR_ALLOW_UNAUTHENTICATED=true: anyone who can reach ${settings.HOST}:${settings.PORT} can take tokens for this Coze app`)
  }
  const header = settings.SIDECAR_REQUIRE_HEADER
  const colon = header?.indexOf(':') ?? -1
  return {
    ...(secret === undefined ? {} : { secret }),
    ...(callersFile === undefined ? {} : { callersFile }),
    allowUnauthenticated: settings.SIDECAR_ALLOW_UNAUTHENTICATED,
    allowedHosts: (settings.SIDECAR_ALLOWED_HOSTS ?? '').split(',').map((name) => hostName(name.trim())).filter((name) => name !== ''),
    ...(header === undefined ? {} : { requiredHeader: { name: header.slice(0, colon).toLowerCase(), value: header.slice(colon + 1).trim() } }),
    rejectForwarded: settings.SIDECAR_REJECT_FORWARDED
  }
}
