/**
 * Ctrl-C (or a cancelled CI job's SIGTERM) in the middle of a run: exit 130, no report written, and nothing
 * left behind — no driver process, no p11-kit server, no temporary token directory. The run gets a private
 * TMPDIR so that what it leaves (or does not) can be told apart from other tests running in parallel.
 */
import { describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './helpers.js';

/** Processes whose environment mentions the given directory (our run's children, wherever they were reparented). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').includes(dir)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return pids;
}

describe('interrupting a run', () => {
  test('SIGINT to the process group mid-run: exit 130, no reports, no processes or token directories left', async () => {
    const privateTmp = mkdtempSync(join(tmpdir(), 'hh-interrupt-'));
    const out = join(privateTmp, 'reports');
    const child = spawn('node', [CLI, 'run', '--driver', 'softhsm-p11kit', '--out', out], {
      env: { ...process.env, TMPDIR: privateTmp },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Wait until the driver is well into its suites (a p11-kit server and tokens exist), bounded.
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`run never reached a case: ${stderr}`)), 60_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/keygen\//.test(stderr)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    expect(processesUsing(privateTmp).length).toBeGreaterThan(1);
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/interrupted \(SIGINT\); driver processes stopped, no report written/);
    for (let i = 0; i < 40 && processesUsing(privateTmp).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(processesUsing(privateTmp)).toEqual([]);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(privateTmp).filter((f) => f.startsWith('hsm-harness-'))).toEqual([]);
    rmSync(privateTmp, { recursive: true, force: true });
  });
});
