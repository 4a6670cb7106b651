import t from 'tap'
import { ReloadTimeoutError, SerialReload } from '../../src/files/reload.js'
import { FakeClock } from '../fixtures/clock.js'
import { tick, until } from '../fixtures/flush.js'

/** Reads the test settles by hand, counting how many run at once. */
function scripted () {
  const reads: Array<{ resolve: (value: string) => void, reject: (error: Error) => void }> = []
  let running = 0
  let most = 0
  const read = (): Promise<string> => {
    running++
    most = Math.max(most, running)
    return new Promise<string>((resolve, reject) => {
      reads.push({ resolve, reject })
    }).finally(() => { running-- })
  }
  return { reads, read, most: () => most }
}

function setup (options: { timeoutMs?: number, apply?: (value: string) => void } = {}) {
  const clock = new FakeClock()
  const script = scripted()
  const applied: string[] = []
  const failures: unknown[] = []
  const reload = new SerialReload({
    clock,
    read: script.read,
    apply: options.apply ?? ((value) => applied.push(value)),
    onFailure: (error) => failures.push(error),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })
  })
  return { clock, reload, applied, failures, ...script }
}

t.test('overlapping reloads: one read at a time, the ones asked for meanwhile share the next, the last change wins', async (t) => {
  const { reload, reads, applied, most } = setup()
  const first = reload.reload()
  t.equal(reads.length, 1)
  // The file changes twice while the slow first read is in flight.
  const second = reload.reload()
  const third = reload.reload()
  t.equal(second, third, 'coalesced into one reload')
  t.equal(reads.length, 1, 'no second read while the first is in flight')
  reads[0]?.resolve('old')
  t.equal(await first, true)
  await until(() => reads.length === 2, 'the next read')
  t.same(applied, ['old'])
  reads[1]?.resolve('new')
  t.equal(await second, true)
  t.same(applied, ['old', 'new'], 'applied in the order the reads started: the newest last')
  t.equal(most(), 1, 'never two reads at once')
  t.equal(reload.busy, false)
})

t.test('a read that hangs is abandoned after the bound; it never runs twice, and is never applied', async (t) => {
  const { clock, reload, reads, applied, failures, most } = setup()
  const hung = reload.reload()
  clock.advance(4_999)
  await tick()
  t.equal(failures.length, 0)
  clock.advance(1)
  t.equal(await hung, false, 'the reload fails at 5 s; the current value stays')
  t.type(failures[0], ReloadTimeoutError)
  t.match(failures[0], { code: 'RELOAD_TIMEOUT', message: /within 5 s/ })
  t.equal(reload.busy, true, 'the hung read still holds its thread')
  // Five more SIGHUPs while it hangs: one read queued, none started.
  const later = Array.from({ length: 5 }, () => reload.reload())
  t.equal(reads.length, 1, 'no new read while one hangs')
  t.equal(new Set(later).size, 1)
  // The mount answers at last: its stale result is dropped, the queued reload reads afresh.
  reads[0]?.resolve('stale')
  await until(() => reads.length === 2, 'the queued read')
  reads[1]?.resolve('fresh')
  t.equal(await later[0], true)
  t.same(applied, ['fresh'])
  t.equal(most(), 1)
})

t.test('a read that fails, or a value that cannot be applied, fails the reload; the next one reads again', async (t) => {
  const { reload, reads, failures } = setup({ apply: (value) => { if (value === 'bad') throw new Error('cannot apply') } })
  const failed = reload.reload()
  reads[0]?.reject(new Error('EACCES'))
  t.equal(await failed, false)
  const unusable = reload.reload()
  await until(() => reads.length === 2, 'the second read')
  reads[1]?.resolve('bad')
  t.equal(await unusable, false)
  t.match(failures, [{ message: 'EACCES' }, { message: 'cannot apply' }])
  const late = reload.reload()
  await until(() => reads.length === 3, 'the third read')
  reads[2]?.reject(new Error('too late'))
  t.equal(await late, false)
})

t.test('a read that throws at once, a timeout of its own, and a late failure after the bound', async (t) => {
  const clock = new FakeClock()
  const failures: unknown[] = []
  const sync = new SerialReload({ clock, read: () => { throw new Error('sync') }, apply: () => {}, onFailure: (error) => failures.push(error) })
  t.equal(await sync.reload(), false)
  t.match(failures, [{ message: 'sync' }])
  const { clock: own, reload, reads } = setup({ timeoutMs: 100 })
  const pending = reload.reload()
  own.advance(100)
  t.equal(await pending, false)
  reads[0]?.reject(new Error('after the bound'))
  await until(() => !reload.busy, 'the abandoned read to settle')
})
