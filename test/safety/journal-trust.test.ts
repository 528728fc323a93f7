/**
 * A journal cannot be turned against its user (issue 23). `cleanup` reads journals from the state directory,
 * a place anyone with the user's rights can write: a hand-made journal names a key pair pkcs11-tool made
 * (even one labelled like the harness's), an object with no CKA_ID, the parent directory, a directory behind
 * a symlink, an unrelated process with a copied start time, and corrupt lines. Nothing foreign may be
 * touched, every refused line is reported once, and cleanup does not fail; the lines that are genuinely the
 * harness's (positive controls: a harness-named temp dir, a process with its journalled command line, an
 * object with the run's CKA_ID prefix) are still released.
 */
import { describe, expect, test } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SOFTHSM_MODULE, cli } from '../core/helpers.js';
import { TOOLS_MISSING, haveTools, listObjects, shimmedForeignToken } from './helpers.js';

const exec = promisify(execFile);

function startTime(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then((s) => s.slice(s.lastIndexOf(')') + 2).split(' ')[19]!);
}
const alive = (pid: number) => existsSync(`/proc/${pid}`);

describe.skipIf(!haveTools)(haveTools ? 'journal trust' : `journal trust (skipped: ${TOOLS_MISSING})`, () => {
  const setup = shimmedForeignToken('hh-journal', 'journal-pin-5521');

  test('a hand-made journal touches nothing foreign; corrupt lines are reported once; what is ours is released', async () => {
    const t = setup.token;
    const tool = (args: string[]) =>
      exec('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', t.label, '--login', '--pin', t.pin, ...args], { env: { ...process.env, ...t.env } });
    // Foreign objects wearing the harness's label: a 5-byte CKA_ID (no run prefix) and no CKA_ID at all.
    await tool(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'hsm-harness-lookalike', '--id', '0a0b0c0d0e']);
    const data = join(setup.dir, 'data.bin');
    await writeFile(data, 'foreign\n');
    await tool(['--write-object', data, '--type', 'data', '--label', 'hsm-harness-no-id']);
    // A signer's object of another run (its label prefix embeds another run's CKA_ID prefix).
    await tool(['--write-object', data, '--type', 'data', '--label', 'hsm-harness-b1b2b3b4b5b6b7b8-knot-1']);
    const before = await listObjects(t);
    // A signer's object of the journal's run: removed by its journalled label prefix.
    await tool(['--write-object', data, '--type', 'data', '--label', 'hsm-harness-a1a2a3a4a5a6a7a8-knot-1']);
    const slots = await exec('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--list-token-slots'], { env: { ...process.env, ...t.env } });
    const serial = /serial num\s*:\s*(\S+)/.exec(slots.stdout)![1]!;

    const base = await mkdtemp(join(setup.dir, 'fs-'));
    const victim = join(base, 'victim');
    await mkdir(victim);
    await writeFile(join(victim, 'keep.txt'), 'keep');
    const viaLink = join(base, 'hsm-harness-zone-Ab12Cd');
    await symlink(victim, viaLink);
    const ours = await mkdtemp(join(base, 'hsm-harness-zone-'));
    await writeFile(join(ours, 'x'), 'x');
    const cwdChild = join(base, 'cwd');
    await mkdir(cwdChild);

    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    const strangerNoCmd = spawn('sleep', ['61'], { stdio: 'ignore' });
    const journalled = spawn('sleep', ['62'], { stdio: 'ignore' });
    const children = [stranger, strangerNoCmd, journalled];
    try {
      const prefix = 'a1a2a3a4a5a6a7a8';
      const token = { modulePath: SOFTHSM_MODULE, label: t.label, serial };
      const lines = [
        { t: 'run', pid: 4_000_000, start: '1', startedAt: '2026-01-01T00:00:00Z', prefix },
        { t: 'token', driver: 'pkcs11', token, ephemeral: false },
        { t: 'object', driver: 'pkcs11', token, id: '0a0b0c0d0e', label: 'hsm-harness-lookalike' },
        { t: 'object', driver: 'pkcs11', token, id: 'not-hex!', label: 'hsm-harness-no-id' },
        { t: 'object', driver: 'pkcs11', token, id: `b1b2b3b4b5b6b7b8000000010102`, label: 'hsm-harness-other-run' },
        { t: 'object', driver: 'pkcs11', token, id: `${prefix}00000001ffffffff`, label: 'hsm-harness-ours' },
        { t: 'labelled', driver: 'pkcs11', token, prefix: 'hsm-harness-b1b2b3b4b5b6b7b8-knot-' },
        { t: 'labelled', driver: 'pkcs11', token, prefix: 'hsm-harness-' },
        { t: 'labelled', driver: 'pkcs11', token, prefix: `hsm-harness-${prefix}-knot-` },
        { t: 'dir', driver: 'pkcs11', path: '..' },
        { t: 'dir', driver: 'pkcs11', path: 'cwd' },
        { t: 'dir', driver: 'pkcs11', path: victim },
        { t: 'dir', driver: 'pkcs11', path: `${base}/x/../victim` },
        { t: 'dir', driver: 'pkcs11', path: viaLink },
        { t: 'dir', driver: 'pkcs11', path: ours },
        // A signer's record of its keys is read only from a directory the harness named, journalled and still its own.
        { t: 'signer-keys', driver: 'pkcs11', token, signer: 'knot', dir: victim },
        { t: 'signer-keys', driver: 'pkcs11', token, signer: 'knot', dir: viaLink },
        { t: 'signer-keys', driver: 'pkcs11', token, signer: 'knot', dir: join(base, 'hsm-harness-signer-knot-13-Gone99') },
        { t: 'pid', driver: 'pkcs11', pid: stranger.pid, start: await startTime(stranger.pid!), cmdline: 'sleep\u000099\u0000' },
        { t: 'pid', driver: 'pkcs11', pid: strangerNoCmd.pid, start: await startTime(strangerNoCmd.pid!) },
        { t: 'pid', driver: 'pkcs11', pid: journalled.pid, start: await startTime(journalled.pid!), cmdline: 'sleep\u000062\u0000' },
      ].map((l) => JSON.stringify(l));
      const corrupt = ['null', '42', '[]', '"text"', '{"t":"object"}', '{"t":"dir","driver":"pkcs11"}', '{"t":"pid","driver":"../x","pid":1}', 'not json'];
      const state = join(setup.dir, 'state');
      await mkdir(join(state, 'runs', 'x.jsonl'), { recursive: true });
      await writeFile(join(state, 'runs', 'hand-made.jsonl'), `${[...lines.slice(0, 3), ...corrupt, ...lines.slice(3)].join('\n')}\n`);

      const env = {
        HSM_HARNESS_STATE_DIR: state,
        SOFTHSM2_CONF: t.conf,
        HSM_PKCS11_MODULE: SOFTHSM_MODULE,
        HSM_PKCS11_TOKEN: t.label,
        HSM_PKCS11_PIN: t.pin,
      };
      const r = await cli(['cleanup'], env, { cwd: cwdChild, timeoutMs: 120_000 });
      // Everything that is the harness's was released, so nothing is left: exit 0, never "internal error".
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const ignored = r.stdout.split('\n').filter((l) => l.includes('ignored:'));
      // 8 corrupt lines, 3 foreign objects, 2 foreign label prefixes, 5 directories, 3 signer directories, 2 processes; and the
      // directory named x.jsonl.
      expect(ignored.length, r.stdout).toBe(8 + 3 + 2 + 5 + 3 + 2 + 1);
      expect(r.stdout).toMatch(/x\.jsonl:\n {2}ignored: is not a regular file/);

      // Nothing foreign touched.
      expect(await listObjects(t)).toEqual(before);
      expect(before).toContain('Private Key: hsm-harness-lookalike');
      expect(before).toContain('Data: hsm-harness-no-id');
      expect(before).toContain('Data: hsm-harness-b1b2b3b4b5b6b7b8-knot-1');
      expect(await readFile(join(victim, 'keep.txt'), 'utf8')).toBe('keep');
      expect(existsSync(viaLink)).toBe(true);
      expect(existsSync(cwdChild)).toBe(true);
      expect((await readdir(setup.dir)).length).toBeGreaterThan(0);
      expect(alive(stranger.pid!)).toBe(true);
      expect(alive(strangerNoCmd.pid!)).toBe(true);
      // What is the harness's by every check is released.
      expect(existsSync(ours)).toBe(false);
      await new Promise((resolve) => (journalled.exitCode !== null || journalled.signalCode !== null ? resolve(null) : journalled.once('exit', resolve)));
      expect(journalled.signalCode).toBe('SIGKILL');

      // Reported once: the journal is gone, only the directory named x.jsonl is reported again.
      const again = await cli(['cleanup'], env, { cwd: cwdChild, timeoutMs: 60_000 });
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout.split('\n').filter((l) => l.includes('ignored:')).length, again.stdout).toBe(1);
      expect(existsSync(join(state, 'runs', 'hand-made.jsonl'))).toBe(false);
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
  });

  test("objects journalled on a throwaway driver's spare token (killed dkek run) are retired once its store is gone", async () => {
    // The softhsm driver's tokens all live in its temporary store: once that directory is gone, so are they.
    const state = join(setup.dir, 'state-spare');
    await mkdir(join(state, 'runs'), { recursive: true });
    const prefix = 'c1c2c3c4c5c6c7c8';
    const spare = { modulePath: SOFTHSM_MODULE, label: 'hsm-harness-spare-1', serial: '1234abcd' };
    const lines = [
      { t: 'run', pid: 4_000_001, start: '1', startedAt: '2026-01-01T00:00:00Z', prefix },
      { t: 'dir', driver: 'softhsm', path: join(setup.dir, 'hsm-harness-softhsm-Gone12') },
      { t: 'object', driver: 'softhsm', token: spare, id: `${prefix}0000000100112233`, label: 'hsm-harness-wrap' },
    ];
    await writeFile(join(state, 'runs', 'killed-dkek.jsonl'), `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    const r = await cli(['cleanup'], { HSM_HARNESS_STATE_DIR: state }, { timeoutMs: 60_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('everything removed');
    expect(await readdir(join(state, 'runs'))).toEqual([]);
  });
});
