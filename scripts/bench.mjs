#!/usr/bin/env node
/**
 * npm run bench -- [--duration 10] [--connections 100] [--write]
 *
 * All in one run, on one machine, against the built service (dist/):
 *   1. cached GET /token on the sidecar beside a bare Fastify route answering a JSON body of the
 *      same size, each in its own process, measured alike with autocannon: req/s, p50/p99, ratio;
 *   2. 1,000 concurrent requests on a cold key: exchanges at the emulator (must be 1);
 *   3. JWT signatures per second (RS256, 2048-bit key);
 *   4. the sidecar's RSS after the load and after 10,000 distinct session names;
 *   5. the same cached GET /token by a caller of a callers file (20 callers, the caller's rules
 *      checked on every request) beside the sidecar without one.
 *   6. the gateway beside a bare @fastify/reply-from proxy to the same upstream (an emulator in a
 *      process of its own): JSON req/s and latency in alternating rounds, SSE per-event latency
 *      added (against the upstream directly), and RSS with 1,000 concurrent open streams.
 * Prints a Markdown report; --write also writes it to BENCHMARKS.md. Not part of the test suite.
 */
import { createHash, generateKeyPairSync } from 'node:crypto'
import { spawn } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import { Pool, request } from 'undici'
import { signTokenJwt } from '../dist/coze/jwt.js'
import { cozeEmulator } from '../dist/emulator/plugin.js'
import { consoleFingerprint } from '../dist/emulator/state.js'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '100' },
    write: { type: 'boolean', default: false }
  }
})
const duration = Number(values.duration)
const connections = Number(values.connections)

const dir = mkdtempSync(join(os.tmpdir(), 'coze-bench-'))
const pair = generateKeyPairSync('rsa', { modulusLength: 2048 })
const keyFile = join(dir, 'private_key.pem')
writeFileSync(keyFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
const emulator = Fastify()
await emulator.register(cozeEmulator)
const emulatorUrl = await emulator.listen({ host: '127.0.0.1', port: 0 })
const kid = consoleFingerprint(pair.publicKey)
emulator.cozeEmulator.registerApp({ appId: '1000000000001', audience: new URL(emulatorUrl).host, keys: [{ kid, publicKey: pair.publicKey }] })

/**
 * Starts `node <args>` and resolves with its process and the address it printed. Its stdout goes
 * to a file, as a service's logs would: a pipe to this busy process would throttle every log line.
 */
let started = 0
async function start (args, env) {
  const logFile = join(dir, `child-${started++}.log`)
  const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', openSync(logFile, 'w'), 'inherit'] })
  let exited
  child.on('exit', (code) => { exited = code })
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(50)) {
    const match = /(?:Server listening at|listening on) (http:\/\/[\d.:]+)/.exec(readFileSync(logFile, 'utf8'))
    if (match !== null) return { child, address: match[1] }
    if (exited !== undefined) throw new Error(`${args.join(' ')} exited with ${exited}`)
  }
  throw new Error(`${args.join(' ')} did not start within 30 s`)
}
const rssOf = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

const sidecar = await start(['dist/server.js'], {
  COZE_API_BASE: emulatorUrl,
  COZE_APP_ID: '1000000000001',
  COZE_KEY_ID: kid,
  COZE_PRIVATE_KEY_FILE: keyFile,
  PORT: '0',
  LOG_LEVEL: 'info',
  // The limits protect Coze's quota in production; here they would only measure themselves.
  SIDECAR_EXCHANGE_RATE: '100000',
  SIDECAR_EXCHANGE_BURST: '100000'
})
const rssIdle = rssOf(sidecar.child.pid)

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
const withCallers = await start(['dist/server.js'], {
  COZE_API_BASE: emulatorUrl,
  COZE_APP_ID: '1000000000001',
  COZE_KEY_ID: kid,
  COZE_PRIVATE_KEY_FILE: keyFile,
  PORT: '0',
  LOG_LEVEL: 'info',
  SIDECAR_CALLERS_FILE: callersFile
})
const callerHeaders = { authorization: `Bearer ${callerSecret}` }
const callerUrl = `${withCallers.address}/token?session_name=billing-1`
const plainUrl = `${sidecar.address}/token?session_name=billing-1`

// The body the bare route answers with: the sidecar's own answer, byte for byte the same size.
const sample = await request(`${sidecar.address}/token`)
const sampleBody = await sample.body.text()
const bare = await start(['--input-type=module', '-e', `
  import Fastify from 'fastify'
  const body = ${sampleBody}
  const app = Fastify()
  app.get('/token', async () => body)
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  console.log('listening on ' + address)
`], {})

async function load (url, headers = {}) {
  const result = await autocannon({ url, connections, duration, headers })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}
// A shared machine drifts by 10 % or more between runs, so the two are measured in alternating
// rounds after a warm-up of each, and compared by their medians.
await autocannon({ url: `${bare.address}/token`, connections, duration: 2 })
await autocannon({ url: `${sidecar.address}/token`, connections, duration: 2 })
const ROUNDS = 3
const rounds = { bare: [], token: [] }
for (let round = 0; round < ROUNDS; round++) {
  rounds.bare.push(await load(`${bare.address}/token`))
  rounds.token.push(await load(`${sidecar.address}/token`))
}
const median = (results) => [...results].sort((a, b) => a.rps - b.rps)[Math.floor(results.length / 2)]
const bareResult = median(rounds.bare)
const tokenResult = median(rounds.token)
const rssAfterLoad = rssOf(sidecar.child.pid)

// A caller's rules on every request, against the same request without them.
await autocannon({ url: plainUrl, connections, duration: 2 })
await autocannon({ url: callerUrl, connections, duration: 2, headers: callerHeaders })
const callerRounds = { plain: [], caller: [] }
for (let round = 0; round < ROUNDS; round++) {
  callerRounds.plain.push(await load(plainUrl))
  callerRounds.caller.push(await load(callerUrl, callerHeaders))
}
const plainResult = median(callerRounds.plain)
const callerResult = median(callerRounds.caller)
withCallers.child.kill('SIGTERM')

// 1,000 concurrent requests on a cold key.
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

// JWT signatures per second.
const signer = { appId: '1000000000001', keyId: kid, privateKey: pair.privateKey, audience: 'api.coze.cn' }
let signatures = 0
const signUntil = performance.now() + 3_000
while (performance.now() < signUntil) {
  await signTokenJwt(signer, Date.now(), { sessionName: 'bench' })
  signatures++
}
const signPerSecond = signatures / 3

// 10,000 distinct session names, 200 at a time.
const names = new Pool(sidecar.address, { connections: 200 })
const namesStarted = performance.now()
for (let batch = 0; batch < 50; batch++) {
  await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const response = await names.request({ path: `/token?session_name=user-${batch * 200 + i}`, method: 'GET' })
    await response.body.dump()
  }))
}
const namesSeconds = (performance.now() - namesStarted) / 1000
await names.close()
const rssAfterNames = rssOf(sidecar.child.pid)

// 5. The gateway beside a bare @fastify/reply-from proxy, both in front of one upstream process.
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
const gateway = await start(['dist/server.js'], {
  COZE_API_BASE: upstream.address,
  COZE_APP_ID: '1000000000001',
  COZE_KEY_ID: kid,
  COZE_PRIVATE_KEY_FILE: keyFile,
  PORT: '0',
  LOG_LEVEL: 'info'
})
const benchToken = await (await request(`${gateway.address}/token?format=text`)).body.text()
const proxy = await start(['--input-type=module', '-e', `
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

const jsonPath = '/v1/users/me'
const loadJson = async (base) => {
  const result = await autocannon({ url: `${base}${jsonPath}`, connections, duration, headers: { authorization: 'Bearer placeholder' } })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx }
}
await autocannon({ url: `${proxy.address}${jsonPath}`, connections, duration: 2 })
await autocannon({ url: `${gateway.address}${jsonPath}`, connections, duration: 2 })
const jsonRounds = { proxy: [], gateway: [] }
for (let round = 0; round < ROUNDS; round++) {
  jsonRounds.proxy.push(await loadJson(proxy.address))
  jsonRounds.gateway.push(await loadJson(gateway.address))
}
const proxyJson = median(jsonRounds.proxy)
const gatewayJson = median(jsonRounds.gateway)

/** One SSE stream of `n` events `interval` ms apart: each event's trip from the upstream, in ms. */
async function sseTrips (base, n, interval) {
  const response = await request(`${base}/v1/bench/sse?n=${n}&interval=${interval}`, { headers: { authorization: 'Bearer placeholder' } })
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
const percentile = (values, p) => { const sorted = [...values].sort((a, b) => a - b); return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] }
const trips = { direct: [], proxy: [], gateway: [] }
for (let round = 0; round < ROUNDS; round++) {
  trips.direct.push(...await sseTrips(upstream.address, 200, 5))
  trips.proxy.push(...await sseTrips(proxy.address, 200, 5))
  trips.gateway.push(...await sseTrips(gateway.address, 200, 5))
}
const tripRow = (name, values) => `| ${name} | ${percentile(values, 0.5).toFixed(2)} | ${percentile(values, 0.99).toFixed(2)} | ${(percentile(values, 0.5) - percentile(trips.direct, 0.5)).toFixed(2)} | ${(percentile(values, 0.99) - percentile(trips.direct, 0.99)).toFixed(2)} |`

/** RSS of `pid` while 1,000 streams through `base` are open (each has had its first event). */
async function rssWithOpenStreams (base, pid) {
  const pool = new Pool(base, { connections: 1000 })
  let firsts = 0
  const bodies = []
  await Promise.all(Array.from({ length: 1000 }, async () => {
    const response = await pool.request({ path: '/v1/bench/sse?n=1000&interval=1000', method: 'GET', headers: { authorization: 'Bearer placeholder' }, headersTimeout: 20_000 })
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
const rssGatewayIdle = rssOf(gateway.child.pid)
const rssProxyIdle = rssOf(proxy.child.pid)
const openGateway = await rssWithOpenStreams(gateway.address, gateway.child.pid)
const openProxy = await rssWithOpenStreams(proxy.address, proxy.child.pid)
for (const child of [gateway.child, proxy.child, upstream.child]) child.kill('SIGTERM')

sidecar.child.kill('SIGTERM')
bare.child.kill('SIGTERM')
await emulator.close()
rmSync(dir, { recursive: true, force: true })

const ratio = tokenResult.rps / bareResult.rps
const gatewayRatio = gatewayJson.rps / proxyJson.rps
const cpus = os.cpus()
const report = `# Benchmarks

Measured by \`npm run bench\` (scripts/bench.mjs) on ${new Date().toISOString().slice(0, 10)}.

Machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM,
${os.type()} ${os.release()}, Node.js ${process.version}. The load generator (autocannon), the
emulator and the two servers share the machine; each server is its own process.

## Cached \`GET /token\` beside a bare Fastify route

${connections} connections, the same JSON body size (${Buffer.byteLength(sampleBody)} bytes); after a 2 s
warm-up of each, ${ROUNDS} alternating rounds of ${duration} s; the median round of each.

| route | requests/s | p50 ms | p99 ms | errors | every round (req/s) |
| --- | ---: | ---: | ---: | ---: | --- |
| bare Fastify route | ${bareResult.rps.toFixed(0)} | ${bareResult.p50} | ${bareResult.p99} | ${bareResult.errors} | ${rounds.bare.map((r) => r.rps.toFixed(0)).join(', ')} |
| sidecar \`GET /token\` (cached) | ${tokenResult.rps.toFixed(0)} | ${tokenResult.p50} | ${tokenResult.p99} | ${tokenResult.errors} | ${rounds.token.map((r) => r.rps.toFixed(0)).join(', ')} |

Ratio of the medians: **${ratio.toFixed(2)}×** the bare route's requests/s (target ≥ 0.90×).

## A caller's rules on every request

\`GET /token?session_name=billing-1\`, cached, on the sidecar without callers and on one with a
callers file of 20 callers (the secret hashed and compared with every digest, then the caller's
rules checked: \`billing-*\`, \`max_ttl\` 600); ${ROUNDS} alternating rounds of ${duration} s, medians.

| sidecar | requests/s | p50 ms | p99 ms | errors | every round (req/s) |
| --- | ---: | ---: | ---: | ---: | --- |
| no callers (anonymous) | ${plainResult.rps.toFixed(0)} | ${plainResult.p50} | ${plainResult.p99} | ${plainResult.errors} | ${callerRounds.plain.map((r) => r.rps.toFixed(0)).join(', ')} |
| a caller of 20, its rules checked | ${callerResult.rps.toFixed(0)} | ${callerResult.p50} | ${callerResult.p99} | ${callerResult.errors} | ${callerRounds.caller.map((r) => r.rps.toFixed(0)).join(', ')} |

Ratio of the medians: **${(callerResult.rps / plainResult.rps).toFixed(2)}×**.

## The rest

| what | result |
| --- | --- |
| 1,000 concurrent requests on a cold key | ${herdExchanges} exchange(s) with Coze, ${herdOk} × 200 |
| JWT signatures (RS256, RSA-2048) | ${signPerSecond.toFixed(0)} per second, one core |
| 10,000 distinct session names | ${namesSeconds.toFixed(1)} s (${(10_000 / namesSeconds).toFixed(0)} new tokens/s, each a real exchange with the emulator) |
| sidecar RSS idle | ${rssIdle.toFixed(1)} MiB |
| sidecar RSS after the load | ${rssAfterLoad.toFixed(1)} MiB |
| sidecar RSS after 10,000 session names | ${rssAfterNames.toFixed(1)} MiB |

## The gateway beside a bare \`@fastify/reply-from\` proxy

The same upstream for both (the emulator, in a process of its own), the gateway in the sidecar
(\`dist/server.js\`, logging its line per request at info), the proxy a bare Fastify app with
\`@fastify/reply-from\` that sets a fixed \`Authorization\`; each in its own process.

\`GET ${jsonPath}\` (JSON, ${connections} connections, ${ROUNDS} alternating rounds of ${duration} s after a 2 s warm-up, the median round):

| through | requests/s | p50 ms | p99 ms | errors | every round (req/s) |
| --- | ---: | ---: | ---: | ---: | --- |
| bare reply-from proxy | ${proxyJson.rps.toFixed(0)} | ${proxyJson.p50} | ${proxyJson.p99} | ${proxyJson.errors} | ${jsonRounds.proxy.map((r) => r.rps.toFixed(0)).join(', ')} |
| the gateway | ${gatewayJson.rps.toFixed(0)} | ${gatewayJson.p50} | ${gatewayJson.p99} | ${gatewayJson.errors} | ${jsonRounds.gateway.map((r) => r.rps.toFixed(0)).join(', ')} |

Ratio of the medians: **${gatewayRatio.toFixed(2)}×** the proxy's requests/s (target ≥ 0.90×); added
latency p50 ${(gatewayJson.p50 - proxyJson.p50).toFixed(1)} ms, p99 ${(gatewayJson.p99 - proxyJson.p99).toFixed(1)} ms.

SSE: ${ROUNDS} rounds of one stream of 200 events 5 ms apart, each path in turn; an event's trip is
from the upstream's write to the client's read (wall clock, same machine), in ms:

| through | p50 | p99 | added p50 | added p99 |
| --- | ---: | ---: | ---: | ---: |
${tripRow('the upstream directly', trips.direct)}
${tripRow('bare reply-from proxy', trips.proxy)}
${tripRow('the gateway', trips.gateway)}

Target: the gateway adds at most 5 ms at p99.

1,000 concurrent open SSE streams (each had its first event when measured):

| process | RSS idle MiB | RSS with 1,000 open streams MiB | streams open |
| --- | ---: | ---: | ---: |
| the sidecar (gateway) | ${rssGatewayIdle.toFixed(1)} | ${openGateway.rss.toFixed(1)} | ${openGateway.firsts} |
| bare reply-from proxy | ${rssProxyIdle.toFixed(1)} | ${openProxy.rss.toFixed(1)} | ${openProxy.firsts} |

## Where the time went

A cached \`GET /token\` first measured 0.42× the bare route. CPU profiles of both under the same
load (\`node --cpu-prof\`) showed the kernel's \`writev\` and idle time dominating both; the
difference was ours, per request:

| cost (share of a cached /token) | fix |
| --- | --- |
| a pino child logger per request, with redaction (~20 %) | no per-request child: the service logs per exchange; the request id goes into request-scoped lines by hand |
| Fastify's request lines at debug, built even when discarded (~6 %) | built only when debug is on |
| \`expires_at\` formatted and the JSON serialized on every hit | once per token, by a serializer compiled from the route's response schema |
| two promise hops on a hit | hits are served synchronously (\`TokenCache.cached\`) |
| SHA-256 of every cache key | only keys over 256 characters are hashed |
| three hooks (two \`onRequest\`, one \`onSend\`) | one guard hook; shutdown sweeps idle connections instead of a per-request hook |
| the Host check's regular expressions | decisions memoized per \`Host\` value (bounded) |

Run-to-run drift on a shared machine is 10 % or more, so the two servers are measured in
alternating rounds and compared by their medians.
`
console.log(report)
if (values.write) writeFileSync('BENCHMARKS.md', report)
process.exit(herdExchanges === 1 ? 0 : 1)
