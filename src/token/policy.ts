/**
 * The numbers behind refresh, stale serving and retries, in one place, with where they come from.
 * All functions are pure; randomness is passed in so that tests can pin it.
 *
 * For the default 900 s token: handed out while at least 90 s remain, refreshed in the
 * background between 270 s and 180 s before expiry (70-80 % of its life), served stale during a
 * failed refresh until 5 s before expiry, never after.
 */

/**
 * The least life a token keeps when it is handed out: 10 % of its lifetime, at least 30 s (the
 * Coze SDKs' own margin for long tokens, so a caller has time to use it), at most 5 min (a day
 * long token need not be dropped hours early), and never more than half the lifetime (so that
 * very short tokens are served at all).
 */
export function serveMargin (lifetimeMs: number): number {
  return Math.min(Math.max(30_000, lifetimeMs / 10), 300_000, lifetimeMs / 2)
}

/**
 * When a token in use is refreshed, in ms after it was minted: a further 10-20 % of the lifetime
 * before the serve margin, at random. Between kubelet's 80 % and Vault's 2/3, and spread so that a
 * fleet of sidecars started together does not refresh in the same second.
 */
export function refreshAfter (lifetimeMs: number, random: number): number {
  const before = serveMargin(lifetimeMs) + lifetimeMs * (0.1 + 0.1 * random)
  return Math.max(0, lifetimeMs - before)
}

/**
 * How close to expiry a token is still served while its refresh fails: 5 s, or a tenth of very
 * short lifetimes. Never zero: a token is never served once it has expired (Envoy #44674).
 */
export function staleFloor (lifetimeMs: number): number {
  return Math.min(5_000, lifetimeMs / 10)
}

export interface RetryPolicy {
  /** Attempts per exchange, the first included. */
  maxAttempts: number
  /** No attempt starts later than this after the first one. */
  budgetMs: number
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, budgetMs: 30_000 }

/**
 * The wait before attempt `attempt + 1`: 250 ms doubling, with "equal jitter" (half fixed, half
 * random) so that retries neither hammer nor synchronize. Short first steps because a token
 * request is small and a caller is usually waiting.
 */
export function retryDelay (attempt: number, random: number): number {
  const ceiling = Math.min(250 * 2 ** (attempt - 1), 8_000)
  return ceiling / 2 + (ceiling / 2) * random
}

/**
 * After an exchange has failed all its attempts, how long until the next one may start: 1 s
 * doubling per consecutive failure up to 60 s, minus 0-25 % at random (Vault Agent's back-off,
 * with a lower cap so that the sidecar notices a recovered Coze within a minute).
 */
export function coolDown (failures: number, random: number): number {
  const ceiling = Math.min(1_000 * 2 ** (failures - 1), 60_000)
  return ceiling * (1 - 0.25 * random)
}

/**
 * The longest `Retry-After` from Coze that is obeyed: 60 s, the same ceiling as {@link coolDown}.
 * A `Retry-After` is a hint from whatever answered (Coze, or a proxy in front of it), and one
 * absurd value (`100000`, a date days ahead, 20 digits) must not lock every caller out while Coze
 * is healthy and never asked again: past 60 s the sidecar tries again anyway, as the README says.
 * Callers' `Retry-After` is derived from the capped wait, so an absurd value is never relayed.
 */
export const MAX_RETRY_AFTER_MS = 60_000

/** Coze's `Retry-After` (ms) as obeyed: at most {@link MAX_RETRY_AFTER_MS}, 0 when absent. */
export function obeyedRetryAfter (retryAfterMs: number | undefined): number {
  return Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS)
}

/**
 * How long a new token lives, in ms from when its request was sent: the `duration_seconds` asked
 * for, and the time left until Coze's absolute `expires_in` by the later of two clocks, Coze's
 * (its `Date` header) and ours. Either clock may be wrong (reference §13.5); taking the smaller
 * estimate means a wrong clock on either side can only shorten a token's life, never lengthen it.
 * `Date` has one-second resolution and is truncated, so Coze's clock may be up to 1 s later.
 */
export function tokenLifetime (ttlSeconds: number, expiresIn: number, localNow: number, serverDate?: number): number {
  const cozeNow = serverDate === undefined ? localNow : Math.max(localNow, serverDate + 1_000)
  return Math.min(ttlSeconds * 1_000, expiresIn * 1_000 - cozeNow)
}
