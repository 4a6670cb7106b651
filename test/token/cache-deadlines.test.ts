/**
 * The cache's entries share one clock timer (src/token/deadlines.ts) instead of a timer each:
 * the refreshes and expiries still happen per entry, at each entry's own time.
 */
import t from 'tap'
import { TokenCache } from '../../src/token/cache.js'
import { FakeClock } from '../fixtures/clock.js'
import { tick } from '../fixtures/flush.js'

function setup (): { clock: FakeClock, cache: TokenCache, minted: string[] } {
  const clock = new FakeClock()
  const minted: string[] = []
  const cache = new TokenCache({
    clock,
    random: () => 0,
    mint: async (request) => {
      minted.push(request.sessionName ?? '')
      return { accessToken: `token-${minted.length}`, expiresIn: Math.floor(clock.now() / 1000) + request.ttl }
    }
  })
  t.teardown(() => cache.close())
  return { clock, cache, minted }
}

t.test('a thousand cached tokens keep one clock timer between them', async (t) => {
  const { clock, cache } = setup()
  await Promise.all(Array.from({ length: 1_000 }, (_, i) => cache.get({ ttl: 900, sessionName: `user-${i}` }, 5_000)))
  t.equal(cache.size, 1_000)
  t.equal(clock.pending, 1, 'one timer, not one per entry')
  // Unused tokens run out and are forgotten, every one of them, by that one timer.
  clock.advance(3_600_000)
  await tick()
  t.equal(cache.size, 0)
  t.equal(clock.pending, 0)
})

t.test('entries of different lifetimes are each refreshed at their own time', async (t) => {
  const { clock, cache, minted } = setup()
  await cache.get({ ttl: 600, sessionName: 'short' }, 5_000)
  await cache.get({ ttl: 3_600, sessionName: 'long' }, 5_000)
  // Both in use, so both are refreshed ahead of expiry.
  cache.cached({ ttl: 600, sessionName: 'short' })
  cache.cached({ ttl: 3_600, sessionName: 'long' })
  minted.length = 0
  clock.advance(600_000)
  await tick()
  t.same(minted, ['short'], 'the short-lived one refreshed before its 600 s ran out, the long one not yet')
  clock.advance(3_000_000)
  await tick()
  t.same(minted, ['short', 'long'], 'then the long one, before its hour ran out')
})

t.test('an evicted or deleted entry leaves the queue, and the others keep their times', async (t) => {
  const clock = new FakeClock()
  let n = 0
  const cache = new TokenCache({
    clock,
    max: 2,
    random: () => 0,
    mint: async (request) => ({ accessToken: `token-${++n}`, expiresIn: Math.floor(clock.now() / 1000) + request.ttl })
  })
  t.teardown(() => cache.close())
  await cache.get({ ttl: 900, sessionName: 'a' }, 5_000)
  await cache.get({ ttl: 900, sessionName: 'b' }, 5_000)
  await cache.get({ ttl: 900, sessionName: 'c' }, 5_000)
  t.equal(cache.stats.evictions, 1)
  t.ok(cache.delete({ ttl: 900, sessionName: 'b' }))
  t.equal(cache.size, 1)
  t.equal(cache.status({ ttl: 900, sessionName: 'c' }).token?.accessToken, 'token-3')
  clock.advance(3_600_000)
  await tick()
  t.equal(cache.size, 0, 'the one left is forgotten on time')
  t.equal(clock.pending, 0)
})
