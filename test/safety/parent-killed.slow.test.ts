/**
 * kill -9 of the harness itself. The driver's process must not outlive its parent with servers listening,
 * and what the run created must be removable afterwards from the run journal (`hsm-harness cleanup`),
 * touching only journalled objects. Two situations:
 * - a driver process that is healthy: it notices the IPC disconnect and stops its server itself (PyKMIP,
 *   p11-kit);
 * - a driver process stuck in a module call (the fault shim hangs C_GenerateKeyPair after the first key pair,
 *   in front of real SoftHSM): it cannot react, so `hsm-harness cleanup` kills it (pid + start time from the
 *   journal) and removes its key pair by CKA_ID. The token's pre-existing objects must all survive.
 */
import { describe, expect, test } from 'vitest';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { JournalEntry } from '../../src/journal.js';
import { SOFTHSM_MODULE, cli, processAlive } from '../core/helpers.js';
import { TOOLS_MISSING, harnessEnv, haveTools, journalEntries, listObjects, shimmedForeignToken, startHarness } from './helpers.js';

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!haveTools)(haveTools ? 'parent killed with SIGKILL' : `parent killed (skipped: ${TOOLS_MISSING})`, () => {
  const setup = shimmedForeignToken('hh-kill9', 'kill9-pin-3390');

  test.each([
    ['pykmip', 'PyKMIP server', 'kmip-robustness'],
    ['softhsm-p11kit', 'p11-kit server', 'keygen'],
  ])('a healthy driver process (%s) stops its %s and removes its directories when the parent is killed', async (driver, _what, suite) => {
    const state = join(setup.dir, `state-${driver}`);
    // A TMPDIR of this run's own: whatever the servers put in theirs (Python's pymp-* directories) must go too.
    const tmp = join(setup.dir, `tmp-${driver}`);
    mkdirSync(tmp);
    const env = harnessEnv({ HSM_HARNESS_STATE_DIR: state, TMPDIR: tmp });
    const run = startHarness(['run', '--driver', driver, '--suite', suite, '--out', join(setup.dir, `out-${driver}`)], env);
    await waitFor('the server in the journal', () => journalEntries(state).some((e) => e.t === 'pid'), 90_000);
    // Read the journal now: a run that ends normally removes it.
    const entries = journalEntries(state);
    await new Promise((r) => setTimeout(r, 1000));
    const server = entries.find((e) => e.t === 'pid') as Extract<JournalEntry, { t: 'pid' }>;
    const worker = entries.find((e) => e.t === 'worker') as Extract<JournalEntry, { t: 'worker' }>;
    const dirsMade = entries.filter((e) => e.t === 'dir').map((e) => (e as Extract<JournalEntry, { t: 'dir' }>).path);
    expect(processAlive(server.pid)).toBe(true);
    run.child.kill('SIGKILL');
    await run.exited;
    await waitFor('the server and the driver process to stop', () => !processAlive(server.pid) && !processAlive(worker.pid), 30_000);
    for (const d of dirsMade) expect(existsSync(d), d).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
    // Nothing is left for cleanup but the journal itself, which it removes.
    const c = await cli(['cleanup'], { HSM_HARNESS_STATE_DIR: state });
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(readdirSync(join(state, 'runs'))).toEqual([]);
  });

  test('a driver process stuck in the module: hsm-harness cleanup kills it and restores the token, touching only journalled objects', async () => {
    const before = await listObjects(setup.token);
    const state = join(setup.dir, 'state-hang');
    const pkcs = {
      ...setup.runEnv,
      FAULT_REAL_MODULE: SOFTHSM_MODULE,
      HSM_HARNESS_STATE_DIR: state,
    };
    const run = startHarness(
      ['run', '--driver', 'pkcs11', '--suite', 'discovery', '--out', join(setup.dir, 'out-hang')],
      harnessEnv({ ...pkcs, FAULT_HANG: 'C_GenerateKeyPair', FAULT_HANG_AFTER: '1' }),
    );
    // Two object intents: the first pair exists, the second generation is the one that hangs.
    await waitFor('two journalled key pairs', () => journalEntries(state).filter((e) => e.t === 'object').length >= 2, 90_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await listObjects(setup.token)).length).toBe(before.length + 2);
    const worker = journalEntries(state).find((e) => e.t === 'worker') as Extract<JournalEntry, { t: 'worker' }>;
    run.child.kill('SIGKILL');
    await run.exited;
    await new Promise((r) => setTimeout(r, 1000));
    expect(processAlive(worker.pid)).toBe(true); // stuck in C_GenerateKeyPair: it cannot clean up itself
    const c = await cli(['cleanup'], harnessEnv(pkcs));
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(processAlive(worker.pid)).toBe(false);
    expect(await listObjects(setup.token)).toEqual(before);
    expect(readdirSync(join(state, 'runs'))).toEqual([]);
  });
});
