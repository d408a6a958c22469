import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * Secrets at rest: provider credentials are sealed with AES-256-GCM before they reach the
 * database, so a copy of the database (a backup, a replica, a support dump) holds no usable
 * token. The key comes from RAPPORT_SECRET_KEY or, embedded, from a file beside the data.
 *
 * A sealed value reads `v1.<key id>.<base64 of iv | tag | ciphertext>`. The key id (the first
 * bytes of the key's hash) names the key that sealed it, so a value sealed with another key is
 * refused with that said, instead of failing as garbage.
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  readonly keyId: string;
  private readonly key: Buffer;

  /** Any string of at least 32 characters; it is hashed to the 256-bit key. */
  constructor(secret: string) {
    if (secret.length < 32) throw new Error('RAPPORT_SECRET_KEY must be at least 32 characters (e.g. `openssl rand -base64 32`)');
    this.key = createHash('sha256').update(`rapport-secret-box:${secret}`).digest();
    this.keyId = createHash('sha256').update(this.key).digest('hex').slice(0, 8);
  }

  seal(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `v1.${this.keyId}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  open(sealed: string): string {
    const [version, keyId, data] = sealed.split('.');
    if (version !== 'v1' || !keyId || !data) throw new Error('not a sealed secret');
    if (keyId !== this.keyId) throw new Error(`sealed with another key (${keyId}); this process has key ${this.keyId}: set RAPPORT_SECRET_KEY to the key that sealed it`);
    const raw = Buffer.from(data, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }

  sealJson(value: Record<string, string>): string {
    return this.seal(JSON.stringify(value));
  }

  openJson(sealed: string): Record<string, string> {
    return JSON.parse(this.open(sealed)) as Record<string, string>;
  }

  /** A keyed signature for tokens Rapport hands out (tracking links, unsubscribe links). */
  sign(purpose: string, data: string): string {
    return createHmac('sha256', this.key).update(`${purpose}\n${data}`).digest('base64url');
  }
}

export function newSecretKey(): string {
  return randomBytes(32).toString('base64');
}
