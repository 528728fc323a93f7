/**
 * Every phase of a driver's process is bounded. A module call that never returns outside any case (here
 * C_GetMechanismInfo, which the sessions suite calls in its setup to choose a key type) used to hang the whole
 * matrix, because the watchdog was disarmed between cases. The fault shim in front of real SoftHSM hangs
 * there; the run must record a timeout for that driver naming the phase, and complete the real SoftHSM driver.
 */
import { describe, expect, test } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunResults } from '../../src/results.js';
import { formatSeconds } from '../../src/runner/cleanup.js';
import { SOFTHSM_MODULE, cli } from '../core/helpers.js';
import { TOOLS_MISSING, haveTools, listObjects, shimmedForeignToken } from './helpers.js';

test('time limits are never reported as "0 s"', () => {
  expect(formatSeconds(500)).toBe('0.5 s');
  expect(formatSeconds(250)).toBe('0.25 s');
  expect(formatSeconds(5000)).toBe('5 s');
  expect(formatSeconds(60_000)).toBe('60 s');
});

describe.skipIf(!haveTools)(haveTools ? 'bounded phases' : `bounded phases (skipped: ${TOOLS_MISSING})`, () => {
  const setup = shimmedForeignToken('hh-bounded', 'bounded-pin-7716');

  test("a hang in a suite's setup is a timeout record naming the phase; the real SoftHSM driver in the same run completes", async () => {
    const before = await listObjects(setup.token);
    const out = join(setup.dir, 'reports');
    const r = await cli(
      ['run', '--driver', 'pkcs11', '--driver', 'softhsm', '--suite', 'sessions', '--out', out],
      {
        ...setup.runEnv,
        FAULT_REAL_MODULE: SOFTHSM_MODULE,
        FAULT_HANG: 'C_GetMechanismInfo',
        HSM_CASE_TIMEOUT_S: '10',
        HSM_HARNESS_STATE_DIR: join(setup.dir, 'state'),
      },
      { timeoutMs: 240_000 },
    );
    expect(r.code, r.stderr).toBe(1);
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
    const hung = results.drivers.find((d) => d.id === 'pkcs11')!;
    expect(hung.status).toBe('timeout');
    const record = hung.cases.find((c) => c.status === 'timeout')!;
    expect(record.suite).toBe('sessions');
    expect(record.case).toBe('setup');
    expect(record.reason).toMatch(/suite sessions outside its cases \(setup, before its first case\) did not finish within 10 s/);
    expect(results.drivers.find((d) => d.id === 'softhsm')!.status).toBe('ran');
    expect(await listObjects(setup.token)).toEqual(before);
  });

  test('a driver killed at a case time limit with a key pair on the token: the run removes the pair from its journal', async () => {
    const before = await listObjects(setup.token);
    const out = join(setup.dir, 'reports-keys');
    const state = join(setup.dir, 'state-keys');
    const r = await cli(
      ['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', out],
      {
        ...setup.runEnv,
        FAULT_REAL_MODULE: SOFTHSM_MODULE,
        FAULT_HANG: 'C_GenerateKeyPair',
        FAULT_HANG_AFTER: '1',
        HSM_CASE_TIMEOUT_S: '10',
        HSM_HARNESS_STATE_DIR: state,
      },
      { timeoutMs: 240_000 },
    );
    expect(r.code, r.stderr).toBe(1);
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
    const hung = results.drivers.find((d) => d.id === 'pkcs11')!;
    expect(hung.status).toBe('timeout');
    expect(hung.cases.find((c) => c.status === 'timeout')!.reason).toMatch(/^case discovery\/exercise\/.* did not finish within 10 s/);
    // The first pair was made before the hang; the parent removed it by its journalled CKA_ID.
    expect(await listObjects(setup.token)).toEqual(before);
    expect(results.leftovers).toBeUndefined();
    expect(hung.leftovers).toBeUndefined();
  });

  test('objects that cannot be removed (C_DestroyObject hangs) are named in the timeout record and results.json; cleanup removes them later', async () => {
    const before = await listObjects(setup.token);
    const out = join(setup.dir, 'reports-left');
    const state = join(setup.dir, 'state-left');
    const pkcs = {
      ...setup.runEnv,
      FAULT_REAL_MODULE: SOFTHSM_MODULE,
      HSM_HARNESS_STATE_DIR: state,
    };
    const r = await cli(
      ['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', out],
      { ...pkcs, FAULT_HANG: 'C_DestroyObject', HSM_CASE_TIMEOUT_S: '20', HSM_CLEANUP_TIMEOUT_S: '5' },
      { timeoutMs: 300_000 },
    );
    expect(r.code, r.stderr).toBe(1);
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
    const hung = results.drivers.find((d) => d.id === 'pkcs11')!;
    expect(hung.status).toBe('timeout');
    const record = hung.cases.find((c) => c.status === 'timeout')!;
    // The first C_DestroyObject hangs, in a case or in the suite's own teardown, whichever destroys first.
    expect(record.reason).toMatch(/^(case discovery\/\S+|suite discovery outside its cases .*) did not finish within 20 s/);
    expect(record.reason).toMatch(/left behind \(journal .*state-left\/runs\/.*\.jsonl, run hsm-harness cleanup\): /);
    expect(record.reason).toMatch(/pkcs11: \d+ object\(s\) on token "hh-bounded"/);
    expect(record.reason).toMatch(/cleanup did not finish within 5 s/);
    expect(hung.leftovers?.join(' ')).toMatch(/object\(s\) on token "hh-bounded".*CKA_ID [0-9a-f]{40}/);
    expect(results.leftovers?.journal).toMatch(/state-left\/runs\/.*\.jsonl$/);
    const left = (await listObjects(setup.token)).length - before.length;
    expect(left).toBeGreaterThan(0);
    // Later, with a module that works again, the journal is enough to remove exactly those objects.
    const c = await cli(['cleanup'], pkcs);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(await listObjects(setup.token)).toEqual(before);
  });
});
