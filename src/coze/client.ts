/**
 * One token request to Coze, end to end: a new JWT for the request's variant, the POST, the
 * answer checked. The signer is read on every call, so a reloaded key takes effect at once.
 *
 * @example
 * const client = new CozeTokenClient({ target: () => ({ http, signer }), clock })
 * const issued = await client.requestToken({ ttl: 900, sessionName: 'user-42' })
 */
import type { Clock } from '../clock.js'
import { exchangeJwt, type ExchangeHttp, type IssuedToken } from './exchange.js'
import { signTokenJwt, type JwtSigner } from './jwt.js'
import { tokenBody, tokenPath, type TokenRequest } from './variants.js'

/** Where a token request goes and who signs it: read on every call, so a reload takes effect at once. */
export interface TokenTarget {
  http: ExchangeHttp
  signer: JwtSigner
}

export interface CozeTokenClientOptions {
  target: () => TokenTarget
  clock: Clock
}

export class CozeTokenClient {
  readonly #options: CozeTokenClientOptions

  constructor (options: CozeTokenClientOptions) {
    this.#options = options
  }

  /** One attempt with one new JWT. Throws `ExchangeError` when Coze does not issue a token. */
  async requestToken (request: TokenRequest, target: TokenTarget = this.#options.target()): Promise<IssuedToken> {
    const { http, signer } = target
    const jwt = await signTokenJwt(signer, this.#options.clock.now(), {
      ...(request.sessionName === undefined ? {} : { sessionName: request.sessionName }),
      ...(request.sessionContext === undefined ? {} : { sessionContext: request.sessionContext })
    })
    return await exchangeJwt(http, tokenPath(request), jwt, tokenBody(request))
  }
}
