/**
 * Offline backup verification (docs/dkek-formats.md §7): does a key blob restore to a usable key? After unwrapBlob has
 * checked KCV and CMAC and decoded the key, the checks here are the mathematical ones, done with
 * node:crypto and BigInt rather than our own curve code: Q = d·G (node:crypto ECDH derives the public
 * point from d), (m^e)^d ≡ m (mod n) for a random m, and consistency of the stated sizes and OIDs.
 */
import { createECDH, createPublicKey, createHash, randomBytes, type KeyObject } from 'node:crypto';
import { ALGORITHM_OID, KEY_TYPE_NAMES, unwrapBlob, type BlobFields, type UnwrappedKey } from './blob.js';
import { curveByPrimeAndOrder, type Curve } from './curves.js';
import { formatKcv, type Dkek } from './dkek.js';
import { wipe } from '../secrets.js';
import { stripLeadingZeros, toKeyObject } from '../pkcs11/public-key.js';

export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface PublicKeyInfo {
  kind: 'rsa' | 'ec' | 'aes';
  curve?: string;
  /** Uncompressed EC point 04‖X‖Y, hex. */
  point?: string;
  modulusBits?: number;
  exponent?: string;
  /** SHA-256 of the DER SubjectPublicKeyInfo, where node:crypto can build one. */
  spkiSha256?: string;
  pem?: string;
}

export interface BlobReport {
  kcv: string;
  keyType: number;
  keyTypeName: string;
  keySize: number;
  keySizeUnit: 'bits' | 'bytes';
  algorithmOid: string;
  allowedAlgorithms: string;
  cmac: 'valid';
  checks: Check[];
  publicKey: PublicKeyInfo;
  /** Every check passed: the card (or the harness) can restore a working key from this blob. */
  restorable: boolean;
}

function big(b: Buffer): bigint {
  return b.length ? BigInt(`0x${b.toString('hex')}`) : 0n;
}

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let r = 1n;
  base %= m;
  while (exp > 0n) {
    if (exp & 1n) r = (r * base) % m;
    base = (base * base) % m;
    exp >>= 1n;
  }
  return r;
}

function bitLength(b: Buffer): number {
  const s = stripLeadingZeros(b);
  return s[0] === 0 ? 0 : (s.length - 1) * 8 + (32 - Math.clz32(s[0]!));
}

function checkEc(key: Extract<UnwrappedKey, { kind: 'ec' }>, checks: Check[]): { pub: PublicKeyInfo; curve?: Curve } {
  const curve = curveByPrimeAndOrder(key.prime, key.order);
  const pub: PublicKeyInfo = { kind: 'ec', point: key.q.toString('hex') };
  if (!curve) {
    checks.push({ name: 'curve known', ok: false, detail: `prime of ${bitLength(key.prime)} bits is not a curve the harness knows; Q = d·G not checked` });
    return { pub };
  }
  pub.curve = curve.name;
  checks.push({ name: 'curve known', ok: true, detail: curve.name });
  // pico-hsm leaves A empty for curves with A = -3; a real card may carry A as zero bytes (secp256k1).
  const aOk = key.a.length === 0 || big(key.a) === big(Buffer.from(curve.a, 'hex'));
  checks.push({ name: 'curve parameters A, B, G', ok: aOk && big(key.b) === big(Buffer.from(curve.b, 'hex')) && key.g.toString('hex') === curve.g });
  const sizeOk = key.bits === bitLength(Buffer.from(curve.p, 'hex')) || key.bits === curve.bytes * 8;
  checks.push({ name: 'key size', ok: sizeOk, detail: `${key.bits} bits` });
  let derived: Buffer | undefined;
  try {
    const ecdh = createECDH(curve.openssl);
    ecdh.setPrivateKey(Buffer.concat([Buffer.alloc(Math.max(0, curve.bytes - stripLeadingZeros(key.d).length)), stripLeadingZeros(key.d)]));
    derived = ecdh.getPublicKey();
  } catch (err) {
    checks.push({ name: 'Q = d·G', ok: false, detail: `private scalar rejected: ${(err as Error).message.split('\n')[0]}` });
    return { pub, curve };
  }
  checks.push({ name: 'Q = d·G', ok: derived.equals(key.q), detail: derived.equals(key.q) ? undefined : 'the public point in the blob is not d·G' });
  try {
    const ko = createPublicKey({ key: Buffer.concat([Buffer.from(spkiPrefix(curve), 'hex'), key.q]), format: 'der', type: 'spki' });
    describeKeyObject(ko, pub);
  } catch {
    /* point not on the curve: already reported by Q = d·G */
  }
  return { pub, curve };
}

/** DER SubjectPublicKeyInfo header for an uncompressed point on a named curve (RFC 5480). */
function spkiPrefix(c: Curve): string {
  const alg = `06072a8648ce3d0201${c.ecParams}`;
  const algSeq = `30${(alg.length / 2).toString(16).padStart(2, '0')}${alg}`;
  const bitLen = 1 + 1 + c.bytes * 2;
  const bit = `03${bitLen < 128 ? bitLen.toString(16).padStart(2, '0') : `81${bitLen.toString(16)}`}00`;
  const total = algSeq.length / 2 + bit.length / 2 + 1 + c.bytes * 2;
  const head = total < 128 ? `30${total.toString(16).padStart(2, '0')}` : `3081${total.toString(16)}`;
  return head + algSeq + bit;
}

function describeKeyObject(ko: KeyObject, pub: PublicKeyInfo): void {
  const der = ko.export({ format: 'der', type: 'spki' });
  pub.spkiSha256 = createHash('sha256').update(der).digest('hex');
  pub.pem = ko.export({ format: 'pem', type: 'spki' }).toString();
}

function checkRsa(key: Extract<UnwrappedKey, { kind: 'rsa' }>, checks: Check[]): PublicKeyInfo {
  const n = big(key.n),
    e = big(key.e);
  const bits = bitLength(key.n);
  checks.push({ name: 'key size', ok: bits === key.bits || key.n.length * 8 === key.bits, detail: `${key.bits} bits stated, modulus has ${bits}` });
  if (key.keyType === 6) {
    const p = big(key.p!),
      q = big(key.q!);
    const crtOk = p * q === n && (big(key.qInv!) * q) % p === 1n;
    checks.push({ name: 'p·q = n and pq·q ≡ 1 (mod p)', ok: crtOk });
    // Decrypt with the CRT parts (dp, dq, qInv), as the card would: Garner's recombination.
    const m = big(randomBytes(key.n.length)) % n;
    const c = modPow(m, e, n);
    const mp = modPow(c, big(key.dp!), p),
      mq = modPow(c, big(key.dq!), q);
    const h = (big(key.qInv!) * (((mp - mq) % p) + p)) % p;
    const back = mq + h * q;
    checks.push({ name: '(m^e)^d ≡ m (mod n)', ok: back === m });
  } else {
    const d = big(key.d!);
    const m = big(randomBytes(key.n.length)) % n;
    checks.push({ name: '(m^e)^d ≡ m (mod n)', ok: modPow(modPow(m, e, n), d, n) === m });
  }
  const pub: PublicKeyInfo = { kind: 'rsa', modulusBits: bits, exponent: key.e.toString('hex') };
  try {
    describeKeyObject(toKeyObject({ family: 'rsa', modulus: key.n, exponent: key.e }), pub);
  } catch {
    /* reported by the checks */
  }
  return pub;
}

/** Unwrap and check one blob. KCV, CMAC and decoding failures throw DkekError (bad input). */
export function verifyBlob(
  blob: Uint8Array,
  dkek: Dkek,
  opts: { expectedPublicKey?: KeyObject; what?: string } = {},
): { report: BlobReport; key: UnwrappedKey; fields: BlobFields } {
  const { fields, key } = unwrapBlob(blob, dkek, opts.what);
  const checks: Check[] = [
    { name: 'KCV matches the DKEK', ok: true },
    { name: 'CMAC', ok: true },
  ];
  let pub: PublicKeyInfo;
  let expectedOid: Buffer;
  if (key.kind === 'ec') {
    pub = checkEc(key, checks).pub;
    expectedOid = ALGORITHM_OID.ec;
  } else if (key.kind === 'rsa') {
    pub = checkRsa(key, checks);
    expectedOid = ALGORITHM_OID.rsa;
  } else {
    checks.push({ name: 'AES key length', ok: [16, 24, 32].includes(key.bytes), detail: `${key.bytes} bytes` });
    pub = { kind: 'aes' };
    expectedOid = ALGORITHM_OID.aes;
  }
  // Firmware 3.0–3.2 encoded the AES OID wrongly (docs/dkek-formats.md §4): a note, not a failure.
  const oidOk = fields.algorithm.equals(expectedOid);
  checks.push({
    name: 'default algorithm matches the key type',
    ok: oidOk || key.kind === 'aes',
    detail: oidOk ? undefined : `OID bytes ${fields.algorithm.toString('hex')}`,
  });
  if (opts.expectedPublicKey) {
    const want = opts.expectedPublicKey.export({ format: 'der', type: 'spki' });
    const same = pub.spkiSha256 !== undefined && pub.spkiSha256 === createHash('sha256').update(want).digest('hex');
    checks.push({ name: "public key equals the token's", ok: same });
  }
  const report: BlobReport = {
    kcv: formatKcv(fields.kcv),
    keyType: fields.keyType,
    keyTypeName: KEY_TYPE_NAMES[fields.keyType]!,
    keySize: key.kind === 'aes' ? key.bytes : key.bits,
    keySizeUnit: key.kind === 'aes' ? 'bytes' : 'bits',
    algorithmOid: fields.algorithm.toString('hex'),
    allowedAlgorithms: fields.allowedAlgorithms.toString('hex'),
    cmac: 'valid',
    checks,
    publicKey: pub,
    restorable: checks.every((c) => c.ok),
  };
  return { report, key, fields };
}

/** Overwrite the private parts of an unwrapped key. */
export function wipeKey(key: UnwrappedKey): void {
  if (key.kind === 'aes') wipe(key.key);
  else if (key.kind === 'ec') wipe(key.d);
  else wipe(key.d, key.p, key.q, key.dp, key.dq, key.qInv);
}
