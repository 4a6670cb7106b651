/**
 * The unix socket listener (`SIDECAR_SOCKET`): the app's own request handler on a second HTTP
 * server, so that TCP and the socket can be served together (Fastify listens on one address per
 * instance; `fastify.routing` is its documented handler for extra servers). File permissions are
 * then the access control, as in Vault's `listener "unix"`: no browser and no DNS name reach it.
 *
 * - A socket file left by a crashed run (nothing answers on it) is replaced; a live one is not.
 * - The socket is created under a temporary name, given its mode, then renamed into place, so
 *   there is no moment when it exists with the umask's permissions.
 *
 * @example
 * const socket = unixSocketListener(app) // before app.ready(): it adds close hooks
 * await app.ready()
 * await socket.listen('/run/coze-token/sidecar.sock', 0o660)
 */
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { connect } from 'node:net'
import { chmod, lstat, rename, unlink } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import { ConfigError } from './errors.js'

/** Connections that arrived over a unix socket of this module's. */
const unixSockets = new WeakSet<object>()

/** Whether a request's socket is one of the unix socket's connections. */
export function viaUnixSocket (socket: object): boolean {
  return unixSockets.has(socket)
}

export interface UnixSocketListener {
  /**
   * Listens on `path` with file `mode`.
   * @throws ConfigError naming SIDECAR_SOCKET: a live socket, a file that is no socket, no folder.
   */
  listen: (path: string, mode: number) => Promise<void>
}

/** Adds the hooks that close the socket with the app; call it before `app.ready()`. */
export function unixSocketListener (app: FastifyInstance): UnixSocketListener {
  let server: Server | undefined
  let bound: string | undefined
  let sweeper: NodeJS.Timeout | undefined
  let closed: Promise<void> = Promise.resolve()
  app.addHook('preClose', (done) => {
    if (server !== undefined) {
      const listening = server
      closed = new Promise((resolve) => listening.close(() => resolve()))
      // As for the TCP server (app.ts): idle keep-alive connections are swept while closing.
      sweeper = setInterval(() => listening.closeIdleConnections(), 50).unref()
      listening.closeIdleConnections()
    }
    done()
  })
  app.addHook('onClose', async () => {
    await closed
    clearInterval(sweeper)
    // The socket was renamed into place, so its file is ours to remove.
    if (bound !== undefined) await unlink(bound).catch(() => {})
  })
  return {
    async listen (path, mode) {
      await clearStale(path)
      // The same timeouts as the TCP server Fastify made.
      const tcp = app.server as Server
      const http = createServer({ requestTimeout: tcp.requestTimeout, keepAliveTimeout: tcp.keepAliveTimeout }, app.routing)
      http.setTimeout(tcp.timeout)
      http.on('connection', (socket) => unixSockets.add(socket))
      const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject)
        http.listen(temporary, () => {
          http.off('error', reject)
          resolve()
        })
      }).catch((error: NodeJS.ErrnoException) => {
        throw new ConfigError('SIDECAR_SOCKET', `cannot listen on ${path} (${String(error.code)}); set SIDECAR_SOCKET to a path in an existing folder this user may write to`)
      })
      server = http
      await chmod(temporary, mode)
      await rename(temporary, path)
      bound = path
    }
  }
}

/** Removes a socket file nothing answers on; refuses a live socket or a file that is no socket. */
async function clearStale (path: string): Promise<void> {
  const info = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw new ConfigError('SIDECAR_SOCKET', `cannot look at ${path} (${String(error.code)})`)
  })
  if (info === undefined) return
  if (!info.isSocket()) throw new ConfigError('SIDECAR_SOCKET', `${path} exists and is not a socket; remove it or choose another path`)
  // Connection refused: nobody listens, the file is a crashed run's. Anything else (a connection
  // accepted, or no permission to try) may be a live socket, which is left alone.
  const answer = await new Promise<string>((resolve) => {
    const probe = connect(path)
    probe.once('connect', () => {
      probe.destroy()
      resolve('it accepted a connection')
    })
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(String(error.code)))
  })
  if (answer !== 'ECONNREFUSED') {
    throw new ConfigError('SIDECAR_SOCKET', `${path} is in use (${answer}): another sidecar or another program may be listening on it; stop it or choose another path`)
  }
  await unlink(path)
}
