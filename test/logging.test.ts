/**
 * What reaches the log: at trace, with secrets in query strings (a caller secret pasted into a
 * URL, the gateway's `authorization=` on WebSocket URLs), no value of a query string appears.
 */
import t from 'tap'
import { loggableUrl } from '../src/logging.js'
import { startEmulator, startSidecar } from './fixtures/harness.js'

const SECRET = 'q7Zr2kLm9XcV4bNp8sTd'

t.test('no query string value reaches the log, at trace, whatever the route or the outcome', async (t) => {
  const emulator = await startEmulator(t)
  const { app, logs } = await startSidecar(t, emulator, { LOG_LEVEL: 'trace' })
  const urls = [
    `/token?session_name=${SECRET}`, // served
    `/token?authorization=Bearer%20${SECRET}`, // refused: not a parameter of /token
    `/token?${SECRET}`, // a bare name
    `/token?session_name=a&${SECRET}=1`, // an unknown name
    `/nowhere?token=${SECRET}`, // 404
    `/healthz?x=${SECRET}`, // a probe
    `/token?session_name=%ZZ${SECRET}` // not decodable
  ]
  const bodies: string[] = []
  for (const url of urls) bodies.push((await app.inject(url)).body)
  const requestLines = logs.lines.filter((line) => line.msg === 'incoming request')
  t.equal(requestLines.length, urls.length, 'every request was logged, at debug')
  t.match(requestLines[0], { req: { method: 'GET', url: '/token?session_name=[redacted]' } })
  t.same(logs.containing(SECRET), [], 'no line holds the secret')
  t.notOk(bodies[6]?.includes(SECRET), 'nor the answer to an undecodable URL')
})

t.test('loggableUrl keeps the path and the known names, never a value', async (t) => {
  t.equal(loggableUrl('/token'), '/token')
  t.equal(loggableUrl('/token?'), '/token?')
  t.equal(loggableUrl('/token?session_name=alice&ttl=60'), '/token?session_name=[redacted]&ttl=[redacted]')
  t.equal(loggableUrl('/gw?authorization=Bearer%20x&&format'), '/gw?authorization=[redacted]&format=[redacted]')
  t.equal(loggableUrl('/token?czs_secret&x=y'), '/token?[redacted]&[redacted]')
})
