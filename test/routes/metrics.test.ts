import t from 'tap'
import { APP_ID, startEmulator, startSidecar } from '../fixtures/harness.js'

/** The value of one sample line, e.g. `coze_token_cache_hits_total 3`. */
function sample (text: string, series: string): number | undefined {
  // Every series but process metrics carries the credential's name: `{app="default"}`.
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `) || candidate.startsWith(`${series}{app="default"} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('/metrics: exchanges, latency, cache, expiry and upstream errors, in Prometheus text', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const empty = await app.inject('/metrics')
  t.equal(empty.statusCode, 200)
  t.match(empty.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(sample(empty.body, 'coze_token_cached_tokens'), 0)
  t.ok(Number.isNaN(sample(empty.body, 'coze_token_default_expiry_seconds')), 'no default token yet: NaN')
  t.ok(Number.isNaN(sample(empty.body, 'coze_token_clock_skew_seconds')), 'no answer from Coze yet: NaN')

  await app.inject('/token')
  await app.inject('/token')
  await app.inject('/token?session_name=a')
  await app.inject('/token?account_id=999')
  emulator.state.setEnabled(APP_ID, false)
  await app.inject('/token?session_name=b')
  emulator.state.setEnabled(APP_ID, true)

  const { body } = await app.inject('/metrics')
  t.equal(sample(body, 'coze_token_exchanges_total{app="default",variant="developer",outcome="ok"}'), 2)
  t.equal(sample(body, 'coze_token_exchanges_total{app="default",variant="cross-account",outcome="refused"}'), 1)
  t.equal(sample(body, 'coze_token_exchanges_total{app="default",variant="developer",outcome="refused"}'), 1)
  t.equal(sample(body, 'coze_token_exchange_duration_seconds_count{app="default",variant="developer"}'), 3)
  t.equal(sample(body, 'coze_token_upstream_errors_total{app="default",error_code="access_deny"}'), 2)
  t.equal(sample(body, 'coze_token_cache_hits_total'), 1)
  t.equal(sample(body, 'coze_token_cache_misses_total'), 4)
  t.equal(sample(body, 'coze_token_cache_evictions_total'), 0)
  t.equal(sample(body, 'coze_token_stale_served_total'), 0)
  t.equal(sample(body, 'coze_token_rate_limited_total'), 0)
  t.equal(sample(body, 'coze_token_cached_tokens'), 4)
  const expiry = sample(body, 'coze_token_default_expiry_seconds') ?? 0
  t.ok(expiry > 890 && expiry <= 900, `the default token expires in ${expiry} s`)
  t.ok(Math.abs(sample(body, 'coze_token_clock_skew_seconds') ?? 99) < 2, 'the clock agrees with Coze\'s')
  t.ok((sample(body, 'process_resident_memory_bytes') ?? 0) > 10 * 2 ** 20)
  t.notMatch(body, /czs_/, 'no token in the metrics')
})

t.test('upstream errors without a Coze code are counted by kind', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_RETRY_ATTEMPTS: '1' })
  emulator.state.injectFault({ kind: 'html', status: 502 })
  await app.inject('/token?session_name=html')
  const unreachable = await startSidecar(t, emulator, { COZE_API_BASE: 'http://127.0.0.1:1', SIDECAR_RETRY_ATTEMPTS: '1' })
  await unreachable.app.inject('/token')
  t.equal(sample((await app.inject('/metrics')).body, 'coze_token_upstream_errors_total{app="default",error_code="http_502"}'), 1)
  t.equal(sample((await unreachable.app.inject('/metrics')).body, 'coze_token_upstream_errors_total{app="default",error_code="unreachable"}'), 1)
})

t.test('/openapi.json: every route with its schemas, for generating clients', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const response = await app.inject('/openapi.json')
  t.equal(response.statusCode, 200)
  const spec = response.json()
  t.match(spec, { openapi: '3.1.0', info: { title: 'coze-token-sidecar', version: String } })
  t.same(Object.keys(spec.paths).sort(), ['/', '/healthz', '/metrics', '/readyz', '/status', '/token', '/token/rights'], 'the API, not the page\'s assets')
  t.notOk('/openapi.json' in spec.paths, 'the spec does not list itself')
  t.same(Object.keys(spec.paths['/token']).sort(), ['delete', 'get', 'post'])
  const get = spec.paths['/token'].get
  t.same(get.parameters.map((parameter: { name: string }) => parameter.name).sort(),
    ['account_id', 'app', 'custom_consumer', 'device_id', 'enterprise_id', 'format', 'renew', 'session_name', 'ttl'])
  t.match(get.responses['200'].content['application/json'].schema, { required: ['access_token', 'token_type'], properties: { expires_in: { type: 'integer' }, expires_at: Object } })
  t.ok(get.responses['200'].content['text/plain'])
  t.match(get.responses['4XX'] ?? get.responses['4xx'], { content: { 'application/json': { schema: { required: ['statusCode', 'code', 'error', 'message'] } } } })
  t.match(spec.paths['/token'].post.requestBody.content['application/json'].schema.properties, { scope: Object, session_context: Object })
  t.match(spec.components.securitySchemes, { callerSecret: { type: 'http', scheme: 'bearer' } })
})
