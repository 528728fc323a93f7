/**
 * The same stack gets the same verdict in every run (issue 21): the default matrix without the benchmarks
 * (SoftHSM in-process and through p11-kit, PyKMIP), run twice, must give every case the same status. Slow: two
 * full runs. The container engine is forced absent.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResults } from '../../src/results.js';
import { suites } from '../../suites/index.js';
import { cli } from './helpers.js';
import { NO_ENGINE } from '../containers/engine.js';

const DRIVERS = ['softhsm', 'softhsm-p11kit', 'pykmip'];
// Every default suite but the benchmarks (figures are measurements, not verdicts, and take minutes) and the signers
// suite (external DNSSEC signer software, minutes per run, with its own self-tests); the runner's checks run anyway.
const SUITES = suites.filter((s) => s.default !== false && !s.always && !s.name.startsWith('bench') && s.name !== 'signers').map((s) => s.name);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-deterministic-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function matrixRun(name: string): Promise<{ code: number; results: RunResults }> {
  const out = join(dir, name);
  const args = ['run', ...DRIVERS.flatMap((d) => ['--driver', d]), ...SUITES.flatMap((s) => ['--suite', s]), '--out', out];
  const r = await cli(args, NO_ENGINE, { timeoutMs: 570_000 });
  return { code: r.code, results: JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults };
}

const verdicts = (r: RunResults) =>
  Object.fromEntries(r.drivers.flatMap((d) => d.cases.map((c) => [`${d.id} ${c.suite}/${c.case}`, `${c.status}${c.expected ? ' (expected)' : ''}`])));

describe('the default matrix, twice on the same stack', () => {
  test('every case gets the same status in both runs', async () => {
    const { code: firstCode, results: first } = await matrixRun('first');
    const { code: secondCode, results: second } = await matrixRun('second');
    expect(secondCode).toBe(firstCode);
    for (const id of DRIVERS) expect(first.drivers.find((d) => d.id === id)?.status, id).toBe('ran');
    expect(Object.keys(verdicts(first)).length).toBeGreaterThan(100);
    expect(verdicts(second)).toEqual(verdicts(first));
    // Capabilities and suitability are verdicts too.
    for (const id of DRIVERS) {
      const a = first.drivers.find((d) => d.id === id)!;
      const b = second.drivers.find((d) => d.id === id)!;
      expect(b.capabilities, id).toEqual(a.capabilities);
      expect(
        b.suitability.map((v) => [v.signer, v.suitable]),
        id,
      ).toEqual(a.suitability.map((v) => [v.signer, v.suitable]));
    }
  }, 1_200_000);
});
