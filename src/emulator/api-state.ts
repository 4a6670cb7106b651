/**
 * What the emulator's Coze API (src/emulator/api.ts) remembers and can be told: every call it
 * received with the `Authorization` it carried (so a test can check that a caller's secret never
 * arrived), the pace of its streams, and how it refuses tokens. Framework-free.
 *
 * @example
 * state.api.streamIntervalMs = 50     // 50 ms between SSE events
 * state.api.refuseTokens(2)           // the next two calls answer 4100, whatever the token
 */

export interface ApiCall {
  at: number
  method: string
  /** Path and query, as received. */
  url: string
  /** The inbound `Authorization` header, verbatim (in-process only, never served over HTTP). */
  authorization?: string
  /** Every inbound header name, lower case. */
  headerNames: string[]
  status: number
  /** Coze's code in the answer. */
  code: number
  /** The session name of the token that was accepted. */
  sessionName?: string
}

export interface Upload {
  id: string
  fileName: string
  bytes: number
  sha256: string
}

const MAX_CALLS = 1_000

export class ApiState {
  readonly calls: ApiCall[] = []
  readonly uploads: Upload[] = []
  /** Milliseconds between two events of a stream (chat SSE, workflow, WebSocket deltas). */
  streamIntervalMs = 20
  /** The HTTP status of a 4100 answer: 401 as in coze-js's tests, or 200 (which one Coze uses is unknown). */
  authFailureStatus: 200 | 401 = 401
  /** Streams whose caller went away before the end. */
  streamsAborted = 0
  /** Streams served to the end. */
  streamsCompleted = 0
  /** The close code of every WebSocket session, as the client closed it (or 1005/1006). */
  readonly wsCloses: number[] = []
  #refusals = 0

  /** The next `times` calls answer 4100 whatever their token (`Infinity`: until cleared with 0). */
  refuseTokens (times: number): void {
    this.#refusals = times
  }

  /** True (and one fewer left) when this call is to be refused. */
  takeRefusal (): boolean {
    if (this.#refusals <= 0) return false
    this.#refusals--
    return true
  }

  record (call: ApiCall): void {
    this.calls.push(call)
    if (this.calls.length > MAX_CALLS) this.calls.splice(0, this.calls.length - MAX_CALLS)
  }

  addUpload (upload: Upload): void {
    this.uploads.push(upload)
    if (this.uploads.length > MAX_CALLS) this.uploads.shift()
  }
}
