/**
 * The service's version, from package.json: one place, read once. `src/` and `dist/` are both one
 * level below the package root, so the same relative path works from either.
 */
import { readFileSync } from 'node:fs'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
