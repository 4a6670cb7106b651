import { mkdirSync, writeFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { main, USAGE } from '../../src/emulator/cli.js'
import { consoleFingerprint } from '../../src/emulator/state.js'
import { buildApp } from '../../src/app.js'
import { keys } from '../fixtures/keys.js'
import { tempDir } from '../fixtures/harness.js'
import { LogCapture } from '../fixtures/logs.js'
import { fakeProcess, spawnEntry } from '../fixtures/process.js'
import { until } from '../fixtures/flush.js'

/** The settings the emulator printed, as an env for the sidecar. */
function printedSettings (stdout: string): { COZE_API_BASE: string, COZE_APP_ID: string, COZE_KEY_ID: string, COZE_PRIVATE_KEY_FILE: string } {
  const line = /COZE_API_BASE=(\S+) COZE_APP_ID=(\S+) COZE_KEY_ID=(\S+) \\\n\s+COZE_PRIVATE_KEY_FILE=(\S+)/.exec(stdout)
  if (line === null) throw new Error(`no settings in ${stdout}`)
  return { COZE_API_BASE: line[1]!, COZE_APP_ID: line[2]!, COZE_KEY_ID: line[3]!, COZE_PRIVATE_KEY_FILE: line[4]! }
}

t.test('without a key: makes one, prints how to run the sidecar, and the sidecar gets tokens from it', async (t) => {
  const cwd = tempDir(t)
  // A key file left readable by an earlier run is made private again.
  mkdirSync(join(cwd, '.demo'))
  writeFileSync(join(cwd, '.demo', 'emulator-private-key.pem'), 'old', { mode: 0o644 })
  const { proc, fake } = fakeProcess(t, {}, cwd)
  const emulator = await main(['--port', '0'], proc)
  t.ok(emulator)
  t.teardown(() => emulator?.close())
  t.match(fake.stdout, /Coze emulator on http:\/\/127\.0\.0\.1:\d+ \(tokens it issues are NOT valid at Coze\)/)
  const settings = printedSettings(fake.stdout)
  t.equal(settings.COZE_PRIVATE_KEY_FILE, join(cwd, '.demo', 'emulator-private-key.pem'))
  t.equal(statSync(settings.COZE_PRIVATE_KEY_FILE).mode & 0o777, 0o600, 'the key is readable by its owner only')
  t.equal(settings.COZE_APP_ID, '1000000000001')

  const sidecar = buildApp({ env: settings, cwd, logStream: new LogCapture() })
  t.teardown(() => sidecar.close())
  const response = await sidecar.inject('/token')
  t.equal(response.statusCode, 200)
  t.match(response.json(), { access_token: /^czs_/ })

  t.match(emulator!.cozeEmulator.apps.get('1000000000001'), { audience: /^127\.0\.0\.1:\d+$/ })
  t.same([...emulator!.cozeEmulator.apps.get('1000000000001')!.audiences].slice(1), ['127.0.0.1'], 'and the host alone, as coze-java sends it')
  t.equal(emulator!.cozeEmulator.knobs.maxJwtLifetimeSeconds, 86_400)

  fake.signal('SIGTERM')
  await until(() => fake.exits.length > 0, 'the exit')
  t.same(fake.exits, [0])

  // Run again: the same key, so a sidecar pointed at it keeps working.
  const next = fakeProcess(t, {}, cwd)
  const again = await main(['--port', '0', '--max-jwt-lifetime', '600'], next.proc)
  t.teardown(() => again?.close())
  t.equal(printedSettings(next.fake.stdout).COZE_KEY_ID, settings.COZE_KEY_ID, 'the key made on the first run')
  t.equal(again!.cozeEmulator.knobs.maxJwtLifetimeSeconds, 600)
})

t.test('with a key, app id, type, accounts and enterprises', async (t) => {
  const cwd = tempDir(t)
  writeFileSync(join(cwd, 'private_key.pem'), keys.pkcs8)
  writeFileSync(join(cwd, 'public_key.pem'), keys.spki)
  for (const key of ['private_key.pem', 'public_key.pem']) {
    const { proc, fake } = fakeProcess(t, {}, cwd)
    const emulator = await main(['--port', '0', '--key', key, '--app-id', '42', '--type', 'privileged', '--enterprise', 'e1', '--account', '7', '--account', '8'], proc)
    t.teardown(() => emulator?.close())
    const app = emulator!.cozeEmulator.apps.get('42')
    t.match(app, { type: 'privileged', audience: /^127\.0\.0\.1:\d+$/ }, key)
    t.same([...app!.keys.keys()], [consoleFingerprint(keys.publicKey)], `${key}: the console's fingerprint`)
    t.same([...app!.authorizedAccounts], ['7', '8'])
    t.same([...app!.enterprises], ['e1'])
    t.match(fake.stdout, new RegExp(`COZE_PRIVATE_KEY_FILE=${key}`))
  }
  const { proc } = fakeProcess(t, { COZE_APP_ID: '9', COZE_KEY_ID: 'kid-from-env', COZE_PRIVATE_KEY_FILE: 'private_key.pem' }, cwd)
  const fromEnv = await main(['--port', '0', '--audience', 'api.coze.cn'], proc)
  t.teardown(() => fromEnv?.close())
  const app = fromEnv!.cozeEmulator.apps.get('9')
  t.equal(app?.audience, 'api.coze.cn')
  t.ok(app?.keys.get('kid-from-env')?.equals(keys.publicKey), 'the key id and the key from the environment')
})

t.test('usage: --help, and every bad argument with exit 64', async (t) => {
  const help = fakeProcess(t, {})
  t.equal(await main(['--help'], help.proc), undefined)
  t.same(help.fake.exits, [0])
  t.equal(help.fake.stdout, USAGE)
  const cwd = tempDir(t)
  writeFileSync(join(cwd, 'garbage.pem'), 'not a key')
  const table: Array<[string[], RegExp]> = [
    [['--port', 'x'], /--port must be a port number/],
    [['--port', '70000'], /--port must be a port number/],
    [['--type', 'weird'], /--type must be normal, channel or privileged/],
    [['--max-jwt-lifetime', '0'], /--max-jwt-lifetime must be a whole number/],
    [['--max-jwt-lifetime', 'x'], /--max-jwt-lifetime must be a whole number/],
    [['--nope'], /Unknown option '--nope'/],
    [['--key', 'missing.pem'], /--key missing.pem: cannot read it \(ENOENT\)/],
    [['--key', 'garbage.pem'], /--key garbage.pem: not a PEM key/],
    [['--host', '192.0.2.1', '--port', '0'], /cannot listen on 192.0.2.1:0 \(EADDRNOTAVAIL\)/]
  ]
  for (const [args, message] of table) {
    const { proc, fake } = fakeProcess(t, {}, cwd)
    t.equal(await main(args, proc), undefined, args.join(' '))
    t.same(fake.exits, [64], args.join(' '))
    t.match(fake.stderr, message, args.join(' '))
    t.match(fake.stderr, /usage: npm run emulator/)
  }
})

t.test('without a key, in a folder that cannot be written: exit 64, saying so', async (t) => {
  const cwd = tempDir(t)
  writeFileSync(join(cwd, '.demo'), 'a file where the folder should be')
  const { proc, fake } = fakeProcess(t, {}, cwd)
  t.equal(await main(['--port', '0'], proc), undefined)
  t.same(fake.exits, [64])
  t.match(fake.stderr, /^emulator: cannot write .*emulator-private-key\.pem \(E[A-Z]+\); run it from a folder you can write to, or give --key/)
})

t.test('as a process: listens, answers, stops on SIGTERM', async (t) => {
  const { child, exited, output } = spawnEntry(new URL('../../src/emulator/cli.ts', import.meta.url), ['--port', '0'], {}, tempDir(t))
  const [, address] = await output(/Coze emulator on (http:\/\/[\d.:]+)/)
  const state = await request(`${address}/_emulator/state`)
  t.match(await state.body.json(), { apps: [{ app_id: '1000000000001' }] })
  child.kill('SIGTERM')
  t.equal((await exited).code, 0)
})
