import t from 'tap'
import { escapeHtml, html, raw, SafeHtml } from '../../src/views/html.js'

const HOSTILE = [
  '<script>alert(1)</script>',
  '"onmouseover="alert(1)',
  "' onfocus='alert(1)",
  '"><img src=x onerror=alert(1)>',
  '</code></details><script>',
  '&lt;already escaped&gt;',
  '<!-- --><![CDATA[ ]]>'
]

t.test('escapeHtml: the five characters that matter, nothing else', async (t) => {
  t.equal(escapeHtml('<a href="x" title=\'y\'>&</a>'), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
  t.equal(escapeHtml('czs_AbC-123 ünïcödé •'), 'czs_AbC-123 ünïcödé •')
  t.equal(escapeHtml(''), '')
})

t.test('html: every interpolation is escaped, in text and in quoted attributes', async (t) => {
  for (const hostile of HOSTILE) {
    const out = html`<p title="${hostile}" data-x='${hostile}'>${hostile}</p>`.value
    t.notMatch(out, /<script|<img|<!--|onmouseover="|onfocus='/, hostile)
    // Only the template's own quotes and brackets are left.
    t.equal(out.match(/"/g)?.length, 2, `${hostile}: no quote escapes its attribute`)
    t.equal(out.match(/'/g)?.length, 2)
    t.equal(out.match(/</g)?.length, 2, `${hostile}: no tag opens`)
    t.equal(out, `<p title="${escapeHtml(hostile)}" data-x='${escapeHtml(hostile)}'>${escapeHtml(hostile)}</p>`)
  }
  t.equal(html`${'&lt;'}`.value, '&amp;lt;', 'escaped text is escaped again: no double meaning')
})

t.test('html: raw(), nested templates, lists, numbers and nothing', async (t) => {
  t.equal(html`<b>${raw('<i>trusted</i>')}</b>`.value, '<b><i>trusted</i></b>', 'raw is the explicit way in')
  const items = ['<a>', 'b']
  t.equal(html`<ul>${items.map((item) => html`<li>${item}</li>`)}</ul>`.value, '<ul><li>&lt;a&gt;</li><li>b</li></ul>')
  t.equal(html`${[['<x>', [raw('<y>')]]]}`.value, '&lt;x&gt;<y>', 'nested lists')
  t.equal(html`${42}|${0}|${undefined}|${null}|${false}|${''}`.value, '42|0||||', 'numbers; nothing for nothing')
  t.equal(html`plain`.value, 'plain')
  const safe = html`<p>${'<'}</p>`
  t.ok(safe instanceof SafeHtml)
  t.equal(String(safe), '<p>&lt;</p>', 'toString is the HTML')
  t.equal(`${safe}`, safe.value)
})
