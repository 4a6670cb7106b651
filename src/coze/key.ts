/**
 * The OAuth app's private key: parsed once, checked to be what Coze can verify (RSA, RS256), and
 * fingerprinted the way Coze's console appears to compute the `kid`.
 *
 * @example
 * const key = parsePrivateKey(await readFile('private_key.pem', 'utf8'))
 * keyFingerprint(key) // '_v0VjcMlLdQc3tRTD3jC5Xz29TUnKQOhtuD5k-gpyf4'
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'

/** Why a PEM was refused. The message never contains key material. */
export class PrivateKeyError extends Error {
  override readonly name = 'PrivateKeyError'
  readonly code = 'INVALID_PRIVATE_KEY'
}

const PRIVATE_PEM = /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----/
const PUBLIC_PEM = /-----BEGIN ([A-Z0-9 ]*)PUBLIC KEY-----|-----BEGIN CERTIFICATE-----/

/**
 * Parses a PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`, what Coze's console downloads) or
 * PKCS#1 (`BEGIN RSA PRIVATE KEY`, what `openssl genrsa` wrote for years). A PEM pasted into an
 * environment variable with literal `\n` sequences is accepted too.
 *
 * @throws PrivateKeyError for a public key, an EC or Ed25519 key, an encrypted key, a key under
 * 2048 bits (RS256 needs at least that) or anything that is not a PEM.
 */
export function parsePrivateKey (pem: string): KeyObject {
  const text = pem.includes('\n') ? pem : pem.replaceAll('\\n', '\n')
  if (PUBLIC_PEM.test(text) && !PRIVATE_PEM.test(text)) {
    throw new PrivateKeyError('is a public key or certificate; the sidecar needs the private key (private_key.pem from the Coze console)')
  }
  const header = PRIVATE_PEM.exec(text)
  if (header === null) {
    throw new PrivateKeyError('is not a PEM private key (expected a "-----BEGIN PRIVATE KEY-----" block)')
  }
  if (header[1] === 'ENCRYPTED ' || text.includes('Proc-Type: 4,ENCRYPTED')) {
    throw new PrivateKeyError('is encrypted with a passphrase; write an unencrypted copy with `openssl pkey -in key.pem -out private_key.pem`')
  }
  let key: KeyObject
  try {
    key = createPrivateKey({ key: text, format: 'pem' })
  } catch {
    throw new PrivateKeyError('could not be parsed as a PEM private key (is the file complete?)')
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new PrivateKeyError(`is an ${String(key.asymmetricKeyType).toUpperCase()} key; Coze signs with RS256 and needs an RSA key`)
  }
  // Node always gives the modulus length of an RSA key.
  const bits = (key.asymmetricKeyDetails as { modulusLength: number }).modulusLength
  if (bits < 2048) {
    throw new PrivateKeyError(`is RSA-${bits}; RS256 needs at least 2048 bits (Coze's console makes 2048-bit keys)`)
  }
  return key
}

/**
 * The public key fingerprint (`kid`) for a private key: base64url, unpadded, of SHA-256 over the
 * SPKI public key PEM text, trailing newline included. Coze does not document this derivation;
 * it matches the one published key/fingerprint pair (docs/coze-protocol.md §9), so a mismatch is a warning.
 */
export function keyFingerprint (privateKey: KeyObject): string {
  const spkiPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' })
  return createHash('sha256').update(spkiPem).digest('base64url')
}
