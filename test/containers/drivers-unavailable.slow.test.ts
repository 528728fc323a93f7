/**
 * Without a container runtime the three container drivers show as unavailable, with "no container runtime",
 * in `drivers --json`, results.json, JUnit and capabilities.md; and a hung daemon socket does not hang the
 * CLI or delay its exit. The no-engine path is forced (NO_ENGINE: DOCKER_HOST at a socket that does not
 * exist), so these tests mean the same on a machine that has an engine.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import type { RunResults } from '../../src/results.js';
import { NO_ENGINE } from './engine.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');
const CONTAINER_DRIVERS = ['softhsm-container', 'bridge-container', 'nethsm'];

let dir: string;
let silent: Server;
const held: Socket[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hh-containers-'));
  silent = createServer((s) => {
    held.push(s);
    s.resume();
  });
  await new Promise<void>((r) => silent.listen(join(dir, 'hung.sock'), r));
});
afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((r) => silent.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Hang guard, not a speed claim: a CLI still running after 60 s is killed, and `killed` says so. The
 * probe cap is 10 s here (generous, so a loaded machine still reaches the hung socket), so only a hang gets near the bound.
 */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return exec('node', [CLI, ...args], { env: { ...process.env, NETHSM_PKCS11_LIB: '', ...NO_ENGINE, ...env }, timeout: 60_000 }).then(
    (r) => ({ ...r, killed: false }),
    (e: { stdout: string; stderr: string; code: number; killed?: boolean }) => ({ ...e, killed: e.killed ?? false }),
  );
}

describe('container drivers without a container runtime', () => {
  test('drivers --json: all three unavailable with the reason', async () => {
    const r = await cli(['drivers', '--json']);
    const rows = JSON.parse(r.stdout) as { id: string; kind: string; available: boolean; reason: string }[];
    for (const id of CONTAINER_DRIVERS) {
      const row = rows.find((x) => x.id === id);
      expect(row, id).toBeDefined();
      expect(row!.available).toBe(false);
      expect(row!.reason).toMatch(/^no container runtime/);
    }
    expect(rows.find((x) => x.id === 'nethsm')!.kind).toBe('nethsm');
    expect(rows.find((x) => x.id === 'bridge-container')!.kind).toBe('kmip');
    expect(r.killed, 'the CLI did not exit within 60 s').toBe(false);
  });

  test('run: unavailable in results.json, skipped with the reason in JUnit and in capabilities.md', async () => {
    const out = join(dir, 'reports');
    const r = await cli(['run', ...CONTAINER_DRIVERS.flatMap((d) => ['--driver', d]), '--out', out, '--quiet']);
    expect(r.stdout).toMatch(/softhsm-container\s+unavailable: no container runtime/);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
    for (const id of CONTAINER_DRIVERS) {
      const d = results.drivers.find((x) => x.id === id)!;
      expect(d.available).toBe(false);
      expect(d.availabilityReason).toMatch(/^no container runtime/);
    }
    const doc = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(join(out, 'junit.xml'), 'utf8'));
    for (const id of CONTAINER_DRIVERS) {
      const suite = [doc.testsuites.testsuite].flat().find((s: { '@_name': string }) => s['@_name'] === id);
      const tc = [suite.testcase].flat()[0];
      expect(tc).toHaveProperty('skipped');
      const reason = [tc.properties.property].flat().find((p: { '@_name': string }) => p['@_name'] === 'skip-reason')['@_value'];
      expect(reason).toMatch(/no container runtime/);
    }
    const md = readFileSync(join(out, 'capabilities.md'), 'utf8');
    for (const id of CONTAINER_DRIVERS) expect(md).toMatch(new RegExp(`\\| ${id} \\|[^\\n]*unavailable: no container runtime`));
  });

  test('a daemon socket that never answers: the CLI reports and exits instead of hanging', async () => {
    const r = await cli(['drivers', '--json'], { DOCKER_HOST: `unix://${join(dir, 'hung.sock')}`, HSM_CONTAINER_PROBE_TIMEOUT_MS: '10000' });
    const rows = JSON.parse(r.stdout) as { id: string; available: boolean; reason: string }[];
    for (const id of CONTAINER_DRIVERS) {
      expect(rows.find((x) => x.id === id)!.reason).toMatch(/no container runtime: the runtime did not answer within 10\.0 s/);
    }
    expect(held.length).toBeGreaterThan(0);
    // Without the child process the dangling request would keep the CLI alive indefinitely.
    expect(r.killed, 'the CLI did not exit within 60 s').toBe(false);
  });
});
