import fc from 'fast-check'
import t from 'tap'
import { Deadlines, type Scheduled } from '../../src/token/deadlines.js'
import { FakeClock } from '../fixtures/clock.js'

interface Item extends Scheduled { name: string }
const item = (name: string): Item => ({ name, dueAt: 0, slot: -1 })

function setup (): { clock: FakeClock, fired: Array<[string, number]>, deadlines: Deadlines<Item> } {
  const clock = new FakeClock()
  const fired: Array<[string, number]> = []
  const deadlines = new Deadlines<Item>(clock, (due) => { fired.push([due.name, clock.monotonic()]) })
  return { clock, fired, deadlines }
}

t.test('items fire at their own instants, earliest first, on one timer', async (t) => {
  const { clock, fired, deadlines } = setup()
  const start = clock.monotonic()
  deadlines.schedule(item('c'), start + 300)
  deadlines.schedule(item('a'), start + 100)
  deadlines.schedule(item('b'), start + 200)
  deadlines.schedule(item('a2'), start + 100)
  t.equal(deadlines.size, 4)
  t.equal(clock.pending, 1, 'one clock timer for every item')
  clock.advance(99)
  t.same(fired, [], 'nothing before its time')
  clock.advance(1)
  t.same(fired.map(([name]) => name).sort(), ['a', 'a2'])
  t.equal(clock.pending, 1)
  clock.advance(1_000)
  t.same(fired.slice(2), [['b', start + 200], ['c', start + 300]])
  t.equal(deadlines.size, 0)
  t.equal(clock.pending, 0, 'no timer once the queue is empty')
})

t.test('a due time with a fraction of a ms is kept as the next whole ms: never due early', async (t) => {
  const { clock, fired, deadlines } = setup()
  const start = clock.monotonic()
  const a = item('a')
  deadlines.schedule(a, start + 10.25)
  t.equal(a.dueAt, start + 11)
  clock.advance(10.5)
  t.same(fired, [], 'not at its exact instant\'s ms')
  clock.advance(0.5)
  t.same(fired, [['a', start + 11]])
})

t.test('rescheduling moves an item, earlier or later; cancelling takes it out', async (t) => {
  const { clock, fired, deadlines } = setup()
  const start = clock.monotonic()
  const a = item('a')
  const b = item('b')
  const c = item('c')
  deadlines.schedule(a, start + 100)
  deadlines.schedule(b, start + 200)
  deadlines.schedule(c, start + 300)
  deadlines.schedule(c, start + 50)
  deadlines.schedule(a, start + 400)
  deadlines.cancel(b)
  deadlines.cancel(b)
  t.equal(b.slot, -1, 'a cancelled item knows it is not queued')
  t.equal(deadlines.size, 2)
  clock.advance(1_000)
  t.same(fired, [['c', start + 50], ['a', start + 400]])
})

t.test('a timer that finds nothing due sets itself for the next item', async (t) => {
  const { clock, fired, deadlines } = setup()
  const start = clock.monotonic()
  const a = item('a')
  deadlines.schedule(a, start + 100)
  deadlines.schedule(item('b'), start + 500)
  deadlines.cancel(a)
  clock.advance(100)
  t.same(fired, [])
  t.equal(clock.pending, 1)
  clock.advance(400)
  t.same(fired, [['b', start + 500]])
})

t.test('onDue may queue the item again, and one due now fires in the same turn', async (t) => {
  const clock = new FakeClock()
  const start = clock.monotonic()
  const fired: number[] = []
  const a = item('a')
  const deadlines = new Deadlines<Item>(clock, (due) => {
    fired.push(clock.monotonic())
    if (fired.length === 1) deadlines.schedule(due, clock.monotonic())
    else if (fired.length === 2) deadlines.schedule(due, clock.monotonic() + 100)
  })
  deadlines.schedule(a, start + 10)
  clock.advance(10)
  t.same(fired, [start + 10, start + 10])
  clock.advance(100)
  t.same(fired, [start + 10, start + 10, start + 110])
})

t.test('clear() forgets every item and cancels the timer', async (t) => {
  const { clock, fired, deadlines } = setup()
  const a = item('a')
  deadlines.schedule(a, clock.monotonic() + 10)
  deadlines.schedule(item('b'), clock.monotonic() + 20)
  deadlines.clear()
  t.equal(a.slot, -1)
  t.equal(deadlines.size, 0)
  t.equal(clock.pending, 0)
  clock.advance(100)
  t.same(fired, [])
  deadlines.schedule(a, clock.monotonic() + 10)
  clock.advance(10)
  t.same(fired.map(([name]) => name), ['a'], 'usable again after clear')
})

t.test('any sequence of schedules and cancels fires each queued item once, in order of its last time', async (t) => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('schedule' as const), index: fc.nat(7), at: fc.nat(1_000) }),
    fc.record({ kind: fc.constant('cancel' as const), index: fc.nat(7) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.nat(300) })
  )
  fc.assert(fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
    const { clock, fired, deadlines } = setup()
    const start = clock.monotonic()
    const items = Array.from({ length: 8 }, (_, i) => item(String(i)))
    const model = new Map<string, number>()
    const expected: Array<[string, number]> = []
    const advanceModel = (to: number): void => {
      const due = [...model].filter(([, at]) => at <= to).sort((x, y) => x[1] - y[1])
      for (const [name, at] of due) {
        model.delete(name)
        expected.push([name, Math.max(at, clock.monotonic())])
      }
    }
    for (const step of ops) {
      if (step.kind === 'schedule') {
        const at = Math.max(start + step.at, clock.monotonic())
        deadlines.schedule(items[step.index] as Item, at)
        model.set(String(step.index), at)
      } else if (step.kind === 'cancel') {
        deadlines.cancel(items[step.index] as Item)
        model.delete(String(step.index))
      } else {
        advanceModel(clock.monotonic() + step.ms)
        clock.advance(step.ms)
      }
      if (deadlines.size !== model.size) return false
    }
    advanceModel(clock.monotonic() + 2_000)
    clock.advance(2_000)
    // Items due at the same instant may fire in any order among themselves.
    const byTime = (list: Array<[string, number]>): string[] => list.map(([name, at]) => `${at}:${name}`).sort()
    t.same(byTime(fired), byTime(expected))
    t.same(fired.map(([, at]) => at), [...fired.map(([, at]) => at)].sort((x, y) => x - y), 'in order of time')
    return clock.pending === 0
  }), { numRuns: 200 })
})
