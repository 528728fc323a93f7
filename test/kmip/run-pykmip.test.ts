/**
 * End to end: `hsm-harness run --driver pykmip --driver cascade-hsm-bridge` with the built CLI, against a real
 * PyKMIP server the driver starts; the bridge has no binary or address here and must say so.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResults } from '../../src/results.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');

describe('hsm-harness run --driver pykmip --driver cascade-hsm-bridge', () => {
  let results: RunResults;
  beforeAll(async () => {
    const out = await mkdtemp(join(tmpdir(), 'hh-kmip-'));
    const env = { ...process.env };
    for (const k of ['KMIP_BRIDGE_ADDR', 'KMIP_BRIDGE_BIN', 'KMIP_USERNAME', 'KMIP_PASSWORD', 'KMIP_CA', 'KMIP_INSECURE']) delete env[k];
    await exec('node', [CLI, 'run', '--driver', 'pykmip', '--driver', 'cascade-hsm-bridge', '--suite', 'kmip', '--suite', 'kmip-robustness', '--out', out], {
      env,
    }).catch((err) => {
      if (err.code !== 1) throw err;
    });
    results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    await rm(out, { recursive: true, force: true });
  }, 120_000);

  const pykmip = () => results.drivers.find((d) => d.id === 'pykmip')!;
  const kase = (suite: string, name: string) => pykmip().cases.find((c) => c.suite === suite && c.case === name);

  test('the Cascade-profile cases PyKMIP supports pass', () => {
    expect(pykmip().status).toBe('ran');
    for (const n of [
      'tls',
      'query',
      'discover-versions',
      'create-key-pair-rsa-2048',
      'get-public-key-rsa-2048',
      'activate-rsa-2048',
      'sign-batched-rsa-2048',
      'modify-attribute-name-rsa-2048',
    ]) {
      expect(kase('kmip', `cascade/${n}`)?.status, n).toBe('pass');
    }
    expect(pykmip().capabilities['kmip:cascade-profile']).toBe(true);
    expect(kase('kmip', 'baseline/destroy')?.status).toBe('pass');
  });

  test('ECDSA is unsupported, as the expectations file says; nothing in kmip failed', () => {
    const ec = kase('kmip', 'cascade/create-key-pair-ecdsa-p256')!;
    expect(ec.status).toBe('unsupported');
    expect(ec.reason).toMatch(/^expected: .*RSA key pairs only/);
    expect(ec.reason).toMatch(/Invalid Field/);
    expect(ec.expected).toMatchObject({ status: 'unsupported', verified: true, source: { kind: 'run' } });
    // The cases that need the ECDSA key miss a precondition: skip, not a verdict about the target.
    for (const n of ['get-public-key-ecdsa-p256', 'activate-ecdsa-p256', 'sign-batched-ecdsa-p256', 'modify-attribute-name-ecdsa-p256']) {
      expect(kase('kmip', `cascade/${n}`)?.status, n).toBe('skip');
    }
    expect(pykmip().cases.filter((c) => c.status === 'fail' || c.status === 'crash' || c.status === 'timeout')).toEqual([]);
  });

  test('TLS 1.2-only is flagged as a finding, and the KMIP section is filled', () => {
    const s = pykmip().sections.kmip as {
      tls: { version: string; tls13Supported: boolean };
      operations: Record<string, { observed: string }>;
      server: { vendorIdentification: string };
    };
    expect(s.tls.version).toBe('TLSv1.2');
    expect(s.tls.tls13Supported).toBe(false);
    expect(pykmip().findings.some((f) => /TLS 1\.3/.test(f.text))).toBe(true);
    expect(s.server.vendorIdentification).toMatch(/PyKMIP/);
    expect(s.operations.Sign!.observed).toBe('works');
    expect(s.operations['RNG Retrieve']!.observed).toMatch(/^fails/);
  });

  test('at least 20 robustness cases ran and PyKMIP answered a Query after each', () => {
    const rob = pykmip().cases.filter((c) => c.suite === 'kmip-robustness');
    expect(rob.length).toBeGreaterThanOrEqual(20);
    for (const c of rob) expect(c.status, `${c.case}: ${c.reason}`).toBe('pass');
    expect(rob.every((c) => typeof c.details?.response === 'string')).toBe(true);
  });

  test('cascade-hsm-bridge is unavailable with its reason', () => {
    const b = results.drivers.find((d) => d.id === 'cascade-hsm-bridge')!;
    expect(b.available).toBe(false);
    expect(b.availabilityReason).toMatch(/KMIP_BRIDGE_ADDR.*KMIP_BRIDGE_BIN/);
  });
});
