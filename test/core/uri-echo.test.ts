/**
 * A malformed HSM_PKCS11_URI never echoes a PIN (issue 11, item 5): not in upper case, not percent-encoded,
 * not when the pin-value holds ";" (which once left "***;b"), not when the PIN is too short to be registered.
 */
import { describe, expect, test } from 'vitest';
import { parsePkcs11Uri, showableUri } from '../../src/pkcs11/uri.js';
import { UsageError } from '../../src/errors.js';
import { cli } from './helpers.js';

function errorOf(uri: string): string {
  try {
    parsePkcs11Uri(uri);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error(`${uri} was accepted`);
}

describe('malformed URIs with a PIN in them', () => {
  test.each([
    ['pkcs11:token=x;broken?PIN-VALUE=Upper-Secret-91', ['Upper-Secret-91']],
    ['pkcs11:token=x;broken?Pin-Value=mixed-Secret-92&module-path=/m.so', ['mixed-Secret-92']],
    ['pkcs11:token=x;broken?pin-value=abcd;efgh-tail', ['abcd', 'efgh-tail']],
    ['pkcs11:token=x;broken?pin-value=a;bq7', ['a;bq7', ';bq7']],
    ['pkcs11:token=x;broken?pin%2Dvalue=encoded-Secret-93', ['encoded-Secret-93']],
    ['pkcs11:token=x;pin-value=path-Secret-94;broken', ['path-Secret-94']],
    ['pkcs11:token=x?pin-value', ['pin-value=']],
    // A raw "&" inside the PIN: its second half must not be echoed as if it were the next attribute (issue 23).
    ['pkcs11:token=x;broken?pin-value=first&second-Half-96', ['first', 'second-Half-96', 'Half']],
    ['pkcs11:token=x;broken?pin-value=first&module-path=/m.so', ['first', '/m.so']],
  ])('%s', (uri, secrets) => {
    const msg = errorOf(uri);
    expect(msg).toMatch(/^malformed PKCS#11 URI /);
    for (const s of secrets) expect(msg).not.toContain(s);
    expect(msg).not.toContain('\n');
  });

  test('the shown URI keeps what comes before the PIN and nothing after it', () => {
    expect(showableUri('pkcs11:token=x;serial=7?module-path=/m.so&pin-value=Abc;d&pin-source=file:/p')).toBe(
      'pkcs11:token=x;serial=7?module-path=/m.so&pin-value=***…',
    );
  });

  test('through the CLI: exit 2, one line, the PIN in no output', async () => {
    const r = await cli(['run', '--driver', 'pkcs11', '--out', '/tmp/hh-uri-echo-never-written'], {
      HSM_PKCS11_URI: 'pkcs11:token=x;oops?PIN-VALUE=cli-Secret-95;x',
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/malformed PKCS#11 URI "pkcs11:token=x;oops\?PIN-VALUE=\*\*\*…"/);
    expect(r.stderr + r.stdout).not.toContain('cli-Secret-95');
  });
});
