/** RFC 7512 PKCS#11 URIs: the examples of RFC 7512 §3.3 with the values the RFC states, and malformed ones. */
import { describe, expect, test } from 'vitest';
import { parsePkcs11Uri } from '../../src/pkcs11/uri.js';
import { UsageError } from '../../src/errors.js';

describe('RFC 7512 §3.3 examples', () => {
  test('the empty URI matches everything', () => {
    const u = parsePkcs11Uri('pkcs11:');
    expect(u.token).toBeUndefined();
    expect(u.modulePath).toBeUndefined();
  });

  test('token, manufacturer, model, binary id, empty serial and pin-source', () => {
    const u = parsePkcs11Uri(
      'pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin',
    );
    expect(u.token).toBe('The Software PKCS#11 Softtoken');
    expect(u.manufacturer).toBe('Snake Oil, Inc.');
    expect(u.model).toBe('1.0');
    expect(u.object).toBe('my-certificate');
    expect(u.type).toBe('cert');
    expect(u.id).toEqual(Buffer.from([0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91]));
    expect(u.serial).toBe('');
    expect(u.pinSource).toBe('file:/etc/token_pin');
  });

  test('percent-encoded %, ; and UTF-8 in labels; mixed-case hex in ids', () => {
    expect(parsePkcs11Uri('pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ef%08;object=my-certificate').token).toBe(
      'My token% created by Joe',
    );
    expect(parsePkcs11Uri('pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ef%08;object=my-certificate').id).toEqual(
      Buffer.from('010203badd' + 'ef08', 'hex'),
    );
    expect(parsePkcs11Uri('pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert').token).toBe('A name with a substring %;');
    expect(parsePkcs11Uri('pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert').token).toBe(
      'Name with a small A with acute: \u00e1',
    );
  });

  test('vendor attributes in path and query are accepted and set aside', () => {
    const u = parsePkcs11Uri('pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b');
    expect(u.token).toBe('my-token');
    expect(u.other).toEqual({ 'vendor-aaa': 'value-a', 'vendor-bbb': 'value-b' });
  });

  test('module-path, module-name, slot-description and pin-value', () => {
    expect(parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1').modulePath).toBe('/mnt/libmypkcs11.so.1');
    expect(parsePkcs11Uri('pkcs11:object=my-sign-key;type=private?module-name=mypkcs11').moduleName).toBe('mypkcs11');
    expect(parsePkcs11Uri('pkcs11:slot-description=Sun%20Metaslot').slotDescription).toBe('Sun Metaslot');
    expect(parsePkcs11Uri('pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin').pinValue).toBe('the-pin');
  });
});

describe('malformed URIs are one-line UsageErrors that never echo a pin-value', () => {
  const bad = [
    ['http://token=x', /must start with "pkcs11:"/],
    ['pkcs11:token', /no "name=value" form/],
    ['pkcs11:token=a;token=b', /appears twice/],
    ['pkcs11:slot-id=abc', /slot-id must be a decimal number/],
    ['pkcs11:token=%zz', /bad percent-encoding/],
    ['pkcs11:type=bogus', /unknown type/],
    ['pkcs11:token=x?pin-source=file:/a&pin-value=secret-value-123', /mutually exclusive/],
    ['pkcs11:tok en=x', /invalid attribute name/],
  ] as const;
  for (const [uri, why] of bad) {
    test(uri, () => {
      let err: unknown;
      try {
        parsePkcs11Uri(uri);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      const msg = (err as Error).message;
      expect(msg).toMatch(why);
      expect(msg).not.toContain('\n');
      expect(msg).not.toContain('secret-value-123');
    });
  }
});
