/** Shared helpers for the harness's own tests: run the built CLI, make throwaway SoftHSM tokens. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'vitest';

const exec = promisify(execFile);
export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface CliResult { code: number; stdout: string; stderr: string }

/** Run `hsm-harness …` from the build; never throws on a non-zero exit. */
export async function cli(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  // Drivers configured in the developer's own environment must not leak into tests.
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(clean)) if (/^(HSM_|SCHSM_|YUBIHSM_|KMIP_|NETHSM_)/.test(k)) delete clean[k];
  try {
    const r = await exec('node', [CLI, ...args], { env: { ...clean, ...env }, cwd: opts.cwd, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** A SoftHSM token made with softhsm2-util directly (independently of the harness's own store code). */
export async function makeSoftHsmToken(label: string, pin: string): Promise<{ conf: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hh-test-softhsm-'));
  await mkdir(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  await exec('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', `${pin}-so`], { env: { ...process.env, SOFTHSM2_CONF: conf } });
  return { conf, dir };
}

/**
 * Skip the running test with its reason in the JUnit XML too: vitest's JUnit reporter writes a bare
 * <skipped/>, but it does write annotations, so the reason goes in as a "skip-reason" property.
 */
export async function skipWithReason(ctx: TestContext, reason: string): Promise<never> {
  await ctx.annotate(reason, 'skip-reason');
  return ctx.skip(reason);
}
