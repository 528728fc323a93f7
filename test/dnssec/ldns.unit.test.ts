/**
 * src/dnssec against NLnet Labs' ldns (the independent oracle the suite relies on): zones signed with
 * node:crypto keys must pass the real ldns-verify-zone, a damaged signature must fail it, and ldns-key2ds
 * must compute the same key tag as keyTag() for our DNSKEY RDATA.
 */
import { describe, expect, test } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DNSSEC_ALGORITHMS,
  dnskeyRdata,
  exampleZone,
  keyObjectSigner,
  keyTag,
  ldnsDs,
  ldnsVerifyZone,
  signZone,
  withDamagedSignature,
  zoneText,
  type DnssecAlgorithm,
} from '../../src/dnssec/index.js';

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'dnssec', 'rfc-vectors.json'), 'utf8')) as {
  keys: { id: string; owner: string; dnskey: string; keyTag: number; ds?: { digestType: number; digest: string } }[];
};

function softwareKey(alg: DnssecAlgorithm) {
  const info = DNSSEC_ALGORITHMS[alg];
  if (info.family === 'rsa') return generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (info.family === 'ec') return generateKeyPairSync('ec', { namedCurve: info.curve! });
  return generateKeyPairSync('ed25519');
}

const ALGS: DnssecAlgorithm[] = [8, 10, 13, 14, 15];

describe('ldns-verify-zone accepts zones signed through src/dnssec with node:crypto keys', () => {
  test.each(ALGS.map((alg) => [alg, DNSSEC_ALGORITHMS[alg].name] as const))('algorithm %i (%s)', async (alg) => {
    const { publicKey, privateKey } = softwareKey(alg);
    const dnskey = dnskeyRdata(alg, publicKey);
    const now = Math.floor(Date.now() / 1000);
    const zone = await signZone({
      origin: 'example.test.',
      records: exampleZone('example.test.'),
      algorithm: alg,
      dnskey,
      sign: keyObjectSigner(alg, privateKey),
      inception: now - 3600,
      expiration: now + 7 * 86400,
    });
    const good = await ldnsVerifyZone(zoneText(zone.records));
    expect(good.output).toMatch(/verified/);
    expect(good.ok).toBe(true);
    const bad = await ldnsVerifyZone(zoneText(withDamagedSignature(zone.records)));
    expect(bad.ok).toBe(false);
    expect(bad.output).toMatch(/Bogus/i);
    const ds = await ldnsDs('example.test.', dnskey);
    expect(ds.keyTag).toBe(keyTag(dnskey));
    expect(ds.algorithm).toBe(alg);
  });

  test('expired signatures are rejected (the window is checked, so the accept above means something)', async () => {
    const { publicKey, privateKey } = softwareKey(13);
    const dnskey = dnskeyRdata(13, publicKey);
    const now = Math.floor(Date.now() / 1000);
    const zone = await signZone({
      origin: 'example.test.',
      records: exampleZone('example.test.'),
      algorithm: 13,
      dnskey,
      sign: keyObjectSigner(13, privateKey),
      inception: now - 7 * 86400,
      expiration: now - 86400,
    });
    expect((await ldnsVerifyZone(zoneText(zone.records))).ok).toBe(false);
  });
});

describe('ldns-key2ds agrees with the RFC key tags and DS digests (checks the oracle itself)', () => {
  test.each(vectors.keys.filter((k) => k.ds?.digestType === 2).map((k) => [k.id, k] as const))('%s', async (_id, k) => {
    const [flags, proto, alg, ...b64] = k.dnskey.split(/\s+/);
    const rdata = Buffer.concat([Buffer.from([Number(flags) >> 8, Number(flags) & 0xff, Number(proto), Number(alg)]), Buffer.from(b64.join(''), 'base64')]);
    const ds = await ldnsDs(k.owner, rdata);
    expect(ds.keyTag).toBe(k.keyTag);
    expect(ds.digest).toBe(k.ds!.digest);
  });
});
