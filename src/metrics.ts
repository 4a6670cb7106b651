/**
 * Prometheus metrics, on a registry of the app's own (never prom-client's global one, so that
 * several apps in one process, as in tests, do not collide).
 *
 * Counted as they happen: exchanges by variant and outcome, their latency, upstream errors by
 * Coze's `error_code`. Read at scrape time from the cache: hits, misses, evictions, stale and
 * rate-limited answers, tokens cached, seconds until the default token expires, clock skew.
 *
 * @example
 * const metrics = new Metrics({ cache, defaultRequest, clock })
 * metrics.observe(report) // from the cache's onExchange
 * reply.type(metrics.contentType).send(await metrics.text())
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Clock } from './clock.js'
import type { TokenRequest } from './coze/variants.js'
import type { ExchangeReport, TokenCache } from './token/cache.js'

export interface MetricsOptions {
  cache: TokenCache
  defaultRequest: TokenRequest
  clock: Clock
}

export class Metrics {
  readonly registry = new Registry()
  readonly #exchanges: Counter<'variant' | 'outcome'>
  readonly #duration: Histogram<'variant'>
  readonly #upstreamErrors: Counter<'error_code'>
  readonly #callerRequests: Counter<'caller'>
  readonly #callerRefusals: Counter<'caller' | 'reason'>
  readonly #callerExchanges: Counter<'caller' | 'outcome'>
  /** The per-caller request counter of each caller, bound once: counting costs a cached /token nothing measurable. */
  readonly #requestsOf = new Map<string, Counter.Internal>()

  constructor ({ cache, defaultRequest, clock }: MetricsOptions) {
    const registers = [this.registry]
    this.#exchanges = new Counter({
      name: 'coze_token_exchanges_total',
      help: 'Token exchange attempts with Coze, by variant and outcome (ok, refused, unavailable, rate_limited, bad_response, unreachable, timeout).',
      labelNames: ['variant', 'outcome'],
      registers
    })
    this.#duration = new Histogram({
      name: 'coze_token_exchange_duration_seconds',
      help: 'Time from sending a token request to Coze\'s answer (or the failure).',
      labelNames: ['variant'],
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    })
    this.#upstreamErrors = new Counter({
      name: 'coze_token_upstream_errors_total',
      help: 'Failed exchanges by Coze\'s error_code; failures without one by kind (e.g. unreachable, timeout, http_503).',
      labelNames: ['error_code'],
      registers
    })
    this.#callerRequests = new Counter({
      name: 'coze_token_caller_requests_total',
      help: 'Token requests admitted, by caller name (anonymous when no caller secret is configured).',
      labelNames: ['caller'],
      registers
    })
    this.#callerRefusals = new Counter({
      name: 'coze_token_caller_refusals_total',
      help: 'Requests refused, by caller name and the rule broken (reason); caller "(unknown)" and reason "secret" for a missing or unknown secret.',
      labelNames: ['caller', 'reason'],
      registers
    })
    this.#callerExchanges = new Counter({
      name: 'coze_token_caller_exchanges_total',
      help: 'Exchange attempts a caller waited for (cache misses), by caller name and outcome; background refreshes have no caller.',
      labelNames: ['caller', 'outcome'],
      registers
    })
    const fromStats = (name: string, help: string, read: () => number): void => {
      // A counter kept by the cache, copied at scrape time.
      const counter: Counter = new Counter({ name, help, registers, collect: () => { counter.reset(); counter.inc(read()) } })
    }
    fromStats('coze_token_cache_hits_total', 'Tokens handed out from the cache.', () => cache.stats.hits)
    fromStats('coze_token_cache_misses_total', 'Callers that waited for an exchange.', () => cache.stats.misses)
    fromStats('coze_token_cache_evictions_total', 'Cached tokens dropped to stay within SIDECAR_CACHE_MAX.', () => cache.stats.evictions)
    fromStats('coze_token_stale_served_total', 'Still-valid tokens handed out while their refresh was failing.', () => cache.stats.staleServed)
    fromStats('coze_token_rate_limited_total', 'Callers refused by the exchange rate limit.', () => cache.stats.rateLimited)
    const gauge = (name: string, help: string, read: () => number): void => {
      const metric: Gauge = new Gauge({ name, help, registers, collect: () => { metric.set(read()) } })
    }
    gauge('coze_token_cached_tokens', 'Distinct requests (session names, variants, ttls) in the cache.', () => cache.size)
    // NaN is Prometheus' "no value": a 0 would read as "expires now" or "no skew".
    gauge('coze_token_default_expiry_seconds', 'Seconds until the default token expires (NaN while there is none).', () => {
      const token = cache.status(defaultRequest).token
      return token === undefined ? NaN : token.expiresIn - clock.now() / 1000
    })
    gauge('coze_token_clock_skew_seconds', 'Coze\'s clock minus ours, from the Date header of its last answer (NaN before one).', () =>
      cache.skewMs === undefined ? NaN : cache.skewMs / 1000)
    gauge('process_resident_memory_bytes', 'Resident memory of the sidecar process.', () => process.memoryUsage.rss())
  }

  get contentType (): string {
    return this.registry.contentType
  }

  /** Counts one exchange attempt. */
  observe (report: ExchangeReport): void {
    this.#exchanges.inc({ variant: report.variant, outcome: report.outcome })
    this.#duration.observe({ variant: report.variant }, report.durationMs / 1000)
    if (report.caller !== undefined) this.#callerExchanges.inc({ caller: report.caller, outcome: report.outcome })
    const error = report.error
    if (error !== undefined) {
      this.#upstreamErrors.inc({ error_code: error.errorCode ?? (error.status === undefined ? error.kind : `http_${error.status}`) })
    }
  }

  /** Counts one admitted request of `caller`. */
  request (caller: string): void {
    let counter = this.#requestsOf.get(caller)
    if (counter === undefined) this.#requestsOf.set(caller, counter = this.#callerRequests.labels({ caller }))
    counter.inc()
  }

  /** Counts one refusal: of `caller` (undefined: not identified) for breaking `reason`. */
  refused (caller: string | undefined, reason: string): void {
    this.#callerRefusals.inc({ caller: caller ?? '(unknown)', reason })
  }

  /** The exposition text. */
  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}
