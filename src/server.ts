/**
 * The only file that touches `process`: reads the environment, listens, handles signals and
 * exit codes. Everything else is built by `buildApp`.
 *
 * Signals: SIGTERM and SIGINT stop it gracefully; SIGHUP reloads the key.
 *
 * Exit codes: 0 after a clean shutdown; 78 (EX_CONFIG) for a bad setting, a port in use, an
 * address that is not this machine's or a unix socket in use; 1 when in-flight requests outlast
 * the shutdown grace (callers waiting for Coze do not: they are answered 503 just before it ends).
 */
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { withDemo, type Demo } from './demo.js'
import { isEntryPoint, type ProcessLike } from './entry-point.js'
import { ConfigError } from './config-error.js'
import { unixSocketListener, type UnixSocketListener } from './listen.js'

/** Starts the service. Returns the app once it listens, or undefined after a start-up failure. */
export async function main (proc: ProcessLike): Promise<FastifyInstance | undefined> {
  let demo: Demo | undefined
  let app: FastifyInstance
  let socketListener: UnixSocketListener
  try {
    // Demo mode: the built-in emulator, and Coze app settings that point at it over the user's.
    const settings = await withDemo(proc.env, proc.cwd())
    demo = settings.demo
    app = buildApp({ env: settings.env, cwd: proc.cwd() })
    if (demo !== undefined) app.addHook('onClose', demo.close)
    socketListener = unixSocketListener(app)
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
  if (demo?.warning !== undefined) app.log.warn(demo.warning)

  const { host, port, shutdownGraceMs, tcp, socket } = app.config
  try {
    if (socket !== undefined) {
      await socketListener.listen(socket.path, socket.mode)
      app.log.info({ socket: socket.path, mode: socket.mode.toString(8).padStart(4, '0') }, 'listening on a unix socket')
    }
    // SIDECAR_SOCKET without PORT: the socket only.
    if (tcp) await app.listen({ host, port })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const line = error instanceof ConfigError
      ? error.message
      : code === 'EADDRINUSE'
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
  // SIGHUP: re-read every credential (keys, console files, the folder) without a restart.
  proc.on('SIGHUP', () => { app.credentials.reload().catch(/* c8 ignore next - reload catches */ () => {}) })
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
