/**
 * Not advertised is not a failure (issue 21): the kmip conformance suite, run in-process against a loopback fake
 * KMIP server (test/kmip/fake-kmip-server.ts) that refuses every operation but Query and Discover Versions with
 * "Operation Not Supported". What its Query does not list is `unsupported`; what it lists and refuses is `fail`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { operationOf, responseFor, startFakeKmipServer } from './fake-kmip-server.js';
import { kmipConformance } from '../../suites/kmip/conformance.js';
import { makeContext } from '../../src/runner/context.js';
import { runCaseTable } from '../../src/runner/cases.js';
import { Expectations } from '../../src/expectations.js';
import { DEFAULT_TRAITS } from '../../src/driver.js';
import { emptyDriverReport, type DriverReport } from '../../src/results.js';
import { E } from '../../src/kmip/tags.js';
import { enumItem, protocolVersion } from '../../src/kmip/messages.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-kmip-advertised-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The conformance suite against a server that lists `listed` (besides Query and Discover Versions) and implements none of them. */
async function conformanceAgainst(name: string, listed: string[]): Promise<DriverReport> {
  const server = await startFakeKmipServer(join(dir, name), (req) => {
    const op = operationOf(req);
    if (op === E('Operation', 'Query'))
      return responseFor(req, { status: 'Success', payload: ['Query', 'Discover Versions', ...listed].map((o) => enumItem('Operation', o)) });
    if (op === E('Operation', 'Discover Versions')) return responseFor(req, { status: 'Success', payload: [protocolVersion({ major: 1, minor: 2 })] });
    return responseFor(req, { status: 'Operation Failed', reason: 'Operation Not Supported' });
  });
  try {
    const report = emptyDriverReport('fake', 'fake KMIP server', 'kmip');
    const ctx = makeContext({
      driverId: 'fake',
      traits: DEFAULT_TRAITS,
      env: process.env,
      report,
      expectations: new Expectations({ cases: {} }),
      connections: { kmip: { host: server.host, port: server.port, ca: server.ca, profile: 'fake', launchedByHarness: true } },
      events: { onCaseStart() {}, onCaseEnd() {}, log() {} },
    });
    ctx.suite = kmipConformance.name;
    await runCaseTable(ctx, kmipConformance, [kmipConformance]);
    return report;
  } finally {
    await server.close();
  }
}

const statusOf = (r: DriverReport, name: string) => r.cases.find((c) => c.case === name);

describe('kmip: an operation Query does not list', () => {
  test('refused without being listed: unsupported, with the target answer in the reason', async () => {
    const r = await conformanceAgainst('unlisted', []);
    for (const name of ['cascade/create-key-pair-rsa-2048', 'cascade/create-key-pair-ecdsa-p256', 'baseline/rng-retrieve']) {
      const c = statusOf(r, name)!;
      expect(c.status, name).toBe('unsupported');
      expect(c.reason).toMatch(/^(Create Key Pair|RNG Retrieve) is not advertised by Query \(.*Operation Not Supported\)/);
    }
    expect(statusOf(r, 'baseline/signature-verify')?.status).toBe('skip');
    expect(r.cases.filter((c) => c.status === 'fail')).toEqual([]);
  }, 60_000);

  test('listed and refused: still a fail', async () => {
    const r = await conformanceAgainst('listed', ['Create Key Pair', 'RNG Retrieve']);
    expect(statusOf(r, 'cascade/create-key-pair-rsa-2048')?.status).toBe('fail');
    expect(statusOf(r, 'baseline/rng-retrieve')?.status).toBe('fail');
    expect(statusOf(r, 'baseline/rng-retrieve')?.reason).toMatch(/Operation Not Supported/);
  }, 60_000);
});
