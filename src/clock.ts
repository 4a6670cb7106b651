/**
 * Time, injected. Everything that reads the time or waits takes a {@link Clock}, so that tests
 * drive expiry, refresh and back-off with a fake clock instead of sleeping.
 *
 * @example
 * const clock = systemClock
 * const wallSeconds = Math.floor(clock.now() / 1000)
 */
export interface Clock {
  /** Wall-clock time in ms since the Unix epoch: what goes into a JWT and what Coze compares with. */
  now(): number
  /**
   * A clock that never jumps, in ms, for deadlines. A wall clock can be stepped by NTP or set
   * wrong; a deadline measured on this one cannot be moved by that.
   */
  monotonic(): number
  /** Calls `fn` after `ms` on this clock. The timer never keeps the process alive. */
  setTimer(fn: () => void, ms: number): Timer
}

export interface Timer {
  cancel(): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer (fn, ms) {
    const handle = setTimeout(fn, ms)
    handle.unref()
    return { cancel: () => clearTimeout(handle) }
  }
}

/** Resolves after `ms` on `clock`, or rejects with the signal's reason when it aborts first. */
export function sleep (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      timer.cancel()
      reject(signal?.reason)
    }
    const timer = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
