/**
 * Cost of one DKEK share-file key derivation: EVP_BytesToKey(MD5) with 10,000,000 iterations for a 32-byte
 * key and 16-byte IV, i.e. 30 million MD5 blocks (docs/dkek-formats.md §1). Reported in seconds next to an estimate for
 * the naive createHash('md5') loop (timed on 300,000 hashes and scaled), so the ratio is from one run.
 * sc-hsm-tool needs about 23 s for the same work. Called by the benchmark helper; also runnable on its own:
 *   node dist/bench/dkek-kdf.js
 */
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { shareFileKeyIv, SHARE_KDF_ITERATIONS } from '../src/dkek/kdf.js';
import { wipe } from '../src/secrets.js';

const NAIVE_SAMPLE = 300_000;

export async function benchDkekKdf(): Promise<{ seconds: number; naiveSecondsEstimate?: number }> {
  const password = randomBytes(16);
  const salt = randomBytes(8);
  const t0 = performance.now();
  const { key, iv } = shareFileKeyIv(password, salt);
  const seconds = (performance.now() - t0) / 1000;
  wipe(key, iv, password);

  let d = createHash('md5').update(salt).digest();
  const t1 = performance.now();
  for (let i = 0; i < NAIVE_SAMPLE; i++) d = createHash('md5').update(d).digest();
  const naiveSecondsEstimate = ((performance.now() - t1) / 1000) * ((3 * SHARE_KDF_ITERATIONS) / NAIVE_SAMPLE);
  return { seconds: round(seconds), naiveSecondsEstimate: round(naiveSecondsEstimate) };
}

function round(s: number): number {
  return Math.round(s * 100) / 100;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await benchDkekKdf();
  process.stdout.write(
    `one DKEK share KDF (3 × 10,000,000 MD5): ${r.seconds} s; naive createHash loop, estimated: ${r.naiveSecondsEstimate} s (${(r.naiveSecondsEstimate! / r.seconds).toFixed(1)}× slower)\n`,
  );
}
