/**
 * The secrets safety net (src/secrets.ts): what is masked and in which forms, what is refused, and that
 * structure (statuses, driver ids, names, numbers) is never touched.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { createHash } from 'node:crypto';
import { cleanText, escapeControls, redact, redactFreeText, refusal, registerSecret, rememberSecret, STRUCTURAL_WORDS } from '../../src/secrets.js';
import { UsageError } from '../../src/errors.js';
import { loadDrivers, loadSuites } from '../../src/registry.js';
import { loadReportWords } from '../../src/report-words.js';

describe('secret masking', () => {
  test('a registered secret is masked wherever it occurs, in any letter case', () => {
    registerSecret('s3cret-Passw0rd', 'TEST_PIN');
    expect(redact('login with s3cret-Passw0rd failed')).toBe('login with *** failed');
    expect(redact('pin=s3cret-Passw0rd;')).toBe('pin=***;');
    expect(redact('xs3cret-Passw0rdx')).toBe('x***x');
    expect(redact('S3CRET-PASSW0RD')).toBe('***');
  });

  test('its hex, base64 (at every alignment inside longer base64) and percent-encoded forms are masked too', () => {
    const pin = 'Zq8#canary-77/pin';
    registerSecret(pin, 'TEST_PIN');
    const bytes = Buffer.from(pin);
    const forms = [bytes.toString('hex'), bytes.toString('hex').toUpperCase(), bytes.toString('base64'), bytes.toString('base64url'), encodeURIComponent(pin)];
    for (const f of forms) expect(redact(`value ${f} end`), f).not.toContain(f);
    // Embedded in a longer base64 text (a dump of a message holding the PIN), at each of the 3 alignments.
    for (let k = 0; k < 3; k++) {
      const b64 = Buffer.concat([Buffer.from('prefix-bytes'.slice(0, 9 + k)), bytes, Buffer.from('suffix')]).toString('base64');
      const out = redact(b64);
      expect(out, `alignment ${k}`).toContain('***');
      // What is left cannot decode back to the PIN.
      expect(Buffer.from(out.replace(/\*/g, ''), 'base64').toString('latin1')).not.toContain(pin);
    }
  });

  test('numbers and structural keys are never masked; free text is', () => {
    // rememberSecret skips the safety check: it stands for a secret that collides with structure anyway.
    rememberSecret('fail');
    rememberSecret('654321');
    const record = {
      driver: 'softhsm',
      suite: 'sessions',
      case: 'fail',
      status: 'fail',
      durationMs: 654321,
      reason: 'PIN 654321 fail',
      details: { note: 'x fail y' },
    };
    expect(redactFreeText(record)).toEqual({ ...record, reason: 'PIN *** ***', details: { note: 'x *** y' } });
    expect(JSON.parse(JSON.stringify(redactFreeText(record)))).toEqual(redactFreeText(record));
  });

  test('control characters from outside are escaped, not passed to the terminal', () => {
    expect(escapeControls('a\x1b[2Jb\r\u202ec\x9bd')).toBe('a\\x1b[2Jb\\x0d\\u{202e}c\\x9bd');
    expect(escapeControls('two\nlines\tkept')).toBe('two\nlines\tkept');
    expect(cleanText('two\nlines', true)).toBe('two\\x0alines');
    expect(new UsageError('unknown driver "\x1b[31mred"').message).toBe('unknown driver "\\x1b[31mred"');
  });
});

describe('secrets that cannot be masked safely are refused', () => {
  // Driver ids and suite names come from the registry (src/report-words.ts), loaded as every command does.
  beforeAll(() => loadReportWords());
  test.each(['abc', '1234', '12345', 'pass', 'PASS', 'fail', 'softhsm', 'soft', 'Ran', 'token', 'kmip'])(
    '%s is refused with a message that does not contain it',
    (v) => {
      expect(refusal(v)).not.toBeNull();
      let err: unknown;
      try {
        registerSecret(v, 'HSM_PKCS11_PIN');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^HSM_PKCS11_PIN /);
      expect(msg.toLowerCase().split(/[^a-z0-9-]+/)).not.toContain(v.toLowerCase());
    },
  );

  test('the default and documented PINs are accepted: the emulated card, SoftHSM and NetHSM generated ones', () => {
    for (const v of ['648219', '3537363231383830', 'Zm9vYmFyYmF6', 'hsm-harness-canary-1', createHash('sha256').update('x').digest('base64url')]) {
      expect(refusal(v), v).toBeNull();
    }
  });

  test('every driver id and title, suite name and mechanism name is refused as a secret, derived from the registry', async () => {
    const [drivers, suites] = await Promise.all([loadDrivers(), loadSuites()]);
    await loadReportWords();
    // Mechanism and algorithm names as PKCS#11 v2.40 and RFC 8624 spell them.
    const words = [...drivers.flatMap((d) => [d.id, d.title]), ...suites.map((s) => s.name), 'ECDSA', 'CKM_SHA256_RSA_PKCS', 'ECDSAP256SHA256', 'ed25519'];
    for (const name of words) expect(refusal(name), name).not.toBeNull();
    // Derived, not listed by hand: no driver id or suite name is in the core's own list.
    for (const name of [...drivers.map((d) => d.id), ...suites.map((s) => s.name)]) expect(STRUCTURAL_WORDS, name).not.toContain(name);
  });
});
