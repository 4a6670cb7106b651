/**
 * The token page in a real browser (headless Chromium), against the sidecar and the emulator over
 * HTTP on 127.0.0.1: what a person sees and can do, with JavaScript, without it, and with a caller
 * secret. Screenshots land in .tap/screenshots/.
 */
import t from 'tap'
import { request } from 'undici'
import { NARROW_SECRET, OTHER_SECRET, writeCallers } from '../fixtures/callers.js'
import { APP_ID, startEmulator, startSidecar, tempDir } from '../fixtures/harness.js'
import {
  activeId, countdownSeconds, launchBrowser, openPage, screenshot, tabTo, waitForChange, waitForText
} from '../fixtures/page-browser.js'

const SECRET = 'page-caller-secret-0123456789abcdef'

/** What /token answers, asked directly (the cache makes it the token the page shows). */
async function tokenOf (origin: string, query = '', authorization?: string): Promise<{ access_token: string, expires_at: string }> {
  const response = await request(`${origin}/token${query}`, { headers: authorization === undefined ? {} : { authorization } })
  if (response.statusCode !== 200) throw new Error(`GET /token${query}: ${response.statusCode} ${await response.body.text()}`)
  return await response.body.json() as { access_token: string, expires_at: string }
}

/** Failed fetches that a step provokes on purpose (Chromium logs each as a console error). */
const expectedStatus = (...statuses: number[]) => (problem: string): boolean =>
  !statuses.some((status) => problem.includes(`Failed to load resource: the server responded with a status of ${status}`))

const browser = await launchBrowser(t)

t.test('with JavaScript: masked token, Show, Copy, countdown, New token, the form, a refusal', async (t) => {
  const emulator = await startEmulator(t)
  const { app, logs } = await startSidecar(t, emulator, { SIDECAR_DEMO: 'true' })
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  const { page, problems } = await openPage(t, browser, origin)
  await page.goto(`${origin}/`)

  t.equal(await page.textContent('#demo-banner'), 'Demo mode: these tokens come from a built-in Coze emulator and are NOT valid at Coze')
  t.equal(await page.textContent('#app-id'), APP_ID)
  t.equal(await page.textContent('#api-base'), emulator.url)
  t.equal(await page.textContent('#variant'), 'Developer')

  const first = await tokenOf(origin)
  const masked = await page.textContent('#token-masked') as string
  t.match(masked, /^czs_•{16}[A-Za-z0-9]{4}$/, 'masked')
  t.notOk(masked.includes(first.access_token.slice(4, -4)), 'the masked text holds no more than its ends')
  t.notOk(await page.isVisible('#token-value'), 'the full token is not shown')

  await page.click('#token-reveal summary')
  t.ok(await page.isVisible('#token-value'), 'Show shows it')
  t.equal(await page.innerText('#token-value'), first.access_token, 'the token /token hands out')
  t.ok(await page.isVisible('#token-reveal .when-open'), 'the summary now says Hide')

  await page.click('#copy')
  await waitForText(page, '#status', 'Copied to the clipboard.')
  t.equal(await page.evaluate('navigator.clipboard.readText()'), first.access_token, 'Copy put it on the clipboard')

  t.equal(await page.getAttribute('#expires-at', 'datetime'), first.expires_at, 'the expiry')
  t.notMatch(await page.textContent('#expires-at'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/, 'shown in local time by the script')
  const before = countdownSeconds(await page.textContent('#countdown') as string)
  t.ok(before > 800 && before <= 900, `a countdown from about 15 minutes (${before} s)`)
  await page.waitForTimeout(1_100) // the one deliberate wait: the countdown must move
  const after = countdownSeconds(await page.textContent('#countdown') as string)
  t.ok(after < before, `the countdown goes down (${before} s, then ${after} s)`)

  await screenshot(page, 'page-light')
  await page.emulateMedia({ colorScheme: 'dark' })
  await screenshot(page, 'page-dark')
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize({ width: 390, height: 844 })
  await screenshot(page, 'page-narrow')
  await page.setViewportSize({ width: 1280, height: 720 })

  // New token, by keyboard: Tab to it (its focus is visible) and press Enter.
  await tabTo(page, 'new-token')
  t.equal(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle'), 'solid', 'visible focus')
  await page.keyboard.press('Enter')
  await waitForChange(page, '#token-value', first.access_token)
  const second = await page.innerText('#token-value')
  t.not(second, first.access_token, 'New token changed it')
  t.equal(second, (await tokenOf(origin)).access_token, 'to the one the sidecar now hands out')
  t.equal(await page.textContent('#status'), 'New token.')

  await page.fill('#session-name', 'alice')
  await page.click('#request-form button[type=submit]')
  await waitForText(page, '#token-for', 'session name alice')
  await waitForChange(page, '#token-value', second)
  const alice = await page.innerText('#token-value')
  t.not(alice, second, 'a session name gets a token of its own')
  t.equal(alice, (await tokenOf(origin, '?session_name=alice')).access_token)

  // Coze refuses New token: the page says what Coze said, with the logid, and keeps the token
  // it has, which the sidecar keeps serving.
  emulator.state.setEnabled(APP_ID, false)
  await page.click('#new-token')
  await page.waitForSelector('#token-error', { state: 'visible' })
  t.ok(await page.isVisible('#token-view'), 'the current token is still on show')
  t.equal(await page.innerText('#token-value'), alice, 'the same one')
  t.equal(await page.textContent('#status'), 'No new token; the one above is still valid.')
  t.equal((await tokenOf(origin, '?session_name=alice')).access_token, alice, 'and the sidecar still serves it')
  t.equal(await page.textContent('#error-code'), 'COZE_ACCESS_DENY')
  t.equal(await page.textContent('#error-status'), '502')
  t.equal(await page.textContent('#coze-code'), 'access_deny')
  const logid = await page.textContent('#coze-logid') as string
  t.match(logid, /^\d{14}[0-9A-F]{20}$/)
  t.ok(logs.exchanges.some((exchange) => exchange.logid === logid), 'the logid of the refused exchange')
  await screenshot(page, 'page-new-token-refused')

  // A request with nothing cached: the error alone.
  await page.fill('#session-name', 'carol')
  await page.click('#request-form button[type=submit]')
  await waitForText(page, '#token-for', 'session name carol')
  await page.waitForSelector('#token-view', { state: 'hidden' })
  t.equal(await page.textContent('#error-code'), 'COZE_ACCESS_DENY', 'no token on show, the refusal instead')
  await screenshot(page, 'page-refused')
  await page.emulateMedia({ colorScheme: 'dark' })
  await screenshot(page, 'page-refused-dark')
  await page.emulateMedia({ colorScheme: 'light' })

  // Coze answers an HTML page: no Coze code or message, so no such rows.
  emulator.state.setEnabled(APP_ID, true)
  emulator.state.injectFault({ kind: 'html' }, Infinity)
  await page.fill('#session-name', 'dave')
  await page.click('#request-form button[type=submit]')
  await waitForText(page, '#token-for', 'session name dave')
  await waitForText(page, '#error-code', 'COZE_BAD_RESPONSE')
  t.ok(await page.isHidden('#coze-code-row'), 'no empty "Coze error code" row')
  t.ok(await page.isHidden('#coze-message-row'), 'no empty "Coze message" row')
  t.equal(await page.isVisible('#coze-logid-row'), (await page.textContent('#coze-logid')) !== '', 'the logid row when there is a logid')
  await screenshot(page, 'page-html-answer')
  emulator.state.clearFaults()

  // A bad parameter is an error of the sidecar's own, in the same place.
  await page.fill('#session-name', '')
  await page.fill('#account-id', '7351')
  await page.fill('#enterprise-id', 'volcano_1')
  await page.click('#request-form button[type=submit]')
  await waitForText(page, '#error-code', 'INVALID_PARAMETER')
  t.ok(await page.isHidden('#coze-details'), 'no Coze details when Coze was not asked')

  t.same(problems.filter(expectedStatus(400, 502)), [], 'no console errors, exceptions or CSP violations')
})

t.test('with a caller secret: the page asks for it, sends it only as a header, then shows a token', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_AUTH_TOKEN: SECRET })
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  const { page, problems, urls, authorizations } = await openPage(t, browser, origin)
  await page.goto(`${origin}/`)

  t.ok(await page.isVisible('#auth-form'), 'a form asks for the secret')
  t.equal(await activeId(page), 'secret', 'and has the focus')
  t.notOk(await page.isVisible('#token-view'), 'no token without it')
  t.notMatch(await page.content(), /czs_/, 'not even hidden in the page')
  await screenshot(page, 'page-auth')

  t.equal(await page.textContent('#auth-status'), '')
  await page.press('#secret', 'Enter')
  t.equal(await page.textContent('#auth-status'), 'Enter the caller secret first.', 'an empty secret is not sent')
  await page.click('#new-token')
  t.equal(await page.textContent('#auth-status'), 'Enter the caller secret first.', 'nothing is asked without it')
  t.notOk(urls.some((url) => new URL(url).pathname === '/token'), 'not even /token')

  await page.fill('#secret', 'a-wrong-secret-0123456789')
  await page.press('#secret', 'Enter')
  await waitForText(page, '#auth-status', 'The sidecar did not accept that secret.')
  t.equal(await page.textContent('#error-code'), 'UNAUTHORIZED')

  await page.fill('#secret', SECRET)
  await page.click('#auth-form button[type=submit]')
  await page.waitForSelector('#token-view', { state: 'visible' })
  t.equal(await page.inputValue('#secret'), '', 'the field is emptied')
  await page.click('#token-reveal summary')
  t.equal(await page.innerText('#token-value'), (await tokenOf(origin, '', `Bearer ${SECRET}`)).access_token)
  t.ok(await page.isVisible('#forget'))
  await screenshot(page, 'page-auth-unlocked')

  await page.fill('#session-name', 'bob')
  await page.click('#request-form button[type=submit]')
  await waitForText(page, '#token-for', 'session name bob')
  await page.waitForSelector('#token-view', { state: 'visible' })

  t.equal(await page.textContent('#caller-rights'), 'Caller default: every right.', 'SIDECAR_AUTH_TOKEN is the caller default')

  // Coze refuses, and a right secret is still shown as accepted.
  await page.click('#forget')
  emulator.state.setEnabled(APP_ID, false)
  const dropped = await request(`${origin}/token?session_name=bob`, { method: 'DELETE', headers: { authorization: `Bearer ${SECRET}` } })
  t.equal(dropped.statusCode, 204, 'nothing cached for the request on show')
  await dropped.body.dump()
  await page.fill('#secret', SECRET)
  await page.click('#auth-form button[type=submit]')
  await waitForText(page, '#error-code', 'COZE_ACCESS_DENY')
  t.match(await page.textContent('#auth-status'), /^Unlocked\./, 'the secret was accepted, whatever Coze says')
  t.ok(await page.isVisible('#forget'), 'and can be forgotten')
  await screenshot(page, 'page-auth-coze-refused')
  emulator.state.setEnabled(APP_ID, true)

  await page.click('#forget')
  t.notOk(await page.isVisible('#token-view'), 'Forget hides the token')
  t.equal(await page.textContent('#token-value'), '', 'and drops it from the page')
  await page.click('#new-token')
  t.equal(await page.textContent('#auth-status'), 'Enter the caller secret first.', 'and the secret is gone')

  t.ok(urls.length > 0)
  t.same(urls.filter((url) => url.includes(SECRET) || url.includes(encodeURIComponent(SECRET))), [], 'the secret is in no URL')
  const tokenCalls = authorizations.filter(({ url }) => new URL(url).pathname === '/token')
  t.ok(tokenCalls.length >= 3, 'the page asked /token')
  t.same(tokenCalls.filter(({ authorization }) => authorization !== undefined && authorization !== `Bearer ${SECRET}` && authorization !== 'Bearer a-wrong-secret-0123456789'), [])
  t.ok(tokenCalls.some(({ authorization }) => authorization === `Bearer ${SECRET}`), 'the secret went as the Authorization header')
  t.same(authorizations.filter(({ url, authorization }) => !['/token', '/token/rights'].includes(new URL(url).pathname) && authorization !== undefined), [], 'and only to /token')
  t.ok(await page.isVisible('#account-id'), 'after Forget every field is offered again')
  t.same(problems.filter(expectedStatus(401, 502)), [], 'no console errors, exceptions or CSP violations')
})

t.test('without JavaScript: the masked token, Show, and the expiry still work', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator)
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  const { page, problems } = await openPage(t, browser, origin, { javaScriptEnabled: false })
  await page.goto(`${origin}/`)
  const token = await tokenOf(origin)
  t.match(await page.textContent('#token-masked'), /^czs_•{16}/)
  t.notOk(await page.isVisible('#token-value'))
  t.notOk(await page.isVisible('#copy'), 'no Copy button that could not work')
  t.notOk(await page.isVisible('#new-token'))
  t.match(await page.innerText('#token-panel'), /Reload the page to see the current token/, 'says what needs JavaScript')
  const expires = await page.textContent('#expires-at') as string
  t.equal(expires, token.expires_at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'), 'the expiry as an absolute time')
  await page.click('#token-reveal summary')
  t.ok(await page.isVisible('#token-value'), 'Show works without JavaScript')
  t.equal(await page.innerText('#token-value'), token.access_token)
  await screenshot(page, 'page-nojs')
  t.same(problems, [])
})

t.test('with callers: the page offers only what the caller may take', async (t) => {
  const emulator = await startEmulator(t)
  const { app } = await startSidecar(t, emulator, { SIDECAR_CALLERS_FILE: writeCallers(tempDir(t)) })
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  const { page, problems } = await openPage(t, browser, origin)
  await page.goto(`${origin}/`)
  await page.fill('#secret', NARROW_SECRET)
  await page.click('#auth-form button[type=submit]')
  await page.waitForSelector('#token-view', { state: 'visible' })
  t.equal(await page.textContent('#caller-rights'), 'Caller narrow: the form offers only what it may take (tokens of at most 600 s).')
  t.ok(await page.isVisible('#session-name'), 'a session name: it may use billing-*')
  t.equal(await page.getAttribute('#session-name', 'placeholder'), 'billing-*')
  t.notOk(await page.isVisible('#account-id'), 'no account id: it may use none')
  t.notOk(await page.isVisible('label[for="account-id"]'))
  t.notOk(await page.isVisible('#enterprise-id'), 'no enterprise id')
  await screenshot(page, 'page-callers-narrow')
  await page.fill('#session-name', 'ops-1')
  await page.click('#request-form button[type=submit]')
  await waitForText(page, '#error-code', 'CALLER_NOT_ALLOWED')
  t.match(await page.textContent('#error-message'), 'caller narrow may not use session_name "ops-1"')
  await page.fill('#session-name', 'billing-1')
  await page.click('#request-form button[type=submit]')
  await waitForText(page, '#token-for', 'session name billing-1')
  await page.waitForSelector('#token-view', { state: 'visible' })

  await page.click('#forget')
  await page.fill('#secret', OTHER_SECRET)
  await page.click('#auth-form button[type=submit]')
  await waitForText(page, '#error-code', 'CALLER_NOT_ALLOWED')
  t.equal(await page.textContent('#caller-rights'), 'Caller other: only its default token.')
  t.notOk(await page.isVisible('#request-form'), 'a caller that may name nothing gets no form')
  t.same(problems.filter(expectedStatus(403)), [], 'no console errors, exceptions or CSP violations')
})
