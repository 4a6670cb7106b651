import { createPrivateKey } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadOrCreateKey } from '../src/key-file.js'
import { tempDir } from './fixtures/harness.js'
import { keys } from './fixtures/keys.js'

t.test('a new key: RSA-2048, mode 0600 in a 0700 folder, then the same key on later calls', async (t) => {
  const file = join(tempDir(t), 'keys', 'demo', 'k.pem') // two folders to make
  const first = await loadOrCreateKey(file)
  t.equal(first.created, true)
  t.equal(first.key.asymmetricKeyDetails?.modulusLength, 2048)
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.equal(statSync(join(file, '..')).mode & 0o777, 0o700)
  t.equal(statSync(join(file, '..', '..')).mode & 0o777, 0o700, 'and its parent')
  t.ok(createPrivateKey(readFileSync(file, 'utf8')).equals(first.key), 'the file holds it')
  const again = await loadOrCreateKey(file)
  t.equal(again.created, false)
  t.ok(again.key.equals(first.key))
})

t.test('many writers at once on a fresh folder: one key, every one of them gets it, no temporary file left', async (t) => {
  const file = join(tempDir(t), '.demo', 'k.pem')
  const results = await Promise.all(Array.from({ length: 4 }, () => loadOrCreateKey(file)))
  t.equal(results.filter((result) => result.created).length, 1, 'one of them wrote it')
  const onDisk = createPrivateKey(readFileSync(file, 'utf8'))
  for (const result of results) t.ok(result.key.equals(onDisk), 'the key on disk')
  t.same(readdirSync(join(file, '..')), ['k.pem'])
})

t.test('an unusable file is replaced; a kept one is made private again', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'k.pem')
  for (const content of ['garbage', keys.ec, keys.rsa1024]) {
    writeFileSync(file, content, { mode: 0o644 })
    const result = await loadOrCreateKey(file)
    t.equal(result.created, true)
    t.ok(createPrivateKey(readFileSync(file, 'utf8')).equals(result.key))
    t.equal(statSync(file).mode & 0o777, 0o600)
  }
  writeFileSync(file, keys.pkcs8, { mode: 0o644 })
  const kept = await loadOrCreateKey(file)
  t.equal(kept.created, false)
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.same(readdirSync(dir), ['k.pem'])
})

t.test('a folder that cannot be written is the file system\'s error', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'file'), '')
  await t.rejects(loadOrCreateKey(join(dir, 'file', 'k.pem')), { code: /^E(NOTDIR|EXIST)$/ })
  await t.rejects(loadOrCreateKey(dir), { code: 'EISDIR' }, 'a folder where the file should be')
  await t.rejects(loadOrCreateKey(join(dir, 'file', 'sub', 'k.pem')), { code: 'ENOTDIR' }, 'a file where a folder should be')
})
