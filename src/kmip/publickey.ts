/**
 * Turn the public key a KMIP Get returned into a node:crypto KeyObject, accepting the shapes Cascade accepts
 * (docs/kmip-profile.md §4): PKCS#1 DER (PyKMIP), Raw or X.509 holding a SubjectPublicKeyInfo (Fortanix, the bridge for
 * EC), and Transparent RSA Public Key (the bridge for RSA). Deviations (a modulus sent as Byte String, or as a
 * "negative" Big Integer) are reported, not fatal.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { GetResult } from './client.js';
import { E } from './tags.js';
import { child } from './messages.js';
import type { Item } from './ttlv.js';
import { unsignedToBytes } from './ttlv.js';
import { toKeyObject } from '../pkcs11/public-key.js';

export interface ExtractedKey {
  key: KeyObject;
  format: string;
  deviations: string[];
}

const KFT = (n: string) => E('Key Format Type', n);

export function publicKeyFromGet(g: GetResult): ExtractedKey {
  const deviations: string[] = [];
  const m = g.keyMaterial;
  if (!m) throw new Error('Get response holds no Key Material');
  const der = (what: string) => {
    if (m.type !== 'ByteString') throw new Error(`${what} Key Material is ${m.type}, expected Byte String`);
    return Buffer.from(m.value);
  };
  switch (g.keyFormatType) {
    case KFT('PKCS#1'):
      return { key: createPublicKey({ key: der('PKCS#1'), format: 'der', type: 'pkcs1' }), format: 'PKCS#1', deviations };
    case KFT('Raw'):
    case KFT('X.509'): {
      const name = g.keyFormatType === KFT('Raw') ? 'Raw' : 'X.509';
      if (name === 'Raw') deviations.push('public key returned as Key Format Type Raw holding a SubjectPublicKeyInfo (KMIP gives Raw no such meaning)');
      return { key: createPublicKey({ key: der(name), format: 'der', type: 'spki' }), format: `${name} (SubjectPublicKeyInfo)`, deviations };
    }
    case KFT('Transparent RSA Public Key'): {
      const n = unsignedBig(child(m, 'Modulus'), 'Modulus', deviations);
      const e = unsignedBig(child(m, 'Public Exponent'), 'Public Exponent', deviations);
      const key = toKeyObject({ family: 'rsa', modulus: n, exponent: e });
      return { key, format: 'Transparent RSA Public Key', deviations };
    }
    default:
      throw new Error(`unhandled Key Format Type ${g.keyFormatType}`);
  }
}

/** A Big Integer that must be non-negative; Byte String is accepted and reported. */
function unsignedBig(item: Item | undefined, what: string, deviations: string[]): Buffer {
  if (!item) throw new Error(`Transparent RSA Public Key lacks ${what}`);
  if (item.type === 'ByteString') {
    deviations.push(`${what} sent as Byte String instead of Big Integer`);
    return Buffer.from(item.value);
  }
  if (item.type !== 'BigInteger') throw new Error(`${what} is ${item.type}, expected Big Integer`);
  if (item.value < 0n) {
    // An encoder that forgot the sign byte: read the bytes as unsigned, as the sender meant them.
    deviations.push(`${what} decodes as a negative Big Integer (missing 00 sign byte)`);
    const bits = BigInt(Math.ceil((-item.value).toString(2).length / 64) * 64);
    return unsignedToBytes((1n << bits) + item.value);
  }
  return unsignedToBytes(item.value);
}
