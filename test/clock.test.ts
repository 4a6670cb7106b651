import t from 'tap'
import { sleep, systemClock } from '../src/clock.js'
import { FakeClock } from './fixtures/clock.js'

t.test('sleep: resolves on the clock, rejects when aborted before or during', async (t) => {
  const clock = new FakeClock()
  const done = sleep(clock, 1_000)
  clock.advance(1_000)
  await done
  const aborted = new AbortController()
  aborted.abort(new Error('already'))
  await t.rejects(sleep(clock, 1_000, aborted.signal), { message: 'already' })
  const during = new AbortController()
  const pending = sleep(clock, 1_000, during.signal)
  during.abort(new Error('during'))
  await t.rejects(pending, { message: 'during' })
  t.equal(clock.pending, 0, 'the timer was cancelled')
})

t.test('the system clock: wall time, a monotonic clock and unref\'d timers', async (t) => {
  t.ok(Math.abs(systemClock.now() - Date.now()) < 1000)
  const a = systemClock.monotonic()
  // The clock's timers never keep the process alive, so a plain timer holds it open meanwhile.
  const keepAlive = setTimeout(() => {}, 1_000)
  t.teardown(() => clearTimeout(keepAlive))
  await new Promise<void>((resolve) => systemClock.setTimer(resolve, 5))
  t.ok(systemClock.monotonic() - a >= 4)
  let fired = false
  systemClock.setTimer(() => { fired = true }, 1).cancel()
  await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(fired, false, 'cancelled')
})
