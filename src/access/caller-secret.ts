/**
 * A caller secret from a file (`SIDECAR_AUTH_TOKEN_FILE`, a caller's `secret_file`), which may be
 * replaced at any time to rotate it. Secrets are held and compared by `caller-registry.ts`.
 *
 * @example
 * const secret = await readSecretFile('/run/secrets/sidecar-token')
 */
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
