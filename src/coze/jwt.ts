/**
 * The JWT a token request is authorized with (docs/coze-protocol.md §4). Coze accepts each JWT once, so a
 * new one is signed for every attempt, retries included.
 *
 * @example
 * const signer = { appId: '1127900106117', keyId, privateKey, audience: 'api.coze.cn' }
 * const jwt = await signTokenJwt(signer, clock.now(), { sessionName: 'user-42' })
 */
import { randomBytes, type KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import type { SessionContext } from './variants.js'

/**
 * How long the JWT itself is valid. It is used within a second of signing, so its life only has
 * to cover clock skew between us and Coze; 600 s is what Coze's own docs sample uses. It is
 * independent of the access token's `duration_seconds` (docs/coze-protocol.md §4.3).
 */
export const JWT_LIFETIME_SECONDS = 600

export interface JwtSigner {
  /** The OAuth app id: the JWT's `iss`. */
  appId: string
  /** The public key fingerprint: the JWT header's `kid`. */
  keyId: string
  privateKey: KeyObject
  /** `aud`: the API host, `api.coze.cn` or `api.coze.com` (with the port when it is not the default). */
  audience: string
}

export interface JwtClaims {
  sessionName?: string
  sessionContext?: SessionContext
}

/** Signs a single-use RS256 JWT for one token request, dated `now` (ms since the epoch). */
export async function signTokenJwt (signer: JwtSigner, now: number, claims: JwtClaims = {}): Promise<string> {
  const payload: Record<string, unknown> = {}
  if (claims.sessionName !== undefined) payload.session_name = claims.sessionName
  if (claims.sessionContext !== undefined) payload.session_context = claims.sessionContext
  const iat = Math.floor(now / 1000)
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: signer.keyId })
    .setIssuer(signer.appId)
    .setAudience(signer.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + JWT_LIFETIME_SECONDS)
    // 32 bytes from the CSPRNG: Coze asks for "more than 32 bytes" of randomness per JWT, and a
    // predictable jti is how coze-py ended up with collisions (docs/coze-protocol.md §12).
    .setJti(randomBytes(32).toString('hex'))
    .sign(signer.privateKey)
}
