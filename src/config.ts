/**
 * Configuration: the settings validated once (src/settings.ts), then resolved into a
 * {@link Config} for the service and the {@link CredentialSpec}s it starts with: `default` from
 * the environment and `coze_oauth_config.json`, and one per file of `COZE_OAUTH_CONFIG_DIR`.
 *
 * Every bad setting becomes a {@link ConfigError}: one line naming the setting and the fix.
 *
 * @example
 * const { config, credentials } = await loadConfig({ env: process.env, cwd: process.cwd() })
 */
import { resolve } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { resolveAccess, type AccessSettings } from './access/settings.js'
import {
  credentialName, errno, listCredentialFiles, parseBase, readCredentialFile, readDefaultCredential,
  type CredentialSpec, type SourceOptions
} from './credentials/sources.js'
import { ConfigError } from './config-error.js'
import { readRegularFile } from './files/read.js'
import { fixFor, validateSettings, type Settings } from './settings.js'
import type { RetryPolicy } from './token/policy.js'

export type { Env } from './settings.js'

/** Everything the service needs besides its credentials, resolved and checked. */
export interface Config {
  host: string
  port: number
  /** Whether to listen on TCP (`HOST`, `PORT`): always, unless `SIDECAR_SOCKET` is set without `PORT`. */
  tcp: boolean
  /** `SIDECAR_SOCKET`: a unix socket to listen on, and its file mode. */
  socket?: { path: string, mode: number }
  logLevel: Settings['LOG_LEVEL']
  requestDeadlineMs: number
  httpTimeoutMs: number
  /** Per credential. */
  cacheMax: number
  retry: RetryPolicy
  /** After SIGTERM, how long in-flight requests may take before the process exits anyway. */
  shutdownGraceMs: number
  /** Who may take tokens. */
  access: AccessSettings
  /** New exchanges per second and burst, per credential. */
  exchangeRate: { perSecond: number, burst: number }
  /** Demo mode: tokens from a built-in emulator, not from Coze. */
  demo: boolean
  /** `COZE_OAUTH_CONFIG_DIR`, resolved. */
  credentialsDir?: string
  /** `SIDECAR_DEFAULT_APP`. */
  defaultApp?: string
  /** `COZE_ALTERNATE_API_BASE`: a base to probe, `off`, or undefined for "the other Coze region". */
  alternateApiBase?: string
  /** The outbound proxy settings (empty strings: none). */
  proxy: { httpProxy: string, httpsProxy: string, noProxy: string }
  /** The validated settings, for reloading credentials later. */
  settings: Settings
  /** The credentials loaded at start (the registry keeps them current after that). */
  credentials: CredentialSpec[]
  /** Things worth a warning at start, never a failure. */
  warnings: string[]
}

export type ConfigSources = SourceOptions

const readText = readRegularFile

/**
 * Nothing configured at all: rather than complain about the first missing setting, say what to
 * set, and how to try the sidecar without a Coze app. Never falls into demo mode by itself.
 */
function nothingConfigured (): ConfigError {
  return new ConfigError('COZE_APP_ID', 'no Coze app is configured: set COZE_APP_ID, COZE_KEY_ID and COZE_PRIVATE_KEY_FILE ' +
    '(or put the coze_oauth_config.json from the Coze console here, or point COZE_OAUTH_CONFIG at it, or COZE_OAUTH_CONFIG_DIR at a folder of them; see keys.example/README.md). ' +
    'To try the sidecar without a Coze app, set SIDECAR_DEMO=true (bash bootstrap.sh does that for you)')
}

/** Loads, validates and resolves everything. @throws ConfigError */
export async function loadConfig (sources: ConfigSources): Promise<{ config: Omit<Config, 'credentials'>, credentials: CredentialSpec[] }> {
  const settings = validateSettings(sources.env)
  const read = sources.readFile ?? readText
  const warnings: string[] = []
  const credentials: CredentialSpec[] = []
  const fallback = await readDefaultCredential(settings, sources)
  if (fallback !== undefined) credentials.push(fallback)

  let credentialsDir: string | undefined
  if (settings.COZE_OAUTH_CONFIG_DIR !== undefined) {
    credentialsDir = resolve(sources.cwd, settings.COZE_OAUTH_CONFIG_DIR)
    let files: string[]
    try {
      files = await listCredentialFiles(credentialsDir)
    } catch (error) {
      throw new ConfigError('COZE_OAUTH_CONFIG_DIR', `cannot read the folder ${credentialsDir} (${errno(error)}); ${fixFor('COZE_OAUTH_CONFIG_DIR')}`)
    }
    for (const file of files) {
      const name = credentialName(file)
      if (credentials.some((spec) => spec.name === name)) {
        throw new ConfigError('COZE_OAUTH_CONFIG_DIR', `${file}: the name "${name}" is taken by the app configured by COZE_APP_ID or COZE_OAUTH_CONFIG; rename the file`)
      }
      credentials.push(await readCredentialFile(file, settings, sources))
    }
  }
  if (credentials.length === 0) {
    throw credentialsDir === undefined
      ? nothingConfigured()
      : new ConfigError('COZE_OAUTH_CONFIG_DIR', `${credentialsDir} holds no NAME.json credential file, and no app is configured otherwise; put the coze_oauth_config.json of an app there, renamed NAME.json`)
  }
  const defaultApp = settings.SIDECAR_DEFAULT_APP
  if (defaultApp !== undefined && !credentials.some((spec) => spec.name === defaultApp)) {
    throw new ConfigError('SIDECAR_DEFAULT_APP', `names "${defaultApp}", which is not configured (configured: ${credentials.map((spec) => spec.name).join(', ')})`)
  }
  const alternate = settings.COZE_ALTERNATE_API_BASE
  if (alternate !== undefined && alternate !== 'off') {
    parseBase(alternate, (message) => new ConfigError('COZE_ALTERNATE_API_BASE', message.replace(fixFor('COZE_API_BASE'), fixFor('COZE_ALTERNATE_API_BASE'))))
  }
  const tcp = settings.SIDECAR_SOCKET === undefined || (sources.env.PORT ?? '').trim() !== ''
  const access = await resolveAccess(settings, sources.cwd, tcp, read, warnings)
  for (const spec of credentials) warnings.push(...spec.warnings)
  const config: Omit<Config, 'credentials'> = {
    host: settings.HOST,
    port: settings.PORT,
    tcp,
    ...(settings.SIDECAR_SOCKET === undefined
      ? {}
      : { socket: { path: resolve(sources.cwd, settings.SIDECAR_SOCKET), mode: parseInt(settings.SIDECAR_SOCKET_MODE, 8) } }),
    logLevel: settings.LOG_LEVEL,
    requestDeadlineMs: Math.round(settings.SIDECAR_REQUEST_DEADLINE * 1000),
    httpTimeoutMs: Math.round(settings.COZE_HTTP_TIMEOUT * 1000),
    cacheMax: settings.SIDECAR_CACHE_MAX,
    retry: { maxAttempts: settings.SIDECAR_RETRY_ATTEMPTS, budgetMs: Math.round(settings.SIDECAR_RETRY_BUDGET * 1000) },
    shutdownGraceMs: Math.round(settings.SIDECAR_SHUTDOWN_GRACE * 1000),
    access,
    exchangeRate: { perSecond: settings.SIDECAR_EXCHANGE_RATE, burst: settings.SIDECAR_EXCHANGE_BURST },
    demo: settings.SIDECAR_DEMO,
    ...(credentialsDir === undefined ? {} : { credentialsDir }),
    ...(defaultApp === undefined ? {} : { defaultApp }),
    ...(alternate === undefined ? {} : { alternateApiBase: alternate }),
    proxy: { httpProxy: settings.HTTP_PROXY ?? '', httpsProxy: settings.HTTPS_PROXY ?? '', noProxy: settings.NO_PROXY ?? '' },
    settings,
    warnings
  }
  return { config, credentials }
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/**
 * Loads, validates and resolves the configuration, and decorates the instance with `config`.
 * Fails the instance's start with a {@link ConfigError}.
 */
export const configPlugin = fp(async function config (app: FastifyInstance, sources: ConfigSources) {
  const { config, credentials } = await loadConfig(sources)
  app.decorate('config', { ...config, credentials })
}, { name: 'config', fastify: '5.x' })
