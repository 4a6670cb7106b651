/**
 * Notices when files change, by polling their `stat` (size, mtime, inode) on the injected clock.
 * Polling, not `fs.watch`: Kubernetes updates mounted Secrets by swapping a symlink, which watch
 * events miss or report on the wrong path, and `stat` follows the link.
 *
 * @example
 * const watch = new FileWatch({ files: ['/keys/private_key.pem'], clock, onChange: () => reload() })
 * watch.start()
 */
import { stat } from 'node:fs/promises'
import type { Clock, Timer } from './clock.js'

export interface FileWatchOptions {
  files: string[]
  clock: Clock
  /** How often to look, in ms. */
  intervalMs?: number
  onChange: (file: string) => void
}

/** Two seconds: a rotated secret is picked up well inside any client's retry. */
export const DEFAULT_WATCH_INTERVAL_MS = 2_000

export class FileWatch {
  readonly #options: FileWatchOptions
  readonly #seen = new Map<string, string>()
  #timer: Timer | undefined
  #stopped = false

  constructor (options: FileWatchOptions) {
    this.#options = options
  }

  /** Takes the files' current state as the baseline, then polls. */
  async start (): Promise<void> {
    for (const file of this.#options.files) this.#seen.set(file, await signature(file))
    this.#schedule()
  }

  stop (): void {
    this.#stopped = true
    this.#timer?.cancel()
  }

  /** One look at every file; calls onChange for each that changed since the last look. */
  async poll (): Promise<void> {
    for (const file of this.#options.files) {
      const now = await signature(file)
      if (now !== this.#seen.get(file)) {
        this.#seen.set(file, now)
        this.#options.onChange(file)
      }
    }
  }

  #schedule (): void {
    if (this.#stopped) return
    this.#timer = this.#options.clock.setTimer(() => {
      this.poll().then(() => this.#schedule(), /* c8 ignore next - poll() catches stat errors */ () => this.#schedule())
    }, this.#options.intervalMs ?? DEFAULT_WATCH_INTERVAL_MS)
  }
}

/** What identifies a version of a file; a missing file is a state of its own. */
export async function signature (file: string): Promise<string> {
  try {
    const info = await stat(file)
    return `${info.ino}:${info.size}:${info.mtimeMs}`
  } catch (error) {
    return `missing:${String((error as NodeJS.ErrnoException).code)}`
  }
}
