/**
 * Random query strings, headers and JSON bodies at every route: never a 500, never a crash, every
 * error a JSON body in the service's shape, every 400 naming its field.
 */
import t from 'tap'
import fc from 'fast-check'
import type { LightMyRequestResponse } from 'fastify'
import { ACCOUNT_ID, startEmulator, startSidecar } from '../fixtures/harness.js'

const FIELDS = ['session_name', 'account_id', 'enterprise_id', 'ttl', 'device_id', 'custom_consumer', 'format', 'scope', 'session_context']

/** Values that are sometimes valid, often not. */
const value = fc.oneof(
  fc.string(), fc.string({ unit: 'grapheme', maxLength: 300 }), fc.integer().map(String),
  fc.constantFrom('', '0', '900', '86399', '86400', '-1', '1e3', ACCOUNT_ID, 'text', 'json', 'volcano_1', 'x'.repeat(300), '%00', '\u0000')
)
const query = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 12 })), value, { maxKeys: 6 })
  .map((params) => new URLSearchParams(params).toString())
const rawQuery = fc.string({ maxLength: 200 }).map((raw) => encodeURI(raw).replace(/#/g, '%23'))
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/)
const headers = fc.dictionary(
  fc.oneof(fc.constantFrom('authorization', 'origin', 'sec-fetch-site', 'x-forwarded-for', 'accept', 'content-type', 'host'), headerName),
  fc.stringMatching(/^[\x21-\x7E][\x20-\x7E]{0,60}$/), { maxKeys: 5 })
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(fc.constantFrom(...FIELDS), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
  fc.record({ scope: fc.jsonValue({ maxDepth: 4 }) }),
  fc.record({ session_context: fc.jsonValue({ maxDepth: 4 }) })
)

/** What every answer must look like. */
function check (response: LightMyRequestResponse, what: string): void {
  if (response.statusCode === 500) throw new Error(`500 for ${what}: ${response.body}`)
  // HEAD answers have no body to check.
  if (response.statusCode === 200 || response.statusCode === 204 || what.startsWith('HEAD ')) return
  let json: { statusCode?: unknown, code?: unknown, message?: unknown, field?: unknown }
  try {
    json = response.json()
  } catch {
    throw new Error(`a non-JSON ${response.statusCode} for ${what}: ${response.body.slice(0, 200)}`)
  }
  if (json.statusCode !== response.statusCode || typeof json.code !== 'string' || typeof json.message !== 'string') {
    throw new Error(`an error not in the service's shape for ${what}: ${response.body}`)
  }
  if (response.statusCode >= 500 && !/^(COZE_|UPSTREAM_)/.test(json.code)) {
    throw new Error(`a ${response.statusCode} that is not Coze's doing for ${what}: ${response.body}`)
  }
  if (response.statusCode === 400 && typeof json.field !== 'string') throw new Error(`a 400 that names no field for ${what}: ${response.body}`)
}

t.test('fuzzing every route', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_EXCHANGE_RATE: '100000', SIDECAR_EXCHANGE_BURST: '100000' })
  const paths = fc.constantFrom('/token', '/healthz', '/readyz', '/', '/nope', '/token/', '/TOKEN')
  let requests = 0
  await fc.assert(fc.asyncProperty(
    fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'HEAD', 'OPTIONS'), paths, fc.oneof(query, rawQuery), headers,
    async (method, path, q, h) => {
      const response = await app.inject({ method: method as 'GET', url: `${path}?${q}`, headers: h })
      requests++
      check(response, `${method} ${path}?${q} ${JSON.stringify(h)}`)
    }), { numRuns: 600 })
  await fc.assert(fc.asyncProperty(fc.constantFrom('POST', 'DELETE'), body, headers, async (method, payload, h) => {
    const response = await app.inject({ method: method as 'POST', url: '/token', headers: { ...h, 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
    requests++
    check(response, `${method} /token ${JSON.stringify(payload)} ${JSON.stringify(h)}`)
  }), { numRuns: 600 })
  await fc.assert(fc.asyncProperty(fc.string({ maxLength: 300 }), fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'), async (raw, type) => {
    const response = await app.inject({ method: 'POST', url: '/token', headers: { 'content-type': type }, payload: raw })
    requests++
    check(response, `POST /token ${type} ${JSON.stringify(raw)}`)
  }), { numRuns: 300 })
  t.equal(requests, 1500)
  t.equal((await app.inject('/healthz')).statusCode, 200, 'still alive')
})
