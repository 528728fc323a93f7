/**
 * Key pairs on a token and their public halves in node:crypto. One place for key templates, so that every
 * suite and benchmark generates keys the way DNSSEC signers do (docs/pkcs11-notes.md §5, §9): TOKEN, PRIVATE, SENSITIVE,
 * not EXTRACTABLE, label and CKA_ID set at generation.
 */
import type { KeyObject } from 'node:crypto';
import { LABEL_PREFIX } from './marks.js';
import { pkcs11, type Handle, type Template } from './module.js';
import type { Token } from './token.js';
import { CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN } from './constants.js';
import { type RawPublicKey, toKeyObject, unwrapOctetString } from './public-key.js';

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

export function readPublicKey(token: Token, handle: Handle, session?: Handle): RawPublicKey {
  const keyType = Number(token.attr(handle, pkcs11.CKA_KEY_TYPE, session).readBigUInt64LE(0));
  if (keyType === pkcs11.CKK_RSA) {
    return { family: 'rsa', modulus: token.attr(handle, pkcs11.CKA_MODULUS, session), exponent: token.attr(handle, pkcs11.CKA_PUBLIC_EXPONENT, session) };
  }
  const ecParams = token.attr(handle, pkcs11.CKA_EC_PARAMS, session);
  const { point, derWrapped } = unwrapOctetString(token.attr(handle, pkcs11.CKA_EC_POINT, session));
  return { family: keyType === CKK_EC_EDWARDS ? 'ed25519' : 'ec', point, ecParams, pointDerWrapped: derWrapped };
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
