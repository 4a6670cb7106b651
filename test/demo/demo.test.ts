import { createPrivateKey, createPublicKey } from 'node:crypto'
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { buildApp } from '../../src/app.js'
import { DEMO_ACCOUNT_ID, DEMO_APP_ID, DEMO_ENTERPRISE_ID, demoWanted, startDemo } from '../../src/demo.js'
import { consoleFingerprint } from '../../src/emulator/state.js'
import { main } from '../../src/server.js'
import { tempDir } from '../fixtures/harness.js'
import { keys } from '../fixtures/keys.js'
import { LogCapture } from '../fixtures/logs.js'
import { until } from '../fixtures/flush.js'
import { fakeProcess, spawnEntry } from '../fixtures/process.js'

const listening = (): number => process.getActiveResourcesInfo().filter((name) => name === 'TCPServerWrap').length

/** Whether nothing listens at `url` any more (a new connection, not a pooled one). */
function refused (url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    socket.once('connect', () => { socket.destroy(); resolve(false) })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })
}

/** The token the sidecar at `origin` hands out, checked against the emulator at `apiBase`. */
async function tokenWorks (t: Test, origin: string, apiBase: string, query = ''): Promise<string> {
  const response = await request(`${origin}/token${query}`)
  t.equal(response.statusCode, 200, `GET /token${query}`)
  const { access_token: token } = await response.body.json() as { access_token: string }
  const workspaces = await request(`${apiBase}/v1/workspaces`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(workspaces.statusCode, 200, 'a token the emulator accepts')
  await workspaces.body.dump()
  return token
}

t.test('demoWanted', async (t) => {
  for (const value of ['true', '1']) t.ok(demoWanted(value), value)
  for (const value of [undefined, '', 'false', '0', 'yes', 'TRUE']) t.notOk(demoWanted(value), String(value))
})

t.test('startDemo: a key in .demo/ (0600), the emulator on loopback, settings that point at it', async (t) => {
  const cwd = tempDir(t)
  const demo = await startDemo({ cwd })
  t.teardown(demo.close)
  const keyFile = join(cwd, '.demo', 'private-key.pem')
  t.equal(demo.keyFile, keyFile)
  t.equal(demo.warning, undefined)
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'the key is private')
  t.equal(statSync(join(cwd, '.demo')).mode & 0o777, 0o700, 'so is its folder')
  const pem = readFileSync(keyFile, 'utf8')
  const key = createPrivateKey(pem)
  t.equal(key.asymmetricKeyType, 'rsa')
  t.equal(key.asymmetricKeyDetails?.modulusLength, 2048)
  t.match(demo.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.same(demo.env, {
    COZE_APP_ID: DEMO_APP_ID,
    COZE_KEY_ID: consoleFingerprint(createPublicKey(key)),
    COZE_PRIVATE_KEY_FILE: undefined,
    // The key itself, not the file's name: the sidecar signs with the key the emulator knows.
    COZE_PRIVATE_KEY: pem,
    COZE_API_BASE: demo.url,
    COZE_JWT_AUDIENCE: undefined,
    COZE_ACCOUNT_ID: undefined,
    COZE_ENTERPRISE_ID: undefined,
    COZE_OAUTH_CONFIG: undefined,
    SIDECAR_DEMO: 'true'
  })

  const logs = new LogCapture()
  const app = buildApp({ env: { ...demo.env, PORT: '0' }, cwd, logStream: logs })
  t.teardown(() => app.close())
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  t.equal(app.config.demo, true)
  t.same(app.config.warnings, [], 'the key id is the key\'s fingerprint, and the key file is private')
  await tokenWorks(t, origin, demo.url)
  await tokenWorks(t, origin, demo.url, `?account_id=${DEMO_ACCOUNT_ID}`)
  await tokenWorks(t, origin, demo.url, `?enterprise_id=${DEMO_ENTERPRISE_ID}`)
  const page = await request(`${origin}/`)
  const html = await page.body.text()
  t.match(html, 'Demo mode:')
  t.match(html, `<dd id="api-base">${demo.url}</dd>`)

  await demo.close()
  t.ok(await refused(demo.url), 'close stops the emulator')
})

t.test('startDemo: the key is made once and reused; a broken or weak one is replaced', async (t) => {
  const cwd = tempDir(t)
  const keyFile = join(cwd, '.demo', 'private-key.pem')
  const first = await startDemo({ cwd })
  await first.close()
  const pem = readFileSync(keyFile, 'utf8')
  chmodSync(keyFile, 0o644)
  const second = await startDemo({ cwd })
  await second.close()
  t.equal(readFileSync(keyFile, 'utf8'), pem, 'the same key')
  t.equal(second.env.COZE_KEY_ID, first.env.COZE_KEY_ID, 'so the same key id')
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'made private again')

  for (const [what, content] of [['not a key', 'garbage'], ['an EC key', keys.ec], ['a 1024-bit key', keys.rsa1024]]) {
    writeFileSync(keyFile, content as string)
    const again = await startDemo({ cwd })
    await again.close()
    const key = createPrivateKey(readFileSync(keyFile, 'utf8'))
    t.equal(key.asymmetricKeyDetails?.modulusLength, 2048, `${what}: replaced by a new RSA-2048 key`)
    t.equal(again.env.COZE_PRIVATE_KEY, readFileSync(keyFile, 'utf8'), 'the one handed to the sidecar')
    t.not(again.env.COZE_KEY_ID, first.env.COZE_KEY_ID)
    t.equal(statSync(keyFile).mode & 0o777, 0o600)
  }
})

t.test('startDemo: two demos started at once on a fresh folder agree on one key, and both serve', async (t) => {
  const cwd = tempDir(t)
  const demos = await Promise.all([startDemo({ cwd }), startDemo({ cwd }), startDemo({ cwd })])
  for (const demo of demos) t.teardown(demo.close)
  const kids = new Set(demos.map((demo) => demo.env.COZE_KEY_ID))
  t.equal(kids.size, 1, 'one key id')
  t.equal(demos[0]!.env.COZE_PRIVATE_KEY, readFileSync(join(cwd, '.demo', 'private-key.pem'), 'utf8'), 'the key on disk')
  t.same(readdirSync(join(cwd, '.demo')), ['private-key.pem'], 'no temporary file left')
  for (const demo of demos) {
    const app = buildApp({ env: demo.env, cwd, logStream: new LogCapture() })
    t.teardown(() => app.close())
    t.equal((await app.inject('/token')).statusCode, 200, 'each sidecar gets tokens from its emulator')
  }
})

t.test('startDemo: the emulator runs on the given clock', async (t) => {
  const cwd = tempDir(t)
  const ahead = 30_000 // within the emulator's 60 s leeway for the JWT's iat
  const demo = await startDemo({ cwd, clock: { now: () => Date.now() + ahead } })
  t.teardown(demo.close)
  const app = buildApp({ env: demo.env, cwd, logStream: new LogCapture() })
  t.teardown(() => app.close())
  const before = Math.floor((Date.now() + ahead) / 1000)
  const token = (await app.inject('/token')).json()
  t.ok(token.expires_in >= before + 900 && token.expires_in <= before + 902, 'expires_in on the emulator\'s clock')
})

t.test('startDemo: where .demo/ cannot be written (a read-only container), the key stays in memory', async (t) => {
  const cwd = tempDir(t)
  writeFileSync(join(cwd, '.demo'), 'a file where the folder should be')
  const demo = await startDemo({ cwd })
  t.teardown(demo.close)
  t.equal(demo.keyFile, undefined)
  t.match(demo.warning, new RegExp(`^demo mode: cannot write ${join(cwd, '.demo', 'private-key.pem')} \\(E[A-Z]+\\); the demo key is kept in memory`))
  t.equal(readFileSync(join(cwd, '.demo'), 'utf8'), 'a file where the folder should be', 'nothing written')
  const app = buildApp({ env: demo.env, cwd, logStream: new LogCapture() })
  t.teardown(() => app.close())
  t.equal((await app.inject('/token')).statusCode, 200)
})

t.test('main with SIDECAR_DEMO=true: serves demo tokens with no Coze app; SIGTERM stops the emulator too', async (t) => {
  for (const value of ['true', '1']) {
    // Left-over Coze settings are replaced, not mixed in.
    const { proc, fake } = fakeProcess(t, {
      SIDECAR_DEMO: value, PORT: '0', LOG_LEVEL: 'silent', COZE_PRIVATE_KEY: 'not a key', COZE_JWT_AUDIENCE: 'api.coze.cn', COZE_ENTERPRISE_ID: 'volcano_1'
    })
    const app = await main(proc)
    t.ok(app, `SIDECAR_DEMO=${value}`)
    const origin = `http://127.0.0.1:${(app!.server.address() as { port: number }).port}`
    const demoApp = app!.credentials.select()
    t.match(demoApp.spec, { kind: 'jwt', appId: DEMO_APP_ID })
    t.same(demoApp.defaultRequest, { ttl: 900 }, 'the developer variant')
    const apiBase = demoApp.spec.apiBase
    await tokenWorks(t, origin, apiBase)
    t.ok(statSync(join(proc.cwd(), '.demo', 'private-key.pem')).isFile())
    fake.signal('SIGTERM')
    await until(() => fake.exits.length > 0, 'the exit')
    t.same(fake.exits, [0])
    t.ok(await refused(apiBase), 'the emulator closed with the app')
  }
})

t.test('main with SIDECAR_DEMO=true: start-up failures exit 78 and leave nothing listening', async (t) => {
  const before = listening()
  const bad = fakeProcess(t, { SIDECAR_DEMO: 'true', COZE_TOKEN_TTL: '0', LOG_LEVEL: 'silent' })
  t.equal(await main(bad.proc), undefined)
  t.same(bad.fake.exits, [78])
  t.match(bad.fake.stderr, /^coze-token-sidecar: COZE_TOKEN_TTL: is invalid/)
  // Closed servers leave the list a moment after close() resolves.
  await until(() => listening() <= before, 'the emulator to close', 2_000)
})

t.test('main with SIDECAR_DEMO=true and .demo/ unwritable: serves, and says at warn where the key is', async (t) => {
  const cwd = tempDir(t)
  mkdirSync(join(cwd, '.demo', 'private-key.pem'), { recursive: true }) // a folder where the key should be
  const quiet = fakeProcess(t, { SIDECAR_DEMO: 'true', PORT: '0', LOG_LEVEL: 'silent' }, cwd)
  const app = await main(quiet.proc)
  t.ok(app, 'in-process too')
  await app?.close()
  const { child, exited, output } = spawnEntry(new URL('../../src/server.ts', import.meta.url), [], { SIDECAR_DEMO: 'true', PORT: '0' }, cwd)
  const [, address] = await output(/Server listening at (http:\/\/[\d.:]+)/)
  t.equal((await request(`${address}/token?format=text`)).statusCode, 200)
  child.kill('SIGTERM')
  const run = await exited
  t.equal(run.code, 0)
  const warnings = run.stdout.split('\n').filter((line) => line.includes('kept in memory')).map((line) => JSON.parse(line))
  t.match(warnings, [{ level: 40, msg: /^demo mode: cannot write .*private-key\.pem \(EISDIR\); the demo key is kept in memory/ }])
})

t.test('main without SIDECAR_DEMO and nothing configured: exit 78, naming SIDECAR_DEMO', async (t) => {
  const { proc, fake } = fakeProcess(t, { SIDECAR_DEMO: 'false', LOG_LEVEL: 'silent' })
  t.equal(await main(proc), undefined)
  t.same(fake.exits, [78])
  t.match(fake.stderr, /no Coze app is configured.*SIDECAR_DEMO=true/)
})

t.test('as a process: SIDECAR_DEMO=true says at warn that the tokens are not valid at Coze', async (t) => {
  const { child, exited, output } = spawnEntry(new URL('../../src/server.ts', import.meta.url), [], { SIDECAR_DEMO: 'true', PORT: '0' }, tempDir(t))
  const [, address] = await output(/Server listening at (http:\/\/[\d.:]+)/)
  const token = await request(`${address}/token?format=text`)
  t.equal(token.statusCode, 200)
  t.match(await token.body.text(), /^czs_/)
  child.kill('SIGTERM')
  const run = await exited
  t.equal(run.code, 0)
  const warning = run.stdout.split('\n').filter((line) => line.includes('demo mode')).map((line) => JSON.parse(line))
  t.match(warning, [{ level: 40, msg: 'demo mode: tokens come from a built-in Coze emulator and are NOT valid at Coze', coze_api_base: /^http:\/\/127\.0\.0\.1:\d+$/ }])
})
