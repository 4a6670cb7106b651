import t from 'tap'
import { readSecretFile } from '../../src/access/caller-secret.js'
import { CallerRegistry } from '../../src/access/caller-registry.js'
import { ANONYMOUS } from '../../src/access/callers.js'
import { admit, checkAccess, checkRequestTarget, hostAllowed, hostName, isLoopback, type AccessPolicy, type RequestHead } from '../../src/access/rules.js'

const SECRET = 'correct-horse-battery-staple-42'

const policy = (extra: Partial<AccessPolicy> = {}): AccessPolicy =>
  ({ listenHost: '127.0.0.1', allowedHosts: new Set(), rejectForwarded: false, ...extra })

t.test('host names from Host headers', async (t) => {
  const table: Array<[string, string]> = [
    ['localhost:8080', 'localhost'], ['LOCALHOST', 'localhost'], ['127.0.0.1:8080', '127.0.0.1'], ['[::1]:8080', '::1'],
    ['[::1]', '::1'], ['::1', '::1'], ['fd00::5', 'fd00::5'], ['::', '::'], ['example.com.', 'example.com'], ['sidecar:80', 'sidecar'], ['', '']
  ]
  for (const [header, name] of table) t.equal(hostName(header), name, header)
  for (const host of ['localhost', 'app.localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1']) t.ok(isLoopback(host), host)
  for (const host of ['0.0.0.0', '10.0.0.1', 'localhost.evil.com', '::', '128.0.0.1']) t.notOk(isLoopback(host), host)
  // Not addresses at all: a name that looks like one must not pass as loopback.
  for (const host of ['127.0.0.256', '127.999.0.1', '::ffff:127.0.0.300', '127.0.0.1.evil.com']) t.notOk(isLoopback(host), host)
})

t.test('which hosts are allowed (DNS rebinding)', async (t) => {
  t.ok(hostAllowed('localhost', policy()))
  t.ok(hostAllowed('127.0.0.1', policy()))
  t.ok(hostAllowed('::1', policy()))
  t.notOk(hostAllowed('evil.example', policy()), 'a rebinding name')
  t.notOk(hostAllowed('10.0.0.5', policy()), 'another address when listening on loopback')
  t.ok(hostAllowed('10.0.0.5', policy({ listenHost: '10.0.0.5' })), 'the listen address')
  t.ok(hostAllowed('10.0.0.5', policy({ listenHost: '0.0.0.0' })), 'any address when listening on all of them')
  t.ok(hostAllowed('fd00::5', policy({ listenHost: '::' })))
  t.notOk(hostAllowed('evil.example', policy({ listenHost: '0.0.0.0' })), 'but never a foreign name')
  t.ok(hostAllowed('sidecar.internal', policy({ allowedHosts: new Set(['sidecar.internal']) })), 'the allow-list')
  t.ok(hostAllowed('anything', policy({ allowedHosts: new Set(['*']) })), '* allows any')
})

t.test('the rules, in order', async (t) => {
  const callers = await CallerRegistry.load({ defaultSecret: { value: SECRET } })
  const strict = policy({ callers, rejectForwarded: true, requiredHeader: { name: 'metadata-flavor', value: 'Coze' } })
  const ok = { host: 'localhost:8080', authorization: `Bearer ${SECRET}`, 'metadata-flavor': 'Coze' }
  t.equal(checkAccess(ok, strict), undefined, 'all good')
  const table: Array<[string, Record<string, string>, string, number]> = [
    ['forwarded', { ...ok, 'x-forwarded-for': '1.2.3.4' }, 'FORWARDED_REQUEST', 403],
    ['Forwarded', { ...ok, forwarded: 'for=1.2.3.4' }, 'FORWARDED_REQUEST', 403],
    ['no required header', { host: ok.host, authorization: ok.authorization }, 'MISSING_REQUIRED_HEADER', 403],
    ['wrong required header', { ...ok, 'metadata-flavor': 'Google' }, 'MISSING_REQUIRED_HEADER', 403],
    ['rebinding', { ...ok, host: 'evil.example:8080' }, 'HOST_NOT_ALLOWED', 403],
    ['no Host', { authorization: ok.authorization, 'metadata-flavor': 'Coze' }, 'HOST_NOT_ALLOWED', 403],
    ['cross-site fetch', { ...ok, 'sec-fetch-site': 'cross-site' }, 'CROSS_SITE_REQUEST', 403],
    ['foreign Origin', { ...ok, origin: 'https://evil.example' }, 'CROSS_SITE_REQUEST', 403],
    ['another local port', { ...ok, origin: 'http://localhost:3000' }, 'CROSS_SITE_REQUEST', 403],
    ['Origin null', { ...ok, origin: 'null' }, 'CROSS_SITE_REQUEST', 403],
    ['no secret', { host: ok.host, 'metadata-flavor': 'Coze' }, 'UNAUTHORIZED', 401],
    ['wrong secret', { ...ok, authorization: 'Bearer nope' }, 'UNAUTHORIZED', 401],
    ['secret as Basic', { ...ok, authorization: `Basic ${SECRET}` }, 'UNAUTHORIZED', 401],
    ['a prefix of the secret', { ...ok, authorization: `Bearer ${SECRET.slice(0, -1)}` }, 'UNAUTHORIZED', 401]
  ]
  for (const [name, headers, code, status] of table) t.match(checkAccess(headers, strict), { code, statusCode: status }, name)
  t.equal(checkAccess({ ...ok, origin: 'http://localhost:8080', 'sec-fetch-site': 'same-origin' }, strict), undefined, 'the page\'s own requests')
  t.equal(checkAccess({ ...ok, authorization: `bearer  ${SECRET}` }, strict), undefined, 'the scheme is case-insensitive')
  t.equal(checkAccess({ host: 'localhost' }, policy()), undefined, 'no secret configured: no header needed')
  const message = (checkAccess({ host: 'localhost', authorization: 'Bearer x' }, strict) as Error).message
  t.notMatch(message, /correct|horse|staple/, 'no hint of the secret')
  t.match(admit(ok, strict), { name: 'default', all: true }, 'SIDECAR_AUTH_TOKEN is the caller default, with every right')
  t.equal(admit({ host: 'localhost' }, policy()), ANONYMOUS, 'no secret configured: everyone is anonymous')
  t.match(ANONYMOUS, { name: 'anonymous', all: true })
})

t.test('over the unix socket any Host is accepted; every other rule still applies', async (t) => {
  const callers = await CallerRegistry.load({ defaultSecret: { value: SECRET } })
  const strict = policy({ callers, rejectForwarded: true })
  const socket = { viaSocket: true }
  for (const host of ['sidecar', 'localhost', 'evil.example']) {
    t.match(admit({ host, authorization: `Bearer ${SECRET}` }, strict, socket), { name: 'default' }, host)
  }
  t.match(admit({ authorization: `Bearer ${SECRET}` }, strict, socket), { name: 'default' }, 'or none at all')
  t.match(admit({ host: 'evil.example', authorization: `Bearer ${SECRET}` }, strict), { code: 'HOST_NOT_ALLOWED' }, 'but not over TCP')
  t.match(admit({ host: 'sidecar' }, strict, socket), { code: 'UNAUTHORIZED' }, 'the secret is still required')
  t.match(admit({ host: 'sidecar', authorization: `Bearer ${SECRET}`, 'x-forwarded-for': '1.2.3.4' }, strict, socket), { code: 'FORWARDED_REQUEST' })
})

t.test('skipSecret (the page\'s HTML and assets): every rule but the secret still applies', async (t) => {
  const strict = policy({ callers: await CallerRegistry.load({ defaultSecret: { value: SECRET } }), rejectForwarded: true, requiredHeader: { name: 'metadata-flavor', value: 'Coze' } })
  const page = { skipSecret: true }
  const ok = { host: 'localhost:8080', 'metadata-flavor': 'Coze' }
  t.equal(checkAccess(ok, strict, page), undefined, 'no Authorization needed')
  t.equal(checkAccess({ ...ok, authorization: 'Bearer wrong' }, strict, page), undefined, 'nor checked')
  t.match(checkAccess(ok, strict), { code: 'UNAUTHORIZED' }, 'without the option the secret is required')
  t.match(checkAccess(ok, strict, { skipSecret: false }), { code: 'UNAUTHORIZED' }, 'skipSecret: false is the default')
  const table: Array<[string, Record<string, string>, string]> = [
    ['forwarded', { ...ok, 'x-forwarded-for': '1.2.3.4' }, 'FORWARDED_REQUEST'],
    ['no required header', { host: ok.host }, 'MISSING_REQUIRED_HEADER'],
    ['rebinding', { ...ok, host: 'evil.example:8080' }, 'HOST_NOT_ALLOWED'],
    ['cross-site', { ...ok, 'sec-fetch-site': 'cross-site' }, 'CROSS_SITE_REQUEST'],
    ['foreign Origin', { ...ok, origin: 'https://evil.example' }, 'CROSS_SITE_REQUEST']
  ]
  for (const [name, headers, code] of table) t.match(checkAccess(headers, strict, page), { code }, name)
})

t.test('secret files: read, checked, reloaded; a bad new file keeps the old secret', async (t) => {
  let content = `  ${SECRET}\n`
  const read = async (): Promise<string> => content
  t.equal(await readSecretFile('/s', read), SECRET, 'trimmed')
  await t.rejects(readSecretFile('/s', async () => 'short'), { message: '/s must hold one secret of 16 to 4096 printable characters without spaces' })
  await t.rejects(readSecretFile('/s', async () => 'two words but long enough'), { message: /printable characters without spaces/ })
  await t.rejects(readSecretFile('/missing/secret'), { message: 'cannot read /missing/secret (ENOENT)' })
  const secret = await CallerRegistry.load({ defaultSecret: { value: SECRET, file: '/s' }, read })
  t.same(secret.files, ['/s'], 'the file is watched')
  content = 'rotated-secret-0123456789'
  await secret.reload()
  t.ok(secret.identify('Bearer rotated-secret-0123456789'))
  t.notOk(secret.identify(`Bearer ${SECRET}`), 'the old one no longer works')
  content = 'bad'
  await t.rejects(secret.reload(), { message: /SIDECAR_AUTH_TOKEN_FILE is unusable: \/s must hold one secret/ })
  t.ok(secret.identify('Bearer rotated-secret-0123456789'), 'still the last good one')
  const inline = await CallerRegistry.load({ defaultSecret: { value: SECRET } })
  await inline.reload()
  t.ok(inline.identify(`Bearer ${SECRET}`), 'an inline secret has no file to reload')
  t.notOk(inline.identify(undefined))
})

t.test('the request target and Host (RFC 9112 §3.2): one Host, and an absolute target that agrees with it', async (t) => {
  const head = (url: string, ...hosts: string[]): RequestHead => ({
    url, rawHeaders: hosts.flatMap((host, i) => [i % 2 === 0 ? 'Host' : 'host', host]), headers: hosts.length === 0 ? {} : { host: hosts[0] }
  })
  const fine: Array<[string, RequestHead]> = [
    ['origin form', head('/token', '127.0.0.1:8080')],
    ['asterisk form', head('*', '127.0.0.1')],
    ['absolute form naming the Host', head('http://127.0.0.1:8080/token', '127.0.0.1:8080')],
    ['absolute form, default port and case', head('HTTP://LOCALHOST/token', 'localhost:80')],
    ['no url (Node always has one)', { rawHeaders: ['Host', 'localhost'], headers: { host: 'localhost' } }]
  ]
  for (const [name, request] of fine) t.equal(checkRequestTarget(request), undefined, name)
  const refused: Array<[string, RequestHead, string, RegExp]> = [
    ['two Host headers', head('/token', '127.0.0.1', 'evil.example'), 'host', /2 Host headers/],
    ['three', head('/token', 'a', 'b', 'c'), 'host', /3 Host headers/],
    ['absolute form naming another authority', head('http://evil.example/token', '127.0.0.1'), 'host', /names "evil.example" but Host names "127.0.0.1"/],
    ['another port', head('http://127.0.0.1:9/token', '127.0.0.1:8080'), 'host', /must agree/],
    ['absolute form and no Host', head('http://127.0.0.1/token'), 'host', /must agree/],
    ['another scheme', head('ftp://127.0.0.1/token', '127.0.0.1'), 'url', /path, or an http\(s\) URL/],
    ['not a URL', head('token', '127.0.0.1'), 'url', /path, or an http\(s\) URL/]
  ]
  for (const [name, request, field, message] of refused) {
    const error = checkRequestTarget(request)
    t.match(error, { statusCode: 400, code: 'INVALID_PARAMETER', field }, name)
    t.match(error?.message, message, name)
  }
})
