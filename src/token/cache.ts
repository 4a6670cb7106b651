/**
 * The token cache: one token per distinct request, one exchange in flight per request, refresh
 * ahead of expiry in the background, retries with back-off, stale tokens served while a refresh
 * fails but never once expired, and a bounded number of entries.
 *
 * All deadlines are measured on the monotonic clock from the moment the request was sent, and
 * capped by the `duration_seconds` asked for: a wrong wall clock can shorten a token's life here
 * but never lengthen it (docs/coze-protocol.md §13.5).
 *
 * @example
 * const cache = new TokenCache({ mint: (request) => client.requestToken(request), clock: systemClock })
 * const { accessToken, expiresIn } = await cache.get({ ttl: 900 }, 5_000)
 */
import { createHash } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { LRUCache } from 'lru-cache'
import stringify from 'safe-stable-stringify'
import { sleep, type Clock } from '../clock.js'
import { ExchangeError, type IssuedToken } from '../coze/exchange.js'
import { variantOf, type TokenRequest, type Variant } from '../coze/variants.js'
import { Deadlines } from './deadlines.js'
import { TokenError } from './errors.js'
import {
  coolDown, DEFAULT_RETRY, obeyedRetryAfter, refreshAfter, retryDelay, serveMargin, staleFloor, tokenLifetime, type RetryPolicy
} from './policy.js'
import type { TokenBucket } from './rate.js'

/** One exchange attempt, as reported to logs and metrics. Never holds the token or the JWT. */
export interface ExchangeReport {
  variant: Variant
  attempt: number
  durationMs: number
  /** `ok`, or the kind of failure. */
  outcome: 'ok' | ExchangeError['kind'] | 'internal'
  /** Why this attempt happened: a caller waited for it, or it refreshed a token ahead of time. */
  reason: 'miss' | 'refresh'
  /** For a miss, the name of the caller whose request started the exchange (for logs and metrics). */
  caller?: string
  error?: ExchangeError
  logid?: string
  /** Coze's clock minus ours, when Coze sent a `Date` header. */
  skewMs?: number
}

export interface TokenCacheOptions {
  /** One exchange attempt: sign a new JWT, POST it, return Coze's token. */
  mint: (request: TokenRequest) => Promise<IssuedToken>
  clock: Clock
  /** Most distinct requests kept (least recently used go first). Default 10,000. */
  max?: number
  retry?: RetryPolicy
  /**
   * Limits new exchanges for callers (a miss). Background refreshes of tokens in use spend from
   * it too but are never refused: starving them would turn a flood into an outage.
   */
  rate?: TokenBucket
  /** Injected for tests; `Math.random` otherwise. */
  random?: () => number
  onExchange?: (report: ExchangeReport) => void
}

/** A token handed to a caller. */
export interface ServedToken {
  accessToken: string
  /** Absolute expiry in Unix seconds, exactly as Coze gave it (unknown for some static tokens). */
  expiresIn?: number
  /** The same instant in RFC 3339, formatted once per token. */
  expiresAt?: string
  /** True when a refresh is failing and this is the previous token, still valid. */
  stale: boolean
}

/** What is known about one request's token, without fetching anything. */
export interface TokenStatus {
  token?: ServedToken
  /** Unix ms at which the token is refreshed in the background, if callers are using it. */
  refreshAt?: number
  /** The last failure, while the request is failing. */
  error?: TokenError
}

export interface CacheStats {
  hits: number
  misses: number
  staleServed: number
  evictions: number
  /** Callers refused by the exchange rate limit. */
  rateLimited: number
}

/**
 * One token and its deadlines. A class, so that every token has the same hidden class; the stale
 * copy is made only when a token is first served stale, since most never are. The deadlines are
 * whole ms (see {@link wholeMs}).
 */
class Held {
  /** The copy served while a refresh fails, made on first need. */
  stale: ServedToken | undefined = undefined
  constructor (
    /** What callers get, made once per token. */
    readonly fresh: ServedToken,
    /** Monotonic ms: handed out until then. */
    readonly serveUntil: number,
    /** Monotonic ms: served stale until then, if refreshing fails. */
    readonly staleUntil: number,
    /** Monotonic ms: refreshed in the background from then on, if it is in use. */
    readonly refreshAt: number
  ) {}

  staleCopy (): ServedToken {
    this.stale ??= Object.freeze({ ...this.fresh, stale: true })
    return this.stale
  }
}

/** Told of every failed attempt that will be retried, and when the retry starts. */
type Waiter = (error: ExchangeError, nextAttemptAt: number) => void

interface Flight {
  promise: Promise<Held>
  failedAttempts: number
  lastError?: ExchangeError
  /** Monotonic ms at which the next attempt starts, while backing off. */
  nextAttemptAt: number
  waiters: Set<Waiter>
  /** The caller whose miss started it. */
  caller?: string
}

/**
 * One distinct request. A class whose fields are all set in the constructor and never deleted:
 * an object literal that gains and loses optional fields falls into V8's dictionary mode, which
 * cost about 1 KiB per entry.
 */
class Entry {
  /** The request, when {@link Entry.request} cannot read it back from the key. */
  readonly #request: TokenRequest | undefined
  token: Held | undefined = undefined
  /** Whether the current token was handed out from the cache since it arrived. */
  usedFromCache = false
  flight: Flight | undefined = undefined
  /** Consecutive exchanges that failed all their attempts. */
  failures = 0
  lastError: ExchangeError | undefined = undefined
  /** Monotonic ms: no new exchange before then, after a failed one (not for Coze's refusals). */
  coolDownUntil = 0
  /** The entry's one deadline in the cache's queue (see {@link Deadlines}): refresh or forget. */
  dueAt = 0
  slot = -1
  constructor (readonly key: string, request: TokenRequest) {
    this.#request = readsBack(key, request) ? undefined : request
  }

  /**
   * The request, as the exchange needs it. Most keys are the request's own canonical JSON with
   * nothing nested (a ttl and a session name, say): then the request is read back from the key
   * when an exchange starts instead of being kept beside it, which saves the object, its
   * property array and a second copy of the session name (about 120 bytes per entry).
   */
  get request (): TokenRequest {
    return this.#request ?? JSON.parse(this.key) as TokenRequest
  }
}

/**
 * Whether `key` gives `request` back through `JSON.parse` exactly: not a hash, and only strings
 * and numbers in it. A nested `scope` or `session_context` is kept as the caller sent it (its
 * key has its fields sorted, and Coze is sent it verbatim).
 */
function readsBack (key: string, request: TokenRequest): boolean {
  return key.startsWith('{') && request.scope === undefined && request.sessionContext === undefined
}

export class TokenCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, staleServed: 0, evictions: 0, rateLimited: 0 }
  /** Coze's clock minus ours, from the last answer with a `Date` header. */
  skewMs: number | undefined
  readonly #entries: LRUCache<string, Entry>
  readonly #mint: TokenCacheOptions['mint']
  readonly #clock: Clock
  readonly #retry: RetryPolicy
  readonly #rate: TokenBucket | undefined
  readonly #random: () => number
  readonly #onExchange: (report: ExchangeReport) => void
  readonly #closing = new AbortController()
  /** Every entry's next refresh or expiry, on one timer. */
  readonly #deadlines: Deadlines<Entry>
  /** Callers waiting for a flight, by the function that answers them at once (see {@link shed}). */
  readonly #waiting = new Set<(error: TokenError) => void>()
  /** Set by {@link shed}: callers that would wait for Coze are answered `shutting_down` instead. */
  #shedding = false

  constructor (options: TokenCacheOptions) {
    this.#mint = options.mint
    this.#clock = options.clock
    this.#retry = options.retry ?? DEFAULT_RETRY
    this.#rate = options.rate
    this.#random = options.random ?? Math.random
    this.#onExchange = options.onExchange ?? (() => {})
    // Each retry waiting out its back-off listens on this signal: as many as there are entries.
    setMaxListeners(0, this.#closing.signal)
    this.#deadlines = new Deadlines<Entry>(this.#clock, (entry) => this.#tick(entry, entry.token as Held))
    this.#entries = new LRUCache<string, Entry>({
      max: options.max ?? 10_000,
      dispose: (entry, _key, reason) => {
        this.#deadlines.cancel(entry)
        if (reason === 'evict') this.stats.evictions++
      }
    })
  }

  /** Number of distinct requests held. */
  get size (): number {
    return this.#entries.size
  }

  /**
   * A valid token for `request`: from the cache while it has its serve margin left, otherwise
   * from Coze, sharing the exchange with every concurrent caller of the same request.
   *
   * @param deadlineMs how long the caller may wait for Coze.
   * @param caller who asks, named in the report of an exchange this request starts.
   * @throws TokenError: `exchange` when Coze refused, failed or could not be reached (with
   * `retryAfter` when the next attempt is known), `deadline`, or `rate_limited`.
   */
  async get (request: TokenRequest, deadlineMs: number, caller?: string): Promise<ServedToken> {
    const now = this.#clock.monotonic()
    const entry = this.#entry(request)
    const hit = this.#hit(entry, now)
    if (hit !== undefined) return hit
    const held = entry.token
    const stale = held !== undefined && now < held.staleUntil ? held : undefined
    // A refresh is under way: the token it replaces is still valid, so nobody waits for Coze.
    if (stale !== undefined && entry.flight !== undefined) return this.#serveStale(stale)
    const failing = this.#failing(entry, now)
    if (failing !== undefined) {
      if (stale !== undefined) return this.#serveStale(stale)
      throw failing
    }
    if (this.#shedding) throw shuttingDown()
    this.stats.misses++
    try {
      const flight = entry.flight ?? this.#startLimited(entry, caller)
      const fresh = await this.#wait(entry, flight, deadlineMs)
      if (this.#clock.monotonic() < fresh.staleUntil) return fresh.fresh
      throw new TokenError('deadline', 'the new token expired before it could be handed out', { retryAfter: 1 })
    } catch (error) {
      if (stale !== undefined && this.#clock.monotonic() < stale.staleUntil) return this.#serveStale(stale)
      throw error
    }
  }

  /**
   * The cached token for `request` while it has its serve margin left, or undefined: the hot
   * path, without a promise. When undefined, {@link get} fetches one.
   */
  cached (request: TokenRequest): ServedToken | undefined {
    const entry = this.#entries.get(cacheKey(request))
    return entry === undefined ? undefined : this.#hit(entry, this.#clock.monotonic())
  }

  #hit (entry: Entry, now: number): ServedToken | undefined {
    const held = entry.token
    if (held === undefined || now >= held.serveUntil) return undefined
    this.stats.hits++
    entry.usedFromCache = true
    // The timer normally refreshes; this covers a token asked for after its timer decided
    // nobody was using it.
    if (now >= held.refreshAt) this.#refreshInBackground(entry)
    return held.fresh
  }

  /** What is cached for `request`, without starting an exchange. */
  status (request: TokenRequest): TokenStatus {
    const entry = this.#entries.peek(cacheKey(request))
    if (entry === undefined) return {}
    const now = this.#clock.monotonic()
    const held = entry.token !== undefined && now < entry.token.staleUntil ? entry.token : undefined
    const error = entry.lastError === undefined ? undefined : TokenError.exchange(entry.lastError)
    return {
      ...(held === undefined ? {} : { token: now >= held.serveUntil ? held.staleCopy() : held.fresh, refreshAt: this.#clock.now() + held.refreshAt - now }),
      ...(error === undefined ? {} : { error })
    }
  }

  /**
   * A new token for `request` from Coze, even while the cached one is valid: for the page's New
   * token. The cached token is kept, and served to everyone else, until the new one arrives, and
   * kept if the exchange fails. An exchange already in flight is joined; the back-off after a
   * failure and the rate limit apply as for a miss.
   * @throws TokenError as {@link get} does.
   */
  async renew (request: TokenRequest, deadlineMs: number): Promise<ServedToken> {
    const entry = this.#entry(request)
    const failing = this.#failing(entry, this.#clock.monotonic())
    if (failing !== undefined) throw failing
    this.stats.misses++
    const fresh = await this.#wait(entry, entry.flight ?? this.#startLimited(entry, undefined), deadlineMs)
    return fresh.fresh
  }

  /**
   * Drops the token cached for `request` and any back-off, so that the next caller gets a new
   * token from Coze: for an app whose Coze call got 4100 after a revocation. An exchange already
   * in flight finishes for its callers, but its token is not kept.
   */
  delete (request: TokenRequest): boolean {
    return this.#entries.delete(cacheKey(request))
  }

  /** Forgets every token (another app's key was loaded). Flights in progress finish for their callers. */
  clear (): void {
    this.#entries.clear()
  }

  /**
   * Answers every caller waiting for Coze now, and every later one that would wait, with a
   * `shutting_down` TokenError: for a shutdown whose grace runs out before their deadline.
   * Exchanges in flight go on; cached tokens are still served. Returns how many callers were waiting.
   */
  shed (): number {
    this.#shedding = true
    const waiting = [...this.#waiting]
    for (const answer of waiting) answer(shuttingDown())
    return waiting.length
  }

  /** Cancels every timer and retry. Idempotent. */
  close (): void {
    this.#closing.abort(new Error('token cache closed'))
    this.#entries.clear()
    this.#deadlines.clear()
  }

  /**
   * The request's entry, or a new one not yet in the cache: it enters only when its exchange
   * starts ({@link #startLimited}), so a caller refused by the rate limit evicts nobody.
   */
  #entry (request: TokenRequest): Entry {
    const key = cacheKey(request)
    return this.#entries.get(key) ?? new Entry(flat(key), request)
  }

  /**
   * The error to answer with at once, without waiting for Coze: while backing off after a failed
   * exchange, and while the exchange in flight has already failed once. An outage must not pile
   * up callers that each wait for their deadline.
   */
  #failing (entry: Entry, now: number): TokenError | undefined {
    const flight = entry.flight
    if (flight?.lastError !== undefined) {
      return TokenError.exchange(flight.lastError, secondsUntil(flight.nextAttemptAt, now))
    }
    if (flight === undefined && entry.lastError !== undefined && now < entry.coolDownUntil) {
      return TokenError.exchange(entry.lastError, secondsUntil(entry.coolDownUntil, now))
    }
    return undefined
  }

  #serveStale (held: Held): ServedToken {
    this.stats.staleServed++
    return held.staleCopy()
  }

  /** A new exchange for a caller, if the rate limit allows one now. */
  #startLimited (entry: Entry, caller: string | undefined): Flight {
    const waitMs = this.#rate?.take()
    if (waitMs !== undefined) {
      this.stats.rateLimited++
      throw new TokenError('rate_limited', 'too many new tokens asked for', { retryAfter: Math.max(1, Math.ceil(waitMs / 1000)) })
    }
    if (this.#entries.peek(entry.key) !== entry) this.#entries.set(entry.key, entry)
    return this.#startFlight(entry, 'miss', caller)
  }

  #refreshInBackground (entry: Entry): void {
    if (entry.flight !== undefined || this.#closing.signal.aborted) return
    if (this.#clock.monotonic() < entry.coolDownUntil) return
    this.#rate?.spend()
    // Failures are logged and kept on the entry; nobody awaits a background refresh.
    this.#startFlight(entry, 'refresh').promise.catch(() => {})
  }

  #startFlight (entry: Entry, reason: ExchangeReport['reason'], caller?: string): Flight {
    const flight: Flight = {
      promise: undefined as unknown as Promise<Held>,
      failedAttempts: 0,
      nextAttemptAt: 0,
      waiters: new Set(),
      ...(caller === undefined ? {} : { caller })
    }
    flight.promise = this.#fly(entry, flight, reason).finally(() => {
      if (entry.flight === flight) entry.flight = undefined
    })
    entry.flight = flight
    return flight
  }

  /** One attempt of the flight, then the next after a back-off, until a token or a final error. */
  async #fly (entry: Entry, flight: Flight, reason: ExchangeReport['reason'], attempt = 1, started = this.#clock.monotonic()): Promise<Held> {
    const request = entry.request
    const variant = variantOf(request)
    const by = flight.caller === undefined ? {} : { caller: flight.caller }
    const sentAt = this.#clock.monotonic()
    try {
      const issued = await this.#mint(request)
      const held = this.#hold(issued, request.ttl, sentAt)
      this.#onExchange({
        variant,
        attempt,
        reason,
        ...by,
        durationMs: this.#clock.monotonic() - sentAt,
        outcome: 'ok',
        ...(issued.logid === undefined ? {} : { logid: issued.logid }),
        ...(issued.serverDate === undefined ? {} : { skewMs: this.skewMs })
      })
      this.#store(entry, held)
      return held
    } catch (error) {
      const durationMs = this.#clock.monotonic() - sentAt
      if (!(error instanceof ExchangeError)) {
        this.#onExchange({ variant, attempt, reason, ...by, durationMs, outcome: 'internal' })
        throw error
      }
      this.#onExchange({
        variant,
        attempt,
        reason,
        ...by,
        durationMs,
        outcome: error.kind,
        error,
        ...(error.logid === undefined ? {} : { logid: error.logid })
      })
      flight.failedAttempts = attempt
      flight.lastError = error
      const now = this.#clock.monotonic()
      const delay = this.#retryAfter(entry, error, attempt, now - started)
      if (delay === undefined) {
        this.#failed(entry, error, now)
        throw error
      }
      flight.nextAttemptAt = now + delay
      for (const waiter of flight.waiters) waiter(error, flight.nextAttemptAt)
      await sleep(this.#clock, delay, this.#closing.signal)
    }
    return await this.#fly(entry, flight, reason, attempt + 1, started)
  }

  /**
   * The wait before the next attempt, or undefined when there is none. Retries are for blips: once
   * an exchange has failed all its attempts, the next one (after the back-off) makes a single
   * attempt, so a long outage costs Coze one request per key per back-off step, not four.
   */
  #retryAfter (entry: Entry, error: ExchangeError, attempt: number, elapsedMs: number): number | undefined {
    const maxAttempts = entry.failures > 0 ? 1 : this.#retry.maxAttempts
    if (!error.retryable || attempt >= maxAttempts || this.#closing.signal.aborted) return undefined
    const delay = Math.max(retryDelay(attempt, this.#random()), obeyedRetryAfter(error.retryAfterMs))
    return elapsedMs + delay > this.#retry.budgetMs ? undefined : delay
  }

  #failed (entry: Entry, error: ExchangeError, now: number): void {
    if (this.#entries.peek(entry.key) !== entry) return
    entry.lastError = error
    // Coze's refusals are not retried, and not held against the next caller either: the fix
    // (re-enabling the app, authorizing the account) is made at Coze and must show at once.
    if (!error.retryable) return
    entry.failures++
    // Not rounded like the token's deadlines: up would relay a 61 s Retry-After for a 60 s
    // back-off, down would end the back-off early. Once an entry has failed, V8 boxes this field
    // in every entry (16 bytes), as it did before.
    entry.coolDownUntil = now + Math.max(coolDown(entry.failures, this.#random()), obeyedRetryAfter(error.retryAfterMs))
    // A token still in use keeps being refreshed after the back-off, while it is still valid.
    const held = entry.token
    if (held !== undefined && entry.usedFromCache && entry.coolDownUntil < held.staleUntil) {
      this.#schedule(entry, entry.coolDownUntil - now)
    }
  }

  #hold (issued: IssuedToken, ttlSeconds: number, sentAt: number): Held {
    const localNow = this.#clock.now()
    if (issued.serverDate !== undefined) this.skewMs = issued.serverDate - localNow
    const lifetime = tokenLifetime(ttlSeconds, issued.expiresIn, localNow, issued.serverDate)
    if (lifetime <= 0) {
      throw new ExchangeError('bad_response', `expires_in ${issued.expiresIn} is already in the past`, {
        ...(issued.logid === undefined ? {} : { logid: issued.logid })
      })
    }
    const expiresAt = sentAt + lifetime
    const fresh: ServedToken = Object.freeze({
      accessToken: issued.accessToken,
      expiresIn: issued.expiresIn,
      expiresAt: new Date(issued.expiresIn * 1000).toISOString(),
      stale: false
    })
    // Rounded down: a token is never served, nor served stale, later than its exact bounds.
    return new Held(fresh, wholeMs(expiresAt - serveMargin(lifetime)), wholeMs(expiresAt - staleFloor(lifetime)), wholeMs(sentAt + refreshAfter(lifetime, this.#random())))
  }

  #store (entry: Entry, held: Held): void {
    // Deleted (DELETE /token) or evicted while in flight: the callers get the token, the cache does not.
    if (this.#entries.peek(entry.key) !== entry) return
    entry.token = held
    entry.usedFromCache = false
    entry.failures = 0
    entry.lastError = undefined
    entry.coolDownUntil = 0
    this.#schedule(entry, held.refreshAt - this.#clock.monotonic())
  }

  /**
   * Sets the entry's one deadline. Only entries in the cache that hold a token have one, and the
   * cache cancels it when the entry leaves (evicted, deleted, cleared on close).
   */
  #schedule (entry: Entry, delayMs: number): void {
    this.#deadlines.schedule(entry, this.#clock.monotonic() + Math.max(0, delayMs))
  }

  /**
   * The entry's deadline: refresh a token that callers are using; let one nobody asked for since
   * it arrived run out, then forget it.
   */
  #tick (entry: Entry, held: Held): void {
    const now = this.#clock.monotonic()
    if (entry.usedFromCache && now < held.staleUntil) {
      this.#refreshInBackground(entry)
      return
    }
    if (now < held.staleUntil) {
      this.#schedule(entry, held.staleUntil - now)
      return
    }
    if (entry.flight === undefined) this.#entries.delete(entry.key)
  }

  /**
   * Waits for the flight, up to the caller's deadline. A caller is released as soon as an attempt
   * fails and the next one would start after its deadline, with that attempt's error.
   */
  #wait (entry: Entry, flight: Flight, deadlineMs: number): Promise<Held> {
    const deadlineAt = this.#clock.monotonic() + deadlineMs
    return new Promise<Held>((resolve, reject) => {
      const done = (): void => {
        timer.cancel()
        flight.waiters.delete(waiter)
        this.#waiting.delete(shed)
      }
      const shed = (error: TokenError): void => {
        done()
        reject(error)
      }
      this.#waiting.add(shed)
      const waiter: Waiter = (error, nextAttemptAt) => {
        if (nextAttemptAt < deadlineAt) return
        done()
        reject(TokenError.exchange(error, secondsUntil(nextAttemptAt, this.#clock.monotonic())))
      }
      const timer = this.#clock.setTimer(() => {
        done()
        reject(new TokenError('deadline', `Coze did not answer within the deadline of ${deadlineMs / 1000} s`, { retryAfter: 1 }))
      }, deadlineMs)
      flight.waiters.add(waiter)
      flight.promise.then((held) => {
        done()
        resolve(held)
      }, (error: unknown) => {
        done()
        if (!(error instanceof ExchangeError)) return reject(error)
        const now = this.#clock.monotonic()
        reject(TokenError.exchange(error, now < entry.coolDownUntil ? secondsUntil(entry.coolDownUntil, now) : undefined))
      })
    })
  }
}

function shuttingDown (): TokenError {
  return new TokenError('shutting_down', 'the sidecar is shutting down before Coze answered', { retryAfter: 1 })
}

/**
 * A monotonic instant in whole ms, rounded down. `performance.now()` has a fraction, and V8 keeps
 * a field that ever held a fraction as a boxed double: 16 bytes more per deadline, four per
 * entry. Whole ms below 2^31 (the first 24 days of a process) are small integers, stored in the
 * field itself; later ones are boxed, as before.
 */
function wholeMs (at: number): number {
  return Math.floor(at)
}

function secondsUntil (at: number, now: number): number {
  return Math.max(1, Math.ceil((at - now) / 1000))
}

/**
 * The cache key: every field that changes the token Coze would issue, as canonical JSON (keys
 * sorted, so field order does not matter). Long ones (scopes) are hashed so they cannot bloat the
 * cache; a hash never starts with `{`, so it cannot equal a short key.
 */
/**
 * `key` as one flat string. safe-stable-stringify builds its result by concatenation, which V8
 * keeps as a tree of a dozen rope nodes (about 400 bytes); a key kept for the life of an entry is
 * flattened once. Converting to a number is the cheapest operation that flattens in place.
 */
function flat (key: string): string {
  Number(key)
  return key
}

export function cacheKey (request: TokenRequest): string {
  const known = knownKeys.get(request)
  if (known !== undefined) return known
  const json = stringify(request) as string
  const key = json.length <= 256 ? json : createHash('sha256').update(json).digest('base64url')
  if (Object.isFrozen(request)) knownKeys.set(request, key)
  return key
}

/**
 * The keys of frozen requests, which cannot change: each credential's default request, asked for
 * by every plain `GET /token`, is serialized once rather than on every hit.
 */
const knownKeys = new WeakMap<TokenRequest, string>()
