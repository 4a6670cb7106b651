/**
 * The unix socket listener (SIDECAR_SOCKET), over a real socket in a temporary folder: its file
 * mode, the socket alone or beside TCP, any Host, the caller secret, stale and live sockets.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { main } from '../src/server.js'
import { sidecarEnv, startEmulator, tempDir } from './fixtures/harness.js'
import { fakeProcess } from './fixtures/process.js'
import { DEFAULT_SECRET, NARROW_SECRET, bearer, writeCallers } from './fixtures/callers.js'

/** A GET over the socket, with the Host a client's URL would give. */
async function overSocket (t: Test, socketPath: string, path: string, headers: Record<string, string> = {}) {
  const dispatcher = new Agent({ connect: { socketPath } })
  t.teardown(() => dispatcher.close())
  const response = await request(`http://sidecar${path}`, { dispatcher, headers })
  return { status: response.statusCode, body: await response.body.text() }
}

t.test('SIDECAR_SOCKET alone: the socket with its mode, no TCP listener, any Host', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const socket = join(dir, 'sidecar.sock')
  // HOST=0.0.0.0 (the container image's) binds nothing without PORT, so it needs no caller secret.
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator, { SIDECAR_SOCKET: socket, HOST: '0.0.0.0', LOG_LEVEL: 'info' }), dir)
  const app = await main(proc)
  t.ok(app)
  t.teardown(() => app?.close())
  t.ok(statSync(socket).isSocket(), 'a socket file')
  t.equal(statSync(socket).mode & 0o777, 0o660, 'SIDECAR_SOCKET_MODE defaults to 0660')
  t.equal(app!.server.listening, false, 'no TCP listener')
  const token = await overSocket(t, socket, '/token')
  t.equal(token.status, 200, 'a token over the socket, Host: sidecar')
  t.match(JSON.parse(token.body), { token_type: 'Bearer' })
  t.equal((await overSocket(t, socket, '/healthz', { host: 'evil.example' })).status, 200, 'any Host: no browser reaches a socket')
  t.equal((await overSocket(t, socket, '/token', { 'sec-fetch-site': 'cross-site' })).status, 403, 'the other rules still apply')
  t.same(fake.exits, [])
  await app!.close()
  const exposed = fakeProcess(t, sidecarEnv(emulator, { SIDECAR_SOCKET: socket, HOST: '0.0.0.0', PORT: '0' }), dir)
  t.equal(await main(exposed.proc), undefined, 'with PORT as well, HOST=0.0.0.0 listens, so it needs a caller secret')
  t.match(exposed.fake.stderr, /HOST: 0\.0\.0\.0 is not a loopback address/)
  t.notOk(existsSync(socket), 'the socket file is removed on close')
})

t.test('SIDECAR_SOCKET and PORT: both; the mode and the caller secret', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const socket = join(dir, 'sidecar.sock')
  const env = sidecarEnv(emulator, {
    SIDECAR_SOCKET: 'sidecar.sock',
    SIDECAR_SOCKET_MODE: '600',
    PORT: '0',
    LOG_LEVEL: 'silent',
    SIDECAR_CALLERS_FILE: writeCallers(dir),
    SIDECAR_AUTH_TOKEN: DEFAULT_SECRET
  })
  const { proc } = fakeProcess(t, env, dir)
  const app = await main(proc)
  t.teardown(() => app?.close())
  t.equal(statSync(socket).mode & 0o777, 0o600, 'SIDECAR_SOCKET_MODE=600, relative to the working folder')
  const port = (app!.server.address() as { port: number }).port
  const tcp = await request(`http://127.0.0.1:${port}/token`, { headers: bearer(NARROW_SECRET) })
  t.equal(tcp.statusCode, 200, 'TCP too')
  await tcp.body.dump()
  t.equal((await overSocket(t, socket, '/token')).status, 401, 'the socket asks for the caller secret as well')
  t.equal((await overSocket(t, socket, '/token?session_name=billing-1', bearer(NARROW_SECRET))).status, 200)
  const refused = await overSocket(t, socket, '/token?session_name=ops-1', bearer(NARROW_SECRET))
  t.match(JSON.parse(refused.body), { code: 'CALLER_NOT_ALLOWED', field: 'session_name' }, 'and the caller\'s rules')
  // Closing waits for the socket's connections, which are swept while idle.
  const keepAlive = new Agent({ connect: { socketPath: socket }, keepAliveTimeout: 60_000 })
  t.teardown(() => keepAlive.close())
  const kept = await request('http://sidecar/healthz', { dispatcher: keepAlive })
  await kept.body.dump()
  const started = Date.now()
  await app!.close()
  t.ok(Date.now() - started < 2_000, 'an idle keep-alive connection does not hold the close up')
})

t.test('a stale socket from a crashed run is replaced; a live one, or a file that is no socket, is not', async (t) => {
  const emulator = await startEmulator(t)
  const dir = tempDir(t)
  const socket = join(dir, 'sidecar.sock')
  const start = async (path: string) => {
    const run = fakeProcess(t, sidecarEnv(emulator, { SIDECAR_SOCKET: path, LOG_LEVEL: 'silent' }), dir)
    const app = await main(run.proc)
    t.teardown(() => app?.close())
    return { app, ...run.fake }
  }
  // A live socket: something listens on it.
  const other = createServer((connection) => connection.end())
  await new Promise<void>((resolve) => other.listen(socket, resolve))
  const live = await start(socket)
  t.equal(live.app, undefined)
  t.same(live.exits, [78])
  t.equal(live.stderr, `coze-token-sidecar: SIDECAR_SOCKET: ${socket} is in use (it accepted a connection): another sidecar or another program may be listening on it; stop it or choose another path\n`)
  t.ok(statSync(socket).isSocket(), 'the live socket is left alone')
  // A crashed run's: its file stays and nothing listens. (Node removes the file it bound on close,
  // so the socket is bound under another name and renamed, as the sidecar itself does.)
  await new Promise<void>((resolve) => other.close(() => resolve()))
  const crashed = createServer()
  await new Promise<void>((resolve) => crashed.listen(`${socket}.old`, resolve))
  renameSync(`${socket}.old`, socket)
  await new Promise<void>((resolve) => crashed.close(() => resolve()))
  t.ok(statSync(socket).isSocket(), 'a stale socket file')
  const replaced = await start(socket)
  t.ok(replaced.app, 'started over the stale socket')
  t.equal((await overSocket(t, socket, '/healthz')).status, 200, 'and serves on it')
  await replaced.app?.close()

  const file = join(dir, 'not-a-socket')
  writeFileSync(file, 'keep me')
  const notSocket = await start(file)
  t.same(notSocket.exits, [78])
  t.match(notSocket.stderr, /SIDECAR_SOCKET: .*not-a-socket exists and is not a socket; remove it or choose another path/)
  t.equal(readFileSync(file, 'utf8'), 'keep me', 'a file that is no socket is never removed')
  const underFile = await start(join(file, 'sidecar.sock'))
  t.same(underFile.exits, [78])
  t.match(underFile.stderr, /SIDECAR_SOCKET: cannot look at .*not-a-socket\/sidecar\.sock \(ENOTDIR\)/)
  const nowhere = await start(join(dir, 'missing', 'sidecar.sock'))
  t.same(nowhere.exits, [78])
  t.match(nowhere.stderr, /SIDECAR_SOCKET: cannot listen on .*missing\/sidecar\.sock \((ENOENT|EACCES)\); set SIDECAR_SOCKET to a path in an existing folder/)
  const bad = await start(join(dir, 'x'.repeat(120)))
  t.same(bad.exits, [78], 'a path too long for a socket')
  t.match(bad.stderr, /SIDECAR_SOCKET: is invalid/)
})

t.test('SIDECAR_SOCKET_MODE is checked', async (t) => {
  const { proc, fake } = fakeProcess(t, { COZE_APP_ID: '1', COZE_KEY_ID: 'k', COZE_PRIVATE_KEY_FILE: '/nope', SIDECAR_SOCKET: '/tmp/x.sock', SIDECAR_SOCKET_MODE: '0999' })
  t.equal(await main(proc), undefined)
  t.same(fake.exits, [78])
  t.match(fake.stderr, /SIDECAR_SOCKET_MODE: is invalid .*octal, for example 0660/)
})
