import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'rpk_';

/** A new API key: the secret to show once, and what is stored (its hash and a display prefix). */
export function generateApiKey(): { secret: string; hash: string; prefix: string } {
  const secret = PREFIX + randomBytes(24).toString('base64url');
  return { secret, hash: hashApiKey(secret), prefix: secret.slice(0, PREFIX.length + 6) };
}

export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Whether a string has the shape of a Rapport API key, so malformed headers skip the database. */
export function looksLikeApiKey(secret: string): boolean {
  return secret.startsWith(PREFIX) && secret.length === PREFIX.length + 32;
}
