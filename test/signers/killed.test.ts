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
 * Knot and BIND name their keys themselves (Knot: a random CKA_ID and no label; BIND: "<zone>-<policy>-<role>-<time>"),
 * so the journal records the case's directory, where each keeps its own record of the keys it made (Knot's KASP
 * database, BIND's K*.private files). The shim hangs C_SignInit: the signer has made and recorded its keys and waits
 * in its first signature when the whole run (harness, worker and signer: one process group, as a Ctrl-C would reach
 * them) is SIGKILLed.
 */
import { describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalEntry } from '../../src/journal.js';
import { CLI, SOFTHSM_MODULE, cli } from '../core/helpers.js';
import {
  buildShim,
  exec,
  harnessEnv,
  haveTools,
  listObjects,
  startHarness,
  tempDir,
  tokenWithForeignObjects,
  TOOLS_MISSING,
  type ForeignToken,
} from '../safety/helpers.js';
import { which } from '../../src/proc.js';

const havePdns = haveTools && (await which('pdnsutil')) !== undefined && (await which('pdns_server')) !== undefined;
const haveKnot = haveTools && (await which('kzonesign')) !== undefined && (await which('keymgr')) !== undefined;
const haveBind = haveTools && (await which('dnssec-keygen')) !== undefined && (await which('dnssec-signzone')) !== undefined;

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

/** Every object on the token as pkcs11-tool lists it: "<kind>: <label> id=<CKA_ID hex>" lines, sorted. */
async function objectsWithIds(t: ForeignToken): Promise<string[]> {
  const r = await exec('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', t.label, '--login', '--pin', t.pin, '--list-objects'], {
    env: { ...process.env, ...t.env },
  });
  const out: { kind: string; label: string; id: string }[] = [];
  for (const line of r.stdout.split('\n')) {
    const k = /^(Private Key|Public Key|Secret Key|Data|Certificate) [Oo]bject/.exec(line);
    if (k) out.push({ kind: k[1]!, label: '', id: '' });
    const l = /^\s+label:\s*(.*)$/.exec(line);
    if (l && out.length) out.at(-1)!.label = l[1]!.trim().replace(/^'(.*)'$/, '$1');
    const i = /^\s+ID:\s*([0-9a-f]+)\s*$/.exec(line);
    if (i && out.length) out.at(-1)!.id = i[1]!;
  }
  return out.map((o) => `${o.kind}: ${o.label} id=${o.id}`).sort();
}

/** What a signer's own record in its journalled case directory says, read with the signer's own tools. */
type Recorded = (caseDir: string) => Promise<boolean>;

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Run one signer case on a SoftHSM token with foreign objects, through the shim hanging C_SignInit; once the signer's
 * keys are on the token and in its own record, SIGKILL the run's process group; then `hsm-harness cleanup`.
 */
async function killWithSignerKeys(signer: string, caseName: string, recorded: Recorded, lookalike: (made: string[]) => string) {
  const dir = await tempDir(`hh-${signer}-kill-`);
  const token = await tokenWithForeignObjects(`hh-${signer}-kill`, `${signer}-kill-pin-6620`);
  try {
    const before = await objectsWithIds(token);
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
    // Its own process group: the kill reaches the harness, its worker and the signer, as a Ctrl-C would.
    const run = spawn('node', [CLI, 'run', '--driver', 'pkcs11', '--case', caseName, '--out', join(dir, 'out')], {
      env: { ...env, FAULT_HANG: 'C_SignInit' },
      stdio: 'ignore',
      detached: true,
    });
    const exited = new Promise((resolve) => run.on('exit', resolve));
    let caseDir = '';
    try {
      await until(
        `${signer}'s keys on the token and in its record`,
        async () => {
          // The latest case of the signer (a workaround case runs after its as-packaged case).
          const entry = journalEntries(state).findLast((e) => e.t === 'signer-keys' && e.signer === signer) as Extract<JournalEntry, { t: 'signer-keys' }>;
          caseDir = entry?.dir ?? '';
          return !!caseDir && (await objectsWithIds(token)).length > before.length && (await recorded(caseDir));
        },
        120_000,
      );
    } finally {
      process.kill(-run.pid!, 'SIGKILL');
      await exited;
    }
    const made = (await objectsWithIds(token)).filter((o) => !before.includes(o));
    expect(made.length).toBeGreaterThan(0);
    expect(made.every((o) => /^(Private|Public) Key: /.test(o))).toBe(true);
    // A foreign data object that looks like the signer's key (its label) is not a key: it must survive.
    const data = join(dir, 'lookalike.bin');
    await writeFile(data, "not the signer's\n");
    const toolArgs = ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--login', '--pin', token.pin];
    await exec('pkcs11-tool', [...toolArgs, '--write-object', data, '--type', 'data', '--label', lookalike(made)], { env: { ...process.env, ...token.env } });
    const foreign = await objectsWithIds(token).then((all) => all.filter((o) => !made.includes(o)));
    expect(foreign.length).toBe(before.length + 1);

    const c = await cli(['cleanup'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(c.stdout).toContain('everything removed');
    expect(await objectsWithIds(token)).toEqual(foreign);
    expect(existsSync(caseDir)).toBe(false);
    expect(readdirSync(join(state, 'runs'))).toEqual([]);
    return made;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rm(token.dir, { recursive: true, force: true });
  }
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
        if (prefix && (await listObjects(token)).some((o) => o.split(': ')[1]!.startsWith(prefix!))) break;
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

describe.skipIf(!haveKnot)(haveKnot ? 'Knot keys after a kill' : `Knot keys after a kill (skipped: ${TOOLS_MISSING}, and knot, knot-dnssecutils)`, () => {
  test('cleanup reads the keys Knot made from its KASP database in the journalled directory and removes exactly those', async () => {
    // Knot's record, read with its own keymgr: the KASP database of the case's run names a key.
    const recorded: Recorded = async (caseDir) => {
      const db = join(caseDir, 'run', 'knot-db', 'keys');
      if (!existsSync(join(db, 'data.mdb'))) return false;
      const r = await exec('keymgr', ['-D', db, '-j', 'example.test.', 'list']).catch(() => ({ stdout: '[]' }));
      return (JSON.parse(r.stdout || '[]') as unknown[]).length > 0;
    };
    const made = await killWithSignerKeys('knot', 'signers/knot/ECDSAP256SHA256', recorded, (m) => m[0]!.split(' id=')[1]!);
    // A key pair under one 20-byte CKA_ID (Knot's key id), without a label.
    expect(made).toHaveLength(2);
    expect(new Set(made.map((o) => o.split(' id=')[1])).size).toBe(1);
    expect(made[0]).toMatch(/^Private Key: {2}id=[0-9a-f]{40}$/);
  }, 240_000);
});

describe.skipIf(!haveBind)(haveBind ? 'BIND keys after a kill' : `BIND keys after a kill (skipped: ${TOOLS_MISSING}, and BIND 9.20)`, () => {
  test('cleanup reads the keys BIND made from its K*.private files in the journalled directory and removes exactly those', async () => {
    // BIND's record: a K*.private file naming the key on the token (a Label: line, RFC 7512 URI in base64).
    const recorded: Recorded = async (caseDir) => {
      const r = await exec('find', [caseDir, '-name', 'K*.private']);
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .some((f) => /^Label: /m.test(readFileSync(f, 'utf8')));
    };
    const made = await killWithSignerKeys('bind', 'signers/bind/ECDSAP256SHA256/workaround-no-deepbind', recorded, (m) =>
      m[0]!.replace(/^[^:]+: /, '').replace(/ id=.*$/, ''),
    );
    // BIND labels its keys "<zone>-<policy>-<role>-<time>"; the harness's policy name carries the run's label prefix.
    expect(made.every((o) => /: example\.test\.-hsm-harness-[0-9a-f]{16}-bind-13\.-ksk-\d{14} id=[0-9a-f]+$/.test(o))).toBe(true);
  }, 240_000);
});
