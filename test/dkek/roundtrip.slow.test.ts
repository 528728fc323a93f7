/**
 * `hsm-harness run --driver softhsm --suite dkek` end to end on real SoftHSM tokens, with the DKEK taken
 * from the public vector's share file; then `dkek blob-verify` accepts the blobs that run exported and
 * rejects tampered copies.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResults } from '../../src/results.js';
import { parseWrapFile, encodeWrapFile } from '../../src/dkek/wrapfile.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const FIX = join(ROOT, 'fixtures', 'dkek');
const vector = JSON.parse(await readFile(join(FIX, 'public-vector.json'), 'utf8'));
const SHARE = join(FIX, 'nitrokey-share.pbe');

describe('dkek suite on SoftHSM', () => {
  let out: string;
  let exported: string;
  let results: RunResults;
  let stderr: string;
  const env = { ...process.env, HSM_HARNESS_DKEK_SHARES: SHARE, HSM_HARNESS_DKEK_PASSWORD: vector.password };
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'hh-dkek-'));
    exported = join(out, 'exported');
    const r = await exec('node', [CLI, 'run', '--driver', 'softhsm', '--suite', 'dkek', '--out', join(out, 'reports')], {
      env: { ...env, HSM_HARNESS_DKEK_EXPORT_DIR: exported },
    });
    stderr = r.stderr;
    results = JSON.parse(await readFile(join(out, 'reports', 'results.json'), 'utf8'));
  });
  // The exported blobs hold wrapped private keys: nothing stays behind.
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  test('every round trip passed, the spare tokens and the main token are clean, wrap is a capability', () => {
    const d = results.drivers.find((x) => x.id === 'softhsm')!;
    const dkekCases = d.cases.filter((c) => c.suite === 'dkek');
    expect(dkekCases.map((c) => `${c.case}:${c.status}`)).toEqual([
      'setup-wrap-key:pass',
      'kwp-restore-ec-p256:pass',
      'blob-restore-ec-p256:pass',
      'kwp-restore-rsa-2048:pass',
      'blob-restore-rsa-2048:pass',
      'spare-tokens-clean:pass',
    ]);
    expect(d.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
    expect(d.capabilities.wrap).toBe(true);
    const section = d.sections.dkek as { kcv: string; roundTrips: { status: string }[] };
    expect(section.kcv).toBe(vector.kcv);
    expect(section.roundTrips.map((r) => r.status)).toEqual(['pass', 'pass', 'pass', 'pass']);
  });

  test('the share password and share appear in no report and no progress line', async () => {
    const all = (await readFile(join(out, 'reports', 'results.json'), 'utf8')) + (await readFile(join(out, 'reports', 'junit.xml'), 'utf8')) + stderr;
    expect(all).not.toContain(vector.password);
    expect(all).not.toContain(vector.share);
  });

  test('blob-verify accepts the exported EC blob and rejects tampered copies', async () => {
    const wrap = join(exported, 'softhsm-ec-p256.wrap');
    const ok = await exec('node', [CLI, 'dkek', 'blob-verify', '--wrap', wrap, '--share', SHARE, '--password', 'env:HSM_HARNESS_DKEK_PASSWORD', '--json'], {
      env,
    });
    const report = JSON.parse(ok.stdout);
    expect(report).toMatchObject({ kcv: vector.kcv, keyType: 12, keySize: 256, cmac: 'valid', restorable: true });
    expect(report.publicKey.curve).toBe('P-256');

    const wf = parseWrapFile(await readFile(wrap));
    const blob = Buffer.from(wf.blob);
    blob[40]! ^= 0x08;
    const bad = join(out, 'tampered.wrap');
    await writeFile(bad, encodeWrapFile({ blob }));
    const r = await exec('node', [CLI, 'dkek', 'blob-verify', '--wrap', bad, '--share', SHARE, '--password', 'env:HSM_HARNESS_DKEK_PASSWORD'], { env }).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (e) => ({ code: e.code as number, stdout: e.stdout as string, stderr: e.stderr as string }),
    );
    // Readable input, a backup that fails verification: exit 1 (bad input would be 2), the finding said once.
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout.match(/CMAC check failed/g)).toHaveLength(1);
    expect(r.stdout).not.toContain(vector.password);
  });
});
