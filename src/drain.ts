/**
 * Closing the HTTP server under load without resetting a caller (issue 14: SIGTERM reset about a
 * third of 1,000 keep-alive callers).
 *
 * Node's `server.close()` destroys every idle keep-alive connection at once, and "idle" includes
 * one whose client has just written its next request: that client sees a reset. While draining:
 *
 * - an answer still to be sent goes out with `Connection: close`, so its client does not send
 *   another request on that connection, and Node closes it cleanly after the answer (requests
 *   arriving meanwhile get the same from Fastify, which marks them while it closes);
 * - a connection is closed only once it has been idle, with nothing received, for `idleMs`: a
 *   client that was about to send has sent by then, and is answered and told to close.
 *
 * @example
 * const drain = new ConnectionDrain(app.server)
 * app.addHook('preClose', (done) => { drain.start(); done() })
 */
import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Half a second: callers in a loop reuse a connection within a millisecond of their answer, and
 * ones that think for longer than this are idle; the drain takes at most this much longer.
 */
export const DEFAULT_IDLE_MS = 500
/** How often idle connections are looked at while draining. */
const SWEEP_MS = 50

interface Watched {
  bytesRead: number
  /** performance.now() when it was last seen busy or receiving. */
  activeAt: number
}

export class ConnectionDrain {
  readonly #server: Server
  readonly #idleMs: number
  readonly #sockets = new Map<Socket, Watched>()
  #sweeper: NodeJS.Timeout | undefined

  constructor (server: Server, options: { idleMs?: number } = {}) {
    this.#server = server
    this.#idleMs = options.idleMs ?? DEFAULT_IDLE_MS
    // One listener per connection, nothing per request: the hot path pays nothing.
    server.on('connection', (socket: Socket) => {
      this.#sockets.set(socket, { bytesRead: 0, activeAt: 0 })
      socket.once('close', () => this.#sockets.delete(socket))
    })
  }

  /** Connections open now. */
  get connections (): number {
    return this.#sockets.size
  }

  /**
   * Starts draining: call before `server.close()`. Idempotent. The sweeps stop once every
   * connection has closed. Real time, not the app's clock: this is about sockets, not expiry.
   */
  start (): void {
    if (this.#sweeper !== undefined) return
    const now = performance.now()
    for (const watched of this.#sockets.values()) watched.activeAt = now
    // server.close() calls closeIdleConnections() to destroy idle connections at once; while
    // draining, it closes only the ones idle for long enough.
    this.#server.closeIdleConnections = () => this.#sweep()
    this.#sweep()
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS).unref()
  }

  /** Stops the sweeps (on close). */
  stop (): void {
    clearInterval(this.#sweeper)
  }

  #sweep (): void {
    const now = performance.now()
    for (const [socket, watched] of this.#sockets) {
      // Node's own test for a busy connection (see http.Server#closeIdleConnections).
      const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
      if (response != null && !response.finished) {
        if (!response.headersSent) response.setHeader('connection', 'close')
        watched.activeAt = now
      } else if (socket.bytesRead !== watched.bytesRead) {
        watched.bytesRead = socket.bytesRead
        watched.activeAt = now
      } else if (now - watched.activeAt >= this.#idleMs) {
        socket.destroy()
      }
    }
    if (this.#sockets.size === 0) this.stop()
  }
}
