#!/usr/bin/env node
/**
 * npm run build && node scripts/cache-memory.mjs [--entries 10000] [--cache-max 10000]
 *
 * Measures the sidecar's memory with its token cache full: runs dist/server.js as its own process
 * against the Coze emulator (in this process), asks for --entries distinct session names (each a
 * new exchange and a cache entry), and prints the sidecar's RSS when it listens, after its first
 * token, once the cache is full, and its peak (VmHWM), with its anonymous memory (RssAnon). The
 * figures behind the Kubernetes example's memory limit. Not a test.
 */
import { randomUUID } from 'node:crypto'
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Pool } from 'undici'
import { scratchEmulator } from './scratch-emulator.mjs'

const { values } = parseArgs({ options: { entries: { type: 'string', default: '10000' }, 'cache-max': { type: 'string', default: '10000' } } })
const entries = Number(values.entries)

const { dir, keyFile, emulator, emulatorUrl, kid } = await scratchEmulator('coze-memory-')

const sidecar = spawn(process.execPath, ['dist/server.js'], {
  env: {
    PATH: process.env.PATH,
    // To try a heap limit, as a container would set it: NODE_OPTIONS=--max-old-space-size=64
    ...(process.env.NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS: process.env.NODE_OPTIONS }),
    COZE_API_BASE: emulatorUrl,
    COZE_APP_ID: '1000000000001',
    COZE_KEY_ID: kid,
    COZE_PRIVATE_KEY_FILE: keyFile,
    PORT: '0',
    LOG_LEVEL: 'info', // for the "Server listening" line; exchange lines are read and dropped
    SIDECAR_CACHE_MAX: values['cache-max'],
    // Every entry is a new exchange: the rate limit would refuse most of them.
    SIDECAR_EXCHANGE_RATE: '100000',
    SIDECAR_EXCHANGE_BURST: '1000000'
  },
  stdio: ['ignore', 'pipe', 'inherit']
})
const address = await new Promise((resolve, reject) => {
  let out = ''
  sidecar.stdout.on('data', (chunk) => {
    out = (out + chunk).slice(-4096)
    const match = /Server listening at (http:\/\/[\d.:]+)/.exec(out)
    if (match !== null) resolve(match[1])
  })
  sidecar.on('exit', (code) => reject(new Error(`the sidecar exited with ${code}`)))
})
const status = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${sidecar.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

const idle = status('VmRSS')
const idleAnon = status('RssAnon')
const pool = new Pool(address, { connections: 16 })
await (await pool.request({ path: '/token', method: 'GET' })).body.dump()
const atStart = status('VmRSS')
let next = 0
let failed = 0
const worker = async () => {
  while (next < entries) {
    const name = `user-${randomUUID()}`
    next++
    const response = await pool.request({ path: `/token?session_name=${name}`, method: 'GET' })
    await response.body.dump()
    if (response.statusCode !== 200) failed++
  }
}
const progress = setInterval(() => console.error('progress', next, failed), 5000)
await Promise.all(Array.from({ length: 16 }, worker))
clearInterval(progress)
const metrics = await (await pool.request({ path: '/metrics', method: 'GET' })).body.text()
const cached = /coze_token_cached_tokens(?:\{[^}]*\})? (\d+)/.exec(metrics)?.[1]
const full = status('VmRSS')
// Anonymous memory: what a cgroup limit cannot reclaim (the node binary's pages are file-backed).
const anon = status('RssAnon')
const peak = status('VmHWM')
console.log(JSON.stringify({
  node: process.version,
  node_options: process.env.NODE_OPTIONS ?? '',
  entries,
  failed,
  cached: cached === undefined ? 'unknown' : Number(cached),
  anon_mib: { idle: Math.round(idleAnon), full: Math.round(anon) },
  rss_mib: { idle: Math.round(idle), first_token: Math.round(atStart), full: Math.round(full), peak: Math.round(peak) }
}))
sidecar.kill('SIGTERM')
await new Promise((resolve) => sidecar.on('exit', resolve))
await pool.close()
await emulator.close()
rmSync(dir, { recursive: true, force: true })
