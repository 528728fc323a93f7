/** The curve table against the OpenSSL CLI (explicit parameters and named-curve OIDs) and node:crypto. */
import { describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createECDH } from 'node:crypto';
import { CURVES } from '../../src/dkek/curves.js';

function explicit(name: string): string {
  return execFileSync('openssl', ['ecparam', '-name', name, '-param_enc', 'explicit', '-text', '-noout']).toString();
}

describe.each(CURVES)('$name', (c) => {
  test("prime, A, B, generator and order equal OpenSSL's explicit parameters", () => {
    const der = execFileSync('openssl', ['ecparam', '-name', c.openssl, '-param_enc', 'explicit', '-outform', 'DER']).toString('hex');
    for (const [k, v] of Object.entries({ p: c.p.replace(/^(00)+/, ''), a: c.a.replace(/^(00)+/, '') || '00', b: c.b, g: c.g, n: c.n.replace(/^(00)+/, '') })) {
      expect(der.includes(v), `${k} of ${c.name}`).toBe(true);
    }
    expect(explicit(c.openssl)).toMatch(/Field Type: prime-field/);
  });

  test("named-curve OID is OpenSSL's", () => {
    expect(execFileSync('openssl', ['ecparam', '-name', c.openssl, '-outform', 'DER']).toString('hex')).toBe(c.ecParams);
  });

  test('d = 1 gives the generator in node:crypto', () => {
    const ecdh = createECDH(c.openssl);
    ecdh.setPrivateKey(Buffer.concat([Buffer.alloc(c.bytes - 1), Buffer.from([1])]));
    expect(ecdh.getPublicKey('hex')).toBe(c.g);
  });
});
