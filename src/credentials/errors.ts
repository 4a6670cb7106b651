/**
 * A request that names something the registry cannot give: an unknown credential, no credential
 * at all when several are configured, or session selectors for a static token. The edge answers
 * it with a 400 naming `field`.
 */
export class SelectionError extends Error {
  override readonly name = 'SelectionError'
  /** The caller's field at fault: `app`, `session_name`, ... */
  readonly field: string

  constructor (field: string, message: string) {
    super(message)
    this.field = field
  }
}
