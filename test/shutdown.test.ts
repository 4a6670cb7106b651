/**
 * SIGTERM under load (issue 14): real keep-alive connections on 127.0.0.1, bounded in number,
 * and the resets they see counted. A caller must get an answer or a clean close, never a reset.
 */
import t from 'tap'
import { Pool } from 'undici'
import { main } from '../src/server.js'
import { sidecarEnv, startEmulator } from './fixtures/harness.js'
import { until } from './fixtures/flush.js'
import { fakeProcess } from './fixtures/process.js'

const CONNECTIONS = 200

interface Tally {
  ok: number
  /** Answers marked `Connection: close`: the caller knows to go elsewhere. */
  closing: number
  status: Record<number, number>
  /** Errors by code: ECONNREFUSED is a clean refusal of a new connection; the rest are resets. */
  errors: Record<string, number>
}

/** Each of `CONNECTIONS` callers asks again as soon as it has its answer, until told to stop. */
function load (pool: Pool, tally: Tally, path: string): { stop: () => void, done: Promise<void> } {
  const state = { stopped: false } // set by stop(), between the loop's awaits
  const caller = async (): Promise<void> => {
    while (!state.stopped) {
      try {
        const response = await pool.request({ path, method: 'GET', headers: { connection: 'keep-alive' } })
        await response.body.dump()
        tally.status[response.statusCode] = (tally.status[response.statusCode] ?? 0) + 1
        if (response.statusCode === 200) tally.ok++
        if (response.headers.connection === 'close') {
          tally.closing++
          return
        }
      } catch (error) {
        const code = String((error as { code?: string }).code ?? (error as Error).message)
        tally.errors[code] = (tally.errors[code] ?? 0) + 1
        return
      }
    }
  }
  const done = Promise.all(Array.from({ length: CONNECTIONS }, caller)).then(() => {})
  return { stop: () => { state.stopped = true }, done }
}

const resets = (tally: Tally): number =>
  Object.entries(tally.errors).filter(([code]) => code !== 'ECONNREFUSED').reduce((sum, [, n]) => sum + n, 0)

t.test(`SIGTERM under load: ${CONNECTIONS} keep-alive callers get an answer or a clean close, never a reset`, async (t) => {
  const emulator = await startEmulator(t)
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator, { PORT: '0', LOG_LEVEL: 'silent' }))
  const app = await main(proc)
  const port = (app!.server.address() as { port: number }).port
  let accepted = 0
  app!.server.on('connection', () => { accepted++ })
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 })
  t.teardown(() => pool.destroy())
  const tally: Tally = { ok: 0, closing: 0, status: {}, errors: {} }
  const { stop, done } = load(pool, tally, '/token')
  t.teardown(stop)
  // Every caller on a keep-alive connection of its own, each with answers behind it.
  await until(() => accepted === CONNECTIONS && tally.ok >= 2 * CONNECTIONS, 'every connection in use', 20_000)
  fake.signal('SIGTERM')
  await until(() => fake.exits.length > 0, 'the exit', 20_000)
  stop()
  await done
  t.comment(JSON.stringify(tally))
  t.equal(resets(tally), 0, 'no caller saw a reset')
  t.same(fake.exits, [0])
})

t.test('a grace shorter than the caller deadline: callers waiting for Coze are answered 503 before the exit', async (t) => {
  const emulator = await startEmulator(t)
  const { proc, fake } = fakeProcess(t, sidecarEnv(emulator, {
    PORT: '0', LOG_LEVEL: 'info', SIDECAR_SHUTDOWN_GRACE: '0.3', SIDECAR_REQUEST_DEADLINE: '10', SIDECAR_RETRY_BUDGET: '0'
  }))
  const answers: Array<{ status: number, code: string, retryAfter: unknown }> = []
  const errors: string[] = []
  let answeredAtExit: number | undefined
  const exit = proc.exit
  proc.exit = (code) => {
    answeredAtExit ??= answers.length
    exit(code)
  }
  const app = await main(proc)
  const port = (app!.server.address() as { port: number }).port
  let requests = 0
  app!.server.on('request', () => { requests++ })
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 20 })
  t.teardown(() => pool.destroy())
  emulator.state.injectFault({ kind: 'hang' })
  const callers = Array.from({ length: 20 }, async () => {
    try {
      const response = await pool.request({ path: '/token?session_name=waiting', method: 'GET' })
      answers.push({ status: response.statusCode, code: String((await response.body.json() as { code: string }).code), retryAfter: response.headers['retry-after'] })
    } catch (error) {
      errors.push(String((error as { code?: string }).code))
    }
  })
  await until(() => emulator.state.exchangeCount === 1 && requests === 20, 'every caller waiting on the hanging exchange')
  fake.signal('SIGTERM')
  await Promise.all(callers)
  await until(() => fake.exits.length > 0, 'the exit')
  t.same(errors, [], 'no resets')
  t.equal(answeredAtExit, 20, 'every caller answered before the exit')
  t.same(new Set(answers.map((answer) => `${answer.status} ${answer.code} ${String(answer.retryAfter)}`)), new Set(['503 SHUTTING_DOWN 1']))
  t.same(fake.exits, [0], 'a clean shutdown within the grace')
})
