/**
 * bootstrap.sh, run for real by bash in a temporary copy, with stand-ins for `node` and `npm` on
 * PATH (the real `npm ci` and build would take minutes): which mode it picks, what it says, when
 * it installs, and what it finally runs.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { tempDir } from '../fixtures/harness.js'

const SCRIPT = new URL('../../bootstrap.sh', import.meta.url).pathname

const NODE_STUB = `#!/usr/bin/env bash
case "$1" in
  -e) exit "\${STUB_NODE_TOO_OLD:-0}" ;;
  --version) echo v18.20.0 ;;
  dist/server.js) echo "server: SIDECAR_DEMO=\${SIDECAR_DEMO-unset} HOST=$HOST PORT=$PORT" ;;
  *) echo "unexpected node $*" >&2; exit 99 ;;
esac
`

const NPM_STUB = `#!/usr/bin/env bash
echo "npm $*" >> npm.log
if [ "$1" = ci ]; then mkdir -p node_modules && touch node_modules/.package-lock.json; fi
`

/** A copy of the project's bootstrap.sh in a folder of its own, with node and npm stubbed. */
function sandbox (t: Test): { dir: string, run: (env?: Record<string, string>) => { status: number | null, stdout: string, stderr: string, npm: string[] } } {
  const dir = tempDir(t)
  const bin = join(dir, '.bin')
  mkdirSync(bin)
  writeFileSync(join(bin, 'node'), NODE_STUB)
  writeFileSync(join(bin, 'npm'), NPM_STUB)
  chmodSync(join(bin, 'node'), 0o755)
  chmodSync(join(bin, 'npm'), 0o755)
  copyFileSync(SCRIPT, join(dir, 'bootstrap.sh'))
  writeFileSync(join(dir, 'package-lock.json'), '{}')
  const past = new Date(Date.now() - 60_000)
  utimesSync(join(dir, 'package-lock.json'), past, past)
  const run = (env: Record<string, string> = {}) => {
    writeFileSync(join(dir, 'npm.log'), '')
    // Nothing of this process's environment: no COZE_ or SIDECAR_ settings leak in.
    const result = spawnSync('bash', ['bootstrap.sh'], {
      cwd: dir, env: { PATH: `${bin}:/usr/bin:/bin`, ...env }, encoding: 'utf8', timeout: 10_000
    })
    const npm = readFileSync(join(dir, 'npm.log'), 'utf8').split('\n').filter(Boolean)
    return { status: result.status, stdout: result.stdout, stderr: result.stderr, npm }
  }
  return { dir, run }
}

/** bootstrap_mode, sourced from the real script, in `cwd` with `env`. */
function mode (cwd: string, env: Record<string, string> = {}): string {
  const result = spawnSync('bash', ['-c', 'source "$1" && bootstrap_mode', 'bash', SCRIPT], {
    cwd, env: { PATH: '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 10_000
  })
  return result.stdout.trim()
}

t.test('bootstrap_mode: real with any Coze setting or ./coze_oauth_config.json, demo without', async (t) => {
  const empty = tempDir(t)
  t.equal(mode(empty), 'demo', 'nothing configured')
  for (const name of ['COZE_APP_ID', 'COZE_KEY_ID', 'COZE_PRIVATE_KEY_FILE', 'COZE_PRIVATE_KEY', 'COZE_OAUTH_CONFIG']) {
    t.equal(mode(empty, { [name]: 'x' }), 'real', name)
    t.equal(mode(empty, { [name]: '' }), 'demo', `${name} empty is not set`)
  }
  t.equal(mode(empty, { COZE_API_BASE: 'https://api.coze.com', COZE_TOKEN_TTL: '600' }), 'demo', 'settings that name no app')
  const withFile = tempDir(t)
  writeFileSync(join(withFile, 'coze_oauth_config.json'), '{}')
  t.equal(mode(withFile), 'real', './coze_oauth_config.json')
  t.equal(mode(withFile, { SIDECAR_DEMO: 'true' }), 'demo', 'SIDECAR_DEMO=true wins')
  t.equal(mode(empty, { SIDECAR_DEMO: '1' }), 'demo')
  t.equal(mode(empty, { SIDECAR_DEMO: 'false' }), 'real', 'SIDECAR_DEMO=false is obeyed (and the sidecar says what to set)')
})

t.test('bootstrap.sh, twice: installs once, builds, starts the demo and prints the URL', async (t) => {
  const { run, dir } = sandbox(t)
  const first = run()
  t.equal(first.status, 0, first.stderr)
  t.same(first.npm, ['npm ci --no-audit --no-fund', 'npm run --silent build'])
  t.match(first.stdout, 'bootstrap: installing dependencies (npm ci)')
  t.match(first.stdout, 'bootstrap: no Coze app is configured')
  t.match(first.stdout, 'bootstrap: DEMO MODE (SIDECAR_DEMO=true): tokens come from a built-in Coze emulator and are NOT valid at Coze')
  t.match(first.stdout, 'bootstrap: starting on http://127.0.0.1:8080 (Ctrl-C to stop)')
  t.match(first.stdout, 'server: SIDECAR_DEMO=true HOST=127.0.0.1 PORT=8080')

  const second = run()
  t.equal(second.status, 0)
  t.same(second.npm, ['npm run --silent build'], 'no install the second time')
  t.notMatch(second.stdout, /installing/)
  t.match(second.stdout, 'server: SIDECAR_DEMO=true')

  const future = new Date(Date.now() + 60_000)
  utimesSync(join(dir, 'package-lock.json'), future, future)
  t.same(run().npm, ['npm ci --no-audit --no-fund', 'npm run --silent build'], 'the lock file changed: install again')
})

t.test('bootstrap.sh with a Coze app configured: real mode', async (t) => {
  const { run, dir } = sandbox(t)
  const byEnv = run({ COZE_APP_ID: '1127900106117', PORT: '9000' })
  t.equal(byEnv.status, 0)
  t.match(byEnv.stdout, 'bootstrap: using the Coze app configured in the environment or ./coze_oauth_config.json')
  t.notMatch(byEnv.stdout, /DEMO MODE/)
  t.match(byEnv.stdout, 'server: SIDECAR_DEMO=unset HOST=127.0.0.1 PORT=9000')
  t.match(byEnv.stdout, 'http://127.0.0.1:9000')
  writeFileSync(join(dir, 'coze_oauth_config.json'), '{}')
  t.match(run().stdout, 'server: SIDECAR_DEMO=unset')
  const asked = run({ SIDECAR_DEMO: 'true' })
  t.match(asked.stdout, 'server: SIDECAR_DEMO=true')
  t.notMatch(asked.stdout, /no Coze app is configured/, 'asked for, not fallen back to')
})

t.test('bootstrap.sh: the URL for other listen addresses; an old Node', async (t) => {
  const { run } = sandbox(t)
  t.match(run({ HOST: '0.0.0.0' }).stdout, 'starting on http://127.0.0.1:8080', 'every interface: open it on loopback')
  t.match(run({ HOST: '::1' }).stdout, 'starting on http://[::1]:8080')
  t.match(run({ HOST: '[::1]' }).stdout, 'starting on http://[::1]:8080')
  const old = run({ STUB_NODE_TOO_OLD: '1' })
  t.equal(old.status, 1)
  t.equal(old.stderr, 'bootstrap: Node.js v18.20.0 is too old; install Node.js 20.19 or newer\n')
  t.same(old.npm, [], 'nothing installed')
})
