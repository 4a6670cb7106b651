import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FileWatch } from '../src/file-watch.js'
import { FakeClock } from './fixtures/clock.js'
import { until } from './fixtures/flush.js'
import { tempDir } from './fixtures/harness.js'

t.test('a change, a removal and a re-creation are each noticed once; stop() ends the polling', async (t) => {
  const file = join(tempDir(t), 'watched')
  writeFileSync(file, 'one')
  const clock = new FakeClock()
  const changes: string[] = []
  const watch = new FileWatch({ files: [file], clock, intervalMs: 500, onChange: (changed) => changes.push(changed) })
  await watch.start()
  await watch.poll()
  t.same(changes, [], 'nothing changed yet')
  writeFileSync(file, 'two, longer')
  clock.advance(500)
  await until(() => changes.length === 1, 'the change')
  rmSync(file)
  await watch.poll()
  t.equal(changes.length, 2, 'the removal')
  await watch.poll()
  t.equal(changes.length, 2, 'still removed: no new change')
  writeFileSync(file, 'three')
  await watch.poll()
  t.equal(changes.length, 3, 'the re-creation')
  // A poll in progress when stop() is called does not start another.
  await until(() => clock.pending === 1, 'the next poll to be scheduled')
  clock.advance(500)
  watch.stop()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(clock.pending, 0, 'no timer left behind')
})
