/** The secrets safety net: what is masked, what is not, and that JSON stays JSON. */
import { describe, expect, test } from 'vitest';
import { redact, redactValue, registerSecret, registerSecretsFromEnv } from '../../src/secrets.js';

describe('secret masking', () => {
  test('a registered secret is masked where it stands as a whole token', () => {
    registerSecret('s3cret-Passw0rd');
    expect(redact('login with s3cret-Passw0rd failed')).toBe('login with *** failed');
    expect(redact('pin=s3cret-Passw0rd;')).toBe('pin=***;');
    expect(redact('xs3cret-Passw0rdx')).toBe('xs3cret-Passw0rdx');
  });

  test('switches that end in PIN are not secrets; PINs, passwords and passphrases are', () => {
    registerSecretsFromEnv({ HSM_ALLOW_WRONG_PIN: '1', HSM_PKCS11_PIN: 'env-pin-7781x', KMIP_PASSWORD: 'kmip-pass-99', NETHSM_ADMIN_PASSPHRASE: 'nethsm-phrase-1', HSM_PKCS11_TOKEN: 'my-token-label' });
    expect(redact('version 0.1.0, 1 case, 1 thread')).toBe('version 0.1.0, 1 case, 1 thread');
    expect(redact('env-pin-7781x kmip-pass-99 nethsm-phrase-1')).toBe('*** *** ***');
    expect(redact('token my-token-label')).toBe('token my-token-label');
  });

  test('a short numeric PIN is not masked inside reports (it would corrupt "RSA-2048" and give the PIN away)', () => {
    registerSecret('2048');
    expect(redact('keygen/generate/rsa-2048 took 2048 ms')).toBe('keygen/generate/rsa-2048 took 2048 ms');
  });

  test('structured values are redacted string by string and stay valid JSON', () => {
    registerSecret('654321');
    const value = { schemaVersion: 1, durationMs: 654321, reason: 'PIN 654321 rejected', list: ['a', '654321'] };
    const out = redactValue(value);
    expect(out).toEqual({ schemaVersion: 1, durationMs: 654321, reason: 'PIN *** rejected', list: ['a', '***'] });
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
  });
});
