/**
 * A setting that stops the process before it listens. The message is one line that names the
 * setting and says how to fix it; it never contains a key.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  readonly setting: string

  constructor (setting: string, message: string) {
    super(`${setting}: ${message}`)
    this.name = 'ConfigError'
    this.setting = setting
  }
}
