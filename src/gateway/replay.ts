/**
 * The one-shot replay decision: whether Coze's answer says "this token is no good", so that the
 * gateway drops it, gets a fresh one and sends the request once more (reference §5).
 * Framework-free.
 *
 * Auth refusals come before any stream byte, as `application/json`, even for `stream: true`
 * (coze-go `request.go`, cozepy `request.py`). Coze pairs 4100 with HTTP 401 in coze-js's tests;
 * whether production uses 401 or 200 is unknown, and open-source coze-studio answers 200 with
 * 700012006, so both statuses count. 4101 (no permission), 429 and the rest are not refusals of
 * the token: a new token would not change them.
 *
 * @example
 * isTokenRefusal(200, cozeCode(Buffer.from('{"code":4100,"msg":"auth"}'))) // true
 */

/** Coze's codes for "authentication invalid" (coze-js `error.ts`) and "token incorrect" (chat-sdk). */
export const TOKEN_REFUSAL_CODES: ReadonlySet<number> = new Set([4100, 700012006])

/** Coze's `code` in a JSON answer, when it has an integer one; the body is never kept or logged. */
export function cozeCode (body: Buffer): number | undefined {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof json !== 'object' || json === null) return undefined
  const code = (json as { code?: unknown }).code
  // Bounded, as it becomes a metric label.
  return Number.isSafeInteger(code) && Math.abs(code as number) < 1e10 ? code as number : undefined
}

/** True when a new token could turn this answer into a success. */
export function isTokenRefusal (status: number, code: number | undefined): boolean {
  if (code !== undefined && TOKEN_REFUSAL_CODES.has(code)) return status === 200 || status === 401
  return status === 401
}

/** Whether a response is JSON by its content type (`application/json`, `…+json`). */
export function isJson (contentType: string | string[] | undefined): boolean {
  return typeof contentType === 'string' && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)
}
