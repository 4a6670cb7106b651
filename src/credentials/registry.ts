/**
 * The named credentials: `default` (the environment and `coze_oauth_config.json`) and one per
 * `COZE_OAUTH_CONFIG_DIR/NAME.json`. It picks the credential for a request, and keeps them in step
 * with their files: a file added, changed or removed takes effect at the next poll (2 s); a broken
 * file keeps that credential's last good version in service and logs one line naming the file.
 *
 * Framework-free: the Fastify plugin in `plugin.ts` only decorates the app with it.
 *
 * @example
 * const registry = new CredentialRegistry({ specs, context, load, clock, log })
 * await registry.start()
 * const credential = registry.select(request.query.app) // throws SelectionError naming `app`
 */
import type { Clock, Timer } from '../clock.js'
import { DEFAULT_WATCH_INTERVAL_MS, signature } from '../file-watch.js'
import { ReloadTimeoutError, SerialReload } from '../files/reload.js'
import { createCredential, type Credential, type CredentialContext } from './credential.js'
import { SelectionError } from './errors.js'
import type { CredentialSpec } from './sources.js'

/** What the registry logs: pino's shape, without depending on it. */
export interface RegistryLog {
  info: (fields: object, message: string) => void
  warn: (fields: object, message: string) => void
  error: (fields: object, message: string) => void
}

/** How the registry reads its sources again. Each throws a ConfigError for a bad file. */
export interface CredentialLoader {
  /** `default`, from the environment and its console file; undefined when none is configured. */
  readDefault: () => Promise<CredentialSpec | undefined>
  /** The folder's credential files, sorted; [] when there is no folder. */
  listFiles: () => Promise<string[]>
  readFile: (file: string) => Promise<CredentialSpec>
}

export interface CredentialRegistryOptions {
  /** The credentials loaded (and checked) at start. */
  specs: CredentialSpec[]
  context: CredentialContext
  load: CredentialLoader
  /** `SIDECAR_DEFAULT_APP`. */
  defaultApp?: string
  clock: Clock
  log: RegistryLog
  intervalMs?: number
}

/** How one read of a source went. */
type Outcome = { spec: CredentialSpec | undefined } | { error: unknown } | { busy: true }

/** One source's reads: never two at once, each bounded in time (src/files/reload.ts). */
interface Reader {
  serial: SerialReload<CredentialSpec | undefined>
  read: () => Promise<CredentialSpec | undefined>
  outcome?: Outcome
}

interface Slot {
  credential: Credential
  /** The folder file it came from; undefined for `default`. */
  file?: string
  /** The files' stat signature when last loaded (or tried). */
  signature: string
}

export class CredentialRegistry {
  readonly #slots = new Map<string, Slot>()
  readonly #options: CredentialRegistryOptions
  #timer: Timer | undefined
  #closed = false
  /** Reloads run one at a time, in order; a poll while one runs waits for it. */
  #queue: Promise<unknown> = Promise.resolve()

  constructor (options: CredentialRegistryOptions) {
    this.#options = options
  }

  /** Takes the start-up credentials and starts watching their files. */
  async start (): Promise<void> {
    for (const spec of this.#options.specs) {
      const file = spec.origin
      this.#slots.set(spec.name, { credential: createCredential(spec, this.#options.context), ...(file === undefined ? {} : { file }), signature: await signatureOf(spec.files) })
    }
    this.#schedule()
  }

  /** The names configured, sorted. */
  names (): string[] {
    return [...this.#slots.keys()].sort()
  }

  /** Every credential, for metrics and status. */
  all (): Credential[] {
    return this.names().map((name) => (this.#slots.get(name) as Slot).credential)
  }

  /** The credential of requests that name none, if there is one. */
  get defaultName (): string | undefined {
    const wanted = this.#options.defaultApp
    if (wanted !== undefined) return this.#slots.has(wanted) ? wanted : undefined
    // Asked on every request that names no credential: the only key, without sorting a copy.
    if (this.#slots.size === 1) return this.#slots.keys().next().value
    return this.#slots.has('default') ? 'default' : undefined
  }

  /**
   * The credential for a request's `app`, or the default one.
   * @throws SelectionError (field `app`) for an unknown name, or none named and no default.
   */
  select (name?: string): Credential {
    if (name !== undefined) {
      const slot = this.#slots.get(name)
      if (slot === undefined) throw new SelectionError('app', `app "${name}" is not configured (configured: ${this.names().join(', ')})`)
      return slot.credential
    }
    const fallback = this.defaultName
    if (fallback === undefined) {
      const why = this.#options.defaultApp === undefined
        ? 'several credentials are configured and SIDECAR_DEFAULT_APP names none'
        : `the default app "${this.#options.defaultApp}" (SIDECAR_DEFAULT_APP) is not configured any more`
      throw new SelectionError('app', `name the credential with app: ${why} (configured: ${this.names().join(', ')})`)
    }
    return (this.#slots.get(fallback) as Slot).credential
  }

  /** Re-reads every source now (SIGHUP). Resolves once done; false when some file was refused. */
  reload (): Promise<boolean> {
    return this.#enqueue(() => this.#sync(true))
  }

  /** One look at the files: what changed is reloaded. Exposed for tests on a fake clock. */
  poll (): Promise<boolean> {
    return this.#enqueue(() => this.#sync(false))
  }

  close (): void {
    this.#closed = true
    this.#timer?.cancel()
    for (const slot of this.#slots.values()) slot.credential.close()
    this.#slots.clear()
  }

  #enqueue (task: () => Promise<boolean>): Promise<boolean> {
    const run = this.#queue.then(task)
    this.#queue = run.catch(/* c8 ignore next - #sync catches what it reads */ () => {})
    return run
  }

  #schedule (): void {
    if (this.#closed) return
    this.#timer = this.#options.clock.setTimer(() => {
      this.poll().then(() => this.#schedule(), /* c8 ignore next - #sync catches */ () => this.#schedule())
    }, this.#options.intervalMs ?? DEFAULT_WATCH_INTERVAL_MS)
  }

  /** Brings the slots in line with the sources: every one when `force`, else those whose files changed. */
  async #sync (force: boolean): Promise<boolean> {
    if (this.#closed) return true
    let ok = true
    const { load, log } = this.#options
    // default
    const current = [...this.#slots.values()].find((slot) => slot.file === undefined)
    if (current !== undefined || force) {
      const files = current?.credential.spec.files ?? []
      const now = await signatureOf(files)
      if (force || now !== current?.signature) {
        ok = await this.#load('default', undefined, now, () => load.readDefault()) && ok
      }
    }
    // the folder
    let files: string[]
    try {
      files = await load.listFiles()
    } catch (error) {
      log.error({ reason: (error as Error).message }, 'cannot list the credentials folder; the credentials stay as they are')
      return false
    }
    const seen = new Set(files)
    for (const [name, slot] of this.#slots) {
      if (slot.file !== undefined && !seen.has(slot.file)) {
        this.#slots.delete(name)
        slot.credential.close()
        log.info({ app: name, file: slot.file }, 'credential removed: its file is gone')
      }
    }
    for (const file of files) {
      const slot = [...this.#slots.values()].find((candidate) => candidate.file === file)
      const now = await signatureOf(slot?.credential.spec.files ?? [file])
      if (!force && slot !== undefined && now === slot.signature) continue
      if (!force && slot === undefined && this.#refused.get(file) === now) continue
      ok = await this.#load(undefined, file, now, () => load.readFile(file)) && ok
    }
    return ok
  }

  /** Files refused at their last signature: logged once, not again until they change. */
  readonly #refused = new Map<string, string>()
  /** One reader per source: `default`, or a file of the folder. */
  readonly #readers = new Map<string, Reader>()

  /**
   * Reads a source through its reader. A read still hanging from an earlier reload (a hung mount)
   * is not joined: the source is skipped this time, and the rest of the registry goes on.
   */
  async #read (key: string, read: () => Promise<CredentialSpec | undefined>): Promise<Outcome> {
    let reader = this.#readers.get(key)
    if (reader === undefined) {
      const fresh: Reader = {
        read,
        serial: new SerialReload({
          clock: this.#options.clock,
          read: () => fresh.read(),
          apply: (spec) => { fresh.outcome = { spec } },
          onFailure: (error) => { fresh.outcome = { error } }
        })
      }
      this.#readers.set(key, reader = fresh)
    }
    if (reader.serial.busy) return { busy: true }
    reader.read = read
    await reader.serial.reload()
    return reader.outcome as Outcome
  }

  async #load (name: string | undefined, file: string | undefined, now: string, read: () => Promise<CredentialSpec | undefined>): Promise<boolean> {
    const { log, context } = this.#options
    const outcome = await this.#read(file ?? 'default', read)
    // Still waiting for an abandoned read of this source: try again at the next poll.
    if ('busy' in outcome) return false
    if ('error' in outcome) {
      const error = outcome.error
      // A ConfigError: one line naming the file and the field, never the key.
      const slot = file === undefined ? this.#slots.get('default') : [...this.#slots.values()].find((candidate) => candidate.file === file)
      // A refused version is not read again until it changes; a read that timed out is tried again.
      if (!(error instanceof ReloadTimeoutError)) {
        if (slot !== undefined) slot.signature = now
        if (file !== undefined) this.#refused.set(file, now)
      }
      log.error({ ...(slot === undefined ? {} : { app: slot.credential.name }), ...(file === undefined ? {} : { file }), reason: (error as Error).message },
        slot === undefined ? 'credential file refused; it is not in service' : 'credential reload failed; the last good version stays in service')
      return false
    }
    if (file !== undefined) this.#refused.delete(file)
    const spec = outcome.spec
    if (spec === undefined) {
      // `default` is no longer configured.
      const slot = this.#slots.get(name as string)
      if (slot !== undefined) {
        this.#slots.delete(slot.credential.name)
        slot.credential.close()
        log.info({ app: slot.credential.name }, 'credential removed: it is no longer configured')
      }
      return true
    }
    const existing = this.#slots.get(spec.name)
    if (existing !== undefined && existing.file !== file) {
      log.error({ app: spec.name, file }, `credential refused: the name "${spec.name}" is taken; rename the file`)
      return false
    }
    for (const warning of spec.warnings) log.warn({ app: spec.name }, warning)
    if (existing !== undefined && existing.credential.spec.kind === spec.kind) {
      existing.credential.apply(spec)
      existing.signature = await signatureOf(spec.files)
      log.info({ app: spec.name, ...(file === undefined ? {} : { file }), ...describe(spec) }, 'credential reloaded')
      return true
    }
    existing?.credential.close()
    this.#slots.set(spec.name, { credential: createCredential(spec, context), ...(file === undefined ? {} : { file }), signature: await signatureOf(spec.files) })
    log.info({ app: spec.name, ...(file === undefined ? {} : { file }), ...describe(spec) }, existing === undefined ? 'credential added' : 'credential reloaded')
    return true
  }
}

/** What a credential is, for log lines: never the key or token. */
function describe (spec: CredentialSpec): object {
  return spec.kind === 'jwt'
    ? { kind: 'jwt', app_id: spec.appId, key_id: spec.keyId, api_base: spec.apiBase }
    : { kind: 'static', api_base: spec.apiBase }
}

/** What identifies a version of a set of files (each as src/file-watch.ts sees it). */
async function signatureOf (files: readonly string[]): Promise<string> {
  return (await Promise.all(files.map(signature))).join('|')
}
