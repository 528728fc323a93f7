/**
 * The container drivers on a real engine (the one in DOCKER_HOST; skipped with the reason when none answers):
 * the probe's decisions (host, reaper, images that cannot be had), the SoftHSM container end to end, a bridge
 * build that cannot reach its package repository, and nothing of the harness's left in `docker ps -a` after
 * a normal run, Ctrl-C, a timeout or a kill -9 of the driver's process. One file, so its tests run one after
 * the other and each can count the engine's containers.
 */
import { beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { TestContext } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caseFailsRun, type RunResults } from '../../src/results.js';
import { CLI, childrenOf, cli, skipWithReason } from '../core/helpers.js';
import { allContainers, docker, engineMissing, harnessContainers } from './engine.js';

const missing = engineMissing();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hh-engine-'));
});
beforeEach(async (ctx: TestContext) => {
  if (missing) await skipWithReason(ctx, missing);
});

/** A run in the background, for interrupting it: exit code, stderr so far, and its pid. */
function backgroundRun(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn('node', [CLI, 'run', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

/** Wait (bounded) until the harness has a running container; its name. */
async function runningContainer(what: () => string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const up = harnessContainers().filter((l) => / Up /.test(` ${l} `));
    if (up.length) return up[0]!.split(' ')[0]!;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no container of the harness came up within 120 s: ${what().slice(-1500)}`);
}

describe('container drivers on a real engine', () => {
  test('nothing of the harness is in the engine before these tests', () => {
    expect(harnessContainers()).toEqual([]);
  });

  test('probe: ports on 127.0.0.1, the reaper decided, nethsm and bridge-container available or unavailable with the real reason', async () => {
    const r = await cli(['drivers', '--json']);
    const rows = JSON.parse(r.stdout) as { id: string; available: boolean; reason: string }[];
    const row = (id: string) => rows.find((x) => x.id === id)!;
    expect(row('softhsm-container').available, row('softhsm-container').reason).toBe(true);
    // This machine has /.dockerenv; without the pin testcontainers would pick the bridge gateway.
    expect(row('softhsm-container').reason).toMatch(/ at 127\.0\.0\.1;/);
    // Ryuk only when its image can be had; otherwise off, with the engine's own reason.
    expect(row('softhsm-container').reason).toMatch(
      /reaper (testcontainers\/ryuk:\S+ \((local|pullable)\)|off, the harness removes its containers \(.+cannot be pulled: .+\))/,
    );
    const nethsm = row('nethsm');
    if (!nethsm.available) expect(nethsm.reason).toMatch(/^nitrokey\/nethsm:\S+ is not in the engine and cannot be pulled: \S.{10,}/);
    else expect(nethsm.reason).toMatch(/^nitrokey\/nethsm:\S+ \((local|pullable)\)/);
    const bridge = row('bridge-container');
    if (!bridge.available) expect(bridge.reason).toMatch(/^containers\/bridge cannot be built: NLnet Labs' package repository is unreachable: \S.{10,}/);
  });

  test('bridge-container with a repository that cannot resolve: unavailable with "Could not resolve host", and the run still exits 1 only because nothing ran', async () => {
    const out = join(dir, 'bridge');
    const r = await cli(['run', '--driver', 'bridge-container', '--out', out, '--quiet'], { NLNETLABS_APT_KEY_URL: 'https://packages.invalid/aptkey.asc' });
    expect(r.stdout).toMatch(/bridge-container\s+unavailable: containers\/bridge cannot be built: .*Could not resolve host: packages\.invalid/);
    expect(r.code).toBe(1);
  });

  test('hsm-harness images build: the SoftHSM image is ready (base from the registry or from the Debian mirror)', async () => {
    const r = await cli(['images', 'build'], {}, { timeoutMs: 900_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/images: softhsm-container: hsm-harness-softhsm:\w+ is ready/);
    expect(r.stderr).toMatch(/images: nethsm: /);
    expect(harnessContainers()).toEqual([]);
  }, 900_000);

  test('softhsm-container end to end: at least 70 cases pass, none fails, no container is left, and what p11-kit hides is a transport finding', async () => {
    const out = join(dir, 'softhsm');
    const r = await cli(['run', '--driver', 'softhsm-container', '--out', out], {}, { timeoutMs: 900_000 });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
    const d = results.drivers.find((x) => x.id === 'softhsm-container')!;
    expect(d.status).toBe('ran');
    // The DNSSEC signers' known failures (BIND 9.20 as Debian packages it) are expected entries, not the token's.
    expect(d.cases.filter(caseFailsRun)).toEqual([]);
    expect(d.cases.filter((c) => c.status === 'pass').length).toBeGreaterThanOrEqual(70);
    expect(d.cases.find((c) => c.suite === 'cleanup' && c.case === 'objects-restored')?.status).toBe('pass');
    expect(d.info.container).toMatch(/^hsm-harness-softhsm-container-/);
    expect(harnessContainers()).toEqual([]);

    // Transport findings (issue 21): the driver lists SoftHSM's mechanisms inside the container (docker exec …
    // pkcs11-tool -M); what p11-kit's RPC does not forward is hidden by it, not missing from SoftHSM.
    expect(d.transport?.name).toMatch(/^p11-kit (\d+\.\d+ )?RPC$/);
    expect(d.transport!.direct).toBeGreaterThan(d.transport!.through);
    expect(d.transport!.hiddenMechanisms).toEqual(expect.arrayContaining(['CKM_EDDSA', 'CKM_EC_EDWARDS_KEY_PAIR_GEN']));
    const eddsa = d.cases.find((c) => c.suite === 'signing' && c.case === 'CKM_EDDSA/ed25519')!;
    expect(eddsa.status).toBe('unsupported');
    expect(eddsa.reason).toMatch(/^CKM_EDDSA is hidden by p11-kit .*RPC/);
    expect(d.transport!.hiddenCapabilities['dnssec:15']).toEqual(expect.arrayContaining(['CKM_EDDSA']));
    expect(readFileSync(join(out, 'capabilities.md'), 'utf8')).toMatch(/Hidden by p11-kit [^\n]*CKM_EDDSA/);

    // The signers see the token under test alone: the container's second p11-kit server exports only it (the spares
    // stay on the first), measured inside the signer's isolation by p11-kit list-modules and pkcs11-spy.
    const iso = d.sections.signers!.isolation;
    expect(iso.singleToken).toBe('a second p11-kit server in the container that exports only hsm-harness-container');
    expect(iso.tokensSeen).toEqual(['hsm-harness-container']);
    expect(iso.slotsSeen).toBe(1);
  }, 900_000);

  test("a bridge build whose package repository cannot resolve fails with the fetch's own error and leaves no container", async () => {
    const before = allContainers();
    const { buildImage } = await import('../../src/containers/images.js');
    const { softhsmImage } = await import('../../src/containers/softhsm-image.js');
    const { bridgeBuildArgs } = await import('../../drivers/bridge-container.js');
    const env = { ...process.env, NLNETLABS_APT_URL: 'https://packages.invalid/debian', NLNETLABS_APT_KEY_URL: 'https://packages.invalid/aptkey.asc' };
    const base = await softhsmImage(env);
    const err = await buildImage('bridge', ['Dockerfile', 'config.toml'], bridgeBuildArgs(env, base), env).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /^containers\/bridge did not build: curl: \(6\) Could not resolve host: packages\.invalid; the step returned a non-zero code: \d+$/,
    );
    // --force-rm: the failed step's intermediate container is gone too.
    expect(allContainers()).toEqual(before);
  }, 900_000);

  test('Ctrl-C during a softhsm-container run: exit 130, and its container is removed', async () => {
    const run = backgroundRun(['--driver', 'softhsm-container', '--out', join(dir, 'sigint')]);
    const name = await runningContainer(run.stderr);
    expect(name).toMatch(/^hsm-harness-softhsm-container-/);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(harnessContainers()).toEqual([]);
  }, 300_000);

  test('a timeout (the container frozen with docker pause): the driver is killed, recorded as timed out, and its container removed', async () => {
    const out = join(dir, 'timeout');
    const run = backgroundRun(['--driver', 'softhsm-container', '--out', out], { HSM_CASE_TIMEOUT_S: '30' });
    const name = await runningContainer(run.stderr);
    // A paused container accepts nothing: the next PKCS#11 call (or the start) never returns.
    expect(docker(['pause', name]).status).toBe(0);
    expect(await run.exited).toBe(1);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
    expect(results.drivers.find((x) => x.id === 'softhsm-container')!.status).toBe('timeout');
    expect(harnessContainers()).toEqual([]);
  }, 300_000);

  test("kill -9 of the driver's process: recorded as a crash, and its container removed", async () => {
    const out = join(dir, 'kill');
    const run = backgroundRun(['--driver', 'softhsm-container', '--out', out]);
    await runningContainer(run.stderr);
    const workers = childrenOf(run.child.pid!);
    expect(workers.length).toBe(1);
    process.kill(workers[0]!, 'SIGKILL');
    expect(await run.exited).toBe(1);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunResults;
    expect(results.drivers.find((x) => x.id === 'softhsm-container')!.status).toBe('crash');
    expect(harnessContainers()).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  }, 300_000);
});
