/**
 * The gateway's Prometheus metrics, on the app's registry (src/metrics.ts): requests by path
 * family, status and Coze's `code`, replays by outcome, and the time to the first byte.
 *
 * @example
 * const metrics = new GatewayMetrics(app.metrics.registry)
 * metrics.request('v3', 200, 0, 0.012)
 */
import { Counter, Histogram, type Registry } from 'prom-client'

export class GatewayMetrics {
  /**
   * Requests by `family status coze_code`, counted as plain numbers and read into the counter at
   * scrape time: prom-client's `inc` builds a key from the labels on every call.
   */
  readonly #requests = new Map<string, { labels: Record<'family' | 'status' | 'coze_code', string>, count: number }>()
  readonly #replays: Counter<'outcome'>
  readonly #ttfb: Histogram<'family'>

  constructor (registry: Registry) {
    const registers = [registry]
    const requests: Counter<'family' | 'status' | 'coze_code'> = new Counter({
      name: 'coze_gateway_requests_total',
      help: 'Requests through the gateway, by path family (v1, v3, open_api, ws), HTTP status and Coze\'s code (empty when the answer had none).',
      labelNames: ['family', 'status', 'coze_code'],
      registers,
      collect: () => {
        requests.reset()
        for (const { labels, count } of this.#requests.values()) requests.inc(labels, count)
      }
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
    const key = `${family} ${status} ${code}`
    const seen = this.#requests.get(key)
    if (seen !== undefined) seen.count++
    else this.#requests.set(key, { labels: { family, status: String(status), coze_code: code }, count: 1 })
    if (ttfbSeconds !== undefined) this.#ttfb.observe({ family }, ttfbSeconds)
  }

  replay (healed: boolean): void {
    this.#replays.inc({ outcome: healed ? 'healed' : 'refused_again' })
  }
}
