/**
 * The only file that touches `process`: reads the environment, listens, handles signals and
 * exit codes. Everything else is built by `buildApp`.
 *
 * Signals: SIGTERM and SIGINT stop it gracefully; SIGHUP reloads the key.
 *
 * Exit codes: 0 after a clean shutdown; 78 (EX_CONFIG) for a bad setting, a port in use or an
 * address that is not this machine's; 1 when in-flight requests outlast the shutdown grace
 * (callers waiting for Coze do not: they are answered 503 just before it ends).
 */
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { demoWanted, startDemo, type Demo } from './demo.js'
import { isEntryPoint, type ProcessLike } from './entry-point.js'
import { ConfigError } from './errors.js'

/** Starts the service. Returns the app once it listens, or undefined after a start-up failure. */
export async function main (proc: ProcessLike): Promise<FastifyInstance | undefined> {
  let demo: Demo | undefined
  let app: FastifyInstance
  try {
    // Demo mode: the built-in emulator, and Coze app settings that point at it over the user's.
    if (demoWanted(proc.env.SIDECAR_DEMO)) demo = await startDemo({ cwd: proc.cwd() })
    app = buildApp({ env: demo === undefined ? proc.env : { ...proc.env, ...demo.env }, cwd: proc.cwd() })
    if (demo !== undefined) app.addHook('onClose', demo.close)
    await app.ready()
  } catch (error) {
    await demo?.close()
    // Every start-up check throws a ConfigError; anything else is a bug and keeps its stack.
    /* c8 ignore next */
    if (!(error instanceof ConfigError)) throw error
    proc.stderr.write(`coze-token-sidecar: ${error.message}\n`)
    proc.exit(78)
    return undefined
  }
  if (demo !== undefined) app.log.warn({ coze_api_base: demo.url }, 'demo mode: tokens come from a built-in Coze emulator and are NOT valid at Coze')

  const { host, port, shutdownGraceMs } = app.config
  try {
    await app.listen({ host, port })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const line = code === 'EADDRINUSE'
      ? `PORT: port ${port} is already in use on ${host}; set PORT to a free port`
      : `HOST: cannot listen on ${host}:${port} (${String(code)}); set HOST to an address of this machine, such as 127.0.0.1`
    proc.stderr.write(`coze-token-sidecar: ${line}\n`)
    await app.close()
    proc.exit(78)
    return undefined
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      app.log.error({ grace_ms: shutdownGraceMs }, 'in-flight requests did not finish within the shutdown grace; exiting')
      proc.exit(1)
    }, shutdownGraceMs)
    force.unref()
    // A caller still waiting for Coze when the grace runs out would be cut off by the exit: just
    // before it does, such callers are answered 503 SHUTTING_DOWN, and their connections close.
    const shed = setTimeout(() => {
      const callers = app.shedWaiting()
      if (callers > 0) app.log.warn({ callers }, 'shutdown grace running out: callers still waiting for Coze were answered 503')
    }, shutdownGraceMs - shedMargin(shutdownGraceMs))
    shed.unref()
    // onClose hooks do not throw, so close() resolves.
    app.close().then(() => {
      clearTimeout(force)
      clearTimeout(shed)
      proc.exit(0)
    }, /* c8 ignore next */ () => proc.exit(1))
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) proc.on(signal, () => stop(signal))
  // SIGHUP: re-read the key (and coze_oauth_config.json) without a restart.
  proc.on('SIGHUP', () => { app.reloadKey().catch(/* c8 ignore next - reloadKey catches */ () => {}) })
  return app
}

/**
 * How long before the end of the shutdown grace waiting callers are answered: time for the 503s
 * to be written and the connections to close (microseconds on loopback; a second at most).
 */
function shedMargin (graceMs: number): number {
  return Math.min(1_000, graceMs / 2)
}

/* c8 ignore next 4 - true only under `node dist/server.js`; test/server.test.ts runs that as a process */
if (isEntryPoint(import.meta.url, process.argv[1])) {
  process.title = 'coze-token-sidecar' // what ps shows: a name, never a setting
  await main(process)
}
