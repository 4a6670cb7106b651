/**
 * What `bash bootstrap.sh` and `.\bootstrap.ps1` do, in one place for both: check Node, install
 * the dependencies when the lock file changed, build when the sources changed, pick demo or real
 * mode, start the service and say where it serves once it listens. Plain JavaScript with no
 * dependency, because it runs before `npm ci` and the build.
 *
 *   node scripts/bootstrap.mjs     (the two wrappers only find node and call this)
 *
 * Changes are recognised by content (SHA-256 of the lock file, and of the sources with
 * package.json, the tsconfigs and the bundle script), recorded in node_modules/.bootstrap-install and
 * dist/.bootstrap-build: a checkout that only touches mtimes does not rebuild, an edit does.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** The Node releases the project supports: package.json's engines, which the dependencies' allow. */
export const SUPPORTED = 'Node.js 22.13 or newer in the 22 line, or 24 or newer (20.19 or newer in the 20 line still works, past its end of life)'

/** Whether `version` (`process.versions.node`, e.g. `22.13.0`) satisfies `^20.19.0 || ^22.13.0 || >=24`. */
export function nodeSupported (version) {
  const [major, minor] = version.split('.').map(Number)
  return (major === 20 && minor >= 19) || (major === 22 && minor >= 13) || major >= 24
}

/** A warning for a supported but end-of-life release, or undefined. */
export function nodeWarning (version) {
  const [major] = version.split('.').map(Number)
  return major === 20 ? `Node.js ${version} works, but Node.js 20 reached its end of life on 2026-04-30; install Node.js 22 or 24` : undefined
}

const APP_SETTINGS = ['COZE_APP_ID', 'COZE_KEY_ID', 'COZE_PRIVATE_KEY_FILE', 'COZE_PRIVATE_KEY', 'COZE_OAUTH_CONFIG']

/**
 * `demo` or `real`: an explicit SIDECAR_DEMO is obeyed (`true` or `1`: demo, anything else:
 * real); otherwise real when any Coze app setting is set or `./coze_oauth_config.json` exists.
 */
export function bootstrapMode (env, hasConfigFile) {
  const demo = env.SIDECAR_DEMO ?? ''
  if (demo !== '') return demo === 'true' || demo === '1' ? 'demo' : 'real'
  if (APP_SETTINGS.some((name) => (env[name] ?? '') !== '')) return 'real'
  return hasConfigFile ? 'real' : 'demo'
}

/** The address to open in a browser for `HOST` and `PORT`. */
export function urlFor (host, port) {
  if (host === '0.0.0.0' || host === '::' || host === '[::]') return `http://127.0.0.1:${port}`
  if (host.startsWith('[') || !host.includes(':')) return `http://${host}:${port}`
  return `http://[${host}]:${port}`
}

/** SHA-256 over the files' paths and contents (folders walked in sorted order); missing ones count as such. */
export function fingerprint (root, paths) {
  const hash = createHash('sha256')
  const walk = (path) => {
    const full = join(root, path)
    let entries
    try {
      entries = readdirSync(full, { withFileTypes: true })
    } catch (error) {
      if (error.code === 'ENOTDIR') {
        hash.update(`file ${path}\n`).update(readFileSync(full)).update('\n')
      } else {
        hash.update(`missing ${path}\n`)
      }
      return
    }
    for (const name of entries.map((entry) => entry.name).sort()) walk(relative(root, join(full, name)))
  }
  for (const path of paths) walk(path)
  return hash.digest('hex')
}

/** What decides an install, and a build. */
const INSTALL_INPUTS = ['package-lock.json']
const BUILD_INPUTS = ['src', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/bundle.mjs']
const INSTALL_STAMP = join('node_modules', '.bootstrap-install')
const BUILD_STAMP = join('dist', '.bootstrap-build')

function stamp (root, file) {
  try {
    return readFileSync(join(root, file), 'utf8').trim()
  } catch {
    return undefined
  }
}

/** What has to be done before starting: `{ install, build }`, each with the fingerprint to record after. */
export function plan (root) {
  const installPrint = fingerprint(root, INSTALL_INPUTS)
  const buildPrint = fingerprint(root, BUILD_INPUTS)
  return {
    install: { needed: stamp(root, INSTALL_STAMP) !== installPrint, print: installPrint },
    build: { needed: stamp(root, BUILD_STAMP) !== buildPrint || !existsSync(join(root, 'dist', 'server.js')), print: buildPrint }
  }
}

/**
 * Everything, for the wrappers. `io` is injected by the tests: `run(command, args)` returns an
 * exit status, `start(env)` starts the service and returns whether it listens.
 * @returns the exit code for the wrapper, or undefined while the service runs.
 */
export async function main ({ root, env, version, platform, out, err, run, start }) {
  const say = (line) => out(`bootstrap: ${line}\n`)
  const fail = (line) => {
    err(`bootstrap: ${line}\n`)
    return 1
  }
  if (!nodeSupported(version)) return fail(`Node.js ${version} is not supported; install ${SUPPORTED} (https://nodejs.org)`)
  const warning = nodeWarning(version)
  if (warning !== undefined) say(warning)

  // npm is npm.cmd on Windows, which only a shell runs.
  const npm = platform === 'win32' ? 'npm.cmd' : 'npm'
  const todo = plan(root)
  if (todo.install.needed) {
    say('installing dependencies (npm ci)')
    if (run(npm, ['ci', '--no-audit', '--no-fund']) !== 0) return fail('npm ci failed')
    writeFileSync(join(root, INSTALL_STAMP), `${todo.install.print}\n`)
  }
  if (todo.build.needed) {
    say('building (the sources changed)')
    if (run(npm, ['run', '--silent', 'build']) !== 0) return fail('the build failed')
    writeFileSync(join(root, BUILD_STAMP), `${plan(root).build.print}\n`)
  }

  const settings = { ...env, HOST: env.HOST || '127.0.0.1', PORT: env.PORT || '8080' }
  if (bootstrapMode(env, existsSync(join(root, 'coze_oauth_config.json'))) === 'demo') {
    if ((env.SIDECAR_DEMO ?? '') === '') {
      say('no Coze app is configured (no COZE_APP_ID, COZE_KEY_ID, COZE_PRIVATE_KEY_FILE, ... nor ./coze_oauth_config.json);')
      say('to use yours, see keys.example/README.md')
    }
    settings.SIDECAR_DEMO = 'true'
    say('DEMO MODE (SIDECAR_DEMO=true): tokens come from a built-in Coze emulator and are NOT valid at Coze')
  } else {
    say('using the Coze app configured in the environment or ./coze_oauth_config.json')
  }
  // The service says why when it cannot start (a busy port, a refused HOST), and exits 78.
  if (!await start(settings)) return undefined
  say(`serving on ${urlFor(settings.HOST, settings.PORT)} (Ctrl-C to stop)`)
  return undefined
}

/* c8 ignore start - the command itself; test/demo/bootstrap.test.ts runs it through bootstrap.sh */
if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const root = fileURLToPath(new URL('..', import.meta.url))
  // Where ./coze_oauth_config.json and .demo/ are, whatever folder it was started from.
  process.chdir(root)
  const code = await main({
    root,
    env: process.env,
    version: process.versions.node,
    platform: process.platform,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    run: (command, args) => spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' }).status ?? 1,
    start: async (settings) => {
      Object.assign(process.env, settings)
      process.title = 'coze-token-sidecar'
      const server = await import(pathToFileURL(join(root, 'dist', 'server.js')).href)
      return (await server.main(process)) !== undefined
    }
  })
  if (code !== undefined) process.exit(code)
}
/* c8 ignore stop */
