#!/usr/bin/env node
/**
 * npm run soak -- [--duration 600] [--rps 300] [--concurrency 32] [--sessions 200] [--ttl 60]
 *                 [--fault-every 3] [--outage 90]
 *
 * Runs the built sidecar (dist/server.js) as its own process against the Coze emulator (in this
 * process), drives steady load at it for --duration seconds while injecting random faults (500,
 * 429, slow, hung and dropped answers, HTML, answers without a token or already expired) and one
 * outage longer than a token's life, then prints: requests, errors by code, latency percentiles,
 * exchanges, expired tokens served (must be 0), hung callers (must be 0), and the sidecar's RSS at
 * start and end. Not part of the test suite.
 */
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { scratchEmulator } from './scratch-emulator.mjs'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    rps: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '32' },
    sessions: { type: 'string', default: '200' },
    ttl: { type: 'string', default: '60' },
    'fault-every': { type: 'string', default: '3' },
    outage: { type: 'string', default: '90' }
  }
})
const durationMs = Number(values.duration) * 1000
const rps = Number(values.rps)
const concurrency = Number(values.concurrency)
const sessions = Number(values.sessions)
const ttl = Number(values.ttl)
const faultEveryMs = Number(values['fault-every']) * 1000
const outageMs = Number(values.outage) * 1000
const DEADLINE_S = 5

// The emulator, with one app whose key is made here.
const { dir, keyFile, emulator, emulatorUrl, kid } = await scratchEmulator('coze-soak-')
const state = emulator.cozeEmulator

// The sidecar, as users run it.
const sidecar = spawn(process.execPath, ['dist/server.js'], {
  env: {
    PATH: process.env.PATH,
    COZE_API_BASE: emulatorUrl,
    COZE_APP_ID: '1000000000001',
    COZE_KEY_ID: kid,
    COZE_PRIVATE_KEY_FILE: keyFile,
    COZE_TOKEN_TTL: String(ttl),
    PORT: '0',
    LOG_LEVEL: 'info',
    SIDECAR_REQUEST_DEADLINE: String(DEADLINE_S),
    SIDECAR_EXCHANGE_RATE: '1000',
    SIDECAR_EXCHANGE_BURST: '1000'
  },
  stdio: ['ignore', 'pipe', 'inherit']
})
let exchangeLines = 0
const address = await new Promise((resolve, reject) => {
  let out = ''
  // The pipe is read to the end, or a full pipe would stall the sidecar's logging.
  sidecar.stdout.on('data', (chunk) => {
    out += chunk
    const lines = out.split('\n')
    out = lines.pop()
    for (const line of lines) {
      const match = /Server listening at (http:\/\/[\d.:]+)/.exec(line)
      if (match !== null) resolve(match[1])
      if (line.includes('"exchange":')) exchangeLines++
    }
  })
  sidecar.on('exit', (code) => reject(new Error(`the sidecar exited with ${code}`)))
})
const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${sidecar.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

const pool = new Pool(address, { connections: concurrency })
const latencies = []
const outcomes = new Map()
let requests = 0
let expiredServed = 0
let hung = 0
const count = (key) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1)

/** One caller: steady requests for random session names (a tenth for the default token). */
async function worker (until) {
  const interval = (concurrency / rps) * 1000
  let next = performance.now() + Math.random() * interval
  while (performance.now() < until) {
    const wait = next - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    next += interval
    const session = Math.random() < 0.1 ? '' : `&session_name=user-${Math.floor(Math.random() * sessions)}`
    const started = performance.now()
    try {
      const response = await pool.request({ path: `/token?${session}`, method: 'GET' })
      const body = await response.body.json()
      const ms = performance.now() - started
      latencies.push(ms)
      if (ms > (DEADLINE_S + 1) * 1000) hung++
      if (response.statusCode === 200) {
        count('200')
        if (body.expires_in <= Date.now() / 1000) expiredServed++
      } else {
        count(`${response.statusCode} ${body.code}`)
      }
    } catch (error) {
      count(`client error ${error.code ?? error.message}`)
    }
    requests++
  }
}

const FAULTS = [
  () => state.injectFault({ kind: 'status', status: 500 }, 1 + Math.floor(Math.random() * 3)),
  () => state.injectFault({ kind: 'status', status: 503 }, 1 + Math.floor(Math.random() * 6)),
  () => state.injectFault({ kind: 'status', status: 429, retryAfter: '1' }, 2),
  () => state.injectFault({ kind: 'delay', ms: 300 + Math.floor(Math.random() * 1500) }, 3),
  () => state.injectFault({ kind: 'hang' }),
  () => state.injectFault({ kind: 'drop' }, 2),
  () => state.injectFault({ kind: 'html' }),
  () => state.injectFault({ kind: 'no_token' }),
  () => state.injectFault({ kind: 'expired' })
]
const injected = new Map()
const started = performance.now()
const end = started + durationMs
const rssStart = rss()
// One outage longer than a token's life, in the middle of the run (when the run is long enough).
const outageAt = durationMs >= outageMs * 3 ? durationMs * 0.4 : undefined
let outage = 'none'
const faults = setInterval(() => {
  const elapsed = performance.now() - started
  if (outageAt !== undefined && outage === 'none' && elapsed >= outageAt) {
    outage = 'on'
    state.injectFault({ kind: 'status', status: 503 }, Infinity)
    console.log(`[${Math.round(elapsed / 1000)} s] outage: Coze answers 503 for ${outageMs / 1000} s`)
    return
  }
  if (outage === 'on') {
    if (elapsed >= outageAt + outageMs) {
      state.clearFaults()
      outage = 'over'
      console.log(`[${Math.round(elapsed / 1000)} s] outage over`)
    }
    return
  }
  const pick = Math.floor(Math.random() * FAULTS.length)
  FAULTS[pick]()
  injected.set(pick, (injected.get(pick) ?? 0) + 1)
}, faultEveryMs)
const progress = setInterval(() => {
  console.log(`[${Math.round((performance.now() - started) / 1000)} s] requests ${requests}, exchanges ${state.exchangeCount}, sidecar RSS ${rss().toFixed(1)} MiB`)
}, 30_000)

await Promise.all(Array.from({ length: concurrency }, () => worker(end)))
clearInterval(faults)
clearInterval(progress)
const elapsedS = (performance.now() - started) / 1000
const rssEnd = rss()

const stopAt = performance.now()
sidecar.kill('SIGTERM')
const exitCode = await new Promise((resolve) => sidecar.on('exit', resolve))
const stopMs = performance.now() - stopAt
await pool.close()
await emulator.close()
rmSync(dir, { recursive: true, force: true })

latencies.sort((a, b) => a - b)
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]?.toFixed(2)
console.log(`
soak: ${elapsedS.toFixed(0)} s at ${rps} req/s target, ${concurrency} callers, ${sessions} session names, ttl ${ttl} s
requests        ${requests} (${(requests / elapsedS).toFixed(0)} req/s)
outcomes        ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`).join(', ')}
latency ms      p50 ${pct(0.5)}, p90 ${pct(0.9)}, p99 ${pct(0.99)}, max ${latencies.at(-1)?.toFixed(1)}
exchanges       ${state.exchangeCount} at the emulator, ${exchangeLines} exchange log lines (faults injected: ${[...injected.values()].reduce((a, b) => a + b, 0)}${outageAt === undefined ? '' : `, plus one ${outageMs / 1000} s outage`})
expired served  ${expiredServed}
hung callers    ${hung} (over ${DEADLINE_S + 1} s)
sidecar RSS     ${rssStart.toFixed(1)} MiB at start, ${rssEnd.toFixed(1)} MiB at end
SIGTERM         exit ${exitCode} after ${stopMs.toFixed(0)} ms
`)
process.exit(expiredServed === 0 && hung === 0 && exitCode === 0 ? 0 : 1)
