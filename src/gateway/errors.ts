/**
 * The errors only the gateway answers with, in the shape of the catalogue in `src/errors.ts`
 * (code, HTTP status, message). Coze's own error bodies are passed through as Coze sent them;
 * these are the sidecar's.
 *
 * @example
 * throw details(new gatewayErrors.PathRefused('. and .. segments are not forwarded'), { field: 'path' })
 */
import createError from '@fastify/error'

export const gatewayErrors = {
  /** The request target tries to leave Coze's API paths (`..`, encoded separators, absolute form). */
  PathRefused: createError('GATEWAY_PATH_REFUSED', 'this request target is not forwarded to Coze: %s', 400),
  /** Coze answered the WebSocket handshake with an HTTP error; its 4xx status is passed on, anything else is 502. */
  WebSocketRefused: createError('COZE_WS_REFUSED', 'Coze refused the WebSocket handshake with HTTP %s', 502),
  /** A multipart upload larger than `SIDECAR_GATEWAY_UPLOAD_LIMIT`. */
  UploadTooLarge: createError('GATEWAY_UPLOAD_TOO_LARGE', 'the upload is larger than SIDECAR_GATEWAY_UPLOAD_LIMIT (%s bytes)', 413)
} as const
