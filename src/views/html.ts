/**
 * HTML that is escaped by default: a tagged template that escapes every interpolation, and an
 * explicit {@link raw} for the few fragments that are already HTML. A value can only reach the
 * page unescaped by being wrapped in `raw()` or by coming from another `html` template.
 *
 * Escaping covers text and quoted attribute values (`"` and `'` are escaped). It does not make a
 * value safe as a URL (`javascript:`), an unquoted attribute, or inside `<script>` or `<style>`:
 * the templates never interpolate into those places.
 *
 * @example
 * html`<p title="${name}">${name}</p>`             // name = '"><script>' stays text
 * html`<ul>${items.map((item) => html`<li>${item}</li>`)}</ul>`
 */

/** A fragment of HTML that is safe to put in a page as it is. */
export class SafeHtml {
  readonly value: string

  constructor (value: string) {
    this.value = value
  }

  toString (): string {
    return this.value
  }
}

/** What may be interpolated: text (escaped), numbers, safe HTML, nothing, or lists of these. */
export type Interpolation = string | number | SafeHtml | null | undefined | false | readonly Interpolation[]

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text as HTML: `& < > " '` become entities. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (char) => ENTITIES[char] as string)
}

/** Marks trusted HTML (a constant, or the output of something that escaped) as safe. */
export function raw (value: string): SafeHtml {
  return new SafeHtml(value)
}

function render (value: Interpolation): string {
  if (value === null || value === undefined || value === false) return ''
  if (value instanceof SafeHtml) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  return escapeHtml(String(value))
}

/** The tagged template: the literal parts are trusted, every `${value}` is escaped. */
export function html (strings: TemplateStringsArray, ...values: Interpolation[]): SafeHtml {
  let out = strings[0] as string
  for (let index = 0; index < values.length; index++) {
    out += render(values[index]) + (strings[index + 1] as string)
  }
  return new SafeHtml(out)
}
