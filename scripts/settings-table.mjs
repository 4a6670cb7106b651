// Writes the README's configuration table from src/settings.ts (built into dist/), between the
// `settings:start` and `settings:end` markers. test/settings.test.ts fails when they differ.
import { readFileSync, writeFileSync } from 'node:fs'
import { settingsTable } from '../dist/settings.js'

const file = new URL('../README.md', import.meta.url)
const readme = readFileSync(file, 'utf8')
const start = '<!-- settings:start (npm run docs:settings writes this table from src/settings.ts) -->'
const end = '<!-- settings:end -->'
const from = readme.indexOf(start)
const to = readme.indexOf(end)
if (from === -1 || to === -1) throw new Error('README.md has no settings markers')
writeFileSync(file, `${readme.slice(0, from + start.length)}\n${settingsTable()}\n${readme.slice(to)}`)
console.log('README.md: configuration table written')
