/**
 * Hostile request heads over a real socket on 127.0.0.1 (light-my-request cannot send two Host
 * headers or an absolute-form target): refused with a 400 naming the field, on every route.
 */
import { connect } from 'node:net'
import t from 'tap'
import { startEmulator, startSidecar } from '../fixtures/harness.js'

/** Sends `head` as is and returns the status line and body of the answer. */
function raw (port: number, head: string): Promise<{ status: string, body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head))
    let text = ''
    socket.setTimeout(5_000, () => socket.destroy(new Error('no answer')))
    socket.on('data', (chunk: Buffer) => { text += chunk.toString() })
    socket.on('error', reject)
    socket.on('close', () => resolve({ status: text.split('\r\n')[0] ?? '', body: text.slice(text.indexOf('\r\n\r\n') + 4) }))
  })
}

t.test('two Host headers, and absolute-form targets that name another authority: 400', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const table: Array<[string, string, string | undefined]> = [
    ['GET /token HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n', '400', 'host'],
    ['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nhost: 127.0.0.1\r\nConnection: close\r\n\r\n', '400', 'host'],
    ['GET http://evil.example/token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', '400', 'host'],
    [`GET http://127.0.0.1:${port}/token HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`, '400', 'host'],
    // The target's authority and Host agree: served as any request for that host would be.
    [`GET http://127.0.0.1:${port}/token?format=text HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, '200', undefined],
    ['GET /token HTTP/1.1\r\nHost: 127.0.0.256\r\nConnection: close\r\n\r\n', '403', undefined]
  ]
  for (const [head, status, field] of table) {
    const answer = await raw(port, head)
    const line = head.split('\r\n').slice(0, 3).join(' | ')
    t.match(answer.status, new RegExp(`^HTTP/1.1 ${status} `), line)
    if (field !== undefined) t.match(JSON.parse(answer.body), { code: 'INVALID_PARAMETER', field }, line)
  }
  t.equal(emulator.state.exchangeCount, 1, 'only the agreeing request reached Coze')
})
