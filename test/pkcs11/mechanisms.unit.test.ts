/**
 * The mechanism table: inputs and verification against node:crypto (OpenSSL) as the independent signer, and
 * the flag classes against the "Mechanisms vs. functions" tables of PKCS#11 Current Mechanisms v2.40.
 */
import { describe, expect, test } from 'vitest';
import { constants, createHash, generateKeyPairSync, privateEncrypt, sign } from 'node:crypto';
import pkcs11 from 'pkcs11js';
import { CKM_EDDSA } from '../../src/pkcs11/constants.js';
import { FLAG, MECHANISMS, SIGN_SCHEMES, contradictoryFlags, dnssecScheme, schemeForKey, signScheme } from '../../src/pkcs11/mechanisms.js';

const message = Buffer.from('RRSIG RDATA and a canonical RRset stand here');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

describe('mechanism table', () => {
  test('each mechanism is described once', () => {
    expect(new Set(MECHANISMS.map((m) => m.code)).size).toBe(MECHANISMS.length);
  });

  test('CKM_RSA_PKCS input is the DigestInfo that raw PKCS#1 v1.5 padding turns into an RSASSA-PKCS1-v1_5 signature', () => {
    for (const [alg, hash] of [
      [8, 'sha256'],
      [10, 'sha512'],
    ] as const) {
      const scheme = dnssecScheme(alg);
      expect(scheme.spec.name).toBe('CKM_RSA_PKCS');
      // What a token computes for CKM_RSA_PKCS: EMSA-PKCS1-v1_5 type 1 padding of the input, then RSA.
      const tokenStyle = privateEncrypt({ key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING }, scheme.input(message));
      expect(tokenStyle.equals(sign(hash, message, rsa.privateKey))).toBe(true);
      expect(scheme.verify(rsa.publicKey, message, tokenStyle)).toBe(true);
      expect(scheme.verify(rsa.publicKey, Buffer.from('other'), tokenStyle)).toBe(false);
    }
  });

  test('hashing RSA mechanisms take the message; PSS takes the digest and verifies with salt = hash length', () => {
    const s256 = signScheme(pkcs11.CKM_SHA256_RSA_PKCS, 'rsa-2048');
    expect(s256.input(message)).toEqual(message);
    expect(s256.verify(rsa.publicKey, message, sign('sha256', message, rsa.privateKey))).toBe(true);
    const pss = signScheme(pkcs11.CKM_RSA_PKCS_PSS, 'rsa-2048', 'sha256');
    expect(pss.input(message)).toEqual(createHash('sha256').update(message).digest());
    const sig = sign('sha256', message, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    expect(pss.verify(rsa.publicKey, message, sig)).toBe(true);
    expect(pss.mechanism.parameter).toMatchObject({ hashAlg: pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256, saltLen: 32 });
  });

  test('ECDSA: the curve picks the hash (RFC 6605), raw r‖s verifies and DER only on request', () => {
    for (const [key, curve, hash, alg] of [
      ['ec-p256', 'P-256', 'sha256', 13],
      ['ec-p384', 'P-384', 'sha384', 14],
    ] as const) {
      const ec = generateKeyPairSync('ec', { namedCurve: curve });
      const scheme = schemeForKey(key);
      expect([scheme.spec.name, scheme.hash, scheme.dnssec]).toEqual(['CKM_ECDSA', hash, alg]);
      expect(scheme.input(message)).toEqual(createHash(hash).update(message).digest());
      const raw = sign(hash, message, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
      const der = sign(hash, message, ec.privateKey);
      expect(scheme.verify(ec.publicKey, message, raw)).toBe(true);
      expect(scheme.verify(ec.publicKey, message, der)).toBe(false);
      expect(scheme.verify(ec.publicKey, message, der, 'der')).toBe(true);
    }
    expect(schemeForKey('ec-p521').hash).toBe('sha512');
  });

  test('EdDSA signs the message itself (RFC 8080)', () => {
    const ed = generateKeyPairSync('ed25519');
    const scheme = dnssecScheme(15);
    expect(scheme.spec.code).toBe(CKM_EDDSA);
    expect(scheme.input(message)).toEqual(message);
    expect(scheme.verify(ed.publicKey, message, sign(null, message, ed.privateKey))).toBe(true);
  });

  test('a scheme refuses a key of the wrong family', () => {
    expect(() => signScheme(pkcs11.CKM_ECDSA, 'rsa-2048')).toThrow(/needs a ec key/);
    expect(() => signScheme(pkcs11.CKM_SHA256, 'rsa-2048')).toThrow(/not a signing mechanism/);
  });

  test('every scheme the signing suite runs names its mechanism and key', () => {
    expect(SIGN_SCHEMES.map((s) => s.name)).toContain('CKM_ECDSA/ec-p521');
    expect(new Set(SIGN_SCHEMES.map((s) => s.name)).size).toBe(SIGN_SCHEMES.length);
  });

  test('flags outside the mechanism class are contradictions (v2.40 mechanism tables)', () => {
    const all = Object.values(FLAG).reduce((a, b) => a | b, 0);
    expect(contradictoryFlags(pkcs11.CKM_SHA256, FLAG.DIGEST)).toEqual([]);
    expect(contradictoryFlags(pkcs11.CKM_SHA256, FLAG.DIGEST | FLAG.SIGN | FLAG.GENERATE_KEY_PAIR)).toEqual(['SIGN', 'GENERATE_KEY_PAIR']);
    expect(contradictoryFlags(pkcs11.CKM_AES_KEY_GEN, FLAG.GENERATE | FLAG.SIGN)).toEqual(['SIGN']);
    expect(contradictoryFlags(pkcs11.CKM_EC_KEY_PAIR_GEN, FLAG.GENERATE_KEY_PAIR | FLAG.SIGN | 0x100000)).toEqual(['SIGN']);
    // CKM_RSA_PKCS is sign, encrypt and wrap at once; it may not digest, generate or derive.
    expect(contradictoryFlags(pkcs11.CKM_RSA_PKCS, all)).toEqual(['DIGEST', 'GENERATE', 'GENERATE_KEY_PAIR', 'DERIVE']);
    expect(contradictoryFlags(0x80001234, all)).toEqual([]);
  });
});
