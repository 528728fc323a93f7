/**
 * Custody option: an M-of-N split of the DKEK itself (the idea of go-keychain's smartcardhsm backend,
 * docs/dkek-formats.md §9), so that no single custodian's share file holds the whole DKEK. The field arithmetic comes
 * from the independently audited `shamir-secret-sharing` package (GF(256), byte-wise); we only add a text
 * form that carries the threshold and the DKEK's KCV, so that combining too few or mixed shares is caught
 * instead of yielding a wrong DKEK. The result feeds back in as a single 32-byte DKEK share.
 */
import { split, combine } from 'shamir-secret-sharing';
import { DkekError, formatKcv, kcvOf, SHARE_BYTES } from './dkek.js';
import { wipe } from '../secrets.js';

const PREFIX = 'hsm-harness-dkek-custody-v1';

export interface CustodyShare {
  threshold: number;
  kcv: string;
  value: Buffer;
}

export async function splitDkek(dkek: Uint8Array, threshold: number, total: number): Promise<string[]> {
  if (dkek.length !== SHARE_BYTES) throw new DkekError(`a DKEK is ${SHARE_BYTES} bytes`);
  if (!Number.isInteger(threshold) || !Number.isInteger(total) || threshold < 2 || total < threshold || total > 255) {
    throw new DkekError(`invalid custody split ${threshold}-of-${total}; use 2 <= threshold <= total <= 255`);
  }
  const kcv = formatKcv(kcvOf(dkek));
  const parts = await split(Uint8Array.from(dkek), total, threshold);
  const out = parts.map((p) => `${PREFIX}:${threshold}:${kcv}:${Buffer.from(p).toString('hex')}`);
  for (const p of parts) wipe(p);
  return out;
}

export function parseCustodyShare(text: string): CustodyShare {
  const m = new RegExp(`^${PREFIX}:(\\d+):([0-9A-F]{16}):([0-9a-f]+)$`).exec(text.trim());
  if (!m) throw new DkekError(`not a DKEK custody share (expected "${PREFIX}:<threshold>:<KCV>:<hex>")`);
  return { threshold: Number(m[1]), kcv: m[2]!, value: Buffer.from(m[3]!, 'hex') };
}

/** Rebuild the DKEK; checks the count against the threshold and the result against the recorded KCV. */
export async function combineDkek(texts: string[]): Promise<Buffer> {
  const shares = texts.map(parseCustodyShare);
  if (shares.length === 0) throw new DkekError('no custody shares given');
  const { threshold, kcv } = shares[0]!;
  if (shares.some((s) => s.kcv !== kcv || s.threshold !== threshold))
    throw new DkekError('custody shares come from different splits (their KCVs or thresholds differ)');
  if (shares.length < threshold) throw new DkekError(`too few custody shares: got ${shares.length}, the split needs ${threshold}`);
  const dkek = Buffer.from(await combine(shares.map((s) => Uint8Array.from(s.value))));
  for (const s of shares) wipe(s.value);
  const got = formatKcv(kcvOf(dkek));
  if (got !== kcv) {
    wipe(dkek);
    throw new DkekError(`custody shares rebuild a DKEK with KCV ${got}, not the recorded ${kcv}; a share is damaged or from another split`);
  }
  return dkek;
}
