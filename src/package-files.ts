/**
 * What the service reads from its own package, found from this module's place: it sits at the top
 * of src/ (tests), of dist/ (tsc's output) or inside dist/server.js (the bundle, scripts/bundle.mjs),
 * and each of those is one level below the package root, beside the page's assets.
 */
import { readFileSync } from 'node:fs'

/** The service's version, from package.json: one place, read once. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** The token page's stylesheet and script (src/views/assets, copied to dist/views/assets by the build). */
export const PAGE_ASSETS = new URL('views/assets/', import.meta.url)
