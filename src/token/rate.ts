/**
 * A token bucket on the injected clock: `burst` new exchanges at once, refilled at
 * `perSecond`. It protects Coze's quota (and the sidecar) from a caller that invents session
 * names: each new name is a new exchange, and no cache can help with those.
 *
 * @example
 * const bucket = new TokenBucket({ perSecond: 10, burst: 50, clock })
 * const waitMs = bucket.take() // undefined: go ahead; a number: try again in that many ms
 */
import type { Clock } from '../clock.js'

export interface TokenBucketOptions {
  perSecond: number
  burst: number
  clock: Clock
}

export class TokenBucket {
  readonly #perMs: number
  readonly #burst: number
  readonly #clock: Clock
  #tokens: number
  #at: number

  constructor (options: TokenBucketOptions) {
    this.#perMs = options.perSecond / 1000
    this.#burst = options.burst
    this.#clock = options.clock
    this.#tokens = options.burst
    this.#at = options.clock.monotonic()
  }

  /** Takes one token: undefined when there was one, else the ms until there will be. */
  take (): number | undefined {
    this.#refill()
    if (this.#tokens >= 1) {
      this.#tokens -= 1
      return undefined
    }
    return Math.ceil((1 - this.#tokens) / this.#perMs)
  }

  /** Takes one token if there is one, never refusing: for work that must happen anyway. */
  spend (): void {
    this.#refill()
    this.#tokens = Math.max(0, this.#tokens - 1)
  }

  #refill (): void {
    const now = this.#clock.monotonic()
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs)
    this.#at = now
  }
}
