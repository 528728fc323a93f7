/**
 * A run killed (SIGKILL) while a signer's keys are on a persistent token: the keys are the signer's, not the
 * harness's (no run CKA_ID), so the journal records, before the signer runs, how cleanup can find them, and
 * `hsm-harness cleanup` removes exactly those. The token's other objects (made by pkcs11-tool, an independent
 * implementation, which also lists the objects) must all survive.
 *
 * PowerDNS labels its keys with the run's label prefix: the journal records the prefix. PowerDNS 4.7's `hsm
 * create-key` makes an RSA key under the label it was given and then aborts; the harness then destroys that key. The
 * fault shim (in front of real SoftHSM) hangs the harness's C_DestroyObject, so the run is killed with the signer's
 * key on the token, as a kill at the wrong moment would leave it.
 *
 * Knot names its keys itself (a random CKA_ID, no label), so the journal records the case's directory, where Knot
 * keeps its own record of the keys it made (its KASP database). The shim hangs C_SignInit: Knot has made and recorded
 * its key and waits in its first signature when the whole run (harness, worker and signer: one process group, as a
 * Ctrl-C would reach them) is SIGKILLed. BIND, the same way: killed-bind.slow.test.ts (with its as-packaged case
 * before it, it takes longer than an integration test may).
 */
import { describe, expect, test } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalEntry } from '../../src/journal.js';
import { cli } from '../core/helpers.js';
import {
  buildShim,
  exec,
  haveTools,
  journalEntries,
  listObjects,
  shimRunEnv,
  startHarness,
  tempDir,
  tokenWithForeignObjects,
  TOOLS_MISSING,
} from '../safety/helpers.js';
import { which } from '../../src/proc.js';
import { type KillHow, killWithSignerKeys, type Recorded } from './kill-helpers.js';

const havePdns = haveTools && (await which('pdnsutil')) !== undefined && (await which('pdns_server')) !== undefined;
const haveKnot = haveTools && (await which('kzonesign')) !== undefined && (await which('keymgr')) !== undefined;

describe.skipIf(!havePdns)(havePdns ? 'signer keys after a kill' : `signer keys after a kill (skipped: ${TOOLS_MISSING}, and PowerDNS)`, () => {
  test('cleanup removes the objects a signer made under the journalled run label prefix, and nothing else', async () => {
    const dir = await tempDir('hh-signer-kill-');
    const token = await tokenWithForeignObjects('hh-signer-kill', 'signer-kill-pin-4471');
    try {
      const before = await listObjects(token);
      const state = join(dir, 'state');
      const shim = await buildShim(dir);
      const env = shimRunEnv(token, shim, state);
      const hanging = join(dir, 'hanging');
      const run = startHarness(['run', '--driver', 'pkcs11', '--case', 'signers/powerdns/RSASHA256', '--out', join(dir, 'out')], {
        ...env,
        FAULT_HANG: 'C_DestroyObject',
        FAULT_HANG_MARK: hanging,
      });
      // PowerDNS's `hsm create-key` makes its key under the label it was given: wait until one is on the token and
      // the harness hangs destroying it (the mark), so pdnsutil has ended: the kill meets the key, not its making.
      let prefix: string | undefined;
      const end = Date.now() + 180_000;
      while (Date.now() < end) {
        const entry = journalEntries(state).find((e) => e.t === 'labelled') as Extract<JournalEntry, { t: 'labelled' }> | undefined;
        prefix = existsSync(hanging) ? entry?.prefix : undefined;
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
  }, 300_000);
});

describe.skipIf(!haveKnot)(haveKnot ? 'Knot keys after a kill' : `Knot keys after a kill (skipped: ${TOOLS_MISSING}, and knot, knot-dnssecutils)`, () => {
  const how: Record<KillHow, string> = {
    group: 'the whole process group killed',
    harness: 'the harness alone killed: its orphaned worker stops kzonesign first',
    'harness-and-worker': 'the harness and its worker killed one by one: kzonesign dies with its worker',
  };
  test.each(Object.entries(how) as [KillHow, string][])(
    '%s (%s): cleanup reads the keys Knot made from its KASP database in the journalled directory and removes exactly those',
    async (kill) => {
      // Knot's record, read with its own keymgr: the KASP database of the case's run names a key.
      const recorded: Recorded = async (caseDir) => {
        const db = join(caseDir, 'run', 'knot-db', 'keys');
        if (!existsSync(join(db, 'data.mdb'))) return false;
        const r = await exec('keymgr', ['-D', db, '-j', 'example.test.', 'list']).catch(() => ({ stdout: '[]' }));
        return (JSON.parse(r.stdout || '[]') as unknown[]).length > 0;
      };
      const made = await killWithSignerKeys('knot', 'signers/knot/ECDSAP256SHA256', recorded, (m) => m[0]!.split(' id=')[1]!, kill);
      // A key pair under one 20-byte CKA_ID (Knot's key id), without a label.
      expect(made).toHaveLength(2);
      expect(new Set(made.map((o) => o.split(' id=')[1])).size).toBe(1);
      expect(made[0]).toMatch(/^Private Key: {2}id=[0-9a-f]{40}$/);
    },
    240_000,
  );
});
