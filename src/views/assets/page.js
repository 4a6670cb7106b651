/*
 * The token page's behaviour: Copy, New token, the countdown, the request form and the caller
 * secret. One file, served by the sidecar itself (CSP: script-src 'self'); it only ever writes
 * text into the page (textContent, never innerHTML) and only ever talks to /token (and
 * /token/rights, to offer only what the caller may take).
 *
 * The caller secret (when the sidecar has one) lives in a variable of this script: not in
 * sessionStorage or localStorage, where it would outlive the page and be readable by anything that
 * runs on this origin later, and never in a URL, where it would land in history and logs. It goes
 * out only as the Authorization header of fetches to /token, which are same-origin.
 */
/* global document, navigator, window, fetch, URLSearchParams */
'use strict'

;(function () {
  const $ = (id) => document.getElementById(id)
  const authRequired = document.body.dataset.auth === 'required'

  /** The caller secret, in memory only; null until entered. */
  let secret = null
  /** The selectors of the token on show: {} is the default request. */
  let selectors = {}
  /** The token on show: { accessToken, expiresAt (ms) }. */
  let shown = null
  let countdown = null

  for (const id of ['copy', 'new-token', 'request-form', 'auth-form']) {
    const element = $(id)
    if (element !== null) element.hidden = false
  }

  function mask (token) {
    if (token.length < 16) return '•'.repeat(12)
    return token.slice(0, 4) + '•'.repeat(16) + token.slice(-4)
  }

  function describe (wanted) {
    const parts = []
    if (wanted.session_name) parts.push('session name ' + wanted.session_name)
    if (wanted.account_id) parts.push('account ' + wanted.account_id)
    if (wanted.enterprise_id) parts.push('enterprise ' + wanted.enterprise_id)
    return parts.length === 0 ? 'the default request' : parts.join(', ')
  }

  function left (ms) {
    if (ms <= 0) return 'expired'
    const total = Math.floor(ms / 1000)
    const hours = Math.floor(total / 3600)
    const minutes = Math.floor((total % 3600) / 60)
    const seconds = total % 60
    return 'in ' + (hours > 0 ? hours + ' h ' : '') + (hours > 0 || minutes > 0 ? minutes + ' min ' : '') + seconds + ' s'
  }

  function tick () {
    if (shown === null) return
    const remaining = shown.expiresAt - Date.now()
    $('countdown').textContent = '(' + left(remaining) + ')'
    if (remaining <= 0) stopCountdown()
  }

  function stopCountdown () {
    if (countdown !== null) window.clearInterval(countdown)
    countdown = null
  }

  function status (text) {
    $('status').textContent = text
  }

  function showToken (token, expiresIn, stale) {
    shown = { accessToken: token, expiresAt: expiresIn * 1000 }
    $('token-masked').textContent = mask(token)
    $('token-value').textContent = token
    const time = $('expires-at')
    time.dateTime = new Date(shown.expiresAt).toISOString()
    time.textContent = new Date(shown.expiresAt).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'long' })
    $('stale').hidden = !stale
    $('token-view').hidden = false
    $('token-error').hidden = true
    $('token-empty').hidden = true
    stopCountdown()
    tick()
    countdown = window.setInterval(tick, 1000)
  }

  /** Shows `error`; with `keepToken`, beside the token on show, which is still valid. */
  function showError (error, keepToken) {
    if (!keepToken) {
      shown = null
      stopCountdown()
      $('token-view').hidden = true
    }
    $('error-code').textContent = error.code
    $('error-status').textContent = String(error.statusCode)
    $('error-message').textContent = error.message
    // Only the rows there is something for (an HTML answer from Coze has no Coze code).
    const coze = error.coze ?? {}
    for (const [field, id] of [['error_code', 'coze-code'], ['error_message', 'coze-message'], ['logid', 'coze-logid']]) {
      $(id).textContent = coze[field] ?? ''
      $(id + '-row').hidden = coze[field] === undefined
    }
    $('coze-details').hidden = Object.keys(coze).length === 0
    $('token-empty').hidden = true
    $('token-error').hidden = false
  }

  function clearToken () {
    shown = null
    stopCountdown()
    $('token-masked').textContent = ''
    $('token-value').textContent = ''
    $('token-reveal').open = false
    $('token-view').hidden = true
    $('token-error').hidden = true
    $('token-empty').hidden = false
  }

  /** A fetch to /token with the selectors in the query and the secret, if any, in a header. */
  function call (method, wanted) {
    // The credential the page shows (picked with ?app=): every request names it.
    const app = document.body.dataset.app
    const query = new URLSearchParams(app === undefined || app === '' ? wanted : { app, ...wanted }).toString()
    const headers = { accept: 'application/json' }
    if (secret !== null) headers.authorization = 'Bearer ' + secret
    return fetch('/token' + (query === '' ? '' : '?' + query), {
      method, headers, cache: 'no-store', credentials: 'same-origin', redirect: 'error'
    })
  }

  async function problem (response) {
    try {
      const body = await response.json()
      if (typeof body.code === 'string') return body
    } catch {}
    return { statusCode: response.status, code: 'HTTP_' + response.status, message: 'the sidecar answered ' + response.status }
  }

  const busyButtons = () => document.querySelectorAll('#new-token, #request-form button, #auth-form button')

  /**
   * Gets a token for `wanted` and shows it. With `fresh`, a new one from Coze (`renew=true`): the
   * sidecar keeps the current token until the new one arrives, and so does the page, which keeps
   * showing it, still valid, when Coze fails.
   */
  async function load (wanted, fresh) {
    if (authRequired && secret === null) {
      status('')
      $('auth-status').textContent = 'Enter the caller secret first.'
      $('secret').focus()
      return false
    }
    for (const button of busyButtons()) button.disabled = true
    status(fresh ? 'Asking Coze for a new token…' : 'Asking the sidecar…')
    $('token-for').textContent = describe(wanted)
    selectors = wanted
    const keep = fresh && shown !== null
    try {
      const response = await call('GET', fresh ? { ...wanted, renew: 'true' } : wanted)
      if (!response.ok) return failed(await problem(response), keep)
      const body = await response.json()
      showToken(body.access_token, body.expires_in, response.headers.get('x-token-stale') === 'true')
      status(fresh ? 'New token.' : '')
      return true
    } catch (error) {
      return failed({ statusCode: 0, code: 'NETWORK_ERROR', message: 'the sidecar could not be reached: ' + error.message }, keep)
    } finally {
      for (const button of busyButtons()) button.disabled = false
    }
  }

  function failed (error, keepToken) {
    const refused = error.statusCode === 401 && authRequired
    showError(error, keepToken && !refused)
    status(keepToken && !refused ? 'No new token; the one above is still valid.' : '')
    if (refused) {
      secret = null
      $('forget').hidden = true
      $('auth-status').textContent = 'The sidecar did not accept that secret.'
    } else if (authRequired && secret !== null && error.statusCode !== 0 && error.statusCode !== 403) {
      // The sidecar took the secret (an answer past its guard says so); Coze is another matter.
      secretAccepted()
    }
    return false
  }

  function secretAccepted () {
    $('auth-status').textContent = 'Unlocked. The secret stays in this tab\'s memory until you reload or close it.'
    $('forget').hidden = false
  }

  const RIGHTS = { 'session-name': 'session_names', 'account-id': 'accounts', 'enterprise-id': 'enterprises' }

  /** Shows every field again (no caller known). */
  function resetRights () {
    for (const id of Object.keys(RIGHTS)) {
      for (const element of [$(id), document.querySelector('label[for="' + id + '"]')]) element.hidden = false
      $(id).disabled = false
      $(id).placeholder = ''
    }
    $('request-form').hidden = false
    $('caller-rights').hidden = true
  }

  /**
   * Offers only what the caller may take (SIDECAR_CALLERS_FILE): a field it may not use is hidden
   * (and disabled, so the form does not send it), the others show the patterns it may use.
   */
  async function loadRights () {
    let rights
    try {
      const response = await fetch('/token/rights', {
        headers: { accept: 'application/json', authorization: 'Bearer ' + secret }, cache: 'no-store', credentials: 'same-origin', redirect: 'error'
      })
      if (!response.ok) return
      rights = await response.json()
    } catch {
      return
    }
    let offered = 0
    for (const [id, rule] of Object.entries(RIGHTS)) {
      const allowed = rights[rule]
      const none = allowed.length === 0
      for (const element of [$(id), document.querySelector('label[for="' + id + '"]')]) element.hidden = none
      $(id).disabled = none
      $(id).placeholder = none || allowed.includes('*') ? '' : allowed.join(', ')
      if (!none) offered++
    }
    $('request-form').hidden = offered === 0
    const limit = rights.max_ttl === undefined ? '' : ' (tokens of at most ' + rights.max_ttl + ' s)'
    $('caller-rights').textContent = 'Caller ' + rights.caller + (rights.every_right
      ? ': every right.'
      : offered === 0 ? ': only its default token' + limit + '.' : ': the form offers only what it may take' + limit + '.')
    $('caller-rights').hidden = false
  }

  $('new-token').addEventListener('click', () => { load(selectors, true) })

  $('copy').addEventListener('click', async () => {
    if (shown === null) return
    try {
      await navigator.clipboard.writeText(shown.accessToken)
      status('Copied to the clipboard.')
    } catch {
      // No clipboard (permission refused, or not a secure context): select it for Ctrl+C.
      $('token-reveal').open = true
      const range = document.createRange()
      range.selectNodeContents($('token-value'))
      const selection = window.getSelection()
      selection.removeAllRanges()
      selection.addRange(range)
      status('The browser refused the clipboard; the token is selected: press Ctrl+C.')
    }
  })

  $('request-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const wanted = {}
    for (const [name, value] of new window.FormData(event.target)) {
      if (String(value).trim() !== '') wanted[name] = String(value).trim()
    }
    load(wanted, false)
  })

  if (authRequired) {
    $('auth-form').addEventListener('submit', async (event) => {
      event.preventDefault()
      const input = $('secret')
      const entered = input.value.trim()
      input.value = ''
      if (entered === '') {
        $('auth-status').textContent = 'Enter the caller secret first.'
        input.focus()
        return
      }
      secret = entered
      $('auth-status').textContent = ''
      await loadRights()
      if (await load(selectors, false)) secretAccepted()
    })
    $('forget').addEventListener('click', () => {
      secret = null
      clearToken()
      resetRights()
      $('forget').hidden = true
      $('auth-status').textContent = 'Forgotten.'
      $('secret').focus()
    })
    $('secret').focus()
  } else {
    // The token the server rendered: the countdown and a local time for it.
    const token = $('token-value').textContent
    const expires = Date.parse($('expires-at').dateTime)
    if (token !== '' && !Number.isNaN(expires)) showToken(token, expires / 1000, !$('stale').hidden)
  }
})()
