/**
 * Key pairs on a token and their public halves in node:crypto. One place for key templates, so that every
 * suite and benchmark generates keys the way DNSSEC signers do (docs/pkcs11-notes.md §5, §9): TOKEN, PRIVATE, SENSITIVE,
 * not EXTRACTABLE, label and CKA_ID set at generation.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { LABEL_PREFIX, pkcs11, type Handle, type Template, type Token } from './token.js';
import { CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN } from './constants.js';

export type KeyAlg = 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'ec-p256' | 'ec-p384' | 'ec-p521' | 'ed25519';

export interface KeyAlgInfo {
  family: 'rsa' | 'ec' | 'ed25519';
  /** Generation mechanism. */
  mechanism: number;
  /** Key size in bits (RSA modulus, curve field size). */
  bits: number;
  /** DER of the named-curve OID (CKA_EC_PARAMS), for EC and Edwards keys. */
  ecParams?: Buffer;
  /** node:crypto / JWK curve name. */
  curve?: 'P-256' | 'P-384' | 'P-521';
}

export const KEY_ALGS: Record<KeyAlg, KeyAlgInfo> = {
  'rsa-2048': { family: 'rsa', mechanism: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, bits: 2048 },
  'rsa-3072': { family: 'rsa', mechanism: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, bits: 3072 },
  'rsa-4096': { family: 'rsa', mechanism: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, bits: 4096 },
  // OIDs: RFC 5480 §2.1.1.1 (secp256r1 1.2.840.10045.3.1.7, secp384r1 1.3.132.0.34, secp521r1 1.3.132.0.35).
  'ec-p256': { family: 'ec', mechanism: pkcs11.CKM_EC_KEY_PAIR_GEN, bits: 256, curve: 'P-256', ecParams: Buffer.from('06082a8648ce3d030107', 'hex') },
  'ec-p384': { family: 'ec', mechanism: pkcs11.CKM_EC_KEY_PAIR_GEN, bits: 384, curve: 'P-384', ecParams: Buffer.from('06052b81040022', 'hex') },
  'ec-p521': { family: 'ec', mechanism: pkcs11.CKM_EC_KEY_PAIR_GEN, bits: 521, curve: 'P-521', ecParams: Buffer.from('06052b81040023', 'hex') },
  // RFC 8410 id-Ed25519 1.3.101.112.
  ed25519: { family: 'ed25519', mechanism: CKM_EC_EDWARDS_KEY_PAIR_GEN, bits: 255, ecParams: Buffer.from('06032b6570', 'hex') },
};

export interface GenerateOptions {
  label?: string;
  /** CKA_ID for both halves, from token.newId(); a fresh 20-byte one (Cascade's length) when omitted. */
  id?: Buffer;
  /** Session to generate in (default: the token's main session). */
  session?: Handle;
  /** Token object (default) or session object. */
  onToken?: boolean;
  sensitive?: boolean;
  extractable?: boolean;
  /** Appended to (and overriding) the default templates. */
  extraPublic?: Template;
  extraPrivate?: Template;
}

export interface KeyPair {
  alg: KeyAlg;
  publicKey: Handle;
  privateKey: Handle;
  label: string;
  id: Buffer;
}

function merge(base: Template, extra: Template | undefined): Template {
  if (!extra) return base;
  const out = base.filter((a) => !extra.some((e) => e.type === a.type));
  return [...out, ...extra];
}

export function keyTemplates(alg: KeyAlg, label: string, id: Buffer, opts: GenerateOptions = {}): { publicTemplate: Template; privateTemplate: Template } {
  const info = KEY_ALGS[alg];
  const onToken = opts.onToken ?? true;
  const keyType = info.family === 'rsa' ? pkcs11.CKK_RSA : info.family === 'ec' ? pkcs11.CKK_EC : CKK_EC_EDWARDS;
  const publicTemplate: Template = [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PUBLIC_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: keyType },
    { type: pkcs11.CKA_TOKEN, value: onToken },
    { type: pkcs11.CKA_PRIVATE, value: false },
    { type: pkcs11.CKA_VERIFY, value: true },
    { type: pkcs11.CKA_LABEL, value: label },
    { type: pkcs11.CKA_ID, value: id },
  ];
  if (info.family === 'rsa') {
    publicTemplate.push({ type: pkcs11.CKA_MODULUS_BITS, value: info.bits });
    publicTemplate.push({ type: pkcs11.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) });
  } else {
    publicTemplate.push({ type: pkcs11.CKA_EC_PARAMS, value: info.ecParams! });
  }
  const privateTemplate: Template = [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: keyType },
    { type: pkcs11.CKA_TOKEN, value: onToken },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_SENSITIVE, value: opts.sensitive ?? true },
    { type: pkcs11.CKA_EXTRACTABLE, value: opts.extractable ?? false },
    { type: pkcs11.CKA_SIGN, value: true },
    { type: pkcs11.CKA_LABEL, value: label },
    { type: pkcs11.CKA_ID, value: id },
  ];
  return { publicTemplate: merge(publicTemplate, opts.extraPublic), privateTemplate: merge(privateTemplate, opts.extraPrivate) };
}

/**
 * Generate a key pair through the Token (C_GenerateKeyPairAsync, so timers keep running). The Token gives it
 * a run CKA_ID (opts.id must come from token.newId) and a prefixed label, journals and tracks it.
 */
export async function generateKeyPair(token: Token, alg: KeyAlg, opts: GenerateOptions = {}): Promise<KeyPair> {
  const id = opts.id ?? token.newId();
  const { publicTemplate, privateTemplate } = keyTemplates(alg, opts.label ?? `${LABEL_PREFIX}${alg}`, id, opts);
  const keys = await token.generateKeyPair({ mechanism: KEY_ALGS[alg].mechanism }, publicTemplate, privateTemplate, opts.session);
  return { alg, publicKey: keys.publicKey, privateKey: keys.privateKey, label: keys.label, id: keys.id };
}

/**
 * Unwrap a DER OCTET STRING (04 len …) if the value is one; otherwise return it unchanged.
 * PKCS#11 says CKA_EC_POINT is DER-wrapped; some tokens return the raw point (PKCS#11 2.40 mechanisms §2.3; docs/pkcs11-notes.md §6).
 */
export function unwrapOctetString(v: Buffer): { point: Buffer; derWrapped: boolean } {
  if (v.length >= 2 && v[0] === 0x04) {
    let len = v[1]!;
    let off = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n < 1 || n > 2 || v.length < 2 + n) return { point: v, derWrapped: false };
      len = n === 1 ? v[2]! : v.readUInt16BE(2);
      off = 2 + n;
    }
    if (off + len === v.length) return { point: v.subarray(off), derWrapped: true };
  }
  return { point: v, derWrapped: false };
}

/** Raw public key material as PKCS#11 reports it (public attributes readable without login). */
export interface RawPublicKey {
  family: 'rsa' | 'ec' | 'ed25519';
  modulus?: Buffer;
  exponent?: Buffer;
  /** Uncompressed EC point 04‖X‖Y, or the 32-byte Ed25519 key. */
  point?: Buffer;
  ecParams?: Buffer;
  /** The curve by name, for EC keys that come without CKA_EC_PARAMS (DNSKEY, KMIP); else ecParams decides. */
  curve?: 'P-256' | 'P-384' | 'P-521';
  /** Whether CKA_EC_POINT came DER-wrapped. */
  pointDerWrapped?: boolean;
}

export function readPublicKey(token: Token, handle: Handle, session?: Handle): RawPublicKey {
  const keyType = Number(token.attr(handle, pkcs11.CKA_KEY_TYPE, session).readBigUInt64LE(0));
  if (keyType === pkcs11.CKK_RSA) {
    return { family: 'rsa', modulus: token.attr(handle, pkcs11.CKA_MODULUS, session), exponent: token.attr(handle, pkcs11.CKA_PUBLIC_EXPONENT, session) };
  }
  const ecParams = token.attr(handle, pkcs11.CKA_EC_PARAMS, session);
  const { point, derWrapped } = unwrapOctetString(token.attr(handle, pkcs11.CKA_EC_POINT, session));
  return { family: keyType === CKK_EC_EDWARDS ? 'ed25519' : 'ec', point, ecParams, pointDerWrapped: derWrapped };
}

const CURVE_BY_PARAMS: Record<string, 'P-256' | 'P-384' | 'P-521'> = {
  '06082a8648ce3d030107': 'P-256',
  '06052b81040022': 'P-384',
  '06052b81040023': 'P-521',
};

function b64u(b: Buffer): string {
  return b.toString('base64url');
}
/** Minimal big-endian form of an unsigned integer (JWK and DNSKEY want no leading zero bytes). */
export function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * node:crypto public key from raw public parts: the one place that builds one, whether the parts came from a
 * token, a DNSKEY, a KMIP Get or a SmartCard-HSM blob.
 */
export function toKeyObject(pub: RawPublicKey): KeyObject {
  if (pub.family === 'rsa') {
    return createPublicKey({ key: { kty: 'RSA', n: b64u(stripLeadingZeros(pub.modulus!)), e: b64u(stripLeadingZeros(pub.exponent!)) }, format: 'jwk' });
  }
  if (pub.family === 'ed25519') {
    if (pub.point!.length !== 32) throw new Error(`Ed25519 public key is ${pub.point!.length} bytes, expected 32`);
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pub.point!) }, format: 'jwk' });
  }
  const crv = pub.curve ?? CURVE_BY_PARAMS[pub.ecParams!.toString('hex')];
  if (!crv) throw new Error(`unsupported EC parameters ${pub.ecParams!.toString('hex')}`);
  const p = pub.point!;
  const n = (p.length - 1) / 2;
  if (p[0] !== 0x04 || !Number.isInteger(n)) throw new Error('EC point is not uncompressed (04‖X‖Y)');
  return createPublicKey({ key: { kty: 'EC', crv, x: b64u(p.subarray(1, 1 + n)), y: b64u(p.subarray(1 + n)) }, format: 'jwk' });
}

export function publicKeyObject(token: Token, handle: Handle): KeyObject {
  return toKeyObject(readPublicKey(token, handle));
}

/** C_SignInit + C_SignAsync with a buffer large enough for any supported key. */
export async function signAsync(token: Token, session: Handle, mechanism: pkcs11.Mechanism, key: Handle, data: Buffer): Promise<Buffer> {
  token.lib.C_SignInit(session, mechanism, key);
  return token.lib.C_SignAsync(session, data, Buffer.alloc(1024));
}

/** DER DigestInfo prefixes, RFC 8017 §9.2 note 1. */
const DIGEST_INFO_PREFIX: Record<'sha1' | 'sha256' | 'sha384' | 'sha512', string> = {
  sha1: '3021300906052b0e03021a05000414',
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

/** DigestInfo for CKM_RSA_PKCS, built in software as OpenDNSSEC and Cascade's bridge do. */
export function digestInfo(hash: keyof typeof DIGEST_INFO_PREFIX, digest: Buffer): Buffer {
  return Buffer.concat([Buffer.from(DIGEST_INFO_PREFIX[hash], 'hex'), digest]);
}
