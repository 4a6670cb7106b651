#!/usr/bin/env node
/**
 * The last step of `npm run build`: `dist/server.js`, as tsc wrote it, bundled with everything it
 * imports into one file, written over it. The rest of dist/ stays as tsc wrote it (the library
 * entry dist/app.js, the CLIs, and what the bundle loads only when it is needed).
 *
 * Why (issue 12, measured by `npm run bench`): loading the service as ~700 files from dist/ and
 * node_modules/ took about a third of its start-up: a file opened, read and stat'ed for each, the
 * ESM loader's lexing of every CommonJS package, and a module record each. One file, whose
 * functions V8 compiles only when first called, starts faster and holds less.
 *
 * Not bundled, loaded from dist/ and node_modules/ when first needed, as before:
 * - the Coze emulator (`./emulator/*.js`): demo mode only;
 * - @fastify/swagger: built on the first request for /openapi.json;
 * - ws's optional native add-ons, which it loads only if installed.
 *
 * The bundle stays readable (no renaming, names kept for stack traces and error classes); a source
 * map beside it maps back to src/ under `node --enable-source-maps`.
 */
import { realpathSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'

/** How a Node service is bundled here; the bench bundles its bare peer with the same settings. */
export const BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  // Whitespace and syntax only, no renaming: stack traces read as in src/, but for the few names
  // esbuild must change where two modules declare the same one.
  minifyWhitespace: true,
  minifySyntax: true,
  // The CommonJS packages inside an ES module call `require` for node's own modules.
  banner: { js: 'import { createRequire as __createRequire } from \'node:module\'; const require = __createRequire(import.meta.url);' },
  logLevel: 'warning'
}

// Run as `node scripts/bundle.mjs` (npm run build); imported, it only lends its settings.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const entry = 'dist/server.js'
  const { metafile } = await build({
    ...BUNDLE_OPTIONS,
    entryPoints: [entry],
    outfile: entry,
    allowOverwrite: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    external: ['./emulator/*', '@fastify/swagger', 'bufferutil', 'utf-8-validate'],
    metafile: true
  })
  // What went in, and what the bundle still imports from outside (test/bundle.test.ts reads it).
  writeFileSync('dist/server.meta.json', JSON.stringify(metafile))
}
