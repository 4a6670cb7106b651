/**
 * Reloads that never overlap and never hang: for a key, a config or a secret re-read on SIGHUP
 * or when its file changes. Framework-free; the read and the clock are passed in.
 *
 * - **One read at a time.** A reload asked for while a read is in flight waits for it, and every
 *   reload asked for meanwhile shares that one next read: reads finish in the order they started,
 *   and the last change wins. (Overlapping reads applied in the order they *finished*, so a slow
 *   read started earlier put an older key back in service after a newer one.)
 * - **Bounded in time.** A read that takes longer than `timeoutMs` is abandoned: the reload fails
 *   (the current value stays in service) and the abandoned read's result is never applied. It
 *   still counts as in flight until it settles, so a hung mount (NFS, FUSE) ties up one of
 *   libuv's four threads, never all of them: DNS, which needs the same pool, keeps working.
 *
 * @example
 * const reload = new SerialReload({ read: () => loadConfig(sources), apply: (config) => use(config), onFailure: log, clock })
 * await reload.reload() // true once applied, false when the read failed or timed out
 */
import type { Clock } from '../clock.js'

/**
 * A local file reads in well under a millisecond; one that takes 5 s is on a mount that has
 * stopped answering, and waiting longer would not change the answer.
 */
export const DEFAULT_RELOAD_TIMEOUT_MS = 5_000

export interface SerialReloadOptions<T> {
  /** Reads the new value. May hang. */
  read: () => Promise<T>
  /** Puts a value in service; called in the order the reads started, never for an abandoned one. */
  apply: (value: T) => void
  /** Told once per failed read (its error, or a {@link ReloadTimeoutError}); the old value stays. */
  onFailure: (error: unknown) => void
  clock: Clock
  timeoutMs?: number
}

/** A read abandoned after the time bound. */
export class ReloadTimeoutError extends Error {
  readonly code = 'RELOAD_TIMEOUT'

  constructor (timeoutMs: number) {
    super(`the read did not finish within ${timeoutMs / 1000} s (a hung mount?); it was abandoned`)
    this.name = 'ReloadTimeoutError'
  }
}

export class SerialReload<T> {
  readonly #options: SerialReloadOptions<T>
  /** The read in flight, abandoned or not; settles when the read does. */
  #inFlight: Promise<void> | undefined
  /** The reload asked for while a read was in flight: every caller meanwhile shares it. */
  #next: Promise<boolean> | undefined
  #startNext: (() => void) | undefined

  constructor (options: SerialReloadOptions<T>) {
    this.#options = options
  }

  /** Whether a read is in flight (an abandoned one included). */
  get busy (): boolean {
    return this.#inFlight !== undefined
  }

  /** Reloads now, or once the read in flight has settled. True when the new value was applied. */
  reload (): Promise<boolean> {
    if (this.#next !== undefined) return this.#next
    if (this.#inFlight === undefined) return this.#run()
    this.#next = new Promise<boolean>((resolve) => {
      this.#startNext = () => {
        this.#next = undefined
        this.#startNext = undefined
        this.#run().then(resolve, /* c8 ignore next - #run never rejects */ () => resolve(false))
      }
    })
    return this.#next
  }

  #run (): Promise<boolean> {
    const { read, apply, onFailure, clock } = this.#options
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_RELOAD_TIMEOUT_MS
    const reading = (async () => await read())()
    const result = new Promise<boolean>((resolve) => {
      let settled = false
      const fail = (error: unknown): void => {
        onFailure(error)
        resolve(false)
      }
      const timer = clock.setTimer(() => {
        settled = true
        fail(new ReloadTimeoutError(timeoutMs))
      }, timeoutMs)
      reading.then((value) => {
        if (settled) return
        timer.cancel()
        try {
          apply(value)
          resolve(true)
        } catch (error) {
          fail(error)
        }
      }, (error: unknown) => {
        if (settled) return
        timer.cancel()
        fail(error)
      })
    })
    // Registered after the result's handlers, so a value is applied before the next read starts.
    this.#inFlight = reading.then(() => {}, () => {}).then(() => {
      this.#inFlight = undefined
      this.#startNext?.()
    })
    return result
  }
}
