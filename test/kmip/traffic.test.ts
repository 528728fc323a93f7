/**
 * Traffic rules (issue 11, item 7) and a hostile server response (item 6), against a tiny loopback fake
 * KMIP server (test/kmip/fake-kmip-server.ts) standing for what PyKMIP cannot be made to be: an external
 * server the harness did not start, a server that rejects the user's KMIP_PASSWORD, and a server that
 * answers with a 512 KiB Big Integer.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { cli } from '../core/helpers.js';
import { responseFor, startFakeKmipServer, type FakeKmipServer } from './fake-kmip-server.js';
import { KmipClient } from '../../src/kmip/client.js';
import { T } from '../../src/kmip/tags.js';
import type { RunResults } from '../../src/results.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-kmip-traffic-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function bridgeEnv(s: FakeKmipServer, password = 'user-given-Password-1'): NodeJS.ProcessEnv {
  return { KMIP_BRIDGE_ADDR: `${s.host}:${s.port}`, KMIP_USERNAME: 'token-label', KMIP_PASSWORD: password, KMIP_CA: s.ca };
}

describe('load goes only to servers the harness started', () => {
  test('bench-kmip sends nothing to an external KMIP_BRIDGE_ADDR and says why', async () => {
    const server = await startFakeKmipServer(join(dir, 'pki-bench'), (req) =>
      responseFor(req, { status: 'Operation Failed', reason: 'Operation Not Supported' }),
    );
    try {
      const out = join(dir, 'bench-external');
      const r = await cli(['run', '--driver', 'cascade-hsm-bridge', '--suite', 'bench-kmip', '--out', out], bridgeEnv(server));
      const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
      // Only the benchmark's cases: in CI the expectations audit adds its own case to every driver.
      const cases = results.drivers[0]!.cases.filter((c: { suite: string }) => c.suite === 'bench-kmip');
      expect(cases.map((c) => [c.suite, c.case, c.status])).toEqual([['bench-kmip', 'load', 'skip']]);
      expect(cases[0]!.reason).toMatch(/HSM_ALLOW_EXTERNAL_LOAD=1.*was not started by the harness/);
      expect(server.connections).toBe(0);
      expect(server.requests).toHaveLength(0);
      expect(r.code).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('a wrong KMIP_PASSWORD is bad input', () => {
  test('the first authentication failure ends the run: exit 2, one line, one attempt, no report', async () => {
    const server = await startFakeKmipServer(join(dir, 'pki-auth'), (req) =>
      responseFor(req, { status: 'Operation Failed', reason: 'Authentication Not Successful', message: 'login failed' }),
    );
    try {
      const out = join(dir, 'auth');
      const r = await cli(
        ['run', '--driver', 'cascade-hsm-bridge', '--suite', 'kmip', '--suite', 'kmip-robustness', '--suite', 'bench-kmip', '--out', out],
        bridgeEnv(server, 'wrong-Password-77'),
      );
      expect(r.code).toBe(2);
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('hsm-harness:'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /KMIP server at 127\.0\.0\.1:\d+ rejected the credentials \(Authentication Not Successful: login failed\); check KMIP_USERNAME and KMIP_PASSWORD/,
      );
      expect(r.stderr + r.stdout).not.toContain('wrong-Password-77');
      expect(server.requests).toHaveLength(1);
      expect(existsSync(join(out, 'results.json'))).toBe(false);
    } finally {
      await server.close();
    }
  });
});

describe('a hostile response', () => {
  test('a 512 KiB Big Integer from a server is decoded in linear time (kill bound: the test timeout)', async () => {
    const big = randomBytes(512 * 1024);
    big[0] = 0x7f;
    const server = await startFakeKmipServer(join(dir, 'pki-big'), (req) =>
      responseFor(req, {
        status: 'Success',
        payload: [{ tag: T('Modulus'), type: 'BigInteger', value: BigInt(`0x${big.toString('hex')}`) }],
      }),
    );
    const client = await KmipClient.connect(
      { host: server.host, port: server.port, ca: server.ca, profile: 'test', launchedByHarness: false },
      { timeoutMs: 60_000, maxResponseBytes: 2 << 20 },
    );
    try {
      const payload = await client.call('Query', []);
      const item = (payload!.value as { tag: number; value: bigint }[])[0]!;
      // Compared through node's own hex, independently of the codec's conversion.
      expect(item.value.toString(16)).toBe(big.toString('hex').replace(/^0+/, ''));
    } finally {
      client.close();
      await server.close();
    }
  }, 120_000);
});
