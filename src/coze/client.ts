/**
 * One token request to Coze, end to end: a new JWT for the request's variant, the POST, the
 * answer checked. The signer is read on every call, so a reloaded key takes effect at once.
 *
 * @example
 * const client = new CozeTokenClient({ http, signer: () => current, clock })
 * const issued = await client.requestToken({ ttl: 900, sessionName: 'user-42' })
 */
import type { Clock } from '../clock.js'
import { exchangeJwt, type ExchangeHttp, type IssuedToken } from './exchange.js'
import { signTokenJwt, type JwtSigner } from './jwt.js'
import { tokenBody, tokenPath, type TokenRequest } from './variants.js'

export interface CozeTokenClientOptions {
  http: ExchangeHttp
  signer: () => JwtSigner
  clock: Clock
}

export class CozeTokenClient {
  readonly #options: CozeTokenClientOptions

  constructor (options: CozeTokenClientOptions) {
    this.#options = options
  }

  /** One attempt with one new JWT. Throws `ExchangeError` when Coze does not issue a token. */
  async requestToken (request: TokenRequest): Promise<IssuedToken> {
    const { http, signer, clock } = this.#options
    const jwt = await signTokenJwt(signer(), clock.now(), {
      ...(request.sessionName === undefined ? {} : { sessionName: request.sessionName }),
      ...(request.sessionContext === undefined ? {} : { sessionContext: request.sessionContext })
    })
    return await exchangeJwt(http, tokenPath(request), jwt, tokenBody(request))
  }
}
