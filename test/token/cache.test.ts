import t from 'tap'
import { ExchangeError, type IssuedToken } from '../../src/coze/exchange.js'
import type { TokenRequest } from '../../src/coze/variants.js'
import { toSidecarError, type SidecarError } from '../../src/errors.js'

/**
 * The cache throws the domain's TokenError; this is the answer the HTTP edge makes of it, so
 * that each case reads as what a caller would see (and the mapping is exercised too).
 */
const answer = (error: unknown): SidecarError => toSidecarError(error) ?? (error as SidecarError)
import { cacheKey, TokenCache, type ExchangeReport, type TokenCacheOptions } from '../../src/token/cache.js'
import { TokenBucket } from '../../src/token/rate.js'
import { FakeClock } from '../fixtures/clock.js'
import { tick, until } from '../fixtures/flush.js'

type Step = (request: TokenRequest) => Promise<IssuedToken>

/**
 * A scripted Coze: each call takes the next step, or issues a token valid for the request's ttl
 * on "Coze's clock" (the fake wall clock unless told otherwise).
 */
function setup (options: Partial<TokenCacheOptions> & { cozeNow?: () => number } = {}) {
  const clock = new FakeClock()
  const calls: TokenRequest[] = []
  const steps: Step[] = []
  const reports: ExchangeReport[] = []
  let issued = 0
  const cozeNow = options.cozeNow ?? (() => clock.now())
  const cache = new TokenCache({
    clock,
    random: () => 0,
    mint: async (request) => {
      calls.push(request)
      const step = steps.shift()
      if (step !== undefined) return await step(request)
      return { accessToken: `token-${++issued}`, expiresIn: Math.floor(cozeNow() / 1000) + request.ttl }
    },
    onExchange: (report) => reports.push(report),
    ...options
  })
  t.teardown(() => cache.close())
  return { clock, cache, calls, steps, reports }
}

const fail = (kind: ExchangeError['kind'], extra: ConstructorParameters<typeof ExchangeError>[2] = {}): Step =>
  async () => { throw new ExchangeError(kind, `${kind} failure`, extra) }

/** A step that waits until the test releases it. */
function held (): { step: Step, release: (token?: IssuedToken) => void, started: () => boolean } {
  let release: (token?: IssuedToken) => void = () => {}
  let started = false
  const step: Step = (request) => {
    started = true
    return new Promise((resolve) => {
      release = (token) => resolve(token ?? { accessToken: 'held-token', expiresIn: Math.floor(Date.now() / 1000) + request.ttl })
    })
  }
  return { step, release: (token) => release(token), started: () => started }
}

const DEFAULT: TokenRequest = { ttl: 900 }

t.test('1,000 concurrent callers on a cold cache share one exchange', async (t) => {
  const { cache, calls, steps } = setup()
  const gate = held()
  steps.push(gate.step)
  const callers = Array.from({ length: 1000 }, () => cache.get(DEFAULT, 5_000))
  await until(gate.started, 'the exchange')
  gate.release()
  const tokens = await Promise.all(callers)
  t.equal(calls.length, 1, 'one exchange')
  t.same(new Set(tokens.map((token) => token.accessToken)), new Set(['held-token']))
  t.equal(cache.stats.misses, 1000)
})

t.test('a cached token is served without asking Coze again', async (t) => {
  const { cache, calls } = setup()
  t.equal(cache.cached(DEFAULT), undefined, 'nothing cached yet')
  const first = await cache.get(DEFAULT, 5_000)
  t.equal(cache.cached({ ttl: 900 }), first, 'the hot path, without a promise: the same object')
  t.equal(first.expiresAt, new Date((first.expiresIn as number) * 1000).toISOString())
  const second = await cache.get({ ttl: 900 }, 5_000)
  t.equal(second.accessToken, first.accessToken)
  t.equal(second.stale, false)
  t.equal(calls.length, 1)
  t.equal(cache.stats.hits, 2)
})

t.test('each distinct request has its own token; session names never mix', async (t) => {
  const { cache, calls } = setup()
  const requests: TokenRequest[] = [
    { ttl: 900 },
    { ttl: 900, sessionName: 'alice' },
    { ttl: 900, sessionName: 'bob' },
    { ttl: 600 },
    { ttl: 900, accountId: '7351' },
    { ttl: 900, enterpriseId: 'volcano_1' },
    { ttl: 900, sessionContext: { device_info: { device_id: 'd1' } } },
    { ttl: 900, scope: { account_permission: { permission_list: ['Connector.botChat'] } } }
  ]
  const tokens = await Promise.all(requests.map((request) => cache.get(request, 5_000)))
  t.equal(new Set(tokens.map((token) => token.accessToken)).size, requests.length)
  t.equal(calls.length, requests.length)
  t.same(calls, requests, 'Coze is asked for each request as its caller made it')
  t.equal(calls[7]?.scope, requests[7]?.scope, 'a scope goes to Coze as the caller sent it, not read back from the key')
  const again = await cache.get({ sessionName: 'alice', ttl: 900 }, 5_000)
  t.equal(again.accessToken, tokens[1]?.accessToken, 'field order does not change the key')
  t.equal(cacheKey({ ttl: 900, sessionName: 'a' }), cacheKey({ sessionName: 'a', ttl: 900 }))
  const longScope = { ttl: 900, scope: { account_permission: { permission_list: Array.from({ length: 40 }, (_, i) => `permission-${i}`) } } }
  t.match(cacheKey(longScope), /^[\w-]{43}$/, 'a long request is keyed by its hash')
  t.equal(cacheKey(longScope), cacheKey(structuredClone(longScope)))
})

t.test('a token is handed out only while its serve margin remains, then replaced', async (t) => {
  const { cache, clock, calls } = setup()
  const first = await cache.get(DEFAULT, 5_000)
  // 900 s token, 90 s margin: served until about 810 s (Coze's second may be up to 1 s later).
  clock.advance(800_000)
  // The hit marks it in use; the background refresh at 720 s did not run because nobody had
  // used it from the cache before then, so this hit starts one.
  const atEight = await cache.get(DEFAULT, 5_000)
  t.equal(atEight.accessToken, first.accessToken, 'still served with 100 s left')
  await until(() => calls.length === 2, 'the background refresh')
  await tick()
  const refreshed = await cache.get(DEFAULT, 5_000)
  t.not(refreshed.accessToken, first.accessToken, 'replaced before the margin')
})

t.test('a token past its serve margin is never handed out; the caller waits for a new one', async (t) => {
  const { cache, clock, calls } = setup()
  const first = await cache.get(DEFAULT, 5_000)
  clock.advance(812_000)
  const second = await cache.get(DEFAULT, 5_000)
  t.not(second.accessToken, first.accessToken)
  t.equal(second.stale, false)
  t.equal(calls.length, 2)
})

t.test('a token in use is refreshed in the background, with jitter, before its margin', async (t) => {
  for (const [random, refreshAt] of [[0, 720_000], [1, 630_000]] as const) {
    const { cache, clock, calls } = setup({ random: () => random })
    const first = await cache.get(DEFAULT, 5_000)
    await cache.get(DEFAULT, 5_000) // in use
    clock.advance(refreshAt - 2_000)
    await tick()
    t.equal(calls.length, 1, `no refresh before ${refreshAt / 1000} s`)
    clock.advance(2_000)
    await until(() => calls.length === 2, 'the refresh')
    t.equal(calls.length, 2, `refreshed at ${refreshAt / 1000} s (random ${random})`)
    await tick()
    const next = await cache.get(DEFAULT, 5_000)
    t.not(next.accessToken, first.accessToken, 'callers got the new token without waiting')
    t.equal(calls.length, 2)
  }
})

t.test('a token nobody asks for again is not refreshed, and is forgotten once expired', async (t) => {
  const { cache, clock, calls } = setup()
  await cache.get({ ttl: 900, sessionName: 'one-off' }, 5_000)
  clock.advance(3_600_000)
  await tick()
  t.equal(calls.length, 1, 'never refreshed')
  t.equal(cache.size, 0, 'forgotten')
  t.equal(clock.pending, 0, 'no timer left behind')
})

t.test('refreshing stops once callers stop asking', async (t) => {
  const { cache, clock, calls } = setup()
  await cache.get(DEFAULT, 5_000)
  await cache.get(DEFAULT, 5_000)
  clock.advance(720_000)
  await until(() => calls.length === 2, 'one refresh')
  await tick()
  clock.advance(10 * 3_600_000)
  await tick()
  t.equal(calls.length, 2, 'the refreshed token, never used, is not refreshed again')
  t.equal(cache.size, 0)
})

t.test('a wrong local clock cannot make the cache serve an expired token', async (t) => {
  t.test('local clock 10 minutes behind Coze, no Date header', async (t) => {
    const clock = new FakeClock()
    const { cache, calls } = setup({ clock, cozeNow: () => clock.now() + 600_000 })
    const first = await cache.get(DEFAULT, 5_000)
    // Coze's expires_in is 1,500 s ahead by our clock; the token still lives only 900 s.
    clock.advance(812_000)
    const second = await cache.get(DEFAULT, 5_000)
    t.not(second.accessToken, first.accessToken, 'replaced on the monotonic schedule')
    t.equal(calls.length, 2)
  })
  t.test('local clock 10 minutes ahead, no Date header: the token is trusted for less', async (t) => {
    const clock = new FakeClock()
    const { cache, calls } = setup({ clock, cozeNow: () => clock.now() - 600_000 })
    const first = await cache.get(DEFAULT, 5_000)
    // By our clock only 300 s remain: margin 30 s, so it is replaced after 270 s.
    clock.advance(275_000)
    const second = await cache.get(DEFAULT, 5_000)
    t.not(second.accessToken, first.accessToken)
    t.equal(calls.length, 2)
  })
  t.test('with Coze\'s Date header, the skew is measured and the full lifetime is used', async (t) => {
    const clock = new FakeClock()
    const { cache, steps, reports } = setup({ clock })
    const cozeNow = clock.now() + 600_000
    steps.push(async () => ({ accessToken: 'dated', expiresIn: Math.floor(cozeNow / 1000) + 900, serverDate: cozeNow, logid: 'LD' }))
    await cache.get(DEFAULT, 5_000)
    t.equal(cache.skewMs, 600_000)
    t.match(reports.at(-1), { outcome: 'ok', logid: 'LD', skewMs: 600_000 })
    clock.advance(800_000)
    t.equal((await cache.get(DEFAULT, 5_000)).accessToken, 'dated')
  })
  t.test('the wall clock stepping after the token arrived changes nothing', async (t) => {
    const { cache, clock, calls } = setup()
    const first = await cache.get(DEFAULT, 5_000)
    clock.stepWall(-3_600_000)
    clock.advance(812_000)
    t.not((await cache.get(DEFAULT, 5_000)).accessToken, first.accessToken)
    t.equal(calls.length, 2)
  })
})

t.test('Coze\'s refusals are not retried, and not held against the next caller', async (t) => {
  const { cache, calls, steps } = setup()
  steps.push(fail('refused', { status: 401, errorCode: 'invalid_client', errorMessage: 'invalid jwt: kid not been registred', logid: 'L1' }))
  const error = await cache.get(DEFAULT, 5_000).catch(answer) as SidecarError
  t.match(error, { statusCode: 502, code: 'COZE_INVALID_CLIENT', coze: { error_code: 'invalid_client', logid: 'L1' } })
  t.equal(error.retryAfter, undefined)
  t.equal(calls.length, 1, 'exactly one attempt')
  const token = await cache.get(DEFAULT, 5_000)
  t.equal(token.accessToken, 'token-1', 'the next caller asks Coze again at once')
})

t.test('a failed attempt is retried with back-off and a new exchange', async (t) => {
  const { cache, clock, calls, steps, reports } = setup()
  steps.push(fail('unavailable', { status: 500, errorCode: 'internal_error' }))
  const pending = cache.get(DEFAULT, 5_000)
  await until(() => reports.length === 1, 'the first attempt')
  t.equal(calls.length, 1)
  clock.advance(124) // random 0: the first retry waits 125 ms
  await tick()
  t.equal(calls.length, 1, 'not before the back-off')
  clock.advance(1)
  const token = await pending
  t.equal(token.accessToken, 'token-1')
  t.equal(calls.length, 2)
  t.same(reports.map((report) => [report.attempt, report.outcome]), [[1, 'unavailable'], [2, 'ok']])
})

t.test('Retry-After from Coze is honoured', async (t) => {
  const { cache, clock, calls, steps, reports } = setup()
  steps.push(fail('rate_limited', { status: 429, retryAfterMs: 3_000 }))
  const pending = cache.get(DEFAULT, 5_000)
  await until(() => reports.length === 1, 'the first attempt')
  clock.advance(2_999)
  await tick()
  t.equal(calls.length, 1, 'still waiting for Retry-After')
  clock.advance(1)
  t.equal((await pending).accessToken, 'token-1')
})

t.test('a caller whose deadline falls before the next attempt is told at once, with Retry-After', async (t) => {
  const { cache, calls, steps, reports } = setup()
  steps.push(fail('rate_limited', { status: 429, retryAfterMs: 20_000, logid: 'L429' }))
  const error = await cache.get(DEFAULT, 5_000).catch(answer)
  t.match(error, { statusCode: 503, code: 'COZE_RATE_LIMITED', retryAfter: 20, coze: { logid: 'L429' } })
  t.equal(reports.length, 1)
  t.equal(calls.length, 1)
  // A caller arriving while the exchange backs off does not wait, nor start another exchange.
  const next = await cache.get(DEFAULT, 5_000).catch(answer)
  t.match(next, { statusCode: 503, code: 'COZE_RATE_LIMITED' })
  t.equal(calls.length, 1)
})

t.test('an outage: attempts are bounded, callers fail fast, and recovery needs no restart', async (t) => {
  const { cache, clock, calls, steps, reports } = setup()
  for (let i = 0; i < 4; i++) steps.push(fail('unreachable'))
  const first = cache.get(DEFAULT, 60_000).catch(answer)
  for (let attempt = 1; attempt <= 3; attempt++) {
    await until(() => reports.length === attempt, `attempt ${attempt}`)
    clock.advance(2_000) // past each back-off (at most 1 s for the third retry)
  }
  const error = await first
  t.match(error, { statusCode: 503, code: 'UPSTREAM_UNREACHABLE' })
  t.equal(calls.length, 4, 'four attempts, then it stops')
  // Cool-down after a failed exchange: callers are answered at once, Coze is left alone.
  const during = await cache.get(DEFAULT, 5_000).catch(answer)
  t.match(during, { statusCode: 503, code: 'UPSTREAM_UNREACHABLE' })
  t.ok((during as SidecarError).retryAfter !== undefined && (during as SidecarError).retryAfter! >= 1)
  t.equal(calls.length, 4)
  clock.advance(1_000)
  const token = await cache.get(DEFAULT, 5_000)
  t.equal(token.accessToken, 'token-1', 'recovered on the next caller after the cool-down')
})

t.test('a long outage: after a failed exchange, the next ones make a single attempt each', async (t) => {
  const { cache, clock, calls, steps, reports } = setup()
  for (let i = 0; i < 10; i++) steps.push(fail('unavailable', { status: 503 }))
  const first = cache.get(DEFAULT, 60_000).catch(answer)
  for (let attempt = 1; attempt <= 3; attempt++) {
    await until(() => reports.length === attempt, `attempt ${attempt}`)
    clock.advance(2_000)
  }
  await first
  t.equal(calls.length, 4, 'the first exchange retries')
  clock.advance(1_000) // the 1 s back-off
  t.match(await cache.get(DEFAULT, 60_000).catch(answer), { code: 'COZE_UNAVAILABLE', retryAfter: 2 })
  t.equal(calls.length, 5, 'the second, one attempt, and then 2 s of back-off')
  clock.advance(2_000)
  await cache.get(DEFAULT, 60_000).catch(() => {})
  t.equal(calls.length, 6)
})

t.test('the retry budget bounds the time spent retrying', async (t) => {
  const { cache, calls, steps } = setup({ retry: { maxAttempts: 10, budgetMs: 0 } })
  steps.push(fail('unavailable', { status: 503 }))
  const error = await cache.get(DEFAULT, 5_000).catch(answer)
  t.match(error, { code: 'COZE_UNAVAILABLE', retryAfter: 1 })
  t.equal(calls.length, 1)
})

t.test('a caller waits no longer than its deadline, even when Coze hangs', async (t) => {
  const { cache, clock, steps } = setup()
  const gate = held()
  steps.push(gate.step)
  const pending = cache.get(DEFAULT, 5_000).catch(answer)
  await until(gate.started, 'the exchange')
  clock.advance(5_000)
  t.match(await pending, { statusCode: 504, code: 'UPSTREAM_TIMEOUT', retryAfter: 1 })
  // The exchange goes on; its token is kept for the next caller.
  gate.release()
  await tick()
  t.equal((await cache.get(DEFAULT, 5_000)).accessToken, 'held-token')
})

t.test('stale while valid, never after: a failing refresh keeps the old token until just before expiry', async (t) => {
  const { cache, clock, calls, steps, reports } = setup()
  const first = await cache.get(DEFAULT, 5_000)
  await cache.get(DEFAULT, 5_000) // in use
  for (let i = 0; i < 100; i++) steps.push(fail('unavailable', { status: 503 }))
  clock.advance(720_000) // the refresh starts and fails
  await until(() => reports.length >= 2, 'the refresh attempt')
  const during = await cache.get(DEFAULT, 5_000)
  t.equal(during.accessToken, first.accessToken, 'the current token while refreshing')
  // Past the serve margin, the refresh still failing: served stale, flagged.
  clock.advance(150_000)
  await tick()
  const stale = await cache.get(DEFAULT, 5_000)
  t.equal(stale.accessToken, first.accessToken)
  t.equal(stale.stale, true)
  t.ok(cache.stats.staleServed >= 1)
  // 5 s before expiry (900 s, minus Coze's Date second): never again.
  clock.advance(895_000 - 870_000)
  await tick()
  const after = await cache.get(DEFAULT, 5_000).catch(answer)
  t.match(after, { statusCode: 503, code: 'COZE_UNAVAILABLE' }, 'an error, not an expired token')
  t.ok(calls.length > 2, 'the refresh was retried while the token was valid')
})

t.test('DELETE semantics: the entry and its back-off go; a token in flight is not kept', async (t) => {
  const { cache, calls, steps } = setup()
  const first = await cache.get(DEFAULT, 5_000)
  t.equal(cache.delete(DEFAULT), true)
  t.equal(cache.delete(DEFAULT), false, 'nothing left to drop')
  const second = await cache.get(DEFAULT, 5_000)
  t.not(second.accessToken, first.accessToken)
  const gate = held()
  steps.push(gate.step)
  cache.delete(DEFAULT)
  const inFlight = cache.get(DEFAULT, 5_000)
  await until(gate.started, 'the exchange')
  cache.delete(DEFAULT)
  gate.release({ accessToken: 'from-before-the-delete', expiresIn: Math.floor(Date.now() / 1000) + 900 })
  t.equal((await inFlight).accessToken, 'from-before-the-delete', 'its caller still gets it')
  t.not((await cache.get(DEFAULT, 5_000)).accessToken, 'from-before-the-delete', 'the cache did not keep it')
  t.equal(calls.length, 4)
})

t.test('the cache is bounded: a flood of session names evicts the least recently used', async (t) => {
  const { cache } = setup({ max: 3 })
  for (const name of ['a', 'b', 'c', 'd', 'e']) await cache.get({ ttl: 900, sessionName: name }, 5_000)
  t.equal(cache.size, 3)
  t.equal(cache.stats.evictions, 2)
})

t.test('an expires_in already in the past is a bad answer, retried, never served', async (t) => {
  const { cache, clock, calls, steps, reports } = setup({ retry: { maxAttempts: 2, budgetMs: 30_000 } })
  const past = (logid?: string) => async (): Promise<IssuedToken> =>
    ({ accessToken: 'dead', expiresIn: Math.floor(clock.now() / 1000) - 60, ...(logid === undefined ? {} : { logid }) })
  steps.push(past(), past('LX'))
  const pending = cache.get(DEFAULT, 5_000).catch(answer)
  await until(() => reports.length === 1, 'the first attempt')
  clock.advance(1_000)
  const error = await pending
  t.match(error, { statusCode: 502, code: 'COZE_BAD_RESPONSE', coze: { logid: 'LX' } })
  t.match((error as Error).message, /already in the past/)
  t.equal(calls.length, 2)
})

t.test('status() tells what is cached without fetching', async (t) => {
  const { cache, clock, steps } = setup()
  t.same(cache.status(DEFAULT), {})
  await cache.get(DEFAULT, 5_000)
  t.match(cache.status(DEFAULT), { token: { accessToken: 'token-1', stale: false } })
  clock.advance(850_000)
  t.match(cache.status(DEFAULT), { token: { stale: true } }, 'inside the margin')
  clock.advance(100_000)
  steps.push(fail('refused', { status: 403, errorCode: 'access_deny', errorMessage: 'app disabled' }))
  await cache.get(DEFAULT, 5_000).catch(() => {})
  t.match(answer(cache.status(DEFAULT).error), { code: 'COZE_ACCESS_DENY' })
  t.equal(cache.status(DEFAULT).token, undefined)
})

t.test('a bug in minting is not retried and surfaces as itself', async (t) => {
  const { cache, calls, steps, reports } = setup()
  steps.push(async () => { throw new TypeError('boom') })
  await t.rejects(cache.get(DEFAULT, 5_000), TypeError)
  t.equal(calls.length, 1)
  t.equal(reports[0]?.outcome, 'internal')
})

t.test('close() cancels timers and pending retries', async (t) => {
  const { cache, clock, steps, reports } = setup()
  await cache.get({ ttl: 900, sessionName: 'x' }, 5_000)
  steps.push(fail('unavailable'))
  const pending = cache.get(DEFAULT, 60_000).catch((e: Error) => e)
  await until(() => reports.length === 2, 'the failed attempt')
  cache.close()
  t.match(await pending, { message: /closed/ })
  clock.advance(10_000)
  t.equal(cache.size, 0)
})

t.test('past the serve margin with a refresh already under way: the valid token, at once', async (t) => {
  const { cache, clock, steps, calls } = setup()
  const first = await cache.get(DEFAULT, 5_000)
  await cache.get(DEFAULT, 5_000) // in use
  const gate = held()
  steps.push(gate.step)
  clock.advance(720_000)
  await until(gate.started, 'the background refresh')
  clock.advance(130_000) // 850 s: inside the serve margin, Coze still thinking
  const during = await cache.get(DEFAULT, 5_000)
  t.same(during, { ...first, stale: true })
  t.equal(calls.length, 2, 'no second exchange')
  gate.release({ accessToken: 'held-token', expiresIn: Math.floor(clock.now() / 1000) + 900 })
  await tick()
  t.equal((await cache.get(DEFAULT, 5_000)).accessToken, 'held-token')
})

t.test('past the serve margin, Coze refusing the new one: the still-valid token is served stale', async (t) => {
  const { cache, clock, steps } = setup()
  const first = await cache.get(DEFAULT, 5_000)
  clock.advance(850_000)
  steps.push(fail('refused', { status: 403, errorCode: 'access_deny' }))
  const stale = await cache.get(DEFAULT, 5_000)
  t.same(stale, { ...first, stale: true })
})

t.test('a token that arrives already past its life (Coze took longer than the token lives) is not handed out', async (t) => {
  const { cache, clock, steps } = setup()
  const gate = held()
  steps.push(gate.step)
  const pending = cache.get({ ttl: 60 }, 10_000_000).catch(answer)
  await until(gate.started, 'the exchange')
  clock.advance(120_000)
  gate.release({ accessToken: 'too-late', expiresIn: Math.floor(clock.now() / 1000) + 60 })
  t.match(await pending, { statusCode: 504, code: 'UPSTREAM_TIMEOUT', message: /expired before it could be handed out/ })
})

t.test('while backing off, a token inside its refresh window is served, and no refresh starts', async (t) => {
  const { cache, clock, steps, calls, reports } = setup({ retry: { maxAttempts: 1, budgetMs: 0 } })
  const first = await cache.get(DEFAULT, 5_000)
  await cache.get(DEFAULT, 5_000)
  steps.push(fail('unavailable', { status: 503 }))
  clock.advance(720_000) // the refresh fails: 1 s of cool-down
  await until(() => reports.length === 2, 'the failed refresh')
  await tick()
  t.equal((await cache.get(DEFAULT, 5_000)).accessToken, first.accessToken)
  t.equal(calls.length, 2, 'the hit did not start a refresh during the cool-down')
  clock.advance(1_000) // the cool-down timer refreshes
  await until(() => calls.length === 3, 'the refresh after the cool-down')
})

t.test('without an onExchange listener, exchanges still work', async (t) => {
  const clock = new FakeClock()
  const cache = new TokenCache({ clock, mint: async (request) => ({ accessToken: 'quiet', expiresIn: Math.floor(clock.now() / 1000) + request.ttl }) })
  t.teardown(() => cache.close())
  t.equal((await cache.get(DEFAULT, 5_000)).accessToken, 'quiet')
})

t.test('a failure of an exchange whose entry was dropped meanwhile leaves no back-off behind', async (t) => {
  const { cache, steps, calls } = setup({ retry: { maxAttempts: 1, budgetMs: 0 } })
  let failNow: () => void = () => {}
  steps.push(() => new Promise((_resolve, reject) => { failNow = () => reject(new ExchangeError('unavailable', 'late failure')) }))
  const pending = cache.get(DEFAULT, 5_000).catch(answer)
  await until(() => calls.length === 1, 'the exchange')
  cache.delete(DEFAULT)
  failNow()
  t.match(await pending, { code: 'COZE_UNAVAILABLE' })
  t.equal((await cache.get(DEFAULT, 5_000)).accessToken, 'token-1', 'the next caller is not held back')
})

t.test('the exchange rate limit refuses new callers, never a refresh of a token in use', async (t) => {
  const clock = new FakeClock()
  const { cache, calls } = setup({ clock, rate: new TokenBucket({ perSecond: 0.0001, burst: 1, clock }) })
  await cache.get(DEFAULT, 5_000)
  await cache.get(DEFAULT, 5_000) // in use
  clock.advance(720_000) // the refresh goes ahead though the bucket is empty
  await until(() => calls.length === 2, 'the refresh')
  await tick()
  t.match(await cache.get({ ttl: 900, sessionName: 'new' }, 5_000).catch(answer), { statusCode: 429, code: 'EXCHANGE_RATE_LIMITED', retryAfter: 10_000 })
  t.equal(calls.length, 2)
  t.equal(cache.stats.rateLimited, 1)
})

t.test('an absurd Retry-After is obeyed for at most 60 s, and never relayed to callers', async (t) => {
  // 27.8 h, two days (an HTTP date), and a 20-digit value: each would lock callers out for that long.
  for (const retryAfterMs of [100_000_000, 2 * 86_400_000, 1e23]) {
    const { cache, clock, calls, steps } = setup({ retry: { maxAttempts: 4, budgetMs: 30_000 } })
    steps.push(fail('rate_limited', { status: 429, retryAfterMs }))
    const error = await cache.get(DEFAULT, 5_000).catch(answer)
    t.match(error, { statusCode: 503, code: 'COZE_RATE_LIMITED' }, `${retryAfterMs} ms`)
    t.ok((error as SidecarError).retryAfter! <= 60, `Retry-After relayed: ${String((error as SidecarError).retryAfter)} s`)
    t.equal(calls.length, 1, 'no retry inside the 30 s budget: the capped wait is 60 s')
    clock.advance(59_000)
    t.ok(((await cache.get(DEFAULT, 5_000).catch(answer)) as SidecarError).retryAfter! <= 1, 'still backing off, for a second at most')
    clock.advance(1_000)
    t.equal((await cache.get(DEFAULT, 5_000)).accessToken, 'token-1', 'a minute later, a new exchange and a token')
    t.equal(calls.length, 2)
  }
})

t.test('callers refused by the exchange rate limit take no cache slot and evict nobody', async (t) => {
  const clock = new FakeClock()
  const { cache, calls } = setup({ clock, max: 40, rate: new TokenBucket({ perSecond: 0.001, burst: 40, clock }) })
  const real = Array.from({ length: 40 }, (_, i): TokenRequest => ({ ttl: 900, sessionName: `real-${i}` }))
  const first = await Promise.all(real.map((request) => cache.get(request, 5_000)))
  let refused = 0
  for (let i = 0; i < 2_000; i++) {
    const error = await cache.get({ ttl: 900, sessionName: `invented-${i}` }, 5_000).catch(answer)
    if ((error as SidecarError).code === 'EXCHANGE_RATE_LIMITED') refused++
  }
  t.equal(refused, 2_000, 'the flood is refused')
  t.equal(cache.stats.evictions, 0, 'no real entry evicted')
  t.equal(cache.size, 40)
  const again = await Promise.all(real.map((request) => cache.get(request, 5_000)))
  t.same(again.map((token) => token.accessToken), first.map((token) => token.accessToken), 'every real session still served from the cache')
  t.equal(calls.length, 40, 'no new exchange for them')
})

t.test('Coze\'s Date behind the clock that made expires_in cannot make a token outlive it', async (t) => {
  // Coze issues 900 s tokens whatever is asked; its Date header is an hour behind.
  const clock = new FakeClock()
  const { cache, calls, steps } = setup({ clock })
  steps.push(async () => ({ accessToken: 'short', expiresIn: Math.floor(clock.now() / 1000) + 900, serverDate: clock.now() - 3_600_000 }))
  const first = await cache.get({ ttl: 86_399 }, 5_000)
  t.equal(first.accessToken, 'short')
  // By our clock 900 s remain: margin 90 s, so it is no longer handed out after 810 s.
  clock.advance(815_000)
  const second = await cache.get({ ttl: 86_399 }, 5_000)
  t.not(second.accessToken, 'short', 'not served past its real life (by Date alone it had 4,500 s)')
  t.equal(calls.length, 2)
})

t.test('shed(): callers waiting for Coze are answered at once, later ones too; cached tokens are still served', async (t) => {
  const { cache, steps } = setup()
  const cached = await cache.get({ ttl: 900, sessionName: 'cached' }, 5_000)
  const gate = held()
  steps.push(gate.step)
  const waiting = [cache.get(DEFAULT, 60_000), cache.get(DEFAULT, 60_000)].map((promise) => promise.catch(answer))
  await until(gate.started, 'the exchange')
  t.equal(cache.shed(), 2, 'two callers were waiting')
  t.match(await Promise.all(waiting), [{ code: 'SHUTTING_DOWN', statusCode: 503, retryAfter: 1 }, { code: 'SHUTTING_DOWN' }])
  t.match(await cache.get({ ttl: 900, sessionName: 'later' }, 60_000).catch(answer), { code: 'SHUTTING_DOWN' }, 'a later miss does not wait')
  t.equal((await cache.get({ ttl: 900, sessionName: 'cached' }, 5_000)).accessToken, cached.accessToken, 'a hit is still served')
  t.equal(cache.shed(), 0)
  gate.release()
})
