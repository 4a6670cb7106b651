/**
 * The container test (`npm run test:docker`, also run by .ci/run): builds the image, runs it
 * against the Coze emulator the way the README and examples/kubernetes/ run it, and checks what
 * a user of the image would notice: a token inside and outside the container, non-root, healthy
 * within a few seconds, read-only root filesystem and no capabilities, the Kubernetes example's
 * probe commands, a key only its owner may read (the message without --user, a token with it),
 * the demo in a read-only container, no secret in the logs, and a clean exit within 10 s of SIGTERM.
 *
 * It lives in scripts/, not test/, so that the fast suite (`npm test`, tap's default file set)
 * does not build images: a cold run installs a Docker engine and builds a base image first.
 *
 * Everything stays on this machine: the containers use the host's network namespace
 * (`--network host`), and the sidecar and the emulator listen on 127.0.0.1 only.
 */
import { spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { cozeEmulator } from '../src/emulator/plugin.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const IMAGE = 'coze-token-sidecar:test'
/** On every image this test builds, so that it prunes its own leftovers and nothing else. */
const LABEL = 'coze-token-sidecar.test=1'
const APP_ID = '1127900106117'
/** How long a stop may take: the README promises a clean exit within 10 s of SIGTERM. */
const STOP_SECONDS = 10

// A cold run installs docker.io, builds the base image stand-in and the image: minutes.
t.setTimeout(30 * 60_000)

interface Ran { code: number | null, stdout: string, stderr: string, ms: number }

/** Runs a command to its end (killed after `timeoutMs`); never throws for a non-zero exit. */
function run (command: string, args: string[], options: { timeoutMs?: number, env?: NodeJS.ProcessEnv, echo?: boolean } = {}): Promise<Ran> {
  const started = performance.now()
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      // Progress of the long steps goes to stderr: stdout is tap's.
      if (options.echo === true) process.stderr.write(chunk)
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', (error) => { stderr += String(error) })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: performance.now() - started })
    })
  })
}

const tail = (text: string, lines = 30): string => text.trimEnd().split('\n').slice(-lines).join('\n')

/** A port nothing listens on now, on 127.0.0.1. */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * A Docker engine, the base image and our image. Without docker and without root to install it,
 * the test truly cannot run ('skip'); anything else that goes wrong is a failure (false).
 */
async function prepare (): Promise<'skip' | boolean> {
  const engine = await run('docker', ['info'], { timeoutMs: 30_000 })
  if (engine.code !== 0 && process.getuid?.() !== 0) return 'skip'
  const setup = await run('bash', ['scripts/docker-setup.sh'], { timeoutMs: 25 * 60_000, echo: true })
  t.comment(`scripts/docker-setup.sh: ${(setup.ms / 1000).toFixed(1)} s`)
  if (!t.equal(setup.code, 0, 'scripts/docker-setup.sh readies a Docker engine and the base image', { output: tail(setup.stderr) })) return false
  // The build and deps stages are tagged too, so that their layers stay as the cache of the next
  // run while the ones they replace, labelled, are pruned: a machine that is kept does not fill up.
  // --force-rm: a failed step leaves no container behind.
  let ms = 0
  for (const [target, tag] of [['build', `${IMAGE}-build`], ['deps', `${IMAGE}-deps`], [undefined, IMAGE]]) {
    const build = await run('docker', [
      'build', '--network', 'host', '--force-rm', '--label', LABEL,
      ...(target === undefined ? [] : ['--target', target]), '-t', tag as string, '.'
    ], { timeoutMs: 15 * 60_000 })
    ms += build.ms
    if (!t.equal(build.code, 0, `docker build ${target === undefined ? 'of the image' : `--target ${target}`} succeeds`, { output: tail(build.stdout + build.stderr) })) return false
  }
  t.comment(`docker build: ${(ms / 1000).toFixed(1)} s`)
  await run('docker', ['image', 'prune', '--force', '--filter', `label=${LABEL}`])
  return true
}

const ready = await prepare()
if (ready === 'skip') {
  t.plan(0, 'no Docker engine answers `docker info`, and installing one (scripts/docker-setup.sh) needs root')
} else if (ready) {
  await contextTests()
  await imageTests()
  await serviceTests()
}

/** What .dockerignore lets into the build context, shown by a throw-away image of a decoy tree. */
async function contextTests (): Promise<void> {
  await t.test('the build context', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'coze-sidecar-context-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const allowed = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'src/server.ts', 'scripts', 'scripts/bundle.mjs']
    const decoys = [
      'keys/private_key.pem', '.demo/emulator-private-key.pem', 'private_key.pem', 'coze_oauth_config.json',
      'src/leak.pem', 'src/keys/private_key.pem', 'src/coze_oauth_config.json', 'src/.demo/key',
      'node_modules/left-pad/index.js', 'dist/server.js', '.tap/report', '.git/HEAD', 'coverage/lcov.info',
      'test/app.test.ts', 'README.md', '.env', 'scripts/bench.mjs'
    ]
    for (const file of [...allowed.filter((f) => f !== 'src' && f !== 'scripts'), ...decoys]) {
      mkdirSync(dirname(join(dir, file)), { recursive: true })
      writeFileSync(join(dir, file), 'decoy\n')
    }
    copyFileSync(join(ROOT, '.dockerignore'), join(dir, '.dockerignore'))
    writeFileSync(join(dir, 'Dockerfile'), 'FROM node:22-bookworm-slim\nCOPY . /context\nCMD ["find", "/context", "-mindepth", "1"]\n')
    const tag = 'coze-token-sidecar:context-test'
    const built = await run('docker', ['build', '--network', 'none', '--force-rm', '--label', LABEL, '-t', tag, dir])
    if (!t.equal(built.code, 0, 'a context-listing image builds', { output: tail(built.stdout + built.stderr) })) return
    const listed = await run('docker', ['run', '--rm', '--network', 'none', tag])
    await run('docker', ['image', 'rm', tag])
    const files = listed.stdout.trim().split('\n').map((line) => line.replace('/context/', '')).sort()
    t.same(files, [...allowed].sort(), 'only package*.json, tsconfig*.json, src/ and the bundle script are sent; keys, settings, .demo/, node_modules, dist, .tap, .git, coverage never')
  })
}

async function imageTests (): Promise<void> {
  await t.test('the image', async (t) => {
    const inspected = await run('docker', ['image', 'inspect', IMAGE])
    const [image] = JSON.parse(inspected.stdout) as Array<{
      Size: number
      Config: { User: string, Env: string[], ExposedPorts: Record<string, unknown>, Cmd: string[], Entrypoint: string[] | null, WorkingDir: string, Healthcheck?: { Test: string[] } }
    }>
    if (image === undefined) return t.fail('docker image inspect shows the image')
    t.comment(`image size: ${image.Size} bytes (${(image.Size / 1e6).toFixed(1)} MB)`)
    const base = await run('docker', ['image', 'inspect', '-f', '{{.Size}}', 'node:22-bookworm-slim'])
    t.comment(`of which the base image node:22-bookworm-slim: ${base.stdout.trim()} bytes; ours: ${((image.Size - Number(base.stdout)) / 1e6).toFixed(1)} MB`)
    t.ok(image.Size - Number(base.stdout) < 40e6, 'adds less than 40 MB to the base image: production dependencies and dist/ only')

    const config = image.Config
    t.equal(config.User, '1000:1000', 'runs as uid 1000 (the image\'s node user), by number')
    for (const entry of ['HOST=0.0.0.0', 'PORT=8080', 'NODE_ENV=production']) t.ok(config.Env.includes(entry), `ENV ${entry}`)
    t.same(Object.keys(config.ExposedPorts), ['8080/tcp'], 'EXPOSE 8080')
    t.same(config.Cmd, ['node', 'dist/server.js'], 'CMD in exec form: node gets the signals')
    t.equal(config.Entrypoint, null, 'no entrypoint wrapper')
    t.equal(config.Healthcheck?.Test[0], 'CMD', 'a HEALTHCHECK, in exec form')
    t.match(config.Healthcheck?.Test.join(' ') ?? '', /\/healthz/, 'on /healthz')
    const health = (await run('docker', ['image', 'inspect', '-f', '{{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Timeout}}', IMAGE])).stdout.trim()
    t.equal(health, '3s 2s', 'checked every 3 s: healthy within a few seconds of a working start')

    // What `npm ci --omit=dev` must give, from the lock file the image was built from.
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean, optional?: boolean }> }
    const topLevel = Object.entries(lock.packages)
      .filter(([path]) => /^node_modules\/(@[^/]+\/)?[^/]+$/.test(path))
      .map(([path, entry]) => ({ name: path.slice('node_modules/'.length), ...entry }))
    const listing = await run('docker', ['run', '--rm', '--network', 'none', '--entrypoint', 'sh', IMAGE, '-c', `
      ls -A /app; echo ---
      cd /app/node_modules && for d in *; do case $d in @*) for s in "$d"/*; do [ -d "$s" ] && echo "$s"; done ;; *) echo "$d" ;; esac; done; echo ---
      find /app -path /app/node_modules -prune -o \\( -name "*.pem" -o -name coze_oauth_config.json -o -name .demo -o -name keys \\) -print`])
    const [app = '', modules = '', secrets = ''] = listing.stdout.split('---\n')
    t.same(app.trim().split('\n'), ['dist', 'node_modules', 'package.json'], '/app holds dist/, node_modules/ and package.json only')
    const installed = new Set(modules.trim().split('\n'))
    const devOnly = topLevel.filter((entry) => entry.dev === true).map((entry) => entry.name)
    const production = topLevel.filter((entry) => entry.dev !== true && entry.optional !== true).map((entry) => entry.name)
    t.ok(devOnly.includes('tap') && devOnly.includes('typescript'), 'the lock file marks the dev dependencies')
    t.same(devOnly.filter((name) => installed.has(name)), [], `none of the ${devOnly.length} dev-only packages is in the image`)
    t.same(production.filter((name) => !installed.has(name)), [], `all ${production.length} production packages are`)
    t.equal(secrets.trim(), '', 'no key, coze_oauth_config.json, keys/ or .demo/ came in from the build context')
  })
}

async function serviceTests (): Promise<void> {
  // The service, against the emulator.
  const emulator = Fastify({ forceCloseConnections: true })
  await emulator.register(cozeEmulator, { control: false })
  const emulatorUrl = await emulator.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => emulator.close())
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const { kids: [kid] } = emulator.cozeEmulator.registerApp({
    appId: APP_ID, name: 'container test', audience: new URL(emulatorUrl).host, keys: [{ publicKey: pair.publicKey }]
  })
  const privateKeyPem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string

  // The key in a directory of its own, mounted read-only; the container's uid 1000 must read it.
  const keyDir = mkdtempSync(join(tmpdir(), 'coze-sidecar-container-'))
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }))
  chmodSync(keyDir, 0o755)
  writeFileSync(join(keyDir, 'private_key.pem'), privateKeyPem, { mode: 0o644 })

  const secret = randomBytes(32).toString('hex')
  const bearer = { authorization: `Bearer ${secret}` }
  const containers: string[] = []
  t.teardown(async () => {
    if (containers.length > 0) await run('docker', ['rm', '-f', ...containers])
  })

  /** Starts the image like the README does, but on host loopback; returns the name and port. */
  async function start (extra: string[] = []): Promise<{ name: string, port: number, url: string }> {
    const name = `coze-token-sidecar-test-${process.pid}-${randomBytes(3).toString('hex')}`
    const port = await freePort()
    containers.push(name)
    const started = await run('docker', [
      'run', '--detach', '--name', name, '--network', 'host',
      // As examples/kubernetes/ runs it: read-only root, no capabilities, no privilege gain, 128 MiB.
      '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--memory', '128m',
      '--volume', `${keyDir}:/keys:ro`,
      // HOST: loopback only, although the network namespace is the host's.
      '--env', 'HOST=127.0.0.1', '--env', `PORT=${port}`,
      '--env', `COZE_API_BASE=${emulatorUrl}`, '--env', `COZE_APP_ID=${APP_ID}`, '--env', `COZE_KEY_ID=${kid}`,
      '--env', 'COZE_PRIVATE_KEY_FILE=/keys/private_key.pem',
      // Taken from this process's environment, so that the secret is not on a command line.
      '--env', 'SIDECAR_AUTH_TOKEN',
      ...extra, IMAGE
    ], { env: { ...process.env, SIDECAR_AUTH_TOKEN: secret } })
    if (started.code !== 0) throw new Error(`docker run failed: ${started.stderr}`)
    return { name, port, url: `http://127.0.0.1:${port}` }
  }

  /** Polls the container's health status until it is healthy (true) or 60 s have passed. */
  async function becomesHealthy (t: Test, name: string): Promise<boolean> {
    const started = Date.now()
    const deadline = started + 60_000
    let state = ''
    while (Date.now() < deadline) {
      state = (await run('docker', ['inspect', '-f', '{{.State.Status}} {{.State.Health.Status}}', name])).stdout.trim()
      if (state === 'running healthy') break
      if (!state.startsWith('running')) break
      await sleep(250)
    }
    const healthy = t.equal(state, 'running healthy', 'the container turns healthy (the image\'s own HEALTHCHECK)')
    if (healthy) t.comment(`healthy ${((Date.now() - started) / 1000).toFixed(1)} s after docker run returned`)
    if (!healthy) {
      const logs = await run('docker', ['logs', name])
      t.comment(`container logs:\n${tail(logs.stdout + logs.stderr)}`)
    }
    return healthy
  }

  /** Stops the container the way docker and Kubernetes do (SIGTERM, SIGKILL after 10 s). */
  async function stops (t: Test, name: string): Promise<void> {
    const stopped = await run('docker', ['stop', '--time', String(STOP_SECONDS), name], { timeoutMs: 30_000 })
    t.equal(stopped.code, 0, 'docker stop returns')
    t.comment(`docker stop: ${(stopped.ms / 1000).toFixed(2)} s`)
    t.ok(stopped.ms < STOP_SECONDS * 1000, `it stops within ${STOP_SECONDS} s of SIGTERM, not killed at the deadline`)
    const state = (await run('docker', ['inspect', '-f', '{{.State.ExitCode}} {{.State.OOMKilled}}', name])).stdout.trim()
    t.equal(state, '0 false', 'exit code 0, not killed for memory')
  }

  /** The bash commands of the Kubernetes example's sidecar probes. */
  function examplesProbes (): Record<'startupProbe' | 'livenessProbe' | 'readinessProbe', string[]> {
    const deployment = parse(readFileSync(join(ROOT, 'examples/kubernetes/deployment.yaml'), 'utf8'), { version: '1.1' })
    const sidecar = deployment.spec.template.spec.initContainers.find((c: { name: string }) => c.name === 'coze-token-sidecar')
    return {
      startupProbe: sidecar.startupProbe.exec.command,
      livenessProbe: sidecar.livenessProbe.exec.command,
      readinessProbe: sidecar.readinessProbe.exec.command
    }
  }

  await t.test('the service in the container, PID 1 without --init', async (t) => {
    const { name, url } = await start()
    if (!await becomesHealthy(t, name)) return

    const user = await run('docker', ['exec', name, 'sh', '-c', 'id -u; id -un; tr "\\0" " " < /proc/1/cmdline'])
    // The service names itself in ps (process.title), so PID 1's command line is that name.
    t.same(user.stdout.trim().split('\n'), ['1000', 'node', 'coze-token-sidecar'], 'runs as node (uid 1000), and the service is PID 1')

    // Inside: what an app in the same pod does. PORT and the secret come from the container's env.
    const fetchInside = [
      "fetch('http://127.0.0.1:' + process.env.PORT + '/token?format=text', { headers: { authorization: 'Bearer ' + process.env.SIDECAR_AUTH_TOKEN } })",
      ".then(async (r) => { if (!r.ok) throw new Error('status ' + r.status); process.stdout.write(await r.text()) })",
      '.catch((e) => { console.error(e.message); process.exit(1) })'
    ].join('')
    const inside = await run('docker', ['exec', name, 'node', '-e', fetchInside])
    t.equal(inside.code, 0, 'a token from inside the container', { stderr: inside.stderr })
    const token = inside.stdout
    t.match(token, /^\S{16,}$/, 'the bare token (format=text)')

    // Outside: the host, over loopback.
    const health = await fetch(`${url}/healthz`)
    t.equal(health.status, 200, '/healthz from the host, without the caller secret')
    t.same(await health.json(), { status: 'ok' })
    const anonymous = await fetch(`${url}/token`)
    t.equal(anonymous.status, 401, 'no token without the caller secret (SIDECAR_AUTH_TOKEN)')
    await anonymous.body?.cancel()
    const outside = await fetch(`${url}/token`, { headers: bearer })
    t.equal(outside.status, 200, 'a token from the host')
    t.equal(outside.headers.get('cache-control'), 'no-store')
    const body = await outside.json() as { access_token: string, token_type: string }
    t.equal(body.token_type, 'Bearer')
    t.equal(body.access_token, token, 'the same, cached token inside and outside')
    const atCoze = await fetch(`${emulatorUrl}/v1/users/me`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(atCoze.status, 200, 'the emulator accepts the token: it is one it issued for this app')
    await atCoze.body?.cancel()

    // The Kubernetes example's probes, run as the kubelet would (exec in the container).
    const probes = examplesProbes()
    for (const [probe, command] of Object.entries(probes)) {
      const result = await run('docker', ['exec', name, ...command])
      t.equal(result.code, 0, `examples/kubernetes: the ${probe} passes`, { stderr: result.stderr })
    }
    // While Coze refuses the app and no token is cached: the startup probe (a first token) fails,
    // readiness (the sidecar can serve) and liveness pass; /status says what Coze answered.
    emulator.cozeEmulator.setEnabled(APP_ID, false)
    const dropped = await fetch(`${url}/token`, { method: 'DELETE', headers: bearer })
    t.equal(dropped.status, 204, 'the cached token is dropped')
    const notStarted = await run('docker', ['exec', name, ...probes.startupProbe])
    t.not(notStarted.code, 0, 'examples/kubernetes: the startupProbe (/readyz?strict=true) fails while Coze refuses the app')
    const stillReady = await run('docker', ['exec', name, ...probes.readinessProbe])
    t.equal(stillReady.code, 0, 'examples/kubernetes: the readinessProbe still passes: a Coze outage does not empty the Service')
    const alive = await run('docker', ['exec', name, ...probes.livenessProbe])
    t.equal(alive.code, 0, 'examples/kubernetes: the livenessProbe still passes (a restart would not help)')
    const status = await fetch(`${url}/status`, { headers: bearer })
    t.match(await status.json(), { credentials: { default: { last_error: { code: 'COZE_ACCESS_DENY', coze: { error_code: 'access_deny' } } } } }, '/status shows Coze\'s refusal')
    emulator.cozeEmulator.setEnabled(APP_ID, true)
    const started = await run('docker', ['exec', name, ...probes.startupProbe])
    t.equal(started.code, 0, 'examples/kubernetes: the startupProbe passes once Coze does')

    const memory = await run('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', name])
    t.comment(`memory in use: ${memory.stdout.trim()}`)

    await stops(t, name)
    const logs = await run('docker', ['logs', name])
    const logText = logs.stdout + logs.stderr
    t.match(logText, /shutting down/, 'it logged the shutdown')
    t.match(logText, /SIGTERM/, 'on SIGTERM')
    const keyBody = privateKeyPem.split('\n').filter((line) => line !== '' && !line.startsWith('-----')).join('')
    t.notOk(logText.includes(token), 'the token is not in the logs')
    t.notOk(logText.includes(secret), 'the caller secret is not in the logs')
    t.notOk(logText.includes(keyBody.slice(64, 128)), 'the private key is not in the logs')
  })

  await t.test('a key only its owner may read (chmod 600, as keys.example/ says), as the README runs it', async (t) => {
    // A user of the host who is not uid 1000, as most are on a Mac or a shared machine.
    const owner = 4242
    const privateDir = mkdtempSync(join(tmpdir(), 'coze-sidecar-0600-'))
    t.teardown(() => rmSync(privateDir, { recursive: true, force: true }))
    writeFileSync(join(privateDir, 'private_key.pem'), privateKeyPem, { mode: 0o600 })
    chownSync(join(privateDir, 'private_key.pem'), owner, owner)
    chownSync(privateDir, owner, owner)
    chmodSync(privateDir, 0o700)

    // Without --user: the image's uid 1000 may not read it, and the one line says who must and how.
    const refused = await start(['--volume', `${privateDir}:/private:ro`, '--env', 'COZE_PRIVATE_KEY_FILE=/private/private_key.pem'])
    const deadline = Date.now() + 30_000
    let exit = ''
    while (Date.now() < deadline) {
      exit = (await run('docker', ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', refused.name])).stdout.trim()
      if (exit.startsWith('exited')) break
      await sleep(250)
    }
    t.equal(exit, 'exited 78', 'it stops with exit code 78, a bad setting')
    const said = await run('docker', ['logs', refused.name])
    t.match(said.stderr, /COZE_PRIVATE_KEY_FILE: cannot read \/private\/private_key\.pem \(EACCES\); the sidecar runs as uid 1000 \(gid 1000\)/, 'it names the user that must read the key')
    t.match(said.stderr, '`chown 1000 /private/private_key.pem`', 'and the ways out: chown 1000,')
    t.match(said.stderr, '`chmod 640`', 'group-readable,')
    t.match(said.stderr, '`--user "$(id -u):$(id -g)"`', 'or --user')

    // With the README's --user "$(id -u):$(id -g)", for the key's owner: it serves.
    const served = await start(['--user', `${owner}:${owner}`, '--volume', `${privateDir}:/private:ro`, '--env', 'COZE_PRIVATE_KEY_FILE=/private/private_key.pem'])
    if (!await becomesHealthy(t, served.name)) return
    const token = await fetch(`${served.url}/token?format=text`, { headers: bearer })
    t.equal(token.status, 200, 'a token, with the key readable by its owner only')
    await token.body?.cancel()
    await stops(t, served.name)
  })

  await t.test('the demo in a read-only container with no capabilities, as the README runs it', async (t) => {
    const name = `coze-token-sidecar-demo-${process.pid}-${randomBytes(3).toString('hex')}`
    const port = await freePort()
    containers.push(name)
    const started = await run('docker', [
      'run', '--detach', '--name', name, '--network', 'host',
      '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--memory', '128m',
      '--env', 'HOST=127.0.0.1', '--env', `PORT=${port}`, '--env', 'SIDECAR_DEMO=true', IMAGE
    ])
    if (!t.equal(started.code, 0, 'docker run', { stderr: started.stderr })) return
    if (!await becomesHealthy(t, name)) return
    const url = `http://127.0.0.1:${port}`
    for (const query of ['', '?account_id=7351234567890', '?enterprise_id=volcano_210195']) {
      const token = await fetch(`${url}/token${query}`)
      t.equal(token.status, 200, `a demo token${query}`)
      await token.body?.cancel()
    }
    const page = await fetch(`${url}/`)
    t.match(await page.text(), 'Demo mode:', 'the page says it is a demo')
    const logs = await run('docker', ['logs', name])
    t.match(logs.stdout, /the demo key is kept in memory/, 'the key stayed in memory, and the log says so')
    await stops(t, name)
  })

  await t.test('with --init, as the README runs it', async (t) => {
    const { name } = await start(['--init'])
    if (!await becomesHealthy(t, name)) return
    const pid1 = await run('docker', ['exec', name, 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline'])
    t.match(pid1.stdout, /init/, 'PID 1 is docker\'s init, which passes SIGTERM on to node')
    await stops(t, name)
  })
}
