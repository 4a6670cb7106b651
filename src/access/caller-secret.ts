/**
 * The shared secret callers present as `Authorization: Bearer <secret>`, from
 * `SIDECAR_AUTH_TOKEN` or a file (`SIDECAR_AUTH_TOKEN_FILE`) that may be replaced at any time to
 * rotate it. Compared in constant time; never logged.
 *
 * @example
 * const secret = await CallerSecret.fromFile('/run/secrets/sidecar-token')
 * secret.matches(request.headers.authorization) // true or false, in constant time
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { readRegularFile } from '../files/read.js'

/** A secret this short could be guessed; `openssl rand -hex 32` gives 64 characters. */
export const MIN_SECRET_LENGTH = 16

/** Why a secret file was refused. Never contains the file's content. */
export class CallerSecretError extends Error {}

/** Reads and checks a secret file: trimmed, at least 16 printable characters, no spaces. */
export async function readSecretFile (path: string, read: (path: string) => Promise<string> = readRegularFile): Promise<string> {
  let text: string
  try {
    text = await read(path)
  } catch (error) {
    throw new CallerSecretError(`cannot read ${path} (${String((error as NodeJS.ErrnoException).code)})`)
  }
  const secret = text.trim()
  if (secret.length < MIN_SECRET_LENGTH || secret.length > 4096 || !/^[\x21-\x7E]+$/.test(secret)) {
    throw new CallerSecretError(`${path} must hold one secret of ${MIN_SECRET_LENGTH} to 4096 printable characters without spaces`)
  }
  return secret
}

export class CallerSecret {
  #digest: Buffer
  readonly file: string | undefined

  constructor (secret: string, file?: string) {
    this.#digest = digest(secret)
    this.file = file
  }

  /**
   * Whether an `Authorization` header carries the secret. Both sides are hashed first, so the
   * comparison takes the same time whatever the header's length or content.
   */
  matches (authorization: string | undefined): boolean {
    const presented = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1] ?? ''
    return timingSafeEqual(digest(presented), this.#digest)
  }

  /** Re-reads the file. A bad new file keeps the current secret in service and throws. */
  async reload (read?: (path: string) => Promise<string>): Promise<void> {
    if (this.file === undefined) return
    this.use(await readSecretFile(this.file, read))
  }

  /** Puts a secret read by {@link readSecretFile} in service. */
  use (secret: string): void {
    this.#digest = digest(secret)
  }
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
