/**
 * The container-runtime probe. This machine has the docker CLI but no daemon, so the real "no runtime" path
 * runs as is. A daemon that accepts connections but never answers cannot be produced with a real runtime
 * here, so a fake socket stands in for it (the one failure testcontainers' own discovery would hang on).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeContainerRuntime, NO_RUNTIME } from '../../src/containers/runtime.js';

let dir: string;
let silent: Server;
let silentPath: string;
const held: Socket[] = [];
let closed = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hh-probe-'));
  silentPath = join(dir, 'docker.sock');
  // Accepts, reads, never writes: a hung daemon.
  silent = createServer((s) => {
    held.push(s);
    s.on('close', () => {
      closed++;
    });
    s.resume();
  });
  await new Promise<void>((r) => silent.listen(silentPath, r));
});
afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((r) => silent.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('container runtime probe', () => {
  test('no daemon: unavailable with "no container runtime" and testcontainers\' own reason', async () => {
    // A generous cap: this checks testcontainers' own reason, which a loaded machine must not turn into a timeout.
    const v = await probeContainerRuntime({ ...process.env, DOCKER_HOST: `unix://${join(dir, 'absent.sock')}` }, 20_000);
    expect(v.ok).toBe(false);
    expect(v.reason).toContain(NO_RUNTIME);
    expect(v.reason).toMatch(/Could not find a working container runtime strategy/);
  }, 60_000);

  // The 60 s test limit is the bound against hanging (the cap plus process start-up), not a speed claim.
  test('a socket that accepts but never answers: the verdict still comes back at the cap, and the prober is gone', async () => {
    // The cap leaves the child time to load testcontainers and connect even on a busy machine.
    const v = await probeContainerRuntime({ ...process.env, DOCKER_HOST: `unix://${silentPath}` }, 10_000);
    expect(v.ok).toBe(false);
    expect(v.reason).toContain(NO_RUNTIME);
    expect(v.reason).toMatch(/did not answer within 10\.0 s/);
    // The probe really reached the fake daemon (so this was the hang case, not a refused connection) ...
    expect(held.length).toBeGreaterThan(0);
    // ... and killing the child closed its connection: nothing is left holding the dead socket.
    for (let i = 0; i < 40 && closed < held.length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(held.length);
  }, 60_000);
});
