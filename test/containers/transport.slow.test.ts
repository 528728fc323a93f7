/**
 * Transport findings through the SoftHSM container (issue 21), on a real engine (DOCKER_HOST; skipped with the
 * reason when none answers): the driver lists SoftHSM's mechanisms inside the container with `docker exec …
 * pkcs11-tool -M`, and what p11-kit's RPC does not forward is reported as hidden by it, not as missing from
 * SoftHSM. Slow: builds or reuses the image and starts a container.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { TestContext } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResults } from '../../src/results.js';
import { cli, skipWithReason } from '../core/helpers.js';
import { engineMissing, harnessContainers } from './engine.js';

const missing = engineMissing();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hh-container-transport-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(async (ctx: TestContext) => {
  if (missing) await skipWithReason(ctx, missing);
});

describe('softhsm-container: what p11-kit hides is a transport finding', () => {
  test('EdDSA is hidden by p11-kit RPC, in results.json, the cases and capabilities.md', async () => {
    const out = join(dir, 'run');
    const r = await cli(['run', '--driver', 'softhsm-container', '--suite', 'signing', '--suite', 'dnssec', '--out', out], {}, { timeoutMs: 900_000 });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const d = (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults).drivers[0]!;
    expect(d.transport?.name).toMatch(/^p11-kit (\d+\.\d+ )?RPC$/);
    expect(d.transport!.direct).toBeGreaterThan(d.transport!.through);
    expect(d.transport!.hiddenMechanisms).toEqual(expect.arrayContaining(['CKM_EDDSA', 'CKM_EC_EDWARDS_KEY_PAIR_GEN']));
    const eddsa = d.cases.find((c) => c.suite === 'signing' && c.case === 'CKM_EDDSA/ed25519')!;
    expect(eddsa.status).toBe('unsupported');
    expect(eddsa.reason).toMatch(/^CKM_EDDSA is hidden by p11-kit .*RPC/);
    expect(d.transport!.hiddenCapabilities['dnssec:15']).toEqual(expect.arrayContaining(['CKM_EDDSA']));
    expect(readFileSync(join(out, 'capabilities.md'), 'utf8')).toMatch(/Hidden by p11-kit [^\n]*CKM_EDDSA/);
    expect(harnessContainers()).toEqual([]);
  }, 900_000);
});
