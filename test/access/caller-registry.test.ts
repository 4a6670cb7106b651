import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CallerRegistry } from '../../src/access/caller-registry.js'
import { CallersFileError } from '../../src/access/callers.js'
import { tempDir } from '../fixtures/harness.js'
import { BROAD_SECRET, DEFAULT_SECRET, NARROW_SECRET, OTHER_SECRET, bearer, sha256, writeCallers } from '../fixtures/callers.js'

t.test('identify: each caller by its secret; an unknown or missing secret is nobody', async (t) => {
  const dir = tempDir(t)
  const file = writeCallers(dir)
  const registry = await CallerRegistry.load({ file, defaultSecret: { value: DEFAULT_SECRET } })
  t.same(registry.names, ['default', 'narrow', 'broad', 'other', 'elsewhere'])
  t.same(registry.files, [file, join(dir, 'broad.secret')], 'the callers file and each secret_file')
  t.match(registry.identify(bearer(NARROW_SECRET).authorization), { name: 'narrow', all: false })
  t.match(registry.identify(bearer(BROAD_SECRET).authorization), { name: 'broad' })
  t.match(registry.identify(bearer(OTHER_SECRET).authorization), { name: 'other' })
  t.match(registry.identify(bearer(DEFAULT_SECRET).authorization), { name: 'default', all: true }, 'SIDECAR_AUTH_TOKEN: every right')
  t.match(registry.identify(`bearer   ${NARROW_SECRET} `), { name: 'narrow' }, 'the scheme in any case, spaces around')
  for (const authorization of [undefined, '', 'Bearer', `Basic ${NARROW_SECRET}`, `Bearer ${NARROW_SECRET}x`, `Bearer ${sha256(NARROW_SECRET)}`, `Bearer ${NARROW_SECRET} extra`]) {
    t.equal(registry.identify(authorization), undefined, String(authorization))
  }
  const alone = await CallerRegistry.load({ file })
  t.equal(alone.identify(bearer(DEFAULT_SECRET).authorization), undefined, 'without SIDECAR_AUTH_TOKEN there is no default caller')
  t.same(alone.names, ['narrow', 'broad', 'other', 'elsewhere'])
})

t.test('load: unreadable files and shared secrets are refused naming the field, never the secret', async (t) => {
  const dir = tempDir(t)
  const file = writeCallers(dir)
  const missing = join(dir, 'nope.json')
  await t.rejects(CallerRegistry.load({ file: missing }), { message: `${missing}: (the file) cannot be read (ENOENT)` })
  await t.rejects(CallerRegistry.load({ file, defaultSecret: { value: NARROW_SECRET } }),
    { message: `${file}: callers.narrow.secret_sha256 is the same secret as SIDECAR_AUTH_TOKEN's; give each caller its own` })
  await t.rejects(CallerRegistry.load({ file, defaultSecret: { value: BROAD_SECRET } }), { message: /callers\.broad\.secret_file is the same secret as SIDECAR_AUTH_TOKEN's/ })
  writeFileSync(join(dir, 'broad.secret'), OTHER_SECRET)
  await t.rejects(CallerRegistry.load({ file }), { message: /callers\.other\.secret_sha256 is the same secret as callers\.broad's/ })
  writeFileSync(join(dir, 'broad.secret'), 'short')
  const error = await CallerRegistry.load({ file }).catch((caught: unknown) => caught)
  t.ok(error instanceof CallersFileError)
  t.match(error, { field: 'callers.broad.secret_file', message: /callers\.broad\.secret_file is unusable: .*broad\.secret must hold one secret of 16/ })
  t.notMatch((error as Error).message, /short/, 'not the content')
  rmSync(join(dir, 'broad.secret'))
  await t.rejects(CallerRegistry.load({ file }), { message: /callers\.broad\.secret_file is unusable: cannot read .*broad\.secret \(ENOENT\)/ })
  // SIDECAR_AUTH_TOKEN_FILE was read by the configuration at start; a reload reads it again.
  const fromFile = await CallerRegistry.load({ defaultSecret: { value: DEFAULT_SECRET, file: join(dir, 'gone') } })
  t.match(fromFile.identify(bearer(DEFAULT_SECRET).authorization), { name: 'default' })
  await t.rejects(fromFile.reload(), { message: /SIDECAR_AUTH_TOKEN_FILE is unusable: cannot read .*gone \(ENOENT\)/ })
})

t.test('reload: the rules are swapped whole; a broken file keeps the last good ones', async (t) => {
  const dir = tempDir(t)
  const file = writeCallers(dir)
  const registry = await CallerRegistry.load({ file })
  writeCallers(dir, { session_names: ['ops-*'] })
  writeFileSync(join(dir, 'broad.secret'), 'broad-rotated-0123456789abcdef')
  await registry.reload()
  t.ok(registry.identify(bearer(NARROW_SECRET).authorization)?.sessionNames?.matches('ops-1'), 'the new rules')
  t.equal(registry.identify(bearer(BROAD_SECRET).authorization), undefined, 'the rotated secret_file: the old secret is gone')
  t.match(registry.identify('Bearer broad-rotated-0123456789abcdef'), { name: 'broad' })
  writeFileSync(file, '{"callers": {"narrow": {"secret_sha256": "' + sha256(NARROW_SECRET) + '", "max_ttl": "long"}}}')
  await t.rejects(registry.reload(), { message: /callers\.narrow\.max_ttl must be an integer/ })
  t.ok(registry.identify(bearer(NARROW_SECRET).authorization)?.sessionNames?.matches('ops-1'), 'still the last good rules')
  t.match(registry.identify('Bearer broad-rotated-0123456789abcdef'), { name: 'broad' }, 'all of them')
  // Reloads asked for together run one after the other, after a failed one too.
  writeFileSync(file, JSON.stringify({ callers: { solo: { secret_sha256: sha256(OTHER_SECRET) } } }))
  await Promise.all([registry.reload(), registry.reload()])
  t.same(registry.names, ['solo'])
  t.same(registry.files, [file], 'no secret_file left to watch')
})
