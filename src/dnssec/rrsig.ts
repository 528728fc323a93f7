/**
 * RRSIG signing input in RFC 4034 canonical form (§3.1.8.1, §6), and the signers that turn it into a
 * DNSSEC wire-format signature: with a PKCS#11 token the way OpenDNSSEC and Cascade's bridge do it
 * (hash in software, then CKM_RSA_PKCS over the DigestInfo / CKM_ECDSA over the digest / CKM_EDDSA over
 * the data), or with a node:crypto private key as an independent reference.
 */
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { Handle } from '../pkcs11/module.js';
import type { Token } from '../pkcs11/token.js';
import { signAsync } from '../pkcs11/keys.js';
import { dnssecScheme } from '../pkcs11/mechanisms.js';
import { DNSSEC_ALGORITHMS, dnskeyToKeyObject, type DnssecAlgorithm } from './dnskey.js';
import { CLASS_IN, canonicalName, nameToWire, typeName, u16, u32, type Rr } from './wire.js';

export interface RrsigFields {
  typeCovered: number;
  algorithm: DnssecAlgorithm;
  labels: number;
  originalTtl: number;
  /** Seconds since the epoch (serial-number arithmetic is not needed before 2106). */
  expiration: number;
  inception: number;
  keyTag: number;
  signerName: string;
}

/** RRSIG RDATA up to (not including) the Signature field. */
export function rrsigRdataPrefix(f: RrsigFields): Buffer {
  return Buffer.concat([
    u16(f.typeCovered),
    Buffer.from([f.algorithm, f.labels]),
    u32(f.originalTtl),
    u32(f.expiration),
    u32(f.inception),
    u16(f.keyTag),
    nameToWire(f.signerName),
  ]);
}

/**
 * The octets a signer signs (RFC 4034 §3.1.8.1): RRSIG RDATA without the signature, then every RR of the
 * set in canonical form (lower-case owner, original TTL, class IN), sorted by RDATA, duplicates removed.
 * Owners and names inside RDATA must already be lower case (the Rr builders in wire.ts make them so).
 */
export function signingInput(f: RrsigFields, rrset: Rr[]): Buffer {
  if (rrset.length === 0) throw new Error('empty RRset');
  const owner = canonicalName(rrset[0]!.owner);
  if (rrset.some((r) => canonicalName(r.owner) !== owner || r.type !== f.typeCovered)) throw new Error('records of one RRset must share owner and type');
  const rdatas = [...rrset.map((r) => r.rdata)].sort(Buffer.compare).filter((d, i, all) => i === 0 || !d.equals(all[i - 1]!));
  const head = Buffer.concat([nameToWire(owner), u16(f.typeCovered), u16(CLASS_IN), u32(f.originalTtl)]);
  return Buffer.concat([rrsigRdataPrefix(f), ...rdatas.flatMap((d) => [head, u16(d.length), d])]);
}

/** YYYYMMDDHHmmSS, the RRSIG presentation form of a time. */
export function rrsigTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** An RRSIG record; `rrsig` keeps the fields so that a test can re-make it with a damaged signature. */
export interface RrsigRr extends Rr {
  rrsig: { fields: RrsigFields; signature: Buffer };
}

export function rrsigRecord(owner: string, fields: RrsigFields, signature: Buffer): RrsigRr {
  const f = fields;
  return {
    owner: canonicalName(owner),
    type: 46,
    ttl: f.originalTtl,
    rdata: Buffer.concat([rrsigRdataPrefix(f), signature]),
    text: `${typeName(f.typeCovered)} ${f.algorithm} ${f.labels} ${f.originalTtl} ${rrsigTime(f.expiration)} ${rrsigTime(f.inception)} ${f.keyTag} ${canonicalName(f.signerName)} ${signature.toString('base64')}`,
    rrsig: { fields, signature },
  };
}

/** Signs a signing input and returns the signature in DNSSEC wire form (RSA: RFC 3110; ECDSA: r‖s; Ed25519: 64 octets). */
export type DnssecSigner = (data: Buffer) => Promise<Buffer>;

/** A signer backed by a token's private key, with the mechanisms DNSSEC signers use (docs/pkcs11-notes.md §6). */
export function tokenSigner(token: Token, alg: DnssecAlgorithm, privateKey: Handle, session: Handle = token.session): DnssecSigner {
  // CKM_ECDSA returns r‖s, each padded to the field size: exactly RFC 6605's wire form.
  const scheme = dnssecScheme(alg);
  return async (data) => signAsync(token, session, scheme.mechanism, privateKey, scheme.input(data));
}

/** A signer backed by a node:crypto private key: the software reference. */
export function keyObjectSigner(alg: DnssecAlgorithm, privateKey: KeyObject): DnssecSigner {
  const info = DNSSEC_ALGORITHMS[alg];
  return async (data) => {
    if (info.family === 'ed25519') return cryptoSign(null, data, privateKey);
    if (info.family === 'rsa') return cryptoSign(info.hash!, data, privateKey);
    return cryptoSign(info.hash!, data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  };
}

/** Verify a DNSSEC signature with node:crypto against the DNSKEY RDATA it names. */
export function verifyWithDnskey(dnskey: Buffer, data: Buffer, signature: Buffer): boolean {
  const info = DNSSEC_ALGORITHMS[dnskey[3] as DnssecAlgorithm];
  if (!info) throw new Error(`unsupported DNSSEC algorithm ${dnskey[3]}`);
  const key = dnskeyToKeyObject(dnskey);
  if (info.family === 'ed25519') return cryptoVerify(null, data, key, signature);
  if (info.family === 'rsa') return cryptoVerify(info.hash!, data, key, signature);
  return cryptoVerify(info.hash!, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
}
