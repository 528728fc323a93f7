/**
 * src/dnssec against the RFCs' published examples (fixtures/dnssec/rfc-vectors.json): key tags, DNSKEY
 * encoding from the example private keys (public halves derived by OpenSSL through node:crypto), and
 * RRSIG signing input — the RFC signatures must verify over our canonical form, and the deterministic
 * ones (RSA PKCS#1 v1.5, Ed25519) must come out byte for byte.
 */
import { describe, expect, test } from 'vitest';
import { createECDH, createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  a,
  dnskeyRdata,
  dnskeyToKeyObject,
  keyTag,
  mx,
  signingInput,
  verifyWithDnskey,
  keyObjectSigner,
  RRTYPE,
  type DnssecAlgorithm,
  type Rr,
  type RrsigFields,
} from '../../src/dnssec/index.js';

interface KeyVector {
  id: string;
  source: string;
  owner: string;
  dnskey: string;
  keyTag: number;
  ds?: { digestType: number; digest: string };
  privateKey?: Record<string, string>;
}
interface SigVector {
  id: string;
  source: string;
  key: string;
  rrset: { owner: string; ttl: number; type: 'A' | 'MX'; rdata: string }[];
  rrsig: string;
  signingInput?: string;
  deterministic: boolean;
}
const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'dnssec', 'rfc-vectors.json'), 'utf8')) as {
  keys: KeyVector[];
  signatures: SigVector[];
};

/** "256 3 8 <base64>" → RDATA. Parsing is done here, independently of the code under test. */
function parseDnskey(text: string): Buffer {
  const [flags, proto, alg, ...b64] = text.split(/\s+/);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(Number(flags));
  head[2] = Number(proto);
  head[3] = Number(alg);
  return Buffer.concat([head, Buffer.from(b64.join(''), 'base64')]);
}

function parseTime(s: string): number {
  if (s.length !== 14) return Number(s);
  return Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(8, 10), +s.slice(10, 12), +s.slice(12, 14)) / 1000;
}

function parseRrsig(text: string): { fields: RrsigFields; signature: Buffer } {
  const [type, alg, labels, ttl, exp, inc, tag, signer, ...sig] = text.split(/\s+/);
  return {
    fields: {
      typeCovered: RRTYPE[type as keyof typeof RRTYPE],
      algorithm: Number(alg) as DnssecAlgorithm,
      labels: Number(labels),
      originalTtl: Number(ttl),
      expiration: parseTime(exp!),
      inception: parseTime(inc!),
      keyTag: Number(tag),
      signerName: signer!,
    },
    signature: Buffer.from(sig.join(''), 'base64'),
  };
}

function rr(r: SigVector['rrset'][number]): Rr {
  if (r.type === 'A') return a(r.owner, r.ttl, r.rdata);
  const [pref, host] = r.rdata.split(' ');
  return mx(r.owner, r.ttl, Number(pref), host!);
}

/** The RFC's example private key as a node:crypto key (BIND private-key fields → JWK / PKCS#8). */
function privateKeyOf(k: KeyVector): KeyObject {
  const p = k.privateKey!;
  const alg = parseDnskey(k.dnskey)[3];
  const u = (b64: string) => Buffer.from(b64, 'base64').toString('base64url');
  if (alg === 8 || alg === 10) {
    return createPrivateKey({
      key: {
        kty: 'RSA',
        n: u(p.Modulus!),
        e: u(p.PublicExponent!),
        d: u(p.PrivateExponent!),
        p: u(p.Prime1!),
        q: u(p.Prime2!),
        dp: u(p.Exponent1!),
        dq: u(p.Exponent2!),
        qi: u(p.Coefficient!),
      },
      format: 'jwk',
    });
  }
  const d = Buffer.from(p.PrivateKey!, 'base64');
  if (alg === 15) {
    // RFC 8410 PKCS#8 wrapping of a 32-byte Ed25519 seed.
    return createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), d]), format: 'der', type: 'pkcs8' });
  }
  const [curve, crv] = alg === 13 ? ['prime256v1', 'P-256'] : ['secp384r1', 'P-384'];
  const ecdh = createECDH(curve);
  ecdh.setPrivateKey(d);
  const pub = ecdh.getPublicKey();
  const n = (pub.length - 1) / 2;
  return createPrivateKey({
    key: { kty: 'EC', crv, d: d.toString('base64url'), x: pub.subarray(1, 1 + n).toString('base64url'), y: pub.subarray(1 + n).toString('base64url') },
    format: 'jwk',
  });
}

describe('key tags (RFC 4034 Appendix B) match the RFC examples', () => {
  test.each(vectors.keys.map((k) => [k.id, k] as const))('%s', (_id, k) => {
    expect(keyTag(parseDnskey(k.dnskey))).toBe(k.keyTag);
  });
});

describe('DNSKEY RDATA from the example private keys equals the published DNSKEY', () => {
  const withPrivate = vectors.keys.filter((k) => k.privateKey);
  test.each(withPrivate.map((k) => [k.id, k] as const))('%s', (_id, k) => {
    const want = parseDnskey(k.dnskey);
    const pub = createPublicKey(privateKeyOf(k));
    expect(dnskeyRdata(want[3] as DnssecAlgorithm, pub, want.readUInt16BE(0)).toString('hex')).toBe(want.toString('hex'));
  });

  test('DNSKEY → KeyObject → DNSKEY round-trips for every supported example', () => {
    for (const k of vectors.keys.filter((x) => [8, 10, 13, 14, 15].includes(parseDnskey(x.dnskey)[3]!))) {
      const want = parseDnskey(k.dnskey);
      expect(dnskeyRdata(want[3] as DnssecAlgorithm, dnskeyToKeyObject(want), want.readUInt16BE(0)).equals(want)).toBe(true);
    }
  });

  test('a key of the wrong type for the algorithm is refused', () => {
    const ed = createPublicKey(privateKeyOf(vectors.keys.find((k) => k.id === 'rfc8080-6.1')!));
    expect(() => dnskeyRdata(13, ed)).toThrow(/P-256/);
    const p384 = createPublicKey(privateKeyOf(vectors.keys.find((k) => k.id === 'rfc6605-6.2')!));
    expect(() => dnskeyRdata(13, p384)).toThrow(/P-256/);
  });
});

describe('RRSIG signing input (RFC 4034 §3.1.8.1) reproduces the RFC signatures', () => {
  test.each(vectors.signatures.map((s) => [s.id, s] as const))('%s', async (_id, s) => {
    const key = vectors.keys.find((k) => k.id === s.key)!;
    const dnskey = parseDnskey(key.dnskey);
    const { fields, signature } = parseRrsig(s.rrsig);
    const input = signingInput(fields, s.rrset.map(rr));
    if (s.signingInput) expect(input.toString('hex')).toBe(s.signingInput);
    expect(verifyWithDnskey(dnskey, input, signature)).toBe(true);
    // The same signature over a one-bit different input must not verify.
    const other = Buffer.from(input);
    other[other.length - 1]! ^= 1;
    expect(verifyWithDnskey(dnskey, other, signature)).toBe(false);
    if (s.deterministic && key.privateKey) {
      const mine = await keyObjectSigner(fields.algorithm, privateKeyOf(key))(input);
      expect(mine.toString('base64')).toBe(signature.toString('base64'));
    }
  });

  test('RRset order and duplicates do not change the signing input (canonical RDATA order, RFC 4034 §6.3)', () => {
    const f: RrsigFields = {
      typeCovered: RRTYPE.A,
      algorithm: 13,
      labels: 3,
      originalTtl: 3600,
      expiration: 2,
      inception: 1,
      keyTag: 1,
      signerName: 'example.net.',
    };
    const x = a('www.example.net.', 3600, '192.0.2.9');
    const y = a('WWW.Example.NET', 3600, '192.0.2.10');
    const one = signingInput(f, [x, y]);
    expect(signingInput(f, [y, x, y]).equals(one)).toBe(true);
    // RDATA sorts as octet strings: 192.0.2.9 (last octet 0x09) before 192.0.2.10 (0x0a), whatever the input order.
    const ninth = one.indexOf(Buffer.from([192, 0, 2, 9]));
    const tenth = one.indexOf(Buffer.from([192, 0, 2, 10]));
    expect(ninth).toBeGreaterThan(0);
    expect(ninth).toBeLessThan(tenth);
    // A P-256 signature over it verifies with node:crypto's own ECDSA (sanity of the signer's wire form).
    const priv = privateKeyOf(vectors.keys.find((k) => k.id === 'rfc6605-6.1')!);
    const sig = cryptoSign('sha256', one, { key: priv, dsaEncoding: 'ieee-p1363' });
    expect(verifyWithDnskey(parseDnskey(vectors.keys.find((k) => k.id === 'rfc6605-6.1')!.dnskey), one, sig)).toBe(true);
  });
});
