/**
 * Reading a key, config or secret file without hanging on something that is not a file.
 *
 * @example
 * const pem = await readRegularFile('/keys/private_key.pem')
 */
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'

/**
 * A regular file's text. Opened non-blocking, so a FIFO (or a device) does not block a libuv
 * thread in `open()` until somebody writes to it, and refused once opened: a key is a file.
 * Errors carry a `code` a person can act on (`ENOENT`, `EISDIR`, `not a regular file`).
 */
export async function readRegularFile (path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const info = await handle.stat()
    if (!info.isFile()) {
      throw Object.assign(new Error(`${path} is not a regular file`), { code: info.isDirectory() ? 'EISDIR' : 'not a regular file' })
    }
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}
