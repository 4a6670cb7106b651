import { readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { isEntryPoint } from '../src/entry-point.js'
import { main } from '../src/server.js'
import { sidecarEnv, startEmulator, tempDir } from './fixtures/harness.js'
import { keys, pemBody } from './fixtures/keys.js'
import { until } from './fixtures/flush.js'
import { fakeProcess, spawnEntry } from './fixtures/process.js'

t.test('a bad setting: exit 78 and one line naming it, before listening', async (t) => {
  const { proc, fake } = fakeProcess(t, { COZE_KEY_ID: 'k', COZE_PRIVATE_KEY: keys.pkcs8 })
  t.equal(await main(proc), undefined)
  t.same(fake.exits, [78])
  t.equal(fake.stderr.split('\n').length, 2, 'one line')
  t.match(fake.stderr, /^coze-token-sidecar: COZE_APP_ID: is required: set it to the OAuth app id/)
  t.notOk(fake.stderr.includes(pemBody(keys.pkcs8).slice(0, 40)), 'no key printed')
})

t.test('serves; SIGTERM lets in-flight requests finish, then exits 0', async (t) => {
  const emulator = await startEmulator(t)
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator, { PORT: '0', LOG_LEVEL: 'silent', SIDECAR_REQUEST_DEADLINE: '0.5', SIDECAR_RETRY_BUDGET: '0' }))
  const app = await main(proc)
  t.ok(app)
  const address = `http://127.0.0.1:${(app!.server.address() as { port: number }).port}`
  const first = await request(`${address}/token`)
  t.equal(first.statusCode, 200)
  await first.body.dump()
  emulator.state.injectFault({ kind: 'hang' })
  const inFlight = request(`${address}/token?session_name=slow`)
  await until(() => emulator.state.exchangeCount === 2, 'the hanging exchange')
  fake.signal('SIGTERM')
  fake.signal('SIGINT') // a second signal changes nothing
  const response = await inFlight
  t.equal(response.statusCode, 504, 'the in-flight request got its answer')
  await response.body.dump()
  const answered = Date.now()
  await until(() => fake.exits.length > 0, 'the exit')
  t.same(fake.exits, [0])
  t.ok(Date.now() - answered < 1_000, 'its keep-alive connection did not hold the shutdown up')
})

t.test('a request that outlasts the shutdown grace (a body that never comes): exit 1', async (t) => {
  const emulator = await startEmulator(t)
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator, { PORT: '0', LOG_LEVEL: 'silent', SIDECAR_SHUTDOWN_GRACE: '0.05' }))
  const app = await main(proc)
  const port = (app!.server.address() as { port: number }).port
  let requests = 0
  app!.server.on('request', () => { requests++ })
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write('POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
  await until(() => requests === 1, 'the request head')
  fake.signal('SIGTERM')
  await until(() => fake.exits.length > 0, 'the forced exit')
  t.same(fake.exits, [1])
  socket.destroy()
  await until(() => fake.exits.length > 1, 'the close after all')
})

t.test('a port in use: exit 78 naming PORT', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const emulator = await startEmulator(t)
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator, { PORT: String(port), LOG_LEVEL: 'silent' }))
  t.equal(await main(proc), undefined)
  t.same(fake.exits, [78])
  t.equal(fake.stderr, `coze-token-sidecar: PORT: port ${port} is already in use on 127.0.0.1; set PORT to a free port\n`)
})

t.test('an address that is not this machine\'s: exit 78 naming HOST', async (t) => {
  const emulator = await startEmulator(t)
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator, { HOST: '192.0.2.1', PORT: '0', LOG_LEVEL: 'silent', SIDECAR_AUTH_TOKEN: 'a-caller-secret-of-32-characters' }))
  t.equal(await main(proc), undefined)
  t.same(fake.exits, [78])
  t.match(fake.stderr, /^coze-token-sidecar: HOST: cannot listen on 192.0.2.1:0 \(EADDRNOTAVAIL\); set HOST to an address of this machine/)
})

t.test('entry-point detection', async (t) => {
  const self = new URL('../src/server.ts', import.meta.url)
  t.equal(isEntryPoint(self.href, self.pathname), true)
  t.equal(isEntryPoint(self.href, '/nonexistent/server.js'), false)
  t.equal(isEntryPoint(self.href, undefined), false)
})

const SERVER = new URL('../src/server.ts', import.meta.url)

t.test('as a process: a bad setting exits 78 with the line on stderr', async (t) => {
  const run = await spawnEntry(SERVER, [], { COZE_APP_ID: '1', COZE_KEY_ID: 'k', COZE_PRIVATE_KEY: keys.spki }, tempDir(t)).exited
  t.equal(run.code, 78)
  t.match(run.stderr, /^coze-token-sidecar: COZE_PRIVATE_KEY: the key is a public key/)
})

t.test('as a process: serves, and a real SIGTERM exits 0', async (t) => {
  const emulator = await startEmulator(t)
  const { child, exited, output } = spawnEntry(SERVER, [], sidecarEnv(emulator, { PORT: '0' }), tempDir(t))
  const [, address] = await output(/Server listening at (http:\/\/[\d.:]+)/)
  const token = await request(`${address}/token?format=text`)
  t.equal(token.statusCode, 200)
  t.match(await token.body.text(), /^czs_/)
  const cmdline = readFileSync(`/proc/${String(child.pid)}/cmdline`, 'utf8').replaceAll('\0', ' ').trim()
  t.equal(cmdline, 'coze-token-sidecar', 'ps shows a name, nothing of the settings')
  child.kill('SIGTERM')
  const run = await exited
  t.equal(run.code, 0)
  t.match(run.stdout, /"signal":"SIGTERM".*shutting down/)
})
