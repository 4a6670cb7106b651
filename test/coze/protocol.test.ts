import { createHash, createPublicKey } from 'node:crypto'
import t from 'tap'
import { decodeProtectedHeader, jwtVerify } from 'jose'
import { CozeTokenClient } from '../../src/coze/client.js'
import { signTokenJwt, JWT_LIFETIME_SECONDS } from '../../src/coze/jwt.js'
import { keyFingerprint, parsePrivateKey, PrivateKeyError } from '../../src/coze/key.js'
import { GRANT_TYPE, tokenBody, tokenPath, variantOf } from '../../src/coze/variants.js'
import { systemClock } from '../../src/clock.js'
import { FakeClock } from '../fixtures/clock.js'
import { keys } from '../fixtures/keys.js'
import { APP_ID, KID, startEmulator } from '../fixtures/harness.js'
import { Agent } from 'undici'

const signer = { appId: APP_ID, keyId: KID, privateKey: keys.privateKey, audience: 'api.coze.cn' }

t.test('the JWT: RS256, typ, kid; iss, aud, iat, short exp, a fresh 32-byte jti', async (t) => {
  const now = 1_800_000_000_123
  const jwt = await signTokenJwt(signer, now)
  t.same(decodeProtectedHeader(jwt), { alg: 'RS256', typ: 'JWT', kid: KID })
  const { payload } = await jwtVerify(jwt, keys.publicKey, { currentDate: new Date(now) })
  t.same(Object.keys(payload).sort(), ['aud', 'exp', 'iat', 'iss', 'jti'])
  t.match(payload, { iss: APP_ID, aud: 'api.coze.cn', iat: 1_800_000_000, exp: 1_800_000_000 + JWT_LIFETIME_SECONDS })
  t.match(payload.jti, /^[0-9a-f]{64}$/)
  const jtis = new Set(await Promise.all(Array.from({ length: 100 }, async () => (await jwtVerify(await signTokenJwt(signer, now), keys.publicKey, { currentDate: new Date(now) })).payload.jti)))
  t.equal(jtis.size, 100, 'never the same jti twice')
})

t.test('the JWT carries session_name and session_context only when asked', async (t) => {
  const jwt = await signTokenJwt(signer, Date.now(), { sessionName: 'u', sessionContext: { device_info: { device_id: 'd' } } })
  const { payload } = await jwtVerify(jwt, keys.publicKey)
  t.equal(payload.session_name, 'u')
  t.same(payload.session_context, { device_info: { device_id: 'd' } })
})

t.test('variants: the path and the body', async (t) => {
  t.equal(variantOf({ ttl: 1 }), 'developer')
  t.equal(variantOf({ ttl: 1, scope: {} }), 'channel')
  t.equal(variantOf({ ttl: 1, accountId: '1' }), 'cross-account')
  t.equal(variantOf({ ttl: 1, enterpriseId: 'e' }), 'enterprise')
  t.equal(tokenPath({ ttl: 1 }), '/api/permission/oauth2/token')
  t.equal(tokenPath({ ttl: 1, scope: {} }), '/api/permission/oauth2/token')
  t.equal(tokenPath({ ttl: 1, accountId: '7351' }), '/api/permission/oauth2/account/7351/token')
  t.equal(tokenPath({ ttl: 1, enterpriseId: 'volcano_2101*' }), '/api/permission/oauth2/enterprise_id/volcano_2101*/token')
  t.equal(tokenPath({ ttl: 1, enterpriseId: 'a/b' }), '/api/permission/oauth2/enterprise_id/a%2Fb/token', 'ids cannot change the path')
  for (const dots of ['.', '..']) {
    t.throws(() => tokenPath({ ttl: 1, enterpriseId: dots }), RangeError, `enterprise id ${dots}: a dot segment would rewrite the path`)
    t.throws(() => tokenPath({ ttl: 1, accountId: dots }), RangeError, `account id ${dots}`)
  }
  t.equal(tokenPath({ ttl: 1, enterpriseId: '...' }), '/api/permission/oauth2/enterprise_id/.../token', 'three dots are a name')
  t.same(tokenBody({ ttl: 900 }), { grant_type: GRANT_TYPE, duration_seconds: 900 })
  t.same(tokenBody({ ttl: 60, scope: { a: 1 } }), { grant_type: GRANT_TYPE, duration_seconds: 60, scope: { a: 1 } })
})

t.test('keys: PKCS#8 and PKCS#1 parse; everything else is refused with a reason', async (t) => {
  t.ok(parsePrivateKey(keys.pkcs8).equals(keys.privateKey))
  t.ok(parsePrivateKey(keys.pkcs1).equals(keys.privateKey))
  t.ok(parsePrivateKey(keys.pkcs8.replaceAll('\n', '\\n')).equals(keys.privateKey))
  const refused: Array<[string, string, RegExp]> = [
    ['public', keys.spki, /public key/],
    ['certificate', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', /public key or certificate/],
    ['EC', keys.ec, /EC key/],
    ['encrypted', keys.encrypted, /encrypted/],
    ['RSA-1024', keys.rsa1024, /RSA-1024/],
    ['empty', '', /not a PEM private key/]
  ]
  for (const [name, pem, message] of refused) {
    t.throws(() => parsePrivateKey(pem), PrivateKeyError, name)
    t.throws(() => parsePrivateKey(pem), { code: 'INVALID_PRIVATE_KEY', message }, name)
  }
})

t.test('the key fingerprint is base64url(SHA-256(SPKI PEM)), as Coze\'s console shows it', async (t) => {
  const spkiPem = createPublicKey(keys.privateKey).export({ type: 'spki', format: 'pem' }) as string
  t.ok(spkiPem.endsWith('-----\n'), 'the PEM text includes its trailing newline')
  t.equal(keyFingerprint(keys.privateKey), createHash('sha256').update(spkiPem).digest('base64url'))
  t.match(keyFingerprint(keys.privateKey), /^[A-Za-z0-9_-]{43}$/)
  t.not(keyFingerprint(keys.privateKey), keyFingerprint(keys.otherPrivateKey))
})

t.test('the client: one attempt, one new JWT, the variant\'s path, against the emulator', async (t) => {
  const emulator = await startEmulator(t)
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.destroy())
  const clock = new FakeClock()
  const client = new CozeTokenClient({
    clock,
    target: () => ({
      signer: { ...signer, audience: new URL(emulator.url).host },
      http: { baseUrl: emulator.url, dispatcher, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, userAgent: 'test' }
    })
  })
  const issued = await client.requestToken({ ttl: 60, accountId: '7351', sessionName: 's', sessionContext: { device_info: { custom_consumer: 'c' } } })
  t.match(issued, { accessToken: /^czs_/, logid: String })
  const record = emulator.state.records.at(-1)
  t.match(record, { path: '/api/permission/oauth2/account/7351/token', claims: { session_name: 's', session_context: { device_info: { custom_consumer: 'c' } } } })
  t.ok(systemClock.now() > 0 && systemClock.monotonic() >= 0)
})
