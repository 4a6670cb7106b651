/**
 * Who may call, as a Fastify plugin: the callers (`SIDECAR_CALLERS_FILE`,
 * `SIDECAR_AUTH_TOKEN(_FILE)`), loaded at start (a broken file stops the start, naming the file
 * and the field) and re-read whenever the callers file or a secret file changes; and the access
 * policy `checkAccess` reads (`access`).
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Clock } from '../clock.js'
import { ConfigError } from '../config-error.js'
import { FileWatch } from '../file-watch.js'
import { CallerRegistry } from './caller-registry.js'
import { CallersFileError, type Caller } from './callers.js'
import type { AccessPolicy } from './rules.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Who may call; undefined when no caller secret is configured (then anyone on the allowed hosts may). */
    callers: CallerRegistry | undefined
    access: AccessPolicy
  }
  interface FastifyRequest {
    /** The caller of a guarded route (set by the guard); undefined on the page's public routes. */
    caller: Caller | undefined
  }
}

export interface AccessPluginOptions {
  clock: Clock
  readFile?: ((path: string) => Promise<string>) | undefined
}

export const accessPlugin = fp(async function access (app: FastifyInstance, options: AccessPluginOptions) {
  app.decorateRequest('caller', undefined)
  const settings = app.config.access
  const decorateAccess = (callers: CallerRegistry | undefined): void => {
    app.decorate('callers', callers)
    app.decorate('access', {
      ...(callers === undefined ? {} : { callers }),
      listenHost: app.config.host,
      allowedHosts: new Set(settings.allowedHosts),
      ...(settings.requiredHeader === undefined ? {} : { requiredHeader: settings.requiredHeader }),
      rejectForwarded: settings.rejectForwarded
    })
  }
  const { secret, callersFile } = settings
  if (secret === undefined && callersFile === undefined) {
    decorateAccess(undefined)
    return
  }
  let registry: CallerRegistry
  try {
    registry = await CallerRegistry.load({
      ...(callersFile === undefined ? {} : { file: callersFile }),
      ...(secret === undefined ? {} : { defaultSecret: secret }),
      read: options.readFile
    })
  } catch (error) {
    /* c8 ignore next - load throws only CallersFileError; anything else is a bug and keeps its stack */
    if (!(error instanceof CallersFileError)) throw error
    throw new ConfigError('SIDECAR_CALLERS_FILE', error.message)
  }
  decorateAccess(registry)
  if (callersFile !== undefined) app.log.info({ callers: registry.names }, 'callers loaded')

  let watch: FileWatch
  const start = async (): Promise<void> => {
    const files = [...registry.files]
    watch = new FileWatch({
      files,
      clock: options.clock,
      onChange: () => {
        registry.reload().then(async () => {
          // A secret_file added or removed: watch the new set. (A change made between the reload's
          // read and the new watch's first look waits for the next change to be seen.)
          if (registry.files.join('\n') !== files.join('\n')) {
            watch.stop()
            await start()
          }
          app.log.info({ callers: registry.names }, 'callers reloaded')
        }, (error: Error) => {
          // One line, naming the file and the field; the last good rules stay in service.
          app.log.error({ reason: error.message }, 'callers reload failed; the last good callers stay in service')
        })
      }
    })
    await watch.start()
  }
  await start()
  app.addHook('onClose', async () => watch.stop())
}, { name: 'access', fastify: '5.x', dependencies: ['config'] })
