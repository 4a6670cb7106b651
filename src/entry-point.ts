/**
 * For files that are both a module and a command (`server.ts`, the emulator's CLI): they run
 * their `main` only when node was asked to run them, so tests can import and drive them.
 */
import { realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The part of `process` an entry point uses, so that tests can hand in their own. */
export interface ProcessLike {
  env: Record<string, string | undefined>
  cwd: () => string
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
  exit: (code: number) => void
  on: (signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: () => void) => unknown
}

/** True when `moduleUrl` is the file `node` was asked to run (`process.argv[1]`), symlinks resolved. */
export function isEntryPoint (moduleUrl: string, argv1: string | undefined): boolean {
  if (argv1 === undefined) return false
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(moduleUrl))
  } catch {
    return false
  }
}
