/**
 * Accepted wrong credentials are an authentication bypass (issue 21): the kmip-robustness suite, run in-process
 * against a loopback fake KMIP server (test/kmip/fake-kmip-server.ts, a failure injector) that keeps one
 * logged-in session for everyone after a good login, as Cascade's bridge 0.1.0-alpha was seen to do. The same
 * suite against a server that checks every request's credential passes them.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialOf, operationOf, responseFor, startFakeKmipServer } from './fake-kmip-server.js';
import { kmipRobustness } from '../../suites/kmip/robustness.js';
import { runCaseTable } from '../../src/runner/cases.js';
import { makeContext } from '../../src/runner/context.js';
import { Expectations } from '../../src/expectations.js';
import { DEFAULT_TRAITS } from '../../src/driver.js';
import { emptyDriverReport, type DriverReport } from '../../src/results.js';
import { E } from '../../src/kmip/tags.js';
import { enumItem, protocolVersion } from '../../src/kmip/messages.js';
import { runResultsOf } from '../core/helpers.js';
import { renderCapabilities } from '../../src/reports/capabilities.js';
import { renderHtml } from '../../src/reports/html.js';
import { renderJUnit } from '../../src/reports/junit.js';

const USER = 'token-label';
const PASSWORD = 'right-Password-31';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-kmip-auth-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Run kmip-robustness against a fake server; `sticky`: after one good login, every credential (or none) is accepted. */
async function robustnessAgainst(name: string, sticky: boolean): Promise<DriverReport> {
  let loggedIn = false;
  const server = await startFakeKmipServer(join(dir, name), (req) => {
    const cred = credentialOf(req);
    const good = cred?.username === USER && cred.password === PASSWORD;
    if (good) loggedIn = true;
    if (!good && !(sticky && loggedIn)) return responseFor(req, { status: 'Operation Failed', reason: 'Authentication Not Successful' });
    const op = operationOf(req);
    if (op === E('Operation', 'Query'))
      return responseFor(req, { status: 'Success', payload: [enumItem('Operation', 'Query'), enumItem('Operation', 'Discover Versions')] });
    if (op === E('Operation', 'Discover Versions')) return responseFor(req, { status: 'Success', payload: [protocolVersion({ major: 1, minor: 2 })] });
    return responseFor(req, { status: 'Operation Failed', reason: 'Operation Not Supported' });
  });
  try {
    const report = emptyDriverReport('fake-bridge', 'fake KMIP server', 'kmip');
    const ctx = makeContext({
      driverId: 'fake-bridge',
      traits: DEFAULT_TRAITS,
      env: process.env,
      report,
      expectations: new Expectations({ cases: {} }),
      connections: {
        kmip: { host: server.host, port: server.port, ca: server.ca, username: USER, password: PASSWORD, profile: 'fake', launchedByHarness: true },
      },
      events: { onCaseStart() {}, onCaseEnd() {}, log() {} },
    });
    ctx.suite = kmipRobustness.name;
    await runCaseTable(ctx, kmipRobustness, [kmipRobustness]);
    return report;
  } finally {
    await server.close();
  }
}

const CREDENTIAL_CASES = ['missing-credentials', 'wrong-password', 'wrong-username'];

describe('kmip-robustness: credentials', () => {
  test('a server that accepts any credential after one good login fails all three, with security findings', async () => {
    const report = await robustnessAgainst('sticky', true);
    for (const name of CREDENTIAL_CASES) {
      const c = report.cases.find((x) => x.case === name)!;
      expect(c.status, name).toBe('fail');
      expect(c.reason).toMatch(/^SECURITY: authentication bypass: .* on a new connection after a good login \(answered .*Success\)/);
    }
    const security = report.findings.filter((f) => f.kind === 'security');
    expect(security.map((f) => f.text.match(/with (.*) on a new/)?.[1])).toEqual(['no credential', 'a wrong password', 'a wrong username']);
    // Not also a deviation: one root cause, one kind of finding.
    expect(report.findings.some((f) => f.kind === 'deviation' && /wrong-password|wrong-username|missing-credentials/.test(f.text))).toBe(false);
    expect(JSON.stringify(report)).not.toContain(PASSWORD);

    // At the top of every report: before the capability matrix in capabilities.md and index.html, on the JUnit suite.
    report.available = true;
    report.status = 'ran';
    const results = runResultsOf([report]);
    const md = renderCapabilities(results);
    expect(md.indexOf('## Security findings')).toBeGreaterThan(0);
    expect(md.indexOf('## Security findings')).toBeLessThan(md.indexOf('| Driver |'));
    expect(md).toContain('- **fake-bridge** (kmip-robustness): authentication bypass: the target accepted a request with a wrong password');
    const html = renderHtml(results);
    expect(html.indexOf('id="security"')).toBeGreaterThan(0);
    expect(html.indexOf('id="security"')).toBeLessThan(html.indexOf('id="matrix"'));
    const junit = renderJUnit(results);
    expect(junit).toMatch(/<property name="security: kmip-robustness" value="authentication bypass: [^"]*a wrong username/);
    expect(junit).toMatch(/<failure message="SECURITY: authentication bypass/);
  }, 120_000);

  test('a server that checks every request passes them, and nothing is a security finding', async () => {
    const report = await robustnessAgainst('strict', false);
    for (const name of CREDENTIAL_CASES) {
      const c = report.cases.find((x) => x.case === name)!;
      expect(c.status, `${name}: ${c.reason}`).toBe('pass');
      expect(c.details?.response).toMatch(/Authentication Not Successful/);
    }
    expect(report.findings.filter((f) => f.kind === 'security')).toEqual([]);
  }, 120_000);
});
