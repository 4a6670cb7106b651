/**
 * The gateway's Prometheus metrics, on the app's registry (src/metrics.ts): requests by path
 * family, status and Coze's `code`, replays by outcome, and the time to the first byte.
 *
 * @example
 * const metrics = new GatewayMetrics(app.metrics.registry)
 * metrics.request('v3', 200, 0, 0.012)
 */
import { Counter, Histogram, type Registry } from 'prom-client'
import { ScrapedCounter } from '../metrics.js'

export class GatewayMetrics {
  /** Counted on every request, so read at scrape time. */
  readonly #requests: ScrapedCounter<'family' | 'status' | 'coze_code'>
  readonly #replays: Counter<'outcome'>
  readonly #ttfb: Histogram<'family'>

  constructor (registry: Registry) {
    const registers = [registry]
    this.#requests = new ScrapedCounter({
      name: 'coze_gateway_requests_total',
      help: 'Requests through the gateway, by path family (v1, v3, open_api, ws), HTTP status and Coze\'s code (empty when the answer had none).',
      labelNames: ['family', 'status', 'coze_code'],
      registers
    })
    this.#replays = new Counter({
      name: 'coze_gateway_replays_total',
      help: 'Requests sent again with a fresh token after Coze refused the token, by outcome (healed, refused_again).',
      labelNames: ['outcome'],
      registers
    })
    this.#ttfb = new Histogram({
      name: 'coze_gateway_ttfb_seconds',
      help: 'From the request to the first byte of the answer\'s body sent to the caller.',
      labelNames: ['family'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    })
  }

  request (family: string, status: number, cozeCode: number | undefined, ttfbSeconds: number | undefined): void {
    const code = cozeCode === undefined ? '' : String(cozeCode)
    this.#requests.inc(`${family} ${status} ${code}`, { family, status: String(status), coze_code: code })
    if (ttfbSeconds !== undefined) this.#ttfb.observe({ family }, ttfbSeconds)
  }

  replay (healed: boolean): void {
    this.#replays.inc({ outcome: healed ? 'healed' : 'refused_again' })
  }
}
