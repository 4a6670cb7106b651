/**
 * scripts/bootstrap.mjs, the logic of bootstrap.sh and bootstrap.ps1: which Node releases, which
 * mode, when it installs and builds (by content, not by mtime), what it says and when. Its
 * `main` gets stand-ins for npm and the server; the last test runs bootstrap.sh for real with a
 * stand-in `node` that runs the script and a stand-in npm, in a copy of the project's files.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { bootstrapMode, fingerprint, main, nodeSupported, nodeWarning, plan, urlFor, type BootstrapIo } from '../../scripts/bootstrap.mjs'
import { tempDir } from '../fixtures/harness.js'

t.test('nodeSupported: package.json\'s engines, ^20.19.0 || ^22.13.0 || >=24', async (t) => {
  const engines = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).engines.node
  t.equal(engines, '^20.19.0 || ^22.13.0 || >=24', 'the range this function implements')
  for (const version of ['20.19.0', '20.20.2', '22.13.0', '22.23.5', '24.0.0', '25.1.0']) t.ok(nodeSupported(version), version)
  for (const version of ['18.20.0', '20.18.3', '21.7.0', '22.12.0', '23.11.0']) t.notOk(nodeSupported(version), version)
  t.match(nodeWarning('20.20.2'), /Node\.js 20 reached its end of life on 2026-04-30; install Node\.js 22 or 24/)
  t.equal(nodeWarning('22.13.0'), undefined)
})

t.test('bootstrapMode: real with any Coze setting or ./coze_oauth_config.json, demo without', async (t) => {
  t.equal(bootstrapMode({}, false), 'demo', 'nothing configured')
  for (const name of ['COZE_APP_ID', 'COZE_KEY_ID', 'COZE_PRIVATE_KEY_FILE', 'COZE_PRIVATE_KEY', 'COZE_OAUTH_CONFIG']) {
    t.equal(bootstrapMode({ [name]: 'x' }, false), 'real', name)
    t.equal(bootstrapMode({ [name]: '' }, false), 'demo', `${name} empty is not set`)
  }
  t.equal(bootstrapMode({ COZE_API_BASE: 'https://api.coze.com', COZE_TOKEN_TTL: '600' }, false), 'demo', 'settings that name no app')
  t.equal(bootstrapMode({}, true), 'real', './coze_oauth_config.json')
  t.equal(bootstrapMode({ SIDECAR_DEMO: 'true' }, true), 'demo', 'SIDECAR_DEMO=true wins')
  t.equal(bootstrapMode({ SIDECAR_DEMO: '1' }, false), 'demo')
  t.equal(bootstrapMode({ SIDECAR_DEMO: 'false' }, false), 'real', 'SIDECAR_DEMO=false is obeyed (and the sidecar says what to set)')
})

t.test('urlFor: where to open it', async (t) => {
  t.equal(urlFor('127.0.0.1', '8080'), 'http://127.0.0.1:8080')
  t.equal(urlFor('0.0.0.0', '8080'), 'http://127.0.0.1:8080', 'every interface: loopback')
  t.equal(urlFor('::', '80'), 'http://127.0.0.1:80')
  t.equal(urlFor('[::]', '80'), 'http://127.0.0.1:80')
  t.equal(urlFor('::1', '9000'), 'http://[::1]:9000')
  t.equal(urlFor('[::1]', '9000'), 'http://[::1]:9000')
  t.equal(urlFor('localhost', '9000'), 'http://localhost:9000')
})

/** A project folder with a lock file and sources. */
function project (t: Test): string {
  const root = tempDir(t)
  writeFileSync(join(root, 'package-lock.json'), '{"lockfileVersion":3}')
  writeFileSync(join(root, 'package.json'), '{}')
  mkdirSync(join(root, 'src', 'coze'), { recursive: true })
  writeFileSync(join(root, 'src', 'server.ts'), 'export {}\n')
  writeFileSync(join(root, 'src', 'coze', 'jwt.ts'), 'export {}\n')
  return root
}

t.test('fingerprint and plan: by content; an mtime alone changes nothing', async (t) => {
  const root = project(t)
  const first = fingerprint(root, ['src', 'tsconfig.json'])
  t.match(first, /^[0-9a-f]{64}$/)
  writeFileSync(join(root, 'src', 'server.ts'), 'export {}\n') // the same bytes, a new mtime
  t.equal(fingerprint(root, ['src', 'tsconfig.json']), first, 'touched, not changed')
  writeFileSync(join(root, 'src', 'coze', 'jwt.ts'), 'export const x = 1\n')
  t.not(fingerprint(root, ['src', 'tsconfig.json']), first, 'an edit deep in src/')
  writeFileSync(join(root, 'tsconfig.json'), '{}')
  t.not(fingerprint(root, ['src']), fingerprint(root, ['src', 'tsconfig.json']), 'a file that appears')
  t.match(plan(root), { install: { needed: true }, build: { needed: true } }, 'nothing installed or built yet')
})

interface Run { code: number | undefined, out: string, err: string, npm: string[], started?: Record<string, string | undefined> }

/** main() in `root` with stand-ins for npm (which makes node_modules/ and dist/) and the server. */
async function bootstrap (root: string, env: Record<string, string | undefined> = {}, options: { version?: string, platform?: string, npmFails?: string, listens?: boolean } = {}): Promise<Run> {
  const result: Run = { code: undefined, out: '', err: '', npm: [] }
  const io: BootstrapIo = {
    root,
    env,
    version: options.version ?? '22.13.0',
    platform: options.platform ?? 'linux',
    out: (text) => { result.out += text },
    err: (text) => { result.err += text },
    run: (command, args) => {
      result.npm.push([command, ...args].join(' '))
      if (args[0] === options.npmFails) return 1
      if (args[0] === 'ci') mkdirSync(join(root, 'node_modules'), { recursive: true })
      if (args.includes('build')) {
        mkdirSync(join(root, 'dist'), { recursive: true })
        writeFileSync(join(root, 'dist', 'server.js'), '')
      }
      return 0
    },
    start: async (settings) => {
      result.started = settings
      return options.listens ?? true
    }
  }
  result.code = await main(io)
  return result
}

t.test('main, twice: installs and builds once, starts the demo, and says where it serves once it does', async (t) => {
  const root = project(t)
  const first = await bootstrap(root)
  t.equal(first.code, undefined, 'running')
  t.same(first.npm, ['npm ci --no-audit --no-fund', 'npm run --silent build'])
  t.match(first.out, 'bootstrap: installing dependencies (npm ci)')
  t.match(first.out, 'bootstrap: building (the sources changed)')
  t.match(first.out, 'bootstrap: no Coze app is configured')
  t.match(first.out, 'bootstrap: DEMO MODE (SIDECAR_DEMO=true): tokens come from a built-in Coze emulator and are NOT valid at Coze')
  t.match(first.out, /serving on http:\/\/127\.0\.0\.1:8080 \(Ctrl-C to stop\)\n$/, 'the URL last, once it listens')
  t.match(first.started, { SIDECAR_DEMO: 'true', HOST: '127.0.0.1', PORT: '8080' })

  const second = await bootstrap(root)
  t.same(second.npm, [], 'the second time: no install, no build')
  t.notMatch(second.out, /installing|building/)

  writeFileSync(join(root, 'src', 'server.ts'), 'export const changed = true\n')
  t.same((await bootstrap(root)).npm, ['npm run --silent build'], 'a source changed: build only')
  writeFileSync(join(root, 'package-lock.json'), '{"lockfileVersion":3,"packages":{}}')
  t.same((await bootstrap(root)).npm, ['npm ci --no-audit --no-fund', 'npm run --silent build'], 'the lock changed: install and build')
  rmSync(join(root, 'dist', 'server.js'))
  t.same((await bootstrap(root)).npm, ['npm run --silent build'], 'dist/ gone: build')
  t.same((await bootstrap(root, {}, { platform: 'win32' })).npm, [], 'and then nothing')
  rmSync(join(root, 'node_modules'), { recursive: true })
  t.same((await bootstrap(root, {}, { platform: 'win32' })).npm, ['npm.cmd ci --no-audit --no-fund'], 'on Windows, npm.cmd')
})

t.test('main: a service that does not start (busy port, refused HOST) gets no URL', async (t) => {
  const root = project(t)
  const failed = await bootstrap(root, { PORT: '9000' }, { listens: false })
  t.equal(failed.code, undefined, 'the service has set its exit code (78) and said why')
  t.notMatch(failed.out, /serving on|http:\/\//)
})

t.test('main with a Coze app configured: real mode; the settings as given', async (t) => {
  const root = project(t)
  const byEnv = await bootstrap(root, { COZE_APP_ID: '1127900106117', PORT: '9000', HOST: '::1' })
  t.match(byEnv.out, 'bootstrap: using the Coze app configured in the environment or ./coze_oauth_config.json')
  t.notMatch(byEnv.out, /DEMO MODE/)
  t.match(byEnv.started, { COZE_APP_ID: '1127900106117', PORT: '9000', HOST: '::1' })
  t.notOk('SIDECAR_DEMO' in (byEnv.started ?? {}))
  t.match(byEnv.out, 'serving on http://[::1]:9000')
  writeFileSync(join(root, 'coze_oauth_config.json'), '{}')
  t.notMatch((await bootstrap(root)).out, /DEMO MODE/, './coze_oauth_config.json')
  const asked = await bootstrap(root, { SIDECAR_DEMO: 'true' })
  t.match(asked.out, 'DEMO MODE')
  t.notMatch(asked.out, /no Coze app is configured/, 'asked for, not fallen back to')
})

t.test('main: an unsupported Node, a failing install or build', async (t) => {
  const root = project(t)
  const old = await bootstrap(root, {}, { version: '18.20.0' })
  t.equal(old.code, 1)
  t.match(old.err, /^bootstrap: Node\.js 18\.20\.0 is not supported; install Node\.js 22\.13 or newer/)
  t.same(old.npm, [], 'nothing installed')
  const eol = await bootstrap(root, {}, { version: '20.20.2' })
  t.match(eol.out, /^bootstrap: Node\.js 20\.20\.2 works, but Node\.js 20 reached its end of life/)
  rmSync(join(root, 'node_modules'), { recursive: true })
  const noInstall = await bootstrap(root, {}, { npmFails: 'ci' })
  t.equal(noInstall.code, 1)
  t.equal(noInstall.err, 'bootstrap: npm ci failed\n')
  t.equal(noInstall.started, undefined)
  rmSync(join(root, 'dist'), { recursive: true })
  const noBuild = await bootstrap(root, {}, { npmFails: 'run' })
  t.equal(noBuild.code, 1)
  t.equal(noBuild.err, 'bootstrap: the build failed\n')
})

t.test('bootstrap.sh runs scripts/bootstrap.mjs from its own folder; without node it says what to install', async (t) => {
  const dir = tempDir(t)
  mkdirSync(join(dir, 'scripts'))
  copyFileSync(new URL('../../bootstrap.sh', import.meta.url), join(dir, 'bootstrap.sh'))
  const bin = join(dir, '.bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'node'), '#!/bin/sh\necho "node $* in $(pwd)"\n')
  chmodSync(join(bin, 'node'), 0o755)
  const ran = spawnSync('bash', [join(dir, 'bootstrap.sh'), '--x'], { cwd: '/', env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8', timeout: 10_000 })
  t.equal(ran.status, 0)
  t.equal(ran.stdout, `node scripts/bootstrap.mjs --x in ${dir}\n`)
  // A PATH with the tools the script uses, but no node.
  const noNode = join(dir, '.no-node')
  mkdirSync(noNode)
  symlinkSync('/usr/bin/dirname', join(noNode, 'dirname'))
  const none = spawnSync('/bin/bash', [join(dir, 'bootstrap.sh')], { env: { PATH: noNode }, encoding: 'utf8', timeout: 10_000 })
  t.equal(none.status, 1)
  t.equal(none.stderr, 'bootstrap: Node.js is not installed; install Node.js 22 or 24 (https://nodejs.org)\n')
  const ps1 = readFileSync(new URL('../../bootstrap.ps1', import.meta.url), 'utf8')
  t.match(ps1, "& node (Join-Path $PSScriptRoot 'scripts/bootstrap.mjs') @args", 'bootstrap.ps1 runs the same script (PowerShell is not run here)')
})
