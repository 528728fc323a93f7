/**
 * n-of-m split of a share-file password, compatible with sc-hsm-tool's `--pwd-shares-threshold/-total`
 * (docs/dkek-formats.md §2): the password is 8 random bytes with the top bit cleared, shared with Shamir's scheme over
 * GF(p) for a 64-bit safe prime p. Printed per custodian as
 *   Prime       : <colon hex>
 *   Share ID    : <decimal>
 *   Share value : <colon hex>
 * Unlike sc-hsm-tool we read share ids in decimal, as they were printed, and left-pad the recovered
 * password to 8 bytes (the tool loses a leading zero byte). Our own printout adds a `Threshold` line so
 * that combining too few shares is a clear error instead of a wrong password.
 */
import { generatePrimeSync, randomBytes } from 'node:crypto';
import { DkekError } from './dkek.js';

export const PASSWORD_BYTES = 8;

export interface PasswordShare {
  id: number;
  value: bigint;
}
export interface PasswordShares {
  prime: bigint;
  threshold?: number;
  shares: PasswordShare[];
}

function mod(a: bigint, p: bigint): bigint {
  const r = a % p;
  return r < 0n ? r + p : r;
}

function modInverse(a: bigint, p: bigint): bigint {
  let [r0, r1] = [mod(a, p), p];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new DkekError('password shares are inconsistent (no inverse modulo the prime); check the prime and share ids');
  return mod(s0, p);
}

function randomBelow(p: bigint): bigint {
  for (;;) {
    const v = BigInt(`0x${randomBytes(8).toString('hex')}`);
    if (v < p) return v;
  }
}

function toBigInt(b: Uint8Array): bigint {
  return b.length ? BigInt(`0x${Buffer.from(b).toString('hex')}`) : 0n;
}

/** A fresh password as the card makes one: 8 random bytes, top bit cleared. */
export function randomSharePassword(): Buffer {
  const pw = randomBytes(PASSWORD_BYTES);
  pw[0]! &= 0x7f;
  return pw;
}

export function splitPassword(password: Uint8Array, threshold: number, total: number): PasswordShares {
  if (password.length !== PASSWORD_BYTES || password[0]! & 0x80) throw new DkekError('a split password must be 8 bytes with the top bit clear');
  if (!Number.isInteger(threshold) || !Number.isInteger(total) || threshold < 2 || total < threshold || total > 255) {
    throw new DkekError(`invalid split ${threshold}-of-${total}; use 2 <= threshold <= total <= 255`);
  }
  const prime = generatePrimeSync(64, { safe: true, bigint: true });
  const coeffs = [toBigInt(password)];
  for (let i = 1; i < threshold; i++) coeffs.push(randomBelow(prime));
  const shares: PasswordShare[] = [];
  for (let x = 1; x <= total; x++) {
    let y = 0n;
    for (let k = coeffs.length - 1; k >= 0; k--) y = mod(y * BigInt(x) + coeffs[k]!, prime);
    shares.push({ id: x, value: y });
  }
  coeffs.fill(0n);
  return { prime, threshold, shares };
}

/** Lagrange interpolation at 0 of all given shares; the result left-padded to 8 bytes. */
export function combinePassword(set: PasswordShares): Buffer {
  const { prime, shares } = set;
  if (shares.length < 2) throw new DkekError(`too few password shares: got ${shares.length}, need at least 2 (and at least the split's threshold)`);
  if (set.threshold !== undefined && shares.length < set.threshold) {
    throw new DkekError(`too few password shares: got ${shares.length}, the split needs ${set.threshold}`);
  }
  const ids = new Set(shares.map((s) => s.id));
  if (ids.size !== shares.length) throw new DkekError("the same password share id appears twice; give each custodian's share once");
  if (prime < 3n) throw new DkekError('the prime of the password shares is missing or too small');
  let secret = 0n;
  for (const si of shares) {
    let num = 1n,
      den = 1n;
    for (const sj of shares) {
      if (sj === si) continue;
      num = mod(num * BigInt(sj.id), prime);
      den = mod(den * BigInt(sj.id - si.id), prime);
    }
    secret = mod(secret + si.value * num * modInverse(den, prime), prime);
  }
  // The card clears the top bit, so anything wider than 63 bits came from wrong or too few shares.
  if (secret >= 1n << 63n)
    throw new DkekError(`password shares do not combine to a valid password (${shares.length} share(s)): too few or wrong shares, or a wrong prime`);
  return Buffer.from(secret.toString(16).padStart(PASSWORD_BYTES * 2, '0'), 'hex');
}

export function colonHex(v: bigint): string {
  let h = v.toString(16);
  if (h.length % 2) h = `0${h}`;
  return h.match(/../g)!.join(':');
}

function parseHex(text: string, what: string): bigint {
  const h = text.replace(/[\s:]/g, '');
  if (!/^[0-9a-fA-F]+$/.test(h)) throw new DkekError(`${what} is not hex ("${text.slice(0, 40)}"); copy it as printed, colons allowed`);
  return BigInt(`0x${h}`);
}

/** One custodian's block as sc-hsm-tool prints it (plus our Threshold line). */
export function formatPasswordShare(set: PasswordShares, share: PasswordShare): string {
  return [
    `Prime       : ${colonHex(set.prime)}`,
    ...(set.threshold !== undefined ? [`Threshold   : ${set.threshold}`] : []),
    `Share ID    : ${share.id}`,
    `Share value : ${colonHex(share.value)}`,
  ].join('\n');
}

/**
 * Read password shares from the printed text (any number of custodian blocks, other lines ignored) or from
 * the JSON that `dkek pwd-split --json` prints. Share ids are decimal, as printed.
 */
export function parsePasswordShares(text: string): PasswordShares {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let j: { prime?: string; threshold?: number; shares?: { id: number; value: string }[] };
    try {
      j = JSON.parse(trimmed);
    } catch {
      throw new DkekError('password shares look like JSON but do not parse; give the JSON pwd-split printed or the printed text');
    }
    if (!j.prime || !Array.isArray(j.shares)) throw new DkekError('password shares JSON needs "prime" and "shares"');
    return {
      prime: parseHex(j.prime, 'prime'),
      threshold: j.threshold,
      shares: j.shares.map((s) => ({ id: Number(s.id), value: parseHex(String(s.value), 'share value') })),
    };
  }
  let prime: bigint | undefined;
  let threshold: number | undefined;
  let pendingId: number | undefined;
  const shares: PasswordShare[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(Prime|Threshold|Share ID|Share value)\s*:\s*(.*?)\s*$/i.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2]!;
    if (key === 'prime') {
      const p = parseHex(value, 'prime');
      if (prime !== undefined && p !== prime) throw new DkekError('password shares carry different primes; they belong to different splits');
      prime = p;
    } else if (key === 'threshold') {
      threshold = Number(value);
    } else if (key === 'share id') {
      if (!/^\d+$/.test(value)) throw new DkekError(`share id "${value}" is not a decimal number; type it as printed`);
      pendingId = Number(value);
    } else {
      if (pendingId === undefined) throw new DkekError('a "Share value" line has no "Share ID" line before it');
      shares.push({ id: pendingId, value: parseHex(value, 'share value') });
      pendingId = undefined;
    }
  }
  if (prime === undefined) throw new DkekError('no "Prime :" line in the password shares; include the prime as printed');
  if (shares.length === 0) throw new DkekError('no "Share ID" / "Share value" pairs in the password shares');
  return { prime, threshold, shares };
}
