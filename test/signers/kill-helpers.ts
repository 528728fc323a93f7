/**
 * Killing a run while a signer's keys are on the token, for test/signers/killed*.test.ts: a SoftHSM token with
 * foreign objects (made and listed by pkcs11-tool, an independent implementation), a run through the fault shim, a
 * SIGKILL at the moment the signer's keys exist, then `hsm-harness cleanup`.
 */
import { expect } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JournalEntry } from '../../src/journal.js';
import { CLI, SOFTHSM_MODULE, cli, descendantsOf, processAlive } from '../core/helpers.js';
import { buildShim, exec, journalEntries, shimRunEnv, tempDir, tokenWithForeignObjects, type ForeignToken } from '../safety/helpers.js';

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
export type Recorded = (caseDir: string) => Promise<boolean>;

async function until(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * How the run dies: its whole process group (as a Ctrl-C would reach it); the harness alone (its worker is orphaned
 * and must stop the signer's tool before it touches the token); or the harness and its worker one by one, the tool
 * left in the group (it must die with the worker that started it).
 */
export type KillHow = 'group' | 'harness' | 'harness-and-worker';

/**
 * Run one signer case on a SoftHSM token with foreign objects, through the shim hanging C_SignInit; once the signer's
 * keys are on the token and in its own record, SIGKILL the run as `how` says; then `hsm-harness cleanup`. However the
 * run was killed, the signer's tool must be gone before cleanup starts.
 */
export async function killWithSignerKeys(signer: string, caseName: string, recorded: Recorded, lookalike: (made: string[]) => string, how: KillHow = 'group') {
  const dir = await tempDir(`hh-${signer}-kill-`);
  const token = await tokenWithForeignObjects(`hh-${signer}-kill`, `${signer}-kill-pin-6620`);
  try {
    const before = await objectsWithIds(token);
    const state = join(dir, 'state');
    const shim = await buildShim(dir);
    const env = shimRunEnv(token, shim, state);
    // Its own process group: the kill reaches the harness, its worker and the signer, as a Ctrl-C would.
    const log = await open(join(dir, 'run.log'), 'w');
    const run = spawn('node', [CLI, 'run', '--driver', 'pkcs11', '--case', caseName, '--out', join(dir, 'out')], {
      env: { ...env, FAULT_HANG: 'C_SignInit' },
      stdio: ['ignore', log.fd, log.fd],
      detached: true,
    });
    await log.close();
    let ended = false;
    const exited = new Promise((resolve) => run.on('exit', resolve)).then(() => {
      ended = true;
    });
    let caseDir = '';
    let tools: number[] = [];
    try {
      await until(
        `${signer}'s keys on the token and in its record`,
        async () => {
          // A run that ended on its own never made the keys (the signer skipped or failed): say what it printed.
          if (ended) throw new Error(`the run ended before ${signer} made its keys: ${readFileSync(join(dir, 'run.log'), 'utf8').slice(-2000)}`);
          // The latest case of the signer (a workaround case runs after its as-packaged case).
          const entry = journalEntries(state).findLast((e) => e.t === 'signer-keys' && e.signer === signer) as Extract<JournalEntry, { t: 'signer-keys' }>;
          caseDir = entry?.dir ?? '';
          return !!caseDir && (await objectsWithIds(token)).length > before.length && (await recorded(caseDir));
        },
        120_000,
      );
    } finally {
      if (ended) {
        /* nothing to kill */
      } else if (how === 'group') process.kill(-run.pid!, 'SIGKILL');
      else {
        const below = descendantsOf(run.pid!);
        // The tools the harness started: every process below it but its worker (a node program) and what p11-kit ran.
        tools = below.filter((p) => !/\bnode\b|p11-kit/.test(readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0')[0] ?? ''));
        const worker = below.find((p) => readFileSync(`/proc/${p}/cmdline`, 'latin1').includes('worker'));
        process.kill(run.pid!, 'SIGKILL');
        if (how === 'harness-and-worker' && worker) process.kill(worker, 'SIGKILL');
      }
      await exited;
    }
    // Before cleanup runs, the signer's tool must be gone: stopped by the orphaned worker, or by the kernel with it.
    await until(`${signer}'s tool to end without cleanup`, async () => !tools.some(processAlive), 10_000);
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
