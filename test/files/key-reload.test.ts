/**
 * Key reloads in the whole app (issue 14): overlapping reloads and hanging reads, with the file
 * reads under the test's control.
 */
import { createPublicKey } from 'node:crypto'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { jwtVerify } from 'jose'
import { buildApp } from '../../src/app.js'
import { consoleFingerprint } from '../../src/emulator/state.js'
import { FakeClock } from '../fixtures/clock.js'
import { tick, until } from '../fixtures/flush.js'
import { APP_ID, KID, startEmulator, tempDir, type Emulator } from '../fixtures/harness.js'
import { keys } from '../fixtures/keys.js'
import { LogCapture } from '../fixtures/logs.js'

const OTHER_KID = consoleFingerprint(createPublicKey(keys.otherPrivateKey))

async function setup (t: Test) {
  const emulator = await startEmulator(t)
  // The app knows both keys, as a Coze app can hold up to three during a rollover.
  emulator.state.registerApp({ appId: APP_ID, name: 'test app', audience: new URL(emulator.url).host, keys: [{ publicKey: keys.publicKey }, { publicKey: keys.otherPrivateKey }], authorizedAccounts: [] })
  const configFile = join(tempDir(t), 'coze_oauth_config.json')
  const config = (kid: string, pem: string): string => JSON.stringify({ client_type: 'jwt', client_id: APP_ID, public_key_id: kid, private_key: pem, coze_api_base: emulator.url })
  const disk = { content: config(KID, keys.pkcs8) }
  /** Reads started with `holdNext` wait (with what was on disk when they started) until released. */
  const held: Array<() => void> = []
  const reads = { holdNext: false, running: 0, most: 0 }
  const readFile = async (path: string): Promise<string> => {
    if (path !== configFile) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' })
    const content = disk.content
    reads.running++
    reads.most = Math.max(reads.most, reads.running)
    try {
      if (reads.holdNext) {
        reads.holdNext = false
        await new Promise<void>((resolve) => held.push(resolve))
      }
      return content
    } finally {
      reads.running--
    }
  }
  const clock = new FakeClock()
  const logs = new LogCapture()
  const app = buildApp({ env: { COZE_OAUTH_CONFIG: configFile }, cwd: tempDir(t), logStream: logs, clock, readFile })
  await app.ready()
  t.teardown(() => app.close())
  let sessions = 0
  /** Which key signs a new exchange now. */
  const keyInService = async (): Promise<string> => {
    t.equal((await app.inject(`/token?session_name=probe-${++sessions}`)).statusCode, 200)
    const jwt = (emulator as Emulator).state.records.at(-1)?.jwt as string
    return await jwtVerify(jwt, keys.publicKey).then(() => 'first', () => 'other')
  }
  return { app, clock, logs, disk, config, held, reads, keyInService }
}

t.test('overlapping reloads: a slow read started first cannot put an older key back', async (t) => {
  const { app, disk, config, held, reads, keyInService } = await setup(t)
  t.equal(await keyInService(), 'first')
  // The file changes to the other key; that reload's read is slow.
  disk.content = config(OTHER_KID, keys.otherPkcs8)
  reads.holdNext = true
  const slow = app.credentials.reload()
  await until(() => held.length === 1, 'the slow read')
  // The file changes again, back to the first key; this reload's read would be quick.
  disk.content = config(KID, keys.pkcs8)
  const quick = app.credentials.reload()
  await tick()
  held[0]?.()
  t.equal(await slow, true)
  t.equal(await quick, true)
  t.equal(await keyInService(), 'first', 'the last change wins')
  t.equal(reads.most, 1, 'one read at a time')
})

t.test('hanging key reads: bounded in time, never more than one at once, and a later reload still works', async (t) => {
  const { app, clock, logs, disk, config, held, reads, keyInService } = await setup(t)
  disk.content = config(OTHER_KID, keys.otherPkcs8)
  reads.holdNext = true
  const results: boolean[] = []
  // Five SIGHUPs while the read hangs (a FIFO, a hung NFS mount).
  for (let i = 0; i < 5; i++) app.credentials.reload().then((ok) => results.push(ok), () => {})
  await until(() => held.length === 1, 'the hanging read')
  clock.advance(5_000)
  await until(() => results.length === 5, 'every reload to give up')
  t.same(results, [false, false, false, false, false], 'the first after the bound, the others at once: the hung read is not read again')
  t.match(logs.containing('credential reload failed'), [/did not finish within 5 s/])
  t.equal(reads.most, 1, 'one thread at most')
  t.equal(await keyInService(), 'first', 'the current key stays in service')
  // The mount answers: the abandoned read is dropped, and the next reload reads again and succeeds.
  held[0]?.()
  await until(() => reads.running === 0, 'the abandoned read to settle')
  t.equal(await app.credentials.reload(), true)
  t.equal(await keyInService(), 'other')
  t.equal(logs.containing('credential reloaded').length, 1, 'six SIGHUPs, one reload')
})
