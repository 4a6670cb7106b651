/**
 * The only file that touches `process`: reads the environment, listens, handles signals and
 * exit codes. Everything else is built by `buildApp`.
 *
 * Exit codes: 0 after a clean shutdown, 78 (EX_CONFIG) for a bad setting, 1 when the service
 * cannot start or stop for another reason.
 */
import { buildApp } from './app.js'
import { ConfigError } from './errors.js'

/** In-flight requests get this long to finish after SIGTERM; then the process exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000

const app = buildApp({ env: process.env, cwd: process.cwd() })

try {
  await app.ready()
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`coze-token-sidecar: ${error.message}\n`)
    process.exit(78)
  }
  throw error
}

try {
  await app.listen({ host: app.config.host, port: app.config.port })
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code
  const reason = code === 'EADDRINUSE'
    ? `port ${app.config.port} is already in use on ${app.config.host}; set PORT to a free port`
    : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
      ? `${app.config.host} is not an address of this machine; set HOST to one`
      : `cannot listen on ${app.config.host}:${app.config.port} (${code ?? String(error)})`
  process.stderr.write(`coze-token-sidecar: ${code === 'EADDRINUSE' ? 'PORT' : 'HOST'}: ${reason}\n`)
  process.exit(code === undefined ? 1 : 78)
}

let stopping = false
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      app.log.error('in-flight requests did not finish in time; exiting')
      process.exit(1)
    }, SHUTDOWN_GRACE_MS)
    force.unref()
    app.close().then(() => process.exit(0), (error: unknown) => {
      app.log.error({ err: error }, 'shutdown failed')
      process.exit(1)
    })
  })
}
