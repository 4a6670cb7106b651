/**
 * What to say when the key (or coze_oauth_config.json, which holds it) cannot be read because of
 * its permissions: which user must read it, and the ways to allow that. The usual case is the
 * container image, which runs as uid 1000, and a key that `chmod 600` left to its owner alone.
 *
 * @example
 * unreadableHint('/keys/private_key.pem', 'EACCES', { uid: 1000, gid: 1000 })
 */

/** The user and group this process runs as; undefined where the platform has none (Windows). */
export interface ProcessIds {
  uid?: number
  gid?: number
}

/* c8 ignore next 4 - the tests pass ids; process.getuid is absent only on Windows */
const currentIds = (): ProcessIds => ({
  ...(process.getuid === undefined ? {} : { uid: process.getuid() }),
  ...(process.getgid === undefined ? {} : { gid: process.getgid() })
})

/**
 * A hint for a permission error (`EACCES`, `EPERM`) on `file`, or undefined for other errors.
 * Never says anything about the file's content.
 */
export function unreadableHint (file: string, code: string, ids: ProcessIds = currentIds()): string | undefined {
  if (code !== 'EACCES' && code !== 'EPERM') return undefined
  if (ids.uid === undefined) return `the user the sidecar runs as may not read ${file}; give it read access`
  const group = ids.gid ?? ids.uid
  return `the sidecar runs as uid ${ids.uid} (gid ${group}), which may not read ${file}: ` +
    `make that user its owner (\`chown ${ids.uid} ${file}\`), or let group ${group} read it (\`chgrp ${group}\` and \`chmod 640\`), ` +
    'or, in Docker, run the container as the file\'s owner (`--user "$(id -u):$(id -g)"`)'
}
