import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newSecretKey, SecretBox } from './secrets.js';

describe('SecretBox', () => {
  const box = new SecretBox(newSecretKey());

  it('opens what it sealed, for any text, and never shows the text in the sealed form', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4 }), (plain) => {
        const sealed = box.seal(plain);
        expect(box.open(sealed)).toBe(plain);
        expect(sealed).not.toContain(plain.length > 6 ? plain : '\u0000never');
      }),
    );
  });

  it('seals the same text differently each time', () => {
    expect(box.seal('token')).not.toBe(box.seal('token'));
  });

  it('refuses a tampered value and names the key a value was sealed with', () => {
    const sealed = box.sealJson({ auth_token: 'abc123' });
    const bytes = Buffer.from(sealed.split('.')[2]!, 'base64');
    bytes[bytes.length - 1]! ^= 1;
    expect(() => box.open(`v1.${box.keyId}.${bytes.toString('base64')}`)).toThrow();
    const other = new SecretBox(newSecretKey());
    expect(() => other.open(sealed)).toThrow(new RegExp(`sealed with another key \\(${box.keyId}\\)`));
    expect(box.openJson(sealed)).toEqual({ auth_token: 'abc123' });
  });

  it('asks for a key long enough to be one', () => {
    expect(() => new SecretBox('short')).toThrow(/at least 32 characters/);
  });
});
