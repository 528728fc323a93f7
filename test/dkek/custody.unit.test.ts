/** M-of-N custody split of a DKEK through shamir-secret-sharing, with the KCV guarding the result. */
import { describe, expect, test } from 'vitest';
import { randomBytes } from 'node:crypto';
import { combineDkek, splitDkek } from '../../src/dkek/custody.js';

describe('DKEK custody split', () => {
  test('any 3 of 5 rebuild the DKEK; 2 are refused; mixed splits are refused', async () => {
    const dkek = randomBytes(32);
    const parts = await splitDkek(dkek, 3, 5);
    expect(parts).toHaveLength(5);
    expect((await combineDkek([parts[4]!, parts[0]!, parts[2]!])).equals(dkek)).toBe(true);
    expect((await combineDkek(parts.slice(1, 4))).equals(dkek)).toBe(true);
    await expect(combineDkek(parts.slice(0, 2))).rejects.toThrow(/too few custody shares: got 2, the split needs 3/);
    const other = await splitDkek(randomBytes(32), 3, 5);
    await expect(combineDkek([parts[0]!, parts[1]!, other[2]!])).rejects.toThrow(/different splits/);
  });

  test('a damaged share is caught by the KCV', async () => {
    const parts = await splitDkek(randomBytes(32), 2, 3);
    const damaged = parts[1]!.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    await expect(combineDkek([parts[0]!, damaged])).rejects.toThrow(/rebuild a DKEK with KCV/);
  });
});
