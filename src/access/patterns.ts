/**
 * The allow-lists of a callers file: names and ids matched exactly, or globs where `*` stands for
 * any run of characters (including none, and including `/`). `*` is the only special character.
 *
 * Not picomatch: its path semantics (`*` stops at `/`, `**`, braces, classes, extglobs) would make
 * `/*` mean "one segment" rather than "every path", and give `[`, `{`, `!`, `?` and `+(` meanings
 * in session names that a policy author does not expect. Matching `*`-only globs is a prefix, a
 * suffix and the parts between found left to right: no regular expression, so no backtracking.
 *
 * @example
 * const sessions = new Patterns(['billing-*'], { globs: true })
 * sessions.matches('billing-42') // true
 * new Patterns(['*']).matches('anything') // true: a lone `*` allows every value
 */

export interface PatternOptions {
  /** `*` inside a pattern is a wildcard; otherwise only a lone `*` is (ids may contain `*`). */
  globs?: boolean
}

export class Patterns {
  /** The patterns as written, for the page and for refusal messages. */
  readonly source: readonly string[]
  /** True when a lone `*` allows everything. */
  readonly any: boolean
  readonly #exact: ReadonlySet<string>
  readonly #globs: ReadonlyArray<readonly string[]>

  constructor (patterns: readonly string[], options: PatternOptions = {}) {
    this.source = Object.freeze([...patterns])
    this.any = patterns.includes('*')
    const exact = new Set<string>()
    const globs: string[][] = []
    for (const pattern of patterns) {
      if (options.globs === true && pattern.includes('*')) globs.push(pattern.split('*'))
      else exact.add(pattern)
    }
    this.#exact = exact
    this.#globs = globs
  }

  matches (value: string): boolean {
    if (this.any || this.#exact.has(value)) return true
    for (const parts of this.#globs) if (globMatches(parts, value)) return true
    return false
  }
}

/** `parts` is a pattern split on `*`: at least two parts, the first a prefix, the last a suffix. */
function globMatches (parts: readonly string[], value: string): boolean {
  const first = parts[0] as string
  const last = parts[parts.length - 1] as string
  if (!value.startsWith(first) || !value.endsWith(last)) return false
  const end = value.length - last.length
  let at = first.length
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] as string
    const found = value.indexOf(part, at)
    if (found === -1 || found + part.length > end) return false
    at = found + part.length
  }
  // The prefix and the suffix must not overlap (`a*a` does not match `a`).
  return at <= end
}
