/**
 * The one writer of throw-away RSA keys: demo mode's `.demo/private-key.pem` and the emulator
 * CLI's `.demo/emulator-private-key.pem`. Framework-free and protocol-free, so that the emulator
 * can use it without sharing any Coze code with the sidecar.
 *
 * A key is written whole to a temporary file in the same folder (mode 0600) and then linked to
 * its name, which fails when the name exists: two processes started at once on a fresh clone
 * never see half a key, and both end up with the same one (the loser reads the winner's).
 *
 * @example
 * const { key, created } = await loadOrCreateKey('.demo/private-key.pem')
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** A usable key: RSA of 2048 bits or more. */
function usable (key: KeyObject): boolean {
  return key.asymmetricKeyType === 'rsa' && Number(key.asymmetricKeyDetails?.modulusLength) >= 2048
}

/** The key in `file` if it is a usable one; `missing` when there is no file, `unusable` otherwise. */
async function readKey (file: string): Promise<KeyObject | 'missing' | 'unusable'> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing'
    throw error
  }
  try {
    const key = createPrivateKey(pem)
    return usable(key) ? key : 'unusable'
  } catch {
    return 'unusable'
  }
}

/**
 * `dir` (0700), and its parents when they are missing. Not recursive first: a recursive mkdir
 * reports a read-only file system as ENOENT (Node 22, seen in the read-only container), where
 * a plain one says EROFS.
 */
async function makeFolder (dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return
    if (code !== 'ENOENT') throw error
    await mkdir(dir, { recursive: true, mode: 0o700 })
  }
}

/** A new RSA-2048 private key. */
export function newKey (): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
}

/**
 * The RSA key in `file`, or a new RSA-2048 key written there (mode 0600, in a 0700 folder made
 * when missing). A file that is not a usable key is replaced: it is a throw-away key's, worth
 * nothing. A kept file is made private again (a mode set on a new file does not apply to an old one).
 * @throws the file system's error (`EACCES`, `EROFS`...) when the folder cannot be written.
 */
export async function loadOrCreateKey (file: string): Promise<{ key: KeyObject, created: boolean }> {
  const dir = dirname(file)
  await makeFolder(dir)
  const found = await readKey(file)
  if (typeof found !== 'string') {
    await chmod(file, 0o600)
    return { key: found, created: false }
  }
  const key = newKey()
  const temporary = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  await writeFile(temporary, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' })
  try {
    if (found === 'unusable') {
      await rename(temporary, file)
      return { key, created: true }
    }
    try {
      await link(temporary, file)
      return { key, created: true }
    } catch (error) {
      /* c8 ignore next - only on a file system without hard links (EPERM, ENOTSUP): its own error */
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    // Another process linked its key first: that one is the key.
    const winner = await readKey(file)
    /* c8 ignore next - only when a third party writes a broken file between two links */
    if (typeof winner === 'string') throw new Error(`${file} changed while it was being created`)
    return { key: winner, created: false }
  } finally {
    await unlink(temporary).catch(() => {})
  }
}
