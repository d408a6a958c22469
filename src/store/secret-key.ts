import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newSecretKey, SecretBox } from '../core/secrets.js';

export const SECRET_KEY_FILE = 'secret.key';

/**
 * The box that seals provider credentials. RAPPORT_SECRET_KEY wins; embedded, without it, a key
 * is generated once into the data folder (owner-only), so `npm start` needs no setup. On a
 * PostgreSQL server without the setting there is no box: the database must not hold the key to
 * its own secrets, so provider accounts are refused until the operator sets one.
 */
export function secretBox(opts: { secretKey?: string; dataDir?: string }): SecretBox | null {
  if (opts.secretKey) return new SecretBox(opts.secretKey);
  if (!opts.dataDir) return null;
  const file = join(opts.dataDir, SECRET_KEY_FILE);
  let key: string;
  try {
    key = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(opts.dataDir, { recursive: true });
    key = newSecretKey();
    // 'wx': two processes racing to create it cannot both write; the loser reads the winner's.
    try {
      writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      key = readFileSync(file, 'utf8').trim();
    }
  }
  return new SecretBox(key);
}
