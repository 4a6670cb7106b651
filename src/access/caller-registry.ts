/**
 * Who is calling: the callers of `SIDECAR_CALLERS_FILE` and the caller `default` of
 * `SIDECAR_AUTH_TOKEN(_FILE)`, found by the secret a request presents. Framework-free.
 *
 * Secrets are held as SHA-256 digests only. The presented secret is hashed once and compared with
 * every caller's digest in constant time (`timingSafeEqual`), all of them, with no early exit:
 * how long it takes says nothing about which caller matched, or how nearly.
 *
 * @example
 * const registry = await CallerRegistry.load({ file: '/etc/sidecar/callers.json' })
 * registry.identify(request.headers.authorization)?.name // 'billing', or undefined: a 401
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { readSecretFile, type CallerSecretError } from './caller-secret.js'
import { CallersFileError, DEFAULT_CALLER, everyRight, parseCallers, type Caller } from './callers.js'

export interface CallerRegistryOptions {
  /** `SIDECAR_CALLERS_FILE`, an absolute path. */
  file?: string
  /** `SIDECAR_AUTH_TOKEN` (`value`) or `SIDECAR_AUTH_TOKEN_FILE` (`file`, re-read on reload). */
  defaultSecret?: { value: string, file?: string }
  /** Default: the file system. */
  read?: ((path: string) => Promise<string>) | undefined
}

interface Known {
  digest: Buffer
  caller: Caller
}

const readText = (path: string): Promise<string> => readFile(path, 'utf8')

export class CallerRegistry {
  readonly #options: CallerRegistryOptions
  #known: Known[] = []
  #files: string[] = []
  #reloading: Promise<void> = Promise.resolve()

  private constructor (options: CallerRegistryOptions) {
    this.#options = options
  }

  /**
   * Reads the callers file and every secret file.
   * @throws CallersFileError naming the file and the field; never a secret.
   */
  static async load (options: CallerRegistryOptions): Promise<CallerRegistry> {
    const registry = new CallerRegistry(options)
    await registry.#load(options.defaultSecret?.value)
    return registry
  }

  /** The files whose change calls for {@link reload}: the callers file and the secret files. */
  get files (): readonly string[] {
    return this.#files
  }

  /** The callers' names, in the file's order (`default` first when configured). */
  get names (): string[] {
    return this.#known.map((known) => known.caller.name)
  }

  /** The caller whose secret `Authorization: Bearer <secret>` carries, or undefined. */
  identify (authorization: string | undefined): Caller | undefined {
    const presented = digest(/^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1] ?? '')
    let found: Caller | undefined
    for (const known of this.#known) {
      // Every digest is compared; the match is remembered, not returned.
      const same = timingSafeEqual(presented, known.digest)
      found = same ? known.caller : found
    }
    return found
  }

  /**
   * Reads everything again and swaps the rules in whole. A broken file keeps the last good rules
   * in service and rejects, naming the file and the field.
   */
  reload (): Promise<void> {
    const next = this.#reloading.then(() => this.#load())
    this.#reloading = next.catch(() => {})
    return next
  }

  async #load (defaultValue?: string): Promise<void> {
    const read = this.#options.read ?? readText
    const known: Known[] = []
    const files: string[] = []
    const owners = new Map<string, string>()
    const add = (caller: Caller, secretDigest: Buffer, field: string, file: string): void => {
      const hex = secretDigest.toString('hex')
      const twin = owners.get(hex)
      if (twin !== undefined) throw new CallersFileError(file, field, `is the same secret as ${twin}'s; give each caller its own`)
      owners.set(hex, caller.name === DEFAULT_CALLER && field === 'SIDECAR_AUTH_TOKEN' ? 'SIDECAR_AUTH_TOKEN' : `callers.${caller.name}`)
      known.push({ digest: secretDigest, caller })
    }
    const fromDefault = this.#options.defaultSecret
    if (fromDefault !== undefined) {
      let value = defaultValue
      if (value === undefined && fromDefault.file !== undefined) value = await readSecret(fromDefault.file, 'SIDECAR_AUTH_TOKEN_FILE', fromDefault.file, read)
      add(everyRight(DEFAULT_CALLER), digest(value ?? fromDefault.value), 'SIDECAR_AUTH_TOKEN', fromDefault.file ?? 'SIDECAR_AUTH_TOKEN')
      if (fromDefault.file !== undefined) files.push(fromDefault.file)
    }
    const file = this.#options.file
    if (file !== undefined) {
      files.push(file)
      let text: string
      try {
        text = await read(file)
      } catch (error) {
        throw new CallersFileError(file, '(the file)', `cannot be read (${String((error as NodeJS.ErrnoException).code)})`)
      }
      for (const { caller, secret } of parseCallers(text, file, fromDefault === undefined ? [] : [DEFAULT_CALLER])) {
        if ('sha256' in secret) {
          add(caller, Buffer.from(secret.sha256, 'hex'), `callers.${caller.name}.secret_sha256`, file)
        } else {
          const field = `callers.${caller.name}.secret_file`
          add(caller, digest(await readSecret(secret.file, field, file, read)), field, file)
          files.push(secret.file)
        }
      }
    }
    this.#known = known
    this.#files = files
  }
}

async function readSecret (path: string, field: string, file: string, read: (path: string) => Promise<string>): Promise<string> {
  try {
    return await readSecretFile(path, read)
  } catch (error) {
    // The message names the path and the rule, never the content.
    throw new CallersFileError(file, field, `is unusable: ${(error as CallerSecretError).message}`)
  }
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
