/**
 * Password n-of-m shares (docs/dkek-formats.md §2). The oracle for interpolation is the plain polynomial evaluation in
 * this file; the printed format is compared with a hand-written sc-hsm-tool style printout.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { checkPrimeSync, generatePrimeSync } from 'node:crypto';
import {
  combinePassword,
  parsePasswordShares,
  randomSharePassword,
  splitPassword,
  formatPasswordShare,
  type PasswordShares,
} from '../../src/dkek/pwdshares.js';

function subsets<T>(xs: T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (xs.length < k) return [];
  const [h, ...t] = xs;
  return [...subsets(t, k - 1).map((s) => [h!, ...s]), ...subsets(t, k)];
}

/** Shares of a known polynomial, evaluated directly (independent of splitPassword). */
function sharesOf(prime: bigint, coeffs: bigint[], ids: number[]): PasswordShares {
  return { prime, shares: ids.map((id) => ({ id, value: coeffs.reduce((acc, c, k) => (acc + c * BigInt(id) ** BigInt(k)) % prime, 0n) })) };
}

describe('password shares', () => {
  test('the prime is a 64-bit safe prime', () => {
    const { prime } = splitPassword(randomSharePassword(), 2, 3);
    expect(prime.toString(2)).toHaveLength(64);
    expect(checkPrimeSync(prime)).toBe(true);
    expect(checkPrimeSync((prime - 1n) / 2n)).toBe(true);
  });

  test('every threshold-sized subset recovers the password; fewer shares are refused', () => {
    const pw = randomSharePassword();
    const set = splitPassword(pw, 3, 5);
    for (const sub of subsets(set.shares, 3)) expect(combinePassword({ ...set, shares: sub }).equals(pw)).toBe(true);
    expect(combinePassword(set).equals(pw)).toBe(true);
    expect(() => combinePassword({ ...set, shares: set.shares.slice(0, 2) })).toThrow(/too few password shares: got 2, the split needs 3/);
  });

  test('interpolation recovers the constant term of an independently evaluated polynomial', () => {
    const prime = generatePrimeSync(64, { safe: true, bigint: true });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
        fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 1, maxLength: 4 }),
        (secret, rest) => {
          const coeffs = [secret, ...rest.map((c) => c % prime)];
          const ids = Array.from({ length: coeffs.length + 1 }, (_, i) => i * 3 + 1); // ids need not be 1..n
          const got = combinePassword(sharesOf(prime, coeffs, ids));
          expect(got.toString('hex')).toBe(secret.toString(16).padStart(16, '0'));
        },
      ),
      { numRuns: 50 },
    );
  });

  test('a password whose first byte is 00 comes back as 8 bytes (sc-hsm-tool loses that byte)', () => {
    const pw = Buffer.from('00a1b2c3d4e5f607', 'hex');
    const set = splitPassword(pw, 2, 3);
    const back = combinePassword({ ...set, shares: [set.shares[2]!, set.shares[0]!] });
    expect(back).toHaveLength(8);
    expect(back.toString('hex')).toBe('00a1b2c3d4e5f607');
  });

  test("reads sc-hsm-tool's printed format with share ids in decimal, as printed (10 means ten)", () => {
    const prime = generatePrimeSync(64, { bigint: true });
    const coeffs = [0x1234567890abcdefn, 0x0fedcba987654321n];
    const ref = sharesOf(prime, coeffs, [10, 12]);
    const colon = (v: bigint) => {
      let h = v.toString(16);
      if (h.length % 2) h = `0${h}`;
      return h.match(/../g)!.join(':');
    };
    const printed = ref.shares
      .map(
        (s) =>
          `Share 1 of 3\n\n\nPrime       : ${colon(prime)}\nShare ID    : ${s.id}\nShare value : ${colon(s.value)}\n\n\nPlease note ALL values above and press <enter> when finished`,
      )
      .join('\n');
    const parsed = parsePasswordShares(printed);
    expect(parsed.shares.map((s) => s.id)).toEqual([10, 12]);
    expect(combinePassword(parsed).toString('hex')).toBe('1234567890abcdef');
  });

  test('our printout round-trips through the parser', () => {
    const pw = randomSharePassword();
    const set = splitPassword(pw, 2, 4);
    const text = [formatPasswordShare(set, set.shares[3]!), formatPasswordShare(set, set.shares[1]!)].join('\n\n');
    expect(text).toMatch(/^Prime {7}: [0-9a-f]{2}(:[0-9a-f]{2}){7}$/m);
    expect(combinePassword(parsePasswordShares(text)).equals(pw)).toBe(true);
  });

  test('bad input is a clear error', () => {
    expect(() => parsePasswordShares('Share ID : 1\nShare value : 01')).toThrow(/no "Prime :" line/);
    expect(() => parsePasswordShares('Prime : 0b\nShare ID : a\nShare value : 01')).toThrow(/not a decimal number/);
    expect(() => combinePassword({ prime: 11n, shares: [{ id: 1, value: 3n }] })).toThrow(/too few password shares/);
    expect(() => splitPassword(randomSharePassword(), 1, 3)).toThrow(/invalid split/);
  });
});
