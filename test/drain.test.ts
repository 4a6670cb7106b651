/**
 * ConnectionDrain on a bare Node server over 127.0.0.1: answers in flight are told to close, a
 * connection idle for a moment is closed, one still receiving is not.
 */
import { createServer, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { ConnectionDrain } from '../src/drain.js'
import { until } from './fixtures/flush.js'

t.test('draining: Connection: close on answers in flight, idle connections closed after the moment', async (t) => {
  const held: ServerResponse[] = []
  const server = createServer((request, response) => {
    if (request.url === '/stream') response.writeHead(200, { 'content-type': 'text/plain' }).write('a')
    held.push(response)
  })
  const drain = new ConnectionDrain(server, { idleMs: 100 })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const clients: Array<{ socket: Socket, text: string, closed: boolean }> = []
  const open = (head: string) => {
    const client = { socket: connect(port, '127.0.0.1'), text: '', closed: false }
    client.socket.on('data', (chunk: Buffer) => { client.text += chunk.toString() })
    client.socket.on('close', () => { client.closed = true })
    client.socket.on('error', () => {})
    if (head !== '') client.socket.write(head)
    clients.push(client)
    return client
  }
  const waiting = open('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
  const streaming = open('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  const idle = open('')
  await until(() => held.length === 2 && drain.connections === 3, 'two requests and an idle connection')
  const closed = new Promise((resolve) => server.close(resolve))
  drain.start()
  drain.start() // idempotent
  const drainStarted = performance.now()
  // The waiting request is answered now: with Connection: close, and its connection closes after.
  held[0]?.end('done')
  await until(() => waiting.closed, 'the answered connection to close')
  t.match(waiting.text, /^HTTP\/1.1 200 OK\r\n/)
  t.match(waiting.text, /\r\nConnection: close\r\n/i)
  // The idle one is closed once idle for 100 ms; the streaming one is left to finish.
  await until(() => idle.closed, 'the idle connection to close')
  t.ok(performance.now() - drainStarted >= 90, 'not before it was idle for the moment')
  t.equal(streaming.closed, false, 'a connection with an answer under way stays')
  held[1]?.end('b')
  await until(() => streaming.text.includes('b'), 'the end of the stream')
  await closed
  await until(() => drain.connections === 0, 'every connection forgotten')
  for (const client of clients) client.socket.destroy()
})
