/**
 * A run killed (SIGKILL) while a signer's keys are on a persistent token: the keys are the signer's, not the
 * harness's (no run CKA_ID), so the journal records the run-specific label prefix the signer was told to use before
 * the signer ran, and `hsm-harness cleanup` removes exactly the objects under that prefix. The token's other objects
 * (made by pkcs11-tool, an independent implementation, which also lists the objects) must all survive.
 *
 * PowerDNS 4.7's `hsm create-key` makes an RSA key under the label it was given and then aborts; the harness then
 * destroys that key. The fault shim (in front of real SoftHSM) hangs the harness's C_DestroyObject, so the run is
 * killed with the signer's key on the token, as a kill at the wrong moment would leave it.
 */
import { describe, expect, test } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalEntry } from '../../src/journal.js';
import { SOFTHSM_MODULE, cli } from '../core/helpers.js';
import { buildShim, harnessEnv, haveTools, listObjects, startHarness, tempDir, tokenWithForeignObjects, TOOLS_MISSING } from '../safety/helpers.js';
import { which } from '../../src/proc.js';

const havePdns = haveTools && (await which('pdnsutil')) !== undefined && (await which('pdns_server')) !== undefined;

function journalEntries(state: string): JournalEntry[] {
  const runs = join(state, 'runs');
  if (!existsSync(runs)) return [];
  return readdirSync(runs).flatMap((f) =>
    readFileSync(join(runs, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as JournalEntry),
  );
}

describe.skipIf(!havePdns)(havePdns ? 'signer keys after a kill' : `signer keys after a kill (skipped: ${TOOLS_MISSING}, and PowerDNS)`, () => {
  test('cleanup removes the objects a signer made under the journalled run label prefix, and nothing else', async () => {
    const dir = await tempDir('hh-signer-kill-');
    const token = await tokenWithForeignObjects('hh-signer-kill', 'signer-kill-pin-4471');
    try {
      const before = await listObjects(token);
      const state = join(dir, 'state');
      const shim = await buildShim(dir);
      const env = harnessEnv({
        ...token.env,
        FAULT_REAL_MODULE: SOFTHSM_MODULE,
        HSM_PKCS11_MODULE: shim,
        HSM_PKCS11_TOKEN: token.label,
        HSM_PKCS11_PIN: token.pin,
        HSM_HARNESS_STATE_DIR: state,
      });
      const run = startHarness(['run', '--driver', 'pkcs11', '--case', 'signers/powerdns/RSASHA256', '--out', join(dir, 'out')], {
        ...env,
        FAULT_HANG: 'C_DestroyObject',
      });
      // PowerDNS's `hsm create-key` makes its key under the label it was given: wait until one is on the token.
      let prefix: string | undefined;
      const end = Date.now() + 90_000;
      while (Date.now() < end) {
        const entry = journalEntries(state).find((e) => e.t === 'labelled') as Extract<JournalEntry, { t: 'labelled' }> | undefined;
        prefix = entry?.prefix;
        // While PowerDNS writes the token, SoftHSM in pkcs11-tool may find the token file mid-write and list no such
        // token: that poll is retried; the listings that decide the test are taken with no writer running.
        const listed = prefix ? await listObjects(token).catch(() => []) : [];
        if (listed.some((o) => o.split(': ')[1]!.startsWith(prefix!))) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(prefix).toMatch(/^hsm-harness-[0-9a-f]{16}-powerdns-$/);
      const made = (await listObjects(token)).filter((o) => o.split(': ')[1]!.startsWith(prefix!));
      expect(made.length).toBeGreaterThan(0);
      run.child.kill('SIGKILL');
      await run.exited;
      await new Promise((r) => setTimeout(r, 1000));
      const c = await cli(['cleanup'], env);
      expect(c.code, c.stdout + c.stderr).toBe(0);
      expect(await listObjects(token)).toEqual(before);
      expect(readdirSync(join(state, 'runs'))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(token.dir, { recursive: true, force: true });
    }
  }, 180_000);
});
