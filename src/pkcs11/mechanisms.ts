/**
 * The DNSSEC-relevant PKCS#11 mechanisms, each described once: what class of mechanism it is (and so which
 * CKF_* function flags it may carry), the key it needs, what C_Sign is given, its parameters, the DNSSEC
 * algorithm it serves and how node:crypto checks its signatures. Suites and benchmarks build inputs and
 * verify signatures through this module only; adding a mechanism is one entry in MECHANISMS.
 *
 *   const scheme = signScheme(pkcs11.CKM_ECDSA, 'ec-p256');      // or dnssecScheme(13), or schemeForKey('ec-p256')
 *   const sig = await signAsync(token, session, scheme.mechanism, key.privateKey, scheme.input(message));
 *   scheme.verify(publicKeyObject(token, key.publicKey), message, sig);   // true when node:crypto accepts it
 *
 * Key generation templates stay in keys.ts (keyTemplates / generateKeyPair); the key-pair entries here name
 * the KeyAlg values they generate. Flag classes follow the "Mechanisms vs. functions" tables of PKCS#11
 * Current Mechanisms v2.40 (§2.1 RSA, §2.3 EC, §2.14 AES key wrap, §2.16 SHA-2) and PKCS#11 3.0 (§2.3.14
 * EdDSA).
 */
import { constants, createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { pkcs11 } from './module.js';
import { CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA } from './constants.js';
import { KEY_ALGS, digestInfo, type KeyAlg } from './keys.js';
import type { DnssecAlgorithm } from '../dnssec/dnskey.js';

export type Hash = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export type KeyFamily = 'rsa' | 'ec' | 'ed25519';

/** CK_MECHANISM_INFO function flags (PKCS#11 v2.40 §3.3, pkcs11t.h); the EC_* and HW bits are not functions. */
export const FLAG = {
  ENCRYPT: 0x100,
  DECRYPT: 0x200,
  DIGEST: 0x400,
  SIGN: 0x800,
  SIGN_RECOVER: 0x1000,
  VERIFY: 0x2000,
  VERIFY_RECOVER: 0x4000,
  GENERATE: 0x8000,
  GENERATE_KEY_PAIR: 0x10000,
  WRAP: 0x20000,
  UNWRAP: 0x40000,
  DERIVE: 0x80000,
} as const;
export type FlagName = keyof typeof FLAG;
export const FUNCTION_FLAGS = Object.keys(FLAG) as FlagName[];

/**
 * What a mechanism is, per the spec's mechanism tables. `sign` covers sign and verify; `key-pair-gen` and
 * `key-gen` generate; `digest` hashes; `wrap` wraps/unwraps and (for AES key wrap) encrypts/decrypts.
 */
export type MechanismClass = 'key-pair-gen' | 'key-gen' | 'sign' | 'digest' | 'wrap';

/** How the data reaches C_Sign: the message itself, a hash made on the host, or DigestInfo ‖ hash (RFC 8017 §9.2). */
export type SignInput = 'message' | 'digest' | 'digest-info';

export interface MechanismSpec {
  code: number;
  name: string;
  class: MechanismClass;
  /** The function flags PKCS#11 allows for this mechanism; any other function flag is a contradiction. */
  allowedFlags: FlagName[];
  /** Key family used (sign) or generated (key-pair-gen). */
  keyFamily?: KeyFamily;
  /** key-pair-gen: the key algorithms it makes (templates in keys.ts). */
  generates?: KeyAlg[];
  /** sign: what C_Sign is given. */
  input?: SignInput;
  /** sign: the hash the mechanism does itself; digest: the hash it computes. Raw sign mechanisms leave it to the caller. */
  hash?: Hash;
  /** sign: C_SignUpdate is allowed (the hashing mechanisms, PKCS#11 v2.40 §2.1.8, §2.3.7). */
  multipart?: boolean;
  /** sign: same key and input give the same signature (RSA PKCS#1 v1.5). */
  deterministic?: boolean;
}

const SIGN_VERIFY: FlagName[] = ['SIGN', 'VERIFY'];

/** Every DNSSEC-relevant mechanism, once. */
export const MECHANISMS: readonly MechanismSpec[] = [
  {
    code: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN,
    name: 'CKM_RSA_PKCS_KEY_PAIR_GEN',
    class: 'key-pair-gen',
    allowedFlags: ['GENERATE_KEY_PAIR'],
    keyFamily: 'rsa',
    generates: ['rsa-2048', 'rsa-3072', 'rsa-4096'],
  },
  {
    code: pkcs11.CKM_EC_KEY_PAIR_GEN,
    name: 'CKM_EC_KEY_PAIR_GEN',
    class: 'key-pair-gen',
    allowedFlags: ['GENERATE_KEY_PAIR'],
    keyFamily: 'ec',
    generates: ['ec-p256', 'ec-p384', 'ec-p521'],
  },
  {
    code: CKM_EC_EDWARDS_KEY_PAIR_GEN,
    name: 'CKM_EC_EDWARDS_KEY_PAIR_GEN',
    class: 'key-pair-gen',
    allowedFlags: ['GENERATE_KEY_PAIR'],
    keyFamily: 'ed25519',
    generates: ['ed25519'],
  },
  // CKM_RSA_PKCS is also an encryption and key-wrapping mechanism (v2.40 §2.1.6).
  {
    code: pkcs11.CKM_RSA_PKCS,
    name: 'CKM_RSA_PKCS',
    class: 'sign',
    allowedFlags: ['SIGN', 'VERIFY', 'SIGN_RECOVER', 'VERIFY_RECOVER', 'ENCRYPT', 'DECRYPT', 'WRAP', 'UNWRAP'],
    keyFamily: 'rsa',
    input: 'digest-info',
    multipart: false,
    deterministic: true,
  },
  {
    code: pkcs11.CKM_SHA256_RSA_PKCS,
    name: 'CKM_SHA256_RSA_PKCS',
    class: 'sign',
    allowedFlags: SIGN_VERIFY,
    keyFamily: 'rsa',
    input: 'message',
    hash: 'sha256',
    multipart: true,
    deterministic: true,
  },
  {
    code: pkcs11.CKM_SHA512_RSA_PKCS,
    name: 'CKM_SHA512_RSA_PKCS',
    class: 'sign',
    allowedFlags: SIGN_VERIFY,
    keyFamily: 'rsa',
    input: 'message',
    hash: 'sha512',
    multipart: true,
    deterministic: true,
  },
  {
    code: pkcs11.CKM_RSA_PKCS_PSS,
    name: 'CKM_RSA_PKCS_PSS',
    class: 'sign',
    allowedFlags: SIGN_VERIFY,
    keyFamily: 'rsa',
    input: 'digest',
    multipart: false,
    deterministic: false,
  },
  {
    code: pkcs11.CKM_ECDSA,
    name: 'CKM_ECDSA',
    class: 'sign',
    allowedFlags: SIGN_VERIFY,
    keyFamily: 'ec',
    input: 'digest',
    multipart: false,
    deterministic: false,
  },
  {
    code: pkcs11.CKM_ECDSA_SHA256,
    name: 'CKM_ECDSA_SHA256',
    class: 'sign',
    allowedFlags: SIGN_VERIFY,
    keyFamily: 'ec',
    input: 'message',
    hash: 'sha256',
    multipart: true,
    deterministic: false,
  },
  {
    code: pkcs11.CKM_ECDSA_SHA384,
    name: 'CKM_ECDSA_SHA384',
    class: 'sign',
    allowedFlags: SIGN_VERIFY,
    keyFamily: 'ec',
    input: 'message',
    hash: 'sha384',
    multipart: true,
    deterministic: false,
  },
  {
    code: CKM_EDDSA,
    name: 'CKM_EDDSA',
    class: 'sign',
    allowedFlags: SIGN_VERIFY,
    keyFamily: 'ed25519',
    input: 'message',
    multipart: false,
    deterministic: false,
  },
  // Hashing on the token (some signers hash with C_Digest) and the AES key wrap used for key backup.
  { code: pkcs11.CKM_SHA_1, name: 'CKM_SHA_1', class: 'digest', allowedFlags: ['DIGEST'], hash: 'sha1' },
  { code: pkcs11.CKM_SHA256, name: 'CKM_SHA256', class: 'digest', allowedFlags: ['DIGEST'], hash: 'sha256' },
  { code: pkcs11.CKM_SHA384, name: 'CKM_SHA384', class: 'digest', allowedFlags: ['DIGEST'], hash: 'sha384' },
  { code: pkcs11.CKM_SHA512, name: 'CKM_SHA512', class: 'digest', allowedFlags: ['DIGEST'], hash: 'sha512' },
  { code: pkcs11.CKM_AES_KEY_GEN, name: 'CKM_AES_KEY_GEN', class: 'key-gen', allowedFlags: ['GENERATE'] },
  { code: pkcs11.CKM_AES_KEY_WRAP, name: 'CKM_AES_KEY_WRAP', class: 'wrap', allowedFlags: ['ENCRYPT', 'DECRYPT', 'WRAP', 'UNWRAP'] },
  { code: pkcs11.CKM_AES_KEY_WRAP_PAD, name: 'CKM_AES_KEY_WRAP_PAD', class: 'wrap', allowedFlags: ['ENCRYPT', 'DECRYPT', 'WRAP', 'UNWRAP'] },
];

const BY_CODE = new Map(MECHANISMS.map((m) => [m.code, m]));

/** A function flag set on a mechanism that PKCS#11 does not define for its class. */
export function contradictoryFlags(code: number, flags: number): FlagName[] {
  const spec = BY_CODE.get(code);
  if (!spec) return [];
  return FUNCTION_FLAGS.filter((f) => (flags & FLAG[f]) !== 0 && !spec.allowedFlags.includes(f));
}

/**
 * One way to sign: mechanism + key + hash. For the hashing mechanisms the hash is the mechanism's; for the
 * raw ones (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA) it is the signer's choice, made on the host.
 */
export interface SignScheme {
  spec: MechanismSpec;
  key: KeyAlg;
  /** The hash of the signature scheme; null for Ed25519, which signs the message itself. */
  hash: Hash | null;
  /** The DNSSEC algorithm this scheme produces signatures for, when it is one (RFC 5702, 6605, 8080). */
  dnssec?: DnssecAlgorithm;
  /** `${mechanism}/${key}`, the name cases use. */
  name: string;
  /** What C_SignInit / C_VerifyInit take (mechanism and parameters). */
  mechanism: pkcs11.Mechanism;
  /** What C_Sign is given for this message. */
  input(message: Buffer): Buffer;
  /**
   * node:crypto's verdict on a signature over `message`. ECDSA signatures are raw r‖s (PKCS#11 v2.40
   * §2.3.1); pass 'der' to test whether a wrong-length one is DER instead.
   */
  verify(publicKey: KeyObject, message: Buffer, signature: Buffer, dsaEncoding?: 'ieee-p1363' | 'der'): boolean;
}

const CURVE_HASH: Record<string, Hash> = { 'P-256': 'sha256', 'P-384': 'sha384', 'P-521': 'sha512' };
const MGF1: Record<Hash, number> = {
  sha1: pkcs11.CKG_MGF1_SHA1,
  sha256: pkcs11.CKG_MGF1_SHA256,
  sha384: pkcs11.CKG_MGF1_SHA384,
  sha512: pkcs11.CKG_MGF1_SHA512,
};
const HASH_MECHANISM: Record<Hash, number> = { sha1: pkcs11.CKM_SHA_1, sha256: pkcs11.CKM_SHA256, sha384: pkcs11.CKM_SHA384, sha512: pkcs11.CKM_SHA512 };
const HASH_BYTES: Record<Hash, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

/** DNSSEC algorithm numbers by (mechanism family, key, hash). */
function dnssecNumber(family: KeyFamily, key: KeyAlg, hash: Hash | null): DnssecAlgorithm | undefined {
  if (family === 'rsa') return hash === 'sha256' ? 8 : hash === 'sha512' ? 10 : undefined;
  if (family === 'ed25519') return 15;
  if (key === 'ec-p256' && hash === 'sha256') return 13;
  if (key === 'ec-p384' && hash === 'sha384') return 14;
  return undefined;
}

/**
 * The scheme for signing with `code` and a `key` key. `hash` is needed only for raw mechanisms; it defaults
 * to SHA-256 for RSA and to the curve's hash for ECDSA (RFC 6605: P-256 with SHA-256, P-384 with SHA-384).
 */
export function signScheme(code: number, key: KeyAlg, hash?: Hash): SignScheme {
  const spec = BY_CODE.get(code);
  if (spec?.class !== 'sign') throw new Error(`not a signing mechanism in the table: 0x${code.toString(16)}`);
  const info = KEY_ALGS[key];
  if (info.family !== spec.keyFamily) throw new Error(`${spec.name} needs a ${spec.keyFamily} key, not ${key}`);
  const h: Hash | null = spec.keyFamily === 'ed25519' ? null : (spec.hash ?? hash ?? (spec.keyFamily === 'ec' ? CURVE_HASH[info.curve!]! : 'sha256'));
  const parameter =
    spec.code === pkcs11.CKM_RSA_PKCS_PSS && h
      ? ({ type: pkcs11.CK_PARAMS_RSA_PSS, hashAlg: HASH_MECHANISM[h], mgf: MGF1[h], saltLen: HASH_BYTES[h] } as pkcs11.RsaPSS)
      : undefined;
  const digest = (m: Buffer) => createHash(h!).update(m).digest();
  return {
    spec,
    key,
    hash: h,
    dnssec: dnssecNumber(spec.keyFamily!, key, h),
    name: `${spec.name}/${key}`,
    mechanism: parameter ? { mechanism: code, parameter } : { mechanism: code },
    input(message) {
      if (spec.input === 'message') return message;
      return spec.input === 'digest-info' ? digestInfo(h!, digest(message)) : digest(message);
    },
    verify(publicKey, message, signature, dsaEncoding = 'ieee-p1363') {
      if (spec.keyFamily === 'ed25519') return cryptoVerify(null, message, publicKey, signature);
      if (spec.keyFamily === 'ec') return cryptoVerify(h, message, { key: publicKey, dsaEncoding }, signature);
      if (parameter) return cryptoVerify(h, message, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_BYTES[h!] }, signature);
      return cryptoVerify(h, message, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    },
  };
}

/** The schemes the signing suite exercises: every signing mechanism, on the keys a DNSSEC signer pairs it with. */
export const SIGN_SCHEMES: readonly SignScheme[] = [
  signScheme(pkcs11.CKM_RSA_PKCS, 'rsa-2048', 'sha256'),
  signScheme(pkcs11.CKM_SHA256_RSA_PKCS, 'rsa-2048'),
  signScheme(pkcs11.CKM_SHA512_RSA_PKCS, 'rsa-2048'),
  signScheme(pkcs11.CKM_RSA_PKCS_PSS, 'rsa-2048', 'sha256'),
  signScheme(pkcs11.CKM_ECDSA, 'ec-p256'),
  signScheme(pkcs11.CKM_ECDSA, 'ec-p384'),
  signScheme(pkcs11.CKM_ECDSA, 'ec-p521'),
  signScheme(pkcs11.CKM_ECDSA_SHA256, 'ec-p256'),
  signScheme(pkcs11.CKM_ECDSA_SHA384, 'ec-p384'),
  signScheme(CKM_EDDSA, 'ed25519'),
];

/**
 * How OpenDNSSEC, Cascade's bridge and BIND sign one RRSIG with a key of this algorithm: hash on the host,
 * then CKM_RSA_PKCS over the DigestInfo (SHA-256), CKM_ECDSA over the digest, CKM_EDDSA over the data.
 */
export function schemeForKey(key: KeyAlg, hash?: Hash): SignScheme {
  const family = KEY_ALGS[key].family;
  const code = family === 'rsa' ? pkcs11.CKM_RSA_PKCS : family === 'ec' ? pkcs11.CKM_ECDSA : CKM_EDDSA;
  return signScheme(code, key, hash);
}

/** The key and scheme for a DNSSEC algorithm, the raw-mechanism way (schemeForKey). */
export function dnssecScheme(alg: DnssecAlgorithm): SignScheme {
  const key: Record<DnssecAlgorithm, [KeyAlg, Hash?]> = {
    8: ['rsa-2048', 'sha256'],
    10: ['rsa-2048', 'sha512'],
    13: ['ec-p256'],
    14: ['ec-p384'],
    15: ['ed25519'],
  };
  const [k, h] = key[alg];
  return schemeForKey(k, h);
}

/** The cheapest key of each family, for exercising a mechanism once. */
export const SMALLEST_KEY: Record<KeyFamily, KeyAlg> = { rsa: 'rsa-2048', ec: 'ec-p256', ed25519: 'ed25519' };
