#!/usr/bin/env node
/**
 * npm run bench -- [--duration 6] [--connections 100] [--rounds 5] [--names 100000] [--no-container] [--write]
 *
 * All in one run, on one machine, against the built service (dist/), each figure beside its peer
 * measured in the same run, in alternating rounds, compared by medians:
 *   1. start to the first `/token` answer (its first exchange included) and idle RSS after it:
 *      `node dist/server.js` beside `node scripts/bench-bare.mjs` (a bare Fastify app, one JSON route);
 *   2. cached GET /token beside the bare route answering the same body: req/s, latency percentiles;
 *   3. the same cached GET /token by a caller of a callers file (20 callers) beside no callers;
 *   4. RSS against cached tokens, up to --names distinct session names; the slope from half to all;
 *   5. 1,000 concurrent requests on a cold key (must be 1 exchange) and JWT signatures per second;
 *   6. the gateway beside a bare @fastify/reply-from proxy: JSON req/s and latency, SSE per-event
 *      latency added, RSS with 1,000 open streams;
 *   7. the container (image coze-token-sidecar:bench, --memory 256m): idle, and with --names tokens.
 * Prints a Markdown report; --write also writes it to BENCHMARKS.md and the chart to
 * docs/benchmarks.svg. Not part of the test suite: numbers here are never asserted by a test.
 */
import { createHash } from 'node:crypto'
import { execFile, spawn } from 'node:child_process'
import { existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { build as esbuild } from 'esbuild'
import { BUNDLE_OPTIONS } from './bundle.mjs'
import { Pool, request } from 'undici'
import { signTokenJwt } from '../dist/coze/jwt.js'
import { scratchEmulator } from './scratch-emulator.mjs'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '6' },
    connections: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '5' },
    names: { type: 'string', default: '100000' },
    'no-container': { type: 'boolean', default: false },
    write: { type: 'boolean', default: false }
  }
})
const duration = Number(values.duration)
const connections = Number(values.connections)
const ROUNDS = Number(values.rounds)
const NAMES = Number(values.names)
// Starts are short and the median of few is at the mercy of one busy moment: at least nine of each.
const START_ROUNDS = Math.max(9, ROUNDS)

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const execFileAsync = promisify(execFile)
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
/** CPU time (ms) every thread of `pid` has run so far: less at the mercy of a busy machine than the wall clock. */
const cpuOf = (pid) => readdirSync(`/proc/${pid}/task`).reduce((sum, task) => {
  try {
    return sum + Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]) / 1e6
  } catch {
    return sum // a thread that ended meanwhile
  }
}, 0)
const medianOf = (numbers) => [...numbers].sort((a, b) => a - b)[Math.floor(numbers.length / 2)]
const medianBy = (results, key) => [...results].sort((a, b) => a[key] - b[key])[Math.floor(results.length / 2)]
const mib = (n) => `${n.toFixed(1)} MiB`
const ms = (n) => `${n.toFixed(0)} ms`
const x = (n) => `**${n.toFixed(2)}×**`
const list = (numbers, digits = 0) => numbers.map((n) => n.toFixed(digits)).join(', ')

/**
 * Starts `node <args>`; resolves with its process, the address it printed and when it was
 * spawned. Its stdout goes to a file, as a service's logs would: a pipe to this busy process would
 * throttle every log line. The file is polled every 10 ms, which bounds what a start figure can
 * be off by; both peers are started the same way.
 */
let started = 0
async function start (args, env) {
  const logFile = join(dir, `child-${started++}.log`)
  const spawnedAt = performance.now()
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', openSync(logFile, 'w'), 'inherit'] })
  let exited
  child.on('exit', (code) => { exited = code })
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await pause(10)) {
    const match = /(?:Server listening at|listening on) (http:\/\/[\d.:]+)/.exec(readFileSync(logFile, 'utf8'))
    if (match !== null) return { child, address: match[1], spawnedAt }
    if (exited !== undefined) throw new Error(`${args.join(' ')} exited with ${exited}`)
  }
  throw new Error(`${args.join(' ')} did not start within 30 s`)
}

async function stop (server) {
  if (server.child.exitCode !== null) return
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.kill('SIGTERM')
  await exited
}

async function fetchText (url) {
  const response = await request(url)
  const text = await response.body.text()
  if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${text.slice(0, 200)}`)
  return text
}

/** Resolves once `url` answers 200, polled every `everyMs`; the last failure after `withinMs`. */
async function answered (url, withinMs, everyMs) {
  for (const deadline = performance.now() + withinMs; ; await pause(everyMs)) {
    try {
      return await fetchText(url)
    } catch (error) {
      if (performance.now() > deadline) throw error
    }
  }
}

async function load (url, headers = {}) {
  const result = await autocannon({ url, connections, duration, headers })
  const l = result.latency
  return { rps: result.requests.average, p50: l.p50, p90: l.p90, p99: l.p99, p999: l.p99_9, errors: result.errors + result.non2xx }
}

/** A free TCP port on 127.0.0.1 (for the container, which cannot print one back). */
async function freePort () {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** `count` distinct session names against `base`, `parallel` at a time; calls `at(done)` at each checkpoint. */
async function fillNames (base, count, checkpoints, at) {
  const pool = new Pool(base, { connections: 100 })
  const started = performance.now()
  let done = 0
  let failed = 0
  for (const checkpoint of checkpoints) {
    while (done < checkpoint) {
      const batch = Math.min(500, checkpoint - done)
      const from = done
      await Promise.all(Array.from({ length: batch }, async (_, i) => {
        const response = await pool.request({ path: `/token?session_name=user-${from + i}`, method: 'GET' })
        await response.body.dump()
        if (response.statusCode !== 200) failed++
      }))
      done += batch
    }
    await at(done)
  }
  await pool.close()
  return { seconds: (performance.now() - started) / 1000, failed }
}

// ---------------------------------------------------------------------------------------------
// Set-up: a key, the emulator (in this process), the sidecar's settings
// ---------------------------------------------------------------------------------------------

const { dir, pair, keyFile, emulator, emulatorUrl, kid } = await scratchEmulator('coze-bench-', {})

// The settings a user starts it with: a Coze app and its key, every other setting at its default.
const userEnv = {
  COZE_API_BASE: emulatorUrl,
  COZE_APP_ID: '1000000000001',
  COZE_KEY_ID: kid,
  COZE_PRIVATE_KEY_FILE: keyFile,
  PORT: '0',
  LOG_LEVEL: 'info'
}
// For the loads: the limits protect Coze's quota in production; here they would only measure
// themselves. The cache holds every name of the fill (lru-cache sizes its arrays by the maximum).
const sidecarEnv = {
  ...userEnv,
  SIDECAR_EXCHANGE_RATE: '100000',
  SIDECAR_EXCHANGE_BURST: '100000',
  SIDECAR_CACHE_MAX: String(Math.max(10_000, NAMES + 1_000))
}
const startSidecar = () => start(['dist/server.js'], sidecarEnv)
const startAsUsers = () => start(['dist/server.js'], userEnv)
// V8's young generation (semi-spaces of up to 16 MiB by default on 64-bit) is what a flag could
// shrink: measured beside the default, not set anywhere.
const SEMI_SPACE_FLAG = '--max-semi-space-size=2'
const startFlagged = () => start([SEMI_SPACE_FLAG, 'dist/server.js'], userEnv)
// undici parses HTTP with llhttp compiled to WebAssembly; V8 recompiles its main function with
// TurboFan on a background thread at the first exchange (~100 ms of CPU, ~30 MB of compiler memory
// at its peak, part of which glibc keeps). This V8 flag keeps it on the baseline compiler: measured
// beside the default, not set anywhere.
const LIFTOFF_FLAG = '--liftoff-only'
const startLiftoff = () => start([LIFTOFF_FLAG, 'dist/server.js'], userEnv)

// The body the bare app answers with: the sidecar's own answer, byte for byte the same size.
const sampleBody = await (async () => {
  const sidecar = await startSidecar()
  try { return await fetchText(`${sidecar.address}/token`) } finally { await stop(sidecar) }
})()
const startBare = () => start(['scripts/bench-bare.mjs'], { BARE_BODY: sampleBody })
// The peer bundled as the service is (scripts/bundle.mjs's own settings), for the record: how much of
// the start-up gap bundling alone closes for any Fastify app.
const bareBundle = join(dir, 'bench-bare.bundle.mjs')
await esbuild({ ...BUNDLE_OPTIONS, entryPoints: ['scripts/bench-bare.mjs'], outfile: bareBundle })
const startBareBundled = () => start([bareBundle], { BARE_BODY: sampleBody })

// ---------------------------------------------------------------------------------------------
// 1. Start to the first /token answer, and idle RSS after it
// ---------------------------------------------------------------------------------------------

/** Spawn to the first answer of /token (and the CPU time it took), then the RSS once it has been idle for a second. */
async function startOnce (begin) {
  const server = await begin()
  await fetchText(`${server.address}/token`)
  const firstAnswerMs = performance.now() - server.spawnedAt
  const cpuMs = cpuOf(server.child.pid)
  await pause(1_000)
  const rss = rssOf(server.child.pid)
  await stop(server)
  return { firstAnswerMs, cpuMs, rss }
}

const starters = { bare: startBare, sidecar: startAsUsers, flagged: startFlagged, liftoff: startLiftoff, bareBundled: startBareBundled }
const startRounds = Object.fromEntries(Object.keys(starters).map((which) => [which, []]))
for (let round = 0; round < START_ROUNDS; round++) {
  // Rotate which goes first, so that none always meets a warmer disk cache.
  const order = Object.keys(starters)
  for (let i = 0; i < round % order.length; i++) order.push(order.shift())
  for (const which of order) startRounds[which].push(await startOnce(starters[which]))
}
// Idle for longer: V8's memory reducer collects and shrinks the heap some 8 s after the last
// collection of an idle process, so the RSS a sidecar keeps while it idles is only seen then.
// Fewer rounds (each takes SETTLE_MS), bare app and sidecar alternating.
const SETTLE_MS = 15_000
const settledRounds = { bare: [], sidecar: [] }
for (let round = 0; round < Math.max(3, Math.ceil(START_ROUNDS / 2)); round++) {
  const order = round % 2 === 0 ? ['bare', 'sidecar'] : ['sidecar', 'bare']
  for (const which of order) {
    const server = await starters[which]()
    await fetchText(`${server.address}/token`)
    await pause(SETTLE_MS)
    settledRounds[which].push(rssOf(server.child.pid))
    await stop(server)
  }
}

const median = (which, figure) => medianOf(startRounds[which].map((round) => round[figure]))
const startFigures = {
  bareSettled: medianOf(settledRounds.bare),
  sidecarSettled: medianOf(settledRounds.sidecar),
  bareMs: median('bare', 'firstAnswerMs'),
  sidecarMs: median('sidecar', 'firstAnswerMs'),
  bareRss: median('bare', 'rss'),
  sidecarRss: median('sidecar', 'rss'),
  flaggedRss: median('flagged', 'rss'),
  flaggedMs: median('flagged', 'firstAnswerMs'),
  liftoffRss: median('liftoff', 'rss'),
  liftoffMs: median('liftoff', 'firstAnswerMs'),
  liftoffCpu: median('liftoff', 'cpuMs'),
  bareCpu: median('bare', 'cpuMs'),
  sidecarCpu: median('sidecar', 'cpuMs'),
  bundledMs: median('bareBundled', 'firstAnswerMs'),
  bundledCpu: median('bareBundled', 'cpuMs'),
  bundledRss: median('bareBundled', 'rss')
}

// ---------------------------------------------------------------------------------------------
// 2. Cached GET /token beside the bare route; 3. a caller's rules beside none
// ---------------------------------------------------------------------------------------------

const sidecar = await startSidecar()
const bare = await startBare()
await fetchText(`${sidecar.address}/token`)

/** Alternating rounds of `a`, `b` (and `c`) after a warm-up of each; the median round of each. */
async function alternate (a, b, c) {
  const targets = { a, b, ...(c === undefined ? {} : { c }) }
  for (const target of Object.values(targets)) await autocannon({ url: target.url, connections, duration: 2, headers: target.headers ?? {} })
  const rounds = Object.fromEntries(Object.keys(targets).map((key) => [key, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const [key, target] of Object.entries(targets)) rounds[key].push(await load(target.url, target.headers))
  }
  return { ...Object.fromEntries(Object.keys(targets).map((key) => [key, medianBy(rounds[key], 'rps')])), rounds }
}

// The sidecar with the semi-space flag too, so that its cost in requests/s is measured beside its saving.
const flagged = await startFlagged()
await fetchText(`${flagged.address}/token`)
const cached = await alternate({ url: `${bare.address}/token` }, { url: `${sidecar.address}/token` }, { url: `${flagged.address}/token` })
await stop(flagged)

// The same sidecar with a callers file: 20 callers (every request hashes its secret and compares it
// with each digest), the one measured limited to billing-* sessions and 600 s.
const callerSecret = 'bench-caller-secret-0123456789abcdef'
const callersFile = join(dir, 'callers.json')
const sha256 = (text) => createHash('sha256').update(text).digest('hex')
writeFileSync(callersFile, JSON.stringify({
  callers: {
    billing: { secret_sha256: sha256(callerSecret), session_names: ['billing-*'], max_ttl: 600 },
    ...Object.fromEntries(Array.from({ length: 19 }, (_, i) => [`filler-${i}`, { secret_sha256: sha256(`filler-secret-${i}-0123456789`) }]))
  }
}))
const withCallers = await start(['dist/server.js'], { ...sidecarEnv, SIDECAR_CALLERS_FILE: callersFile })
const callerHeaders = { authorization: `Bearer ${callerSecret}` }
const callers = await alternate(
  { url: `${sidecar.address}/token?session_name=billing-1` },
  { url: `${withCallers.address}/token?session_name=billing-1`, headers: callerHeaders }
)
await stop(withCallers)

// ---------------------------------------------------------------------------------------------
// 5. The thundering herd and JWT signatures (before the fill, which makes the sidecar big)
// ---------------------------------------------------------------------------------------------

const before = emulator.cozeEmulator.exchangeCount
const herd = new Pool(sidecar.address, { connections: 1000, pipelining: 1 })
const statuses = await Promise.all(Array.from({ length: 1000 }, async () => {
  const response = await herd.request({ path: '/token?session_name=cold-key', method: 'GET' })
  await response.body.dump()
  return response.statusCode
}))
await herd.close()
const herdExchanges = emulator.cozeEmulator.exchangeCount - before
const herdOk = statuses.filter((status) => status === 200).length

const signer = { appId: '1000000000001', keyId: kid, privateKey: pair.privateKey, audience: 'api.coze.cn' }
let signatures = 0
const signUntil = performance.now() + 3_000
while (performance.now() < signUntil) {
  await signTokenJwt(signer, Date.now(), { sessionName: 'bench' })
  signatures++
}
const signPerSecond = signatures / 3
await stop(sidecar)
await stop(bare)

// ---------------------------------------------------------------------------------------------
// 4. RSS against cached tokens, in a sidecar of its own
// ---------------------------------------------------------------------------------------------

const checkpoints = [0.1, 0.25, 0.5, 0.75, 1].map((share) => Math.round(NAMES * share))
const filled = await startSidecar()
await fetchText(`${filled.address}/token`)
await pause(1_000)
const rssPoints = [{ tokens: 0, rss: rssOf(filled.child.pid) }]
const fill = await fillNames(filled.address, NAMES, checkpoints, async (done) => {
  await pause(1_000)
  rssPoints.push({ tokens: done, rss: rssOf(filled.child.pid) })
})
await stop(filled)
// The live heap per entry, after a forced GC: TokenCache alone in a process of its own (with
// --expose-gc, which a user's process does not need), tokens shaped as the emulator's, and the
// JSON the route keeps per token. RSS above shows what V8 lets the heap grow to meanwhile.
const heapProbe = await new Promise((resolve, reject) => {
  execFile(process.execPath, ['--expose-gc', '--input-type=module', '-e', `
    import { TokenCache } from '${new URL('../dist/token/cache.js', import.meta.url).href}'
    import { systemClock } from '${new URL('../dist/clock.js', import.meta.url).href}'
    const N = ${NAMES}
    let n = 0
    const json = new WeakMap()
    const cache = new TokenCache({ clock: systemClock, max: N + 1, mint: async () => ({ accessToken: 'czs_' + crypto.randomUUID().replaceAll('-', '') + (n++).toString(36), expiresIn: Math.floor(Date.now() / 1000) + 900 }) })
    async function fill (from, to) {
      for (let i = from; i < to; i += 1000) {
        const tokens = await Promise.all(Array.from({ length: Math.min(1000, to - i) }, (_, j) => { const r = { ttl: 900 }; r.sessionName = 'user-' + (i + j); return cache.get(r, 5000) }))
        for (const token of tokens) json.set(token, JSON.stringify({ access_token: token.accessToken, token_type: 'Bearer', expires_in: token.expiresIn, expires_at: token.expiresAt }))
      }
    }
    const heap = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().heapUsed }
    await fill(0, N / 2)
    const half = heap()
    await fill(N / 2, N)
    console.log(JSON.stringify({ bytesPerEntry: (heap() - half) / (N / 2) }))
    cache.close()
  `], (error, stdout) => error === null ? resolve(JSON.parse(stdout)) : reject(error))
})
const half = rssPoints.find((point) => point.tokens === checkpoints[2])
const all = rssPoints.at(-1)
const perTokenKiB = ((all.rss - half.rss) * 1024) / (all.tokens - half.tokens)

// ---------------------------------------------------------------------------------------------
// 6. The gateway (issue 10) beside a bare @fastify/reply-from proxy to the same upstream: JSON
//    req/s and latency in alternating rounds, SSE per-event latency added (against the upstream
//    directly), and RSS with 1,000 concurrent open streams.
// ---------------------------------------------------------------------------------------------

// The same upstream for both (the emulator, in a process of its own, with an SSE route), the
// gateway in the sidecar (dist/server.js), the proxy a bare Fastify app with @fastify/reply-from
// that sets a fixed Authorization.
const distUrl = new URL('../dist/', import.meta.url).href
const upstream = await start(['--input-type=module', '-e', `
  import Fastify from 'fastify'
  import { cozeEmulator } from '${distUrl}emulator/plugin.js'
  const app = Fastify()
  await app.register(cozeEmulator)
  // Events stamped with the wall clock in ms (sub-ms resolution), to measure each one's trip.
  app.get('/v1/bench/sse', (request, reply) => {
    const n = Number(request.query.n)
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'x-tt-logid': 'bench' })
    let sent = 0
    const timer = setInterval(() => {
      reply.raw.write('event:tick\\ndata:' + (performance.timeOrigin + performance.now()) + '\\n\\n')
      if (++sent >= n) { clearInterval(timer); reply.raw.end() }
    }, Number(request.query.interval))
    request.raw.on('close', () => clearInterval(timer))
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  app.cozeEmulator.registerApp({ appId: '1000000000001', audience: new URL(address).host, keys: [{ kid: process.env.KID, publicKey: process.env.PUBLIC_KEY }] })
  console.log('listening on ' + address)
`], { KID: kid, PUBLIC_KEY: pair.publicKey.export({ type: 'spki', format: 'pem' }) })
const startGateway = () => start(['dist/server.js'], { ...sidecarEnv, COZE_API_BASE: upstream.address, SIDECAR_CACHE_MAX: '10000' })
const gatewayServer = await startGateway()
const benchToken = await fetchText(`${gatewayServer.address}/token?format=text`)
const startProxy = () => start(['--input-type=module', '-e', `
  import Fastify from 'fastify'
  import replyFrom from '@fastify/reply-from'
  const app = Fastify()
  // reply-from's pool allows 128 connections by default; the open-streams test needs 1,000.
  await app.register(replyFrom, { base: '${upstream.address}', undici: { connections: 2000, pipelining: 1 } })
  const rewriteRequestHeaders = (_request, headers) => ({ ...headers, authorization: 'Bearer ${benchToken}' })
  app.all('/v1/*', (request, reply) => reply.from(request.url, { rewriteRequestHeaders }))
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  console.log('listening on ' + address)
`], {})
const proxy = await startProxy()

// The same gateway without its line per request (LOG_LEVEL=warn): what that access log costs.
// It prints no "listening" line at warn, so it gets a port and is polled until it answers.
const quietPort = await freePort()
const quietGateway = {
  child: spawn(process.execPath, ['dist/server.js'], {
    env: { PATH: process.env.PATH, ...sidecarEnv, COZE_API_BASE: upstream.address, SIDECAR_CACHE_MAX: '10000', LOG_LEVEL: 'warn', PORT: String(quietPort) },
    stdio: ['ignore', 'ignore', 'inherit']
  }),
  address: `http://127.0.0.1:${quietPort}`
}
await answered(`${quietGateway.address}/healthz`, 30_000, 20)

const jsonPath = '/v1/users/me'
const placeholder = { authorization: 'Bearer placeholder' }
const gatewayJson = await alternate(
  { url: `${proxy.address}${jsonPath}`, headers: placeholder },
  { url: `${gatewayServer.address}${jsonPath}`, headers: placeholder },
  { url: `${quietGateway.address}${jsonPath}`, headers: placeholder }
)
await stop(quietGateway)

/** One SSE stream of `n` events `interval` ms apart: each event's trip from the upstream, in ms. */
async function sseTrips (base, n, interval) {
  const response = await request(`${base}/v1/bench/sse?n=${n}&interval=${interval}`, { headers: placeholder })
  const trips = []
  let buffer = ''
  for await (const chunk of response.body) {
    const now = performance.timeOrigin + performance.now()
    buffer += chunk
    let end
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const event = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      trips.push(now - Number(/^data:(.*)$/m.exec(event)?.[1]))
    }
  }
  return trips
}
const percentile = (numbers, p) => { const sorted = [...numbers].sort((a, b) => a - b); return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] }
const trips = { direct: [], proxy: [], gateway: [] }
for (let round = 0; round < ROUNDS; round++) {
  trips.direct.push(...await sseTrips(upstream.address, 200, 5))
  trips.proxy.push(...await sseTrips(proxy.address, 200, 5))
  trips.gateway.push(...await sseTrips(gatewayServer.address, 200, 5))
}

/** RSS of `pid` while 1,000 streams through `base` are open (each has had its first event). */
async function rssWithOpenStreams (base, pid) {
  const pool = new Pool(base, { connections: 1000 })
  let firsts = 0
  const bodies = []
  await Promise.all(Array.from({ length: 1000 }, async () => {
    const response = await pool.request({ path: '/v1/bench/sse?n=1000&interval=1000', method: 'GET', headers: placeholder, headersTimeout: 20_000 })
    bodies.push(response.body)
    // Bounded: a proxy that cannot hold 1,000 streams shows as fewer than 1,000, not as a hang.
    const first = await Promise.race([
      new Promise((resolve) => response.body.once('data', () => resolve(true))),
      new Promise((resolve) => setTimeout(resolve, 20_000, false).unref())
    ])
    if (first) firsts++
  }))
  const rss = rssOf(pid)
  for (const body of bodies) body.destroy()
  await pool.destroy()
  return { rss, firsts }
}
await stop(gatewayServer)
await stop(proxy)
// Fresh processes for the open streams, each after one request and a second of idling: a
// process still holding the garbage of the load above collects it while the streams open, which
// made this figure negative in an earlier run.
const freshGateway = await startGateway()
const freshProxy = await startProxy()
for (const server of [freshGateway, freshProxy]) await fetchText(`${server.address}/v1/users/me`).catch(() => {})
await pause(1_000)
const gatewayIdle = { gateway: rssOf(freshGateway.child.pid), proxy: rssOf(freshProxy.child.pid) }
const openStreams = {
  gateway: await rssWithOpenStreams(freshGateway.address, freshGateway.child.pid),
  proxy: await rssWithOpenStreams(freshProxy.address, freshProxy.child.pid)
}
for (const server of [freshGateway, freshProxy, upstream]) await stop(server)

// ---------------------------------------------------------------------------------------------
// 7. The container: idle, and with NAMES cached tokens under --memory 256m
// ---------------------------------------------------------------------------------------------

const IMAGE = 'coze-token-sidecar:bench'
async function docker (...args) {
  return await execFileAsync('docker', args, { maxBuffer: 64 * 1024 * 1024, timeout: 20 * 60_000 })
}
async function benchContainer () {
  if (values['no-container']) return { skipped: '--no-container was given' }
  try {
    await docker('info')
  } catch {
    return { skipped: 'no Docker engine answers `docker info` (scripts/docker-setup.sh starts one, with root)' }
  }
  try {
    await docker('image', 'inspect', 'node:22-bookworm-slim')
  } catch {
    return { skipped: 'the base image node:22-bookworm-slim is missing (scripts/docker-setup.sh builds a stand-in)' }
  }
  const built = performance.now()
  await docker('build', '--network', 'host', '--force-rm', '-t', IMAGE, '.')
  const buildSeconds = (performance.now() - built) / 1000
  const port = await freePort()
  const name = `coze-bench-${process.pid}`
  const { uid, gid } = os.userInfo()
  await docker('run', '-d', '--name', name, '--network', 'host', '--memory', '256m', '--user', `${uid}:${gid}`,
    '-v', `${dir}:/keys:ro`,
    ...Object.entries({ ...sidecarEnv, COZE_PRIVATE_KEY_FILE: '/keys/private_key.pem', HOST: '127.0.0.1', PORT: String(port) })
      .flatMap(([key, value]) => ['-e', `${key}=${value}`]),
    IMAGE)
  const base = `http://127.0.0.1:${port}`
  const memory = async () => {
    const pid = Number((await docker('inspect', '-f', '{{.State.Pid}}', name)).stdout.trim())
    const usage = (await docker('stats', '--no-stream', '--format', '{{.MemUsage}}', name)).stdout.trim()
    return { rss: rssOf(pid), cgroup: usage.split('/')[0].trim() }
  }
  try {
    await answered(`${base}/token`, 60_000, 250)
    await pause(1_000)
    const idle = await memory()
    const containerFill = await fillNames(base, NAMES, [NAMES], () => pause(1_000))
    const full = await memory()
    const state = JSON.parse((await docker('inspect', '-f', '{{json .State}}', name)).stdout)
    return { buildSeconds, idle, full, fill: containerFill, oomKilled: state.OOMKilled, running: state.Running }
  } finally {
    await docker('rm', '-f', name).catch(() => {})
  }
}
const container = await benchContainer().catch((error) => ({ skipped: `the container part failed: ${error.message.split('\n')[0]}` }))

await emulator.close()
rmSync(dir, { recursive: true, force: true })

// ---------------------------------------------------------------------------------------------
// The chart (SVG, written by hand: two small panels, no plotting dependency)
// ---------------------------------------------------------------------------------------------

function chart () {
  const W = 360
  const H = 220
  const pad = { left: 48, right: 12, top: 28, bottom: 36 }
  const plotW = W - pad.left - pad.right
  const plotH = H - pad.top - pad.bottom
  const text = (tx, ty, body, extra = '') => `<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" ${extra}>${body}</text>`
  const maxTokens = all.tokens
  const maxRss = Math.ceil(Math.max(...rssPoints.map((p) => p.rss)) / 50) * 50
  const px = (tokens) => pad.left + (tokens / maxTokens) * plotW
  const py = (rss) => pad.top + plotH - (rss / maxRss) * plotH
  const line = rssPoints.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(p.tokens).toFixed(1)},${py(p.rss).toFixed(1)}`).join(' ')
  const rssPanel = [
    text(pad.left, 16, 'sidecar RSS (MiB) against cached tokens', 'font-weight="bold"'),
    `<path d="M${pad.left},${pad.top} V${pad.top + plotH} H${pad.left + plotW}" stroke="#444" fill="none"/>`,
    ...[0, 0.5, 1].map((f) => text(pad.left - 6, py(maxRss * f) + 4, (maxRss * f).toFixed(0), 'text-anchor="end"')),
    ...[0, 0.5, 1].map((f) => text(px(maxTokens * f), H - pad.bottom + 16, (maxTokens * f).toLocaleString('en'), 'text-anchor="middle"')),
    `<path d="${line}" stroke="#1f77b4" stroke-width="2" fill="none"/>`,
    ...rssPoints.map((p) => `<circle cx="${px(p.tokens).toFixed(1)}" cy="${py(p.rss).toFixed(1)}" r="3" fill="#1f77b4"/>`),
    text(pad.left + 8, pad.top + 14, `${perTokenKiB.toFixed(2)} KiB per token (${checkpoints[2].toLocaleString('en')} to ${maxTokens.toLocaleString('en')})`)
  ]
  const percentiles = [['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'], ['p99.9', 'p999']]
  const maxMs = Math.max(1, ...percentiles.flatMap(([, key]) => [cached.a[key], cached.b[key]]))
  const group = plotW / percentiles.length
  const bar = group / 3
  const bars = percentiles.flatMap(([label, key], i) => {
    const gx = W + pad.left + i * group
    return [[cached.a[key], '#999', 0], [cached.b[key], '#1f77b4', 1]].map(([value, colour, k]) => {
      const h = (value / maxMs) * plotH
      return `<rect x="${(gx + bar * (k + 0.5)).toFixed(1)}" y="${(pad.top + plotH - h).toFixed(1)}" width="${bar.toFixed(1)}" height="${h.toFixed(1)}" fill="${colour}"/>`
    }).concat(text(gx + group / 2, H - pad.bottom + 16, label, 'text-anchor="middle"'))
  })
  const latencyPanel = [
    text(W + pad.left, 16, 'cached GET /token latency (ms)', 'font-weight="bold"'),
    `<path d="M${W + pad.left},${pad.top} V${pad.top + plotH} H${W + pad.left + plotW}" stroke="#444" fill="none"/>`,
    text(W + pad.left - 6, pad.top + 4, String(maxMs), 'text-anchor="end"'),
    text(W + pad.left - 6, pad.top + plotH + 4, '0', 'text-anchor="end"'),
    ...bars,
    `<rect x="${W + pad.left + 8}" y="${pad.top + 4}" width="10" height="10" fill="#999"/>`,
    text(W + pad.left + 22, pad.top + 13, 'bare Fastify'),
    `<rect x="${W + pad.left + 100}" y="${pad.top + 4}" width="10" height="10" fill="#1f77b4"/>`,
    text(W + pad.left + 114, pad.top + 13, 'sidecar')
  ]
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H}" viewBox="0 0 ${2 * W} ${H}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
${[...rssPanel, ...latencyPanel].join('\n')}
</svg>
`
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/** The median of each round's ratio b/a (rounds are taken in turn, so each pair shared the machine's mood). */
const pairedRatio = (result, b = 'b') => medianOf(result.rounds[b].map((round, i) => round.rps / result.rounds.a[i].rps))
const ratio = {
  idle: startFigures.sidecarRss / startFigures.bareRss,
  start: startFigures.sidecarMs / startFigures.bareMs,
  perToken: perTokenKiB / 1.5,
  cached: cached.b.rps / cached.a.rps,
  callers: callers.b.rps / callers.a.rps,
  gateway: gatewayJson.b.rps / gatewayJson.a.rps
}
const tripRow = (name, numbers) => `| ${name} | ${percentile(numbers, 0.5).toFixed(2)} | ${percentile(numbers, 0.99).toFixed(2)} | ${(percentile(numbers, 0.5) - percentile(trips.direct, 0.5)).toFixed(2)} | ${(percentile(numbers, 0.99) - percentile(trips.direct, 0.99)).toFixed(2)} |`
const perStream = (which) => (((openStreams[which].rss - gatewayIdle[which]) * 1024) / Math.max(1, openStreams[which].firsts)).toFixed(1)
const row = (label, r) => `| ${label} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p90} | ${r.p99} | ${r.p999} | ${r.errors} |`
const containerSection = container.skipped !== undefined
  ? `Skipped: ${container.skipped}.`
  : `Image \`${IMAGE}\` (built in ${container.buildSeconds.toFixed(0)} s), \`docker run --memory 256m\`, the node process's RSS and the
container's memory as \`docker stats\` shows it:

| state | node RSS | container memory |
| --- | ---: | ---: |
| idle, after the first token | ${mib(container.idle.rss)} | ${container.idle.cgroup} |
| ${NAMES.toLocaleString('en')} cached tokens | ${mib(container.full.rss)} | ${container.full.cgroup} |

Per cached token under the limit: ${(((container.full.rss - container.idle.rss) * 1024) / NAMES).toFixed(2)} KiB of RSS (V8 sizes its heap to the container's memory, so it collects sooner than on the host).
${container.fill.failed} of ${NAMES.toLocaleString('en')} requests failed; OOM-killed: ${container.oomKilled ? '**yes**' : 'no'}; still running: ${container.running ? 'yes' : '**no**'}.`

const cpus = os.cpus()
const report = `# Benchmarks

Measured by \`npm run bench\` (scripts/bench.mjs) on ${new Date().toISOString().slice(0, 10)}; the chart is
[docs/benchmarks.svg](docs/benchmarks.svg), written by the same run.

Machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM,
${os.type()} ${os.release()}, Node.js ${process.version}, load average ${os.loadavg().map((n) => n.toFixed(1)).join(' / ')} at the end.
The machine is shared: the load generator (autocannon), the emulator and the servers share its
cores with other work, so every figure is measured beside its peer in the same run, in
alternating rounds, and the medians are compared. Run-to-run drift is 10 % or more.

![RSS against cached tokens; latency percentiles](docs/benchmarks.svg)

## The figures of issue 12

| figure | sidecar | peer | ratio | target |
| --- | ---: | ---: | ---: | --- |
| idle RSS after the first token, 1 s after it (\`node dist/server.js\` vs bare Fastify) | ${mib(startFigures.sidecarRss)} | ${mib(startFigures.bareRss)} | ${x(ratio.idle)} | ≤ 1.15× |
| idle RSS after the first token, ${SETTLE_MS / 1000} s after it (V8's memory reducer has run in both) | ${mib(startFigures.sidecarSettled)} | ${mib(startFigures.bareSettled)} | ${x(startFigures.sidecarSettled / startFigures.bareSettled)} | ≤ 1.15× |
| start to the first \`/token\` answer, its exchange included | ${ms(startFigures.sidecarMs)} | ${ms(startFigures.bareMs)} | ${x(ratio.start)} | ≤ 1.5× |
| the same start in CPU time (every thread of the process, until that answer) | ${ms(startFigures.sidecarCpu)} | ${ms(startFigures.bareCpu)} | ${x(startFigures.sidecarCpu / startFigures.bareCpu)} | |
| RSS per cached token, slope from ${checkpoints[2].toLocaleString('en')} to ${NAMES.toLocaleString('en')} session names | ${perTokenKiB.toFixed(2)} KiB | target 1.5 KiB | ${x(ratio.perToken)} of the target | ≤ 1.5 KiB |
| live heap per cached token after a forced GC (TokenCache and the route's JSON, same slope) | ${(heapProbe.bytesPerEntry / 1024).toFixed(2)} KiB | target 1.5 KiB | ${x(heapProbe.bytesPerEntry / 1024 / 1.5)} of the target | |
| cached \`GET /token\`, requests/s vs the bare route with the same body | ${cached.b.rps.toFixed(0)} | ${cached.a.rps.toFixed(0)} | ${x(ratio.cached)} (round by round: ${x(pairedRatio(cached))}) | ≥ 1.0× |
| gateway JSON requests/s vs a bare \`@fastify/reply-from\` proxy | ${gatewayJson.b.rps.toFixed(0)} | ${gatewayJson.a.rps.toFixed(0)} | ${x(ratio.gateway)} (round by round: ${x(pairedRatio(gatewayJson))}) | ≥ 0.90× |
| the same at LOG_LEVEL=warn (no access line per request) | ${gatewayJson.c.rps.toFixed(0)} | ${gatewayJson.a.rps.toFixed(0)} | ${x(gatewayJson.c.rps / gatewayJson.a.rps)} (round by round: ${x(pairedRatio(gatewayJson, 'c'))}) | |
| gateway SSE per-event latency added at p99 (vs the upstream directly) | ${(percentile(trips.gateway, 0.99) - percentile(trips.direct, 0.99)).toFixed(2)} ms | proxy ${(percentile(trips.proxy, 0.99) - percentile(trips.direct, 0.99)).toFixed(2)} ms | | ≤ 5 ms |
| RSS per open SSE stream through the gateway (1,000 open) | ${perStream('gateway')} KiB | proxy ${perStream('proxy')} KiB | ${x(Number(perStream('gateway')) / Number(perStream('proxy')))} | |

Start and idle RSS: ${START_ROUNDS} alternating starts of each, the median; the sidecar with a
Coze app and its key and every other setting at its default, as a user starts it. Every start (ms):
sidecar ${list(startRounds.sidecar.map((r) => r.firstAnswerMs))}; bare ${list(startRounds.bare.map((r) => r.firstAnswerMs))}.
Every start's CPU time (ms): sidecar ${list(startRounds.sidecar.map((r) => r.cpuMs))}; bare ${list(startRounds.bare.map((r) => r.cpuMs))}.
Every idle RSS (MiB): sidecar ${list(startRounds.sidecar.map((r) => r.rss), 1)}; bare ${list(startRounds.bare.map((r) => r.rss), 1)}.
Every idle RSS ${SETTLE_MS / 1000} s after the first answer (MiB): sidecar ${list(settledRounds.sidecar, 1)}; bare ${list(settledRounds.bare, 1)}.

The peer bundled into one file the way the service is (same esbuild settings; the peer of the
table is the bare app as written): first answer ${ms(startFigures.bundledMs)}, CPU ${ms(startFigures.bundledCpu)}, idle RSS ${mib(startFigures.bundledRss)};
the sidecar's start is ${x(startFigures.sidecarMs / startFigures.bundledMs)} of that, its RSS ${x(startFigures.sidecarRss / startFigures.bundledRss)}.

With \`node ${SEMI_SPACE_FLAG} dist/server.js\` (in the same rotation, not set by the image):
idle RSS ${mib(startFigures.flaggedRss)} (${x(startFigures.flaggedRss / startFigures.bareRss)} the bare app; every start ${list(startRounds.flagged.map((r) => r.rss), 1)} MiB),
first answer ${ms(startFigures.flaggedMs)}.

With \`node ${LIFTOFF_FLAG} dist/server.js\` (undici's WebAssembly HTTP parser left on V8's baseline
compiler; in the same rotation, not set anywhere): idle RSS ${mib(startFigures.liftoffRss)}
(${x(startFigures.liftoffRss / startFigures.bareRss)} the bare app; every start ${list(startRounds.liftoff.map((r) => r.rss), 1)} MiB),
first answer ${ms(startFigures.liftoffMs)}, CPU ${ms(startFigures.liftoffCpu)}.

## Cached \`GET /token\` beside a bare Fastify route

${connections} connections, the same JSON body (${Buffer.byteLength(sampleBody)} bytes); after a 2 s warm-up of each,
${ROUNDS} alternating rounds of ${duration} s; the median round of each (latency in ms).

| route | requests/s | p50 | p90 | p99 | p99.9 | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${row('bare Fastify route', cached.a)}
${row('sidecar `GET /token` (cached)', cached.b)}
${row(`sidecar with \`${SEMI_SPACE_FLAG}\``, cached.c)}

Every round (req/s): bare ${list(cached.rounds.a.map((r) => r.rps))}; sidecar ${list(cached.rounds.b.map((r) => r.rps))}; with the flag ${list(cached.rounds.c.map((r) => r.rps))}.

## A caller's rules on every request

\`GET /token?session_name=billing-1\`, cached, on the sidecar without callers and on one with a
callers file of 20 callers (the secret hashed and compared with every digest, then the caller's
rules checked: \`billing-*\`, \`max_ttl\` 600); ${ROUNDS} alternating rounds of ${duration} s, medians.

| sidecar | requests/s | p50 | p90 | p99 | p99.9 | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${row('no callers (anonymous)', callers.a)}
${row('a caller of 20, its rules checked', callers.b)}

Ratio of the medians: ${x(ratio.callers)}.

## RSS against cached tokens

A sidecar of its own, ${NAMES.toLocaleString('en')} distinct session names (each a real exchange with the
emulator, 500 at a time over 100 connections) in ${fill.seconds.toFixed(1)} s (${(NAMES / fill.seconds).toFixed(0)} new tokens/s),
${fill.failed} failed; RSS read a second after each step, without forcing a GC (as a user's process runs).

| cached tokens | ${rssPoints.map((p) => p.tokens.toLocaleString('en')).join(' | ')} |
| --- | ${rssPoints.map(() => '---:').join(' | ')} |
| RSS (MiB) | ${rssPoints.map((p) => p.rss.toFixed(1)).join(' | ')} |

## The gateway beside a bare \`@fastify/reply-from\` proxy

The same upstream for both (the emulator, in a process of its own), the gateway in the sidecar
(\`dist/server.js\`, logging its line per request at info), the proxy a bare Fastify app with
\`@fastify/reply-from\` that sets a fixed \`Authorization\`; each in its own process.

\`GET ${jsonPath}\` (JSON, ${connections} connections, ${ROUNDS} alternating rounds of ${duration} s after a 2 s warm-up, the median round; latency in ms):

| through | requests/s | p50 | p90 | p99 | p99.9 | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${row('bare reply-from proxy', gatewayJson.a)}
${row('the gateway', gatewayJson.b)}
${row('the gateway at LOG_LEVEL=warn (no line per request)', gatewayJson.c)}

Every round (req/s): proxy ${list(gatewayJson.rounds.a.map((r) => r.rps))}; gateway ${list(gatewayJson.rounds.b.map((r) => r.rps))}; at warn ${list(gatewayJson.rounds.c.map((r) => r.rps))}.
At LOG_LEVEL=warn the gateway runs at ${x(gatewayJson.c.rps / gatewayJson.a.rps)} the proxy's requests/s; the difference between the two gateway rows is what its line per request costs (built, redacted by pino, written).
Ratio of the medians: ${x(ratio.gateway)} the proxy's requests/s (target ≥ 0.90×); added
latency p50 ${(gatewayJson.b.p50 - gatewayJson.a.p50).toFixed(1)} ms, p99 ${(gatewayJson.b.p99 - gatewayJson.a.p99).toFixed(1)} ms.

SSE: ${ROUNDS} rounds of one stream of 200 events 5 ms apart, each path in turn; an event's trip is
from the upstream's write to the client's read (wall clock, same machine), in ms:

| through | p50 | p99 | added p50 | added p99 |
| --- | ---: | ---: | ---: | ---: |
${tripRow('the upstream directly', trips.direct)}
${tripRow('bare reply-from proxy', trips.proxy)}
${tripRow('the gateway', trips.gateway)}

Target: the gateway adds at most 5 ms at p99.

1,000 concurrent open SSE streams (each had its first event when measured):

| process | RSS idle | RSS with 1,000 open streams | per open stream | streams open |
| --- | ---: | ---: | ---: | ---: |
| the sidecar (gateway) | ${mib(gatewayIdle.gateway)} | ${mib(openStreams.gateway.rss)} | ${perStream('gateway')} KiB | ${openStreams.gateway.firsts} |
| bare reply-from proxy | ${mib(gatewayIdle.proxy)} | ${mib(openStreams.proxy.rss)} | ${perStream('proxy')} KiB | ${openStreams.proxy.firsts} |

## The container

${containerSection}

## The rest

| what | result |
| --- | --- |
| 1,000 concurrent requests on a cold key | ${herdExchanges} exchange(s) with Coze, ${herdOk} × 200 |
| JWT signatures (RS256, RSA-2048) | ${signPerSecond.toFixed(0)} per second, one core |
`
console.log(report)
if (values.write) {
  writeFileSync('BENCHMARKS.md', report + readNotes())
  writeFileSync('docs/benchmarks.svg', chart())
}

/** The hand-written part of BENCHMARKS.md (from "## Where the memory and the time went" on), kept across runs. */
function readNotes () {
  const marker = '\n## Where the memory and the time went'
  const old = existsSync('BENCHMARKS.md') ? readFileSync('BENCHMARKS.md', 'utf8') : ''
  const at = old.indexOf(marker)
  return at < 0 ? '' : old.slice(at)
}
process.exit(herdExchanges === 1 ? 0 : 1)
