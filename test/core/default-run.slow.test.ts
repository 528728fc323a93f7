/**
 * What `npm start` does: `hsm-harness run` with no arguments, every driver, every default suite, real
 * SoftHSM (in-process and through p11-kit) and real PyKMIP. It must exit 0 and write every report; drivers
 * that cannot run here are unavailable with their reason, in JUnit too. The container engine is forced absent.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { RunResults } from '../../src/results.js';
import { cli, type CliResult } from './helpers.js';
import { NO_ENGINE } from '../containers/engine.js';

describe('hsm-harness run on the embedded defaults', () => {
  let out: string;
  let r: CliResult;
  let results: RunResults;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'hh-default-'));
    // Without an engine, explicitly: the same run with one is .ci/run's `npm start` and test/containers/engine.slow.test.ts.
    // A hang guard, not a speed check: the whole default matrix, on a machine shared with the rest of the suite.
    r = await cli(['run', '--out', out], NO_ENGINE, { timeoutMs: 570_000 });
    results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
  }, 600_000);
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  test('exits 0 and writes every report', async () => {
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const files = await readdir(out);
    for (const f of ['results.json', 'junit.xml', 'capabilities.md', 'index.html', 'bench.json', 'bench-action.json', 'bench.md']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('SoftHSM, SoftHSM via p11-kit and PyKMIP ran; every case passed or is recorded as unsupported/skipped', () => {
    for (const id of ['softhsm', 'softhsm-p11kit', 'pykmip']) {
      const d = results.drivers.find((x) => x.id === id)!;
      expect(d.status, id).toBe('ran');
      // Real signers fail on a token in known ways (drivers/<id>.expect.json): expected failures, never unexpected ones.
      expect(
        d.cases.filter((c) => !['pass', 'unsupported', 'skip'].includes(c.status) && !(c.suite === 'signers' && c.expected)),
        id,
      ).toEqual([]);
      expect(d.cases.filter((c) => c.status === 'pass').length, id).toBeGreaterThan(10);
    }
    for (const id of ['softhsm', 'softhsm-p11kit']) {
      const d = results.drivers.find((x) => x.id === id)!;
      expect(d.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
      // The codes this run observed equal the ones recorded in drivers/<id>.expect.json.
      expect(d.cases.find((c) => c.suite === 'golden' && c.case === 'return-codes')?.status, id).toBe('pass');
    }
  });

  test('every other driver is unavailable with its reason, and the reason is in the JUnit XML', async () => {
    const xml = await readFile(join(out, 'junit.xml'), 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    const suites = [new XMLParser({ ignoreAttributes: false }).parse(xml).testsuites.testsuite].flat();
    const unavailable = results.drivers.filter((d) => !d.available);
    expect(unavailable.map((d) => d.id)).toEqual(
      expect.arrayContaining(['pkcs11', 'smartcard-hsm', 'yubihsm', 'cascade-hsm-bridge', 'softhsm-container', 'bridge-container', 'nethsm']),
    );
    for (const d of unavailable) {
      expect(d.availabilityReason.length, d.id).toBeGreaterThan(10);
      const s = suites.find((x: Record<string, string>) => x['@_name'] === d.id);
      const tc = [s.testcase].flat()[0];
      const props = [tc.properties.property].flat();
      expect(props.find((p: Record<string, string>) => p['@_name'] === 'skip-reason')['@_value']).toContain(d.availabilityReason);
      // The message attribute is what CI viewers (Jenkins, GitLab, the GitHub JUnit actions) display.
      expect(tc.skipped['@_message']).toContain(d.availabilityReason);
    }
    const md = await readFile(join(out, 'capabilities.md'), 'utf8');
    expect(md).toMatch(/\| softhsm \| PKCS#11 \| ran \|/);
    expect(md).toMatch(/\| nethsm \|.*no container runtime/);
    // The KMIP target gets its own section: TLS, per-operation support, and the hostile inputs it survived.
    expect(md).toMatch(/### KMIP\n\nServer: PyKMIP[^\n]*\nTLS: TLSv1\.2 [^\n]*not offered \(Cascade requires TLS 1\.3\)/);
    expect(md).toMatch(/\| Sign \| yes \| works \|/);
    expect(md).toMatch(/\| Hostile input \| Target's answer \|/);
  });

  test('progress went to stderr as plain lines (not a TTY)', () => {
    expect(r.stderr).toMatch(/softhsm\s+starting/);
    expect(r.stderr).not.toMatch(/\x1b\[/);
  });
});
