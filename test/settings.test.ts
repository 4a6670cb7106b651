import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigError } from '../src/errors.js'
import { settingsTable, SETTINGS, validateSettings } from '../src/settings.js'

t.test('the README\'s configuration table is the settings table (npm run docs:settings)', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  t.ok(readme.includes(`\n${settingsTable()}\n`), 'run `npm run docs:settings` after changing src/settings.ts')
  for (const name of Object.keys(SETTINGS)) t.match(settingsTable(), `| \`${name}\` |`)
})

t.test('values: typed, defaulted, blank counts as unset, proxies in either case', async (t) => {
  const settings = validateSettings({ PORT: '9000', SIDECAR_REJECT_FORWARDED: 'true', COZE_APP_ID: '  ', https_proxy: 'http://127.0.0.1:3128', HTTPS_PROXY: 'http://ignored:1', NO_PROXY: 'localhost' })
  t.equal(settings.PORT, 9000)
  t.equal(settings.SIDECAR_REJECT_FORWARDED, true)
  t.equal(settings.COZE_TOKEN_TTL, 900)
  t.equal(settings.COZE_APP_ID, undefined, 'blank is unset')
  t.equal(settings.HTTPS_PROXY, 'http://127.0.0.1:3128', 'lower case first, as undici and curl read it')
  t.equal(settings.NO_PROXY, 'localhost')
})

t.test('a caller secret that is set but blank is an error, not authentication switched off', async (t) => {
  for (const [name, value] of [['SIDECAR_AUTH_TOKEN', ''], ['SIDECAR_AUTH_TOKEN', '   '], ['SIDECAR_AUTH_TOKEN_FILE', ''], ['SIDECAR_AUTH_TOKEN_FILE', ' \n']] as const) {
    const error = (() => { try { validateSettings({ [name]: value }) } catch (e) { return e as ConfigError } })()
    t.type(error, ConfigError, `${name}=${JSON.stringify(value)}`)
    t.equal(error?.setting, name)
    t.match(error?.message, new RegExp(`^${name}: is set but blank: .*, or unset it$`))
  }
})

t.test('a bad value names the first setting at fault, in the table\'s order', async (t) => {
  const error = (() => { try { validateSettings({ SIDECAR_DEMO: 'maybe', PORT: 'x' }) } catch (e) { return e as ConfigError } })()
  t.match(error, { setting: 'PORT', message: /^PORT: is invalid \(must be integer\): set it to a port number/ })
})
