import t from 'tap'
import { describeValidation } from '../src/app.js'
import { FakeClock } from './fixtures/clock.js'
import { startEmulator, startSidecar } from './fixtures/harness.js'

t.test('a bug answers 500 INTERNAL_ERROR with no details; the details go to the log', async (t) => {
  const emulator = await startEmulator(t)
  const { app, logs } = await startSidecar(t, emulator)
  app.credentials.select().tokens.get = async () => { throw new TypeError('secret internals') }
  for (const url of ['/token', '/readyz?strict=true']) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 500, url)
    t.same(response.json(), { statusCode: 500, code: 'INTERNAL_ERROR', error: 'Internal Server Error', message: 'internal error' }, url)
    t.notMatch(response.body, /secret internals/)
  }
  t.match(logs.containing('secret internals'), [/"level":50.*unexpected error/])
})

t.test('malformed URLs are answered in the same error shape', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const response = await app.inject('/token%zz')
  t.equal(response.statusCode, 400)
  t.match(response.json(), { statusCode: 400, code: 'FST_ERR_BAD_URL', error: 'Bad Request', message: /not a valid url/ })
})

t.test('a token served stale is flagged with X-Token-Stale', async (t) => {
  const emulator = await startEmulator(t)
  const clock = new FakeClock()
  const { app } = await startSidecar(t, emulator, { SIDECAR_RETRY_ATTEMPTS: '1' }, { clock })
  const first = await app.inject('/token')
  t.equal(first.headers['x-token-stale'], undefined)
  emulator.state.injectFault({ kind: 'status', status: 503 }, Infinity)
  clock.advance(850_000) // inside the serve margin; the refresh fails
  const stale = await app.inject('/token')
  t.equal(stale.statusCode, 200)
  t.equal(stale.headers['x-token-stale'], 'true')
  t.equal(stale.json().access_token, first.json().access_token)
})

t.test('validation messages name the field and say what is wrong', async (t) => {
  const table: Array<[Parameters<typeof describeValidation>[0], string, { field: string, message: string }]> = [
    [{ keyword: 'required', instancePath: '', params: { missingProperty: 'ttl' }, message: '' }, 'body', { field: 'ttl', message: 'ttl is required' }],
    [{ keyword: 'required', instancePath: '/scope/account_permission', params: { missingProperty: 'permission_list' }, message: '' }, 'body',
      { field: 'scope.account_permission.permission_list', message: 'scope.account_permission.permission_list is required' }],
    [{ keyword: 'additionalProperties', instancePath: '', params: { additionalProperty: 'x' }, message: '' }, 'querystring', { field: 'x', message: 'x is not a known parameter' }],
    [{ keyword: 'type', instancePath: '', params: { type: 'object' }, message: '' }, 'body', { field: 'body', message: 'body must be a JSON object' }],
    [{ keyword: 'type', instancePath: '/ttl', params: { type: 'integer' }, message: '' }, 'querystring', { field: 'ttl', message: 'ttl must be an integer' }],
    [{ keyword: 'type', instancePath: '/scope', params: { type: 'object' }, message: '' }, 'body', { field: 'scope', message: 'scope must be an object' }],
    [{ keyword: 'type', instancePath: '/session_name', params: { type: 'string' }, message: '' }, 'body', { field: 'session_name', message: 'session_name must be a string' }],
    [{ keyword: 'maximum', instancePath: '/ttl', params: { comparison: '<=', limit: 86399 }, message: '' }, 'querystring', { field: 'ttl', message: 'ttl must be <= 86399' }],
    [{ keyword: 'maxItems', instancePath: '/scope/account_permission/permission_list', params: { limit: 100 }, message: '' }, 'body',
      { field: 'scope.account_permission.permission_list', message: 'scope.account_permission.permission_list must have at most 100 items' }],
    [{ keyword: 'pattern', instancePath: '/scope/account_permission/permission_list/3', params: {}, message: '' }, 'body',
      { field: 'scope.account_permission.permission_list[3]', message: 'scope.account_permission.permission_list[3] must not contain control characters or bidirectional overrides' }],
    [{ keyword: 'minProperties', instancePath: '/scope', params: { limit: 1 }, message: 'must NOT have fewer than 1 properties' }, 'body',
      { field: 'scope', message: 'scope must NOT have fewer than 1 properties' }],
    [{ keyword: 'const', instancePath: '/x', params: {}, message: 'must be equal to constant' }, 'body', { field: 'x', message: 'x must be equal to constant' }]
  ]
  for (const [problem, context, expected] of table) t.same(describeValidation(problem, context), expected, `${problem.keyword} ${problem.instancePath}`)
})

t.test('a list over its bound is refused', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const response = await app.inject({ method: 'POST', url: '/token', payload: { scope: { account_permission: { permission_list: Array.from({ length: 101 }, (_, i) => `p${i}`) } } } })
  t.match(response.json(), { statusCode: 400, field: 'scope.account_permission.permission_list', message: /at most 100 items/ })
})
