import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { readRegularFile } from '../../src/files/read.js'
import { tempDir } from '../fixtures/harness.js'

t.test('a regular file is read; a FIFO, a directory or nothing is refused at once', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'key.pem')
  writeFileSync(file, 'PEM')
  t.equal(await readRegularFile(file), 'PEM')
  const fifo = join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  // Without O_NONBLOCK, open() would wait for a writer for ever, on one of libuv's threads.
  await t.rejects(readRegularFile(fifo), { code: 'not a regular file', message: `${fifo} is not a regular file` })
  await t.rejects(readRegularFile(dir), { code: 'EISDIR' })
  await t.rejects(readRegularFile(join(dir, 'missing')), { code: 'ENOENT' })
})
