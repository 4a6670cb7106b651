import t from 'tap'
import { ExchangeError } from '../src/coze/exchange.js'
import { errors, fromExchangeError, isSidecarError } from '../src/errors.js'

t.test('every exchange failure maps to a stable code and status', async (t) => {
  const table: Array<[ExchangeError, string, number]> = [
    [new ExchangeError('refused', 'm', { errorCode: 'invalid_client' }), 'COZE_INVALID_CLIENT', 502],
    [new ExchangeError('refused', 'm', { errorCode: 'invalid_request' }), 'COZE_INVALID_REQUEST', 502],
    [new ExchangeError('refused', 'm', { errorCode: 'unsupported_grant_type' }), 'COZE_UNSUPPORTED_GRANT_TYPE', 502],
    [new ExchangeError('refused', 'm', { errorCode: 'access_deny' }), 'COZE_ACCESS_DENY', 502],
    [new ExchangeError('refused', 'm', { errorCode: 'something_new' }), 'COZE_REFUSED', 502],
    [new ExchangeError('refused', 'HTTP 404 without a Coze error code', { status: 404 }), 'COZE_REFUSED', 502],
    [new ExchangeError('unavailable', 'm'), 'COZE_UNAVAILABLE', 503],
    [new ExchangeError('rate_limited', 'm'), 'COZE_RATE_LIMITED', 503],
    [new ExchangeError('bad_response', 'm'), 'COZE_BAD_RESPONSE', 502],
    [new ExchangeError('unreachable', 'ECONNREFUSED'), 'UPSTREAM_UNREACHABLE', 503],
    [new ExchangeError('timeout', 'm'), 'UPSTREAM_TIMEOUT', 504]
  ]
  for (const [failure, code, status] of table) {
    const error = fromExchangeError(failure)
    t.equal(error.code, code, `${failure.kind} ${failure.errorCode ?? ''}`)
    t.equal(error.statusCode, status)
    t.ok(isSidecarError(error))
    t.same(error.coze, failure.errorCode === undefined ? undefined : { error_code: failure.errorCode }, 'Coze\'s code, and nothing when Coze said nothing')
  }
})

t.test('Coze\'s words and the retry hint travel with the error', async (t) => {
  const error = fromExchangeError(new ExchangeError('unavailable', 'Service internal error.', {
    errorCode: 'internal_error', errorMessage: 'Service internal error.', logid: '2025042710072144715EF2C58014F21E98'
  }), 7)
  t.match(error, {
    code: 'COZE_UNAVAILABLE',
    message: 'Coze is failing: Service internal error.',
    retryAfter: 7,
    coze: { error_code: 'internal_error', error_message: 'Service internal error.', logid: '2025042710072144715EF2C58014F21E98' }
  })
})

t.test('only errors with a code and a status count as the service\'s', async (t) => {
  t.notOk(isSidecarError(new Error('x')))
  t.notOk(isSidecarError('x'))
  t.ok(isSidecarError(new errors.NotFound('GET', '/')))
})
