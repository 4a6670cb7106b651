/**
 * The access policy as a plugin: decorates the app with `access` (what `checkAccess` reads) and
 * keeps a caller secret from a file current: a changed file is re-read within the poll interval;
 * a bad or removed new file keeps the last good secret and logs one error line.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Clock } from '../clock.js'
import { FileWatch } from '../file-watch.js'
import { CallerSecret } from './caller-secret.js'
import type { AccessPolicy } from './rules.js'

declare module 'fastify' {
  interface FastifyInstance {
    access: AccessPolicy
  }
}

export interface AccessPluginOptions {
  clock: Clock
  readFile?: (path: string) => Promise<string>
}

export const accessPlugin = fp(async function access (app: FastifyInstance, options: AccessPluginOptions) {
  const settings = app.config.access
  const secret = settings.secret === undefined ? undefined : new CallerSecret(settings.secret.value, settings.secret.file)
  app.decorate('access', {
    ...(secret === undefined ? {} : { secret }),
    listenHost: app.config.host,
    allowedHosts: new Set(settings.allowedHosts),
    ...(settings.requiredHeader === undefined ? {} : { requiredHeader: settings.requiredHeader }),
    rejectForwarded: settings.rejectForwarded
  })
  const file = secret?.file
  if (secret === undefined || file === undefined) return
  const watch = new FileWatch({
    files: [file],
    clock: options.clock,
    onChange: () => {
      secret.reload(options.readFile).then(
        () => app.log.info({ file }, 'caller secret reloaded'),
        (error: Error) => app.log.error({ reason: error.message }, 'caller secret reload failed; the current secret stays in service'))
    }
  })
  await watch.start()
  app.addHook('onClose', async () => watch.stop())
}, { name: 'access', fastify: '5.x', dependencies: ['config'] })
