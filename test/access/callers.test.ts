import t from 'tap'
import { askOf, authorize } from '../../src/access/authorize.js'
import { ANONYMOUS, CallersFileError, everyRight, parseCallers, type Caller } from '../../src/access/callers.js'
import { Patterns } from '../../src/access/patterns.js'

const HASH = 'a'.repeat(64)
const FILE = '/etc/sidecar/callers.json'

const parse = (callers: unknown): ReturnType<typeof parseCallers> => parseCallers(JSON.stringify({ callers }), FILE)
const one = (rules: Record<string, unknown>): Caller => (parse({ c: { secret_sha256: HASH, ...rules } })[0] as { caller: Caller }).caller

t.test('patterns: exact names, a lone *, and globs where * is any run of characters', async (t) => {
  const globs = new Patterns(['billing-*', '*-admin', 'a*b*c', 'exact', '/v1/files/*'], { globs: true })
  const table: Array<[string, boolean]> = [
    ['billing-42', true], ['billing-', true], ['billing', false], ['xbilling-1', false],
    ['ops-admin', true], ['-admin', true], ['admin', false],
    ['abc', true], ['a-b-c', true], ['aXbYbZc', true], ['acb', false], ['ab', false],
    ['exact', true], ['exactly', false],
    ['/v1/files/upload', true], ['/v1/files/a/b', true], ['/v1/file', false]
  ]
  for (const [value, expected] of table) t.equal(globs.matches(value), expected, value)
  t.notOk(new Patterns(['a*a'], { globs: true }).matches('a'), 'prefix and suffix may not overlap')
  t.notOk(new Patterns(['a*bc*c'], { globs: true }).matches('abc'), 'nor a middle part and the suffix')
  t.ok(new Patterns(['a*a'], { globs: true }).matches('aa'))
  t.ok(new Patterns(['*'], { globs: true }).matches('/anything/at/all'))
  const ids = new Patterns(['volcano_210195***'])
  t.ok(ids.matches('volcano_210195***'), 'without globs, * inside an id is literal')
  t.notOk(ids.matches('volcano_210195123'))
  t.ok(new Patterns(['*']).matches('7351'), 'a lone * is any')
  t.notOk(new Patterns([]).matches(''), 'an empty list allows nothing')
  t.same(globs.source, ['billing-*', '*-admin', 'a*b*c', 'exact', '/v1/files/*'])
})

t.test('a callers file is parsed into callers with the least rights for what it leaves out', async (t) => {
  const entries = parseCallers(JSON.stringify({
    callers: {
      billing: { secret_sha256: HASH.toUpperCase(), session_names: ['billing-*'], max_ttl: 600, gateway: ['/v3/chat'], defaults: { session_name: 'billing-batch', ttl: 300 } },
      ops: { secret_file: 'ops.secret', apps: ['*'], session_names: ['*'], accounts: ['*'], enterprises: ['*'], gateway: ['/*'] },
      bare: { secret_sha256: 'b'.repeat(64) }
    }
  }), FILE)
  t.equal(entries.length, 3)
  const [billing, ops, bare] = entries as [typeof entries[0], typeof entries[0], typeof entries[0]]
  t.same(billing.secret, { sha256: HASH }, 'the digest in lower case')
  t.same(ops.secret, { file: '/etc/sidecar/ops.secret' }, 'secret_file is resolved against the file\'s folder')
  t.match(billing.caller, { name: 'billing', all: false, maxTtl: 600, defaults: { sessionName: 'billing-batch', ttl: 300 } })
  t.equal(billing.caller.apps, undefined, 'apps absent: the default credential only (authorize knows which)')
  t.equal(bare.caller.sessionNames, undefined, 'session_names absent: no session name')
  t.equal(bare.caller.accounts, undefined)
  t.equal(bare.caller.enterprises, undefined)
  t.equal(bare.caller.gateway, undefined)
  t.equal(bare.caller.maxTtl, undefined)
  t.same(bare.caller.defaults, {})
  t.ok(ops.caller.apps?.any === true)
  t.same(parseCallers('{"callers":{}}', FILE), [], 'no callers at all is valid (nobody but SIDECAR_AUTH_TOKEN gets in)')
})

t.test('a broken file is refused naming the file and the field', async (t) => {
  const table: Array<[string, unknown, string, RegExp]> = [
    ['not JSON', '{"callers":', '(the file)', /is not JSON/],
    ['not an object', [], '(the file)', /must be a JSON object/],
    ['no callers', {}, 'callers', /is required/],
    ['an unknown top-level field', { callers: {}, extra: 1 }, 'extra', /is not a known field/],
    ['callers not an object', { callers: [] }, 'callers', /must be a JSON object/],
    ['a bad caller name', { callers: { 'bad name': { secret_sha256: HASH } } }, 'callers.bad name', /is not a valid caller name/],
    ['a caller not an object', { callers: { a: 'x' } }, 'callers.a', /must be a JSON object/],
    ['an unknown field', { callers: { a: { secret_sha256: HASH, session_name: ['x'] } } }, 'callers.a.session_name', /is not a known field/],
    ['no secret', { callers: { a: {} } }, 'callers.a.secret_sha256', /or secret_file is required, and only one/],
    ['both secrets', { callers: { a: { secret_sha256: HASH, secret_file: 'f' } } }, 'callers.a.secret_sha256', /only one/],
    ['a short digest', { callers: { a: { secret_sha256: 'abc' } } }, 'callers.a.secret_sha256', /hex SHA-256/],
    ['an empty secret_file', { callers: { a: { secret_file: '' } } }, 'callers.a.secret_file', /must not be empty/],
    ['apps not a list', { callers: { a: { secret_sha256: HASH, apps: 'default' } } }, 'callers.a.apps', /must be a list/],
    ['a bad app name', { callers: { a: { secret_sha256: HASH, apps: ['ok', 'no/slash'] } } }, 'callers.a.apps[1]', /credential name .* or \*/],
    ['a session pattern not a string', { callers: { a: { secret_sha256: HASH, session_names: ['ok', 7] } } }, 'callers.a.session_names[1]', /must be a string/],
    ['an empty session pattern', { callers: { a: { secret_sha256: HASH, session_names: [''] } } }, 'callers.a.session_names[0]', /must not be empty/],
    ['a long session pattern', { callers: { a: { secret_sha256: HASH, session_names: ['x'.repeat(257)] } } }, 'callers.a.session_names[0]', /at most 256 characters/],
    ['a control character', { callers: { a: { secret_sha256: HASH, session_names: ['a\u0001'] } } }, 'callers.a.session_names[0]', /control characters/],
    ['a bad account', { callers: { a: { secret_sha256: HASH, accounts: ['12a'] } } }, 'callers.a.accounts[0]', /numeric Coze account id/],
    ['a bad enterprise', { callers: { a: { secret_sha256: HASH, enterprises: ['sp ace'] } } }, 'callers.a.enterprises[0]', /enterprise id/],
    ['a relative gateway path', { callers: { a: { secret_sha256: HASH, gateway: ['v3/chat'] } } }, 'callers.a.gateway[0]', /starts with \//],
    ['a gateway path with a query', { callers: { a: { secret_sha256: HASH, gateway: ['/v3/chat?x=1'] } } }, 'callers.a.gateway[0]', /without spaces, \? or #/],
    ['max_ttl not an integer', { callers: { a: { secret_sha256: HASH, max_ttl: 1.5 } } }, 'callers.a.max_ttl', /must be an integer/],
    ['max_ttl too long', { callers: { a: { secret_sha256: HASH, max_ttl: 86400 } } }, 'callers.a.max_ttl', /must be <= 86399/],
    ['max_ttl zero', { callers: { a: { secret_sha256: HASH, max_ttl: 0 } } }, 'callers.a.max_ttl', /must be >= 1/],
    ['too many items', { callers: { a: { secret_sha256: HASH, accounts: Array(1001).fill('1') } } }, 'callers.a.accounts', /at most 1000 items/],
    ['an unknown default', { callers: { a: { secret_sha256: HASH, defaults: { session: 'x' } } } }, 'callers.a.defaults.session', /is not a known field/],
    ['a default app not allowed', { callers: { a: { secret_sha256: HASH, defaults: { app: 'other' } } } }, 'callers.a.defaults.app', /"other" is not one of the caller's apps/],
    ['a bad default app', { callers: { a: { secret_sha256: HASH, defaults: { app: '*' } } } }, 'callers.a.defaults.app', /credential name/],
    ['a default session not allowed', { callers: { a: { secret_sha256: HASH, session_names: ['billing-*'], defaults: { session_name: 'ops' } } } }, 'callers.a.defaults.session_name', /not allowed by the caller's session_names/],
    ['a default session without session_names', { callers: { a: { secret_sha256: HASH, defaults: { session_name: 'x' } } } }, 'callers.a.defaults.session_name', /not allowed/],
    ['a default ttl above max_ttl', { callers: { a: { secret_sha256: HASH, max_ttl: 60, defaults: { ttl: 61 } } } }, 'callers.a.defaults.ttl', /at most the caller's max_ttl \(60\)/],
    ['two callers, one secret', { callers: { a: { secret_sha256: HASH }, b: { secret_sha256: HASH.toUpperCase() } } }, 'callers.b.secret_sha256', /the same secret as callers\.a's/]
  ]
  for (const [name, content, field, problem] of table) {
    const text = typeof content === 'string' ? content : JSON.stringify(content)
    let error: unknown
    try {
      parseCallers(text, FILE)
    } catch (caught) {
      error = caught
    }
    t.ok(error instanceof CallersFileError, name)
    t.equal((error as CallersFileError).field, field, `${name}: the field`)
    t.match((error as Error).message, problem, `${name}: the problem`)
    t.ok((error as Error).message.startsWith(`${FILE}: ${field} `), `${name}: the message names the file, then the field`)
  }
  const many = Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`c${i}`, { secret_sha256: HASH }]))
  t.throws(() => parse(many), { field: 'callers', message: /at most 1000 callers/ })
  t.throws(() => parseCallers('{"callers":{"default":{"secret_sha256":"' + HASH + '"}}}', FILE, ['default']),
    { field: 'callers.default', message: /taken by SIDECAR_AUTH_TOKEN/ }, 'a reserved name')
})

t.test('authorize: the first rule broken, named as the request field', async (t) => {
  const narrow = one({ session_names: ['billing-*'], max_ttl: 600, gateway: ['/v3/chat'] })
  const table: Array<[string, Parameters<typeof authorize>[1], string | undefined]> = [
    ['the default request', { app: 'default' }, undefined],
    ['an allowed session', { app: 'default', sessionName: 'billing-1', ttl: 600 }, undefined],
    ['another app', { app: 'other' }, 'app'],
    ['another session', { app: 'default', sessionName: 'ops-1' }, 'session_name'],
    ['an account', { app: 'default', accountId: '7351' }, 'account_id'],
    ['an enterprise', { app: 'default', enterpriseId: 'volcano_1' }, 'enterprise_id'],
    ['a long ttl', { app: 'default', ttl: 601 }, 'ttl'],
    ['an allowed path', { app: 'default', path: '/v3/chat' }, undefined],
    ['another path', { app: 'default', path: '/v1/files/upload' }, 'path'],
    ['app before session', { app: 'other', sessionName: 'ops-1' }, 'app'],
    ['session before ttl', { app: 'default', sessionName: 'ops-1', ttl: 9999 }, 'session_name']
  ]
  for (const [name, ask, field] of table) t.equal(authorize(narrow, ask, 'default')?.field, field, name)
  t.equal(authorize(one({}), { app: 'default', path: '/v3/chat' }, 'default')?.field, 'path', 'gateway absent: no gateway')
  t.equal(authorize(one({ accounts: ['7351'] }), { app: 'default', accountId: '7351' }, 'default'), undefined)
  t.equal(authorize(one({ accounts: ['7351'] }), { app: 'default', accountId: '7352' }, 'default')?.field, 'account_id')
  t.equal(authorize(one({ enterprises: ['*'] }), { app: 'default', enterpriseId: 'e' }, 'default'), undefined)
  t.equal(authorize(one({}), { app: 'default', ttl: 86399 }, 'default'), undefined, 'no max_ttl: Coze\'s limit only')
  for (const ask of [{ app: 'x', sessionName: 'y', accountId: '1', ttl: 86399, path: '/z' }, { app: 'x', enterpriseId: 'e' }]) {
    t.equal(authorize(everyRight('default'), ask, 'default'), undefined, 'every right')
    t.equal(authorize(ANONYMOUS, ask, 'default'), undefined, 'anonymous has every right')
  }
  t.equal(authorize(narrow, { app: 'default', sessionName: 'ops-1' }, 'default')?.message,
    'caller c may not use session_name "ops-1" (allowed: "billing-*")')
  t.equal(authorize(one({}), { app: 'default', sessionName: 'x' }, 'default')?.message, 'caller c may not use session_name "x" (it may use no session_name)')
  t.equal(authorize(narrow, { app: 'default', ttl: 900 }, 'default')?.message, 'caller c may not ask for ttl 900: its max_ttl is 600')
  t.equal(authorize(one({ accounts: ['1', '2', '3', '4', '5', '6'] }), { app: 'default', accountId: '7' }, 'default')?.message,
    'caller c may not use account_id "7" (allowed: "1", "2", "3", "4", "5", …)', 'long lists are cut')
})

t.test('askOf: the caller\'s defaults for what a request leaves out', async (t) => {
  const narrow = one({ apps: ['default', 'billing'], session_names: ['billing-*'], max_ttl: 600, defaults: { app: 'billing', session_name: 'billing-batch' } })
  t.same(askOf(narrow, { app: 'billing' }, 900), { app: 'billing', sessionName: 'billing-batch', ttl: 600 }, 'the service ttl capped at max_ttl')
  t.same(askOf(narrow, { app: 'default', sessionName: 'billing-7', ttl: 60 }, 900), { app: 'default', sessionName: 'billing-7', ttl: 60 }, 'what is named wins')
  t.same(askOf(one({ max_ttl: 600 }), { app: 'default' }, 300), { app: 'default', ttl: 300 }, 'a shorter service ttl stays')
  t.same(askOf(one({ defaults: { ttl: 120 } }), { app: 'default' }, 900), { app: 'default', ttl: 120 })
  t.same(askOf(one({}), { app: 'default', path: '/v3/chat' }, 900), { app: 'default', ttl: 900, path: '/v3/chat' })
})
