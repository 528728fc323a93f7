/**
 * Conversions between keys in node:crypto form and the components a key blob carries. Used when the
 * harness exports a token's key as a SmartCard-HSM blob (from the PKCS#8 a C_WrapKey returned) and when it
 * imports a restored key into another token.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { KeyToWrap, UnwrappedKey } from './blob.js';
import { curveByName, curveByPrimeAndOrder, type Curve } from './curves.js';
import { DkekError } from './dkek.js';

const b64u = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');

function big(b: Buffer): bigint {
  return b.length ? BigInt(`0x${b.toString('hex')}`) : 0n;
}

function bytes(v: bigint): Buffer {
  let h = v.toString(16);
  if (h.length % 2) h = `0${h}`;
  return Buffer.from(h, 'hex');
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [((a % m) + m) % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, s0, s1] = [r1, r0 - q * r1, s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new DkekError('RSA key components are inconsistent (e has no inverse)');
  return ((s0 % m) + m) % m;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** The components of a private key, ready for wrapBlob. */
export function keyToWrapFromKeyObject(key: KeyObject): KeyToWrap {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty === 'EC') {
    const curve = curveByName(jwk.crv ?? '');
    if (!curve) throw new DkekError(`curve ${jwk.crv} cannot go into a key blob`);
    return { kind: 'ec', curve, d: b64u(jwk.d), q: Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]) };
  }
  if (jwk.kty === 'RSA') {
    return {
      kind: 'rsa',
      n: b64u(jwk.n),
      e: b64u(jwk.e),
      d: b64u(jwk.d),
      p: b64u(jwk.p),
      q: b64u(jwk.q),
      dp: b64u(jwk.dp),
      dq: b64u(jwk.dq),
      qInv: b64u(jwk.qi),
    };
  }
  throw new DkekError(`key type ${jwk.kty} cannot go into a SmartCard-HSM key blob (RSA, EC or AES only)`);
}

/** RSA private exponent, computed from p and q for CRT blobs (type 6 does not carry d). */
export function rsaPrivateExponent(key: Extract<UnwrappedKey, { kind: 'rsa' }>): Buffer {
  if (key.d) return key.d;
  const p = big(key.p!),
    q = big(key.q!),
    e = big(key.e);
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
  return bytes(modInverse(e, lambda));
}

export function curveOf(key: Extract<UnwrappedKey, { kind: 'ec' }>): Curve {
  const c = curveByPrimeAndOrder(key.prime, key.order);
  if (!c) throw new DkekError('the key blob holds an EC key on a curve the harness does not know');
  return c;
}

/** A node:crypto private key from an unwrapped RSA or EC blob key (for signing or comparison). */
export function privateKeyObject(key: UnwrappedKey): KeyObject {
  if (key.kind === 'ec') {
    const c = curveOf(key);
    const n = c.bytes;
    const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, n - b.length)), b]).subarray(-n);
    return createPrivateKey({
      key: {
        kty: 'EC',
        crv: c.name,
        d: pad(key.d).toString('base64url'),
        x: key.q.subarray(1, 1 + n).toString('base64url'),
        y: key.q.subarray(1 + n).toString('base64url'),
      },
      format: 'jwk',
    });
  }
  if (key.kind === 'rsa') {
    const d = rsaPrivateExponent(key);
    const p = key.p ? big(key.p) : undefined,
      q = key.q ? big(key.q) : undefined;
    const jwk: Record<string, string> = { kty: 'RSA', n: key.n.toString('base64url'), e: key.e.toString('base64url'), d: d.toString('base64url') };
    if (p && q) {
      const dd = big(d);
      Object.assign(jwk, {
        p: key.p!.toString('base64url'),
        q: key.q!.toString('base64url'),
        dp: bytes(dd % (p - 1n)).toString('base64url'),
        dq: bytes(dd % (q - 1n)).toString('base64url'),
        qi: bytes(modInverse(q, p)).toString('base64url'),
      });
    }
    return createPrivateKey({ key: jwk, format: 'jwk' } as Parameters<typeof createPrivateKey>[0]);
  }
  throw new DkekError('an AES key has no private key object');
}
