/**
 * End to end: the built CLI runs the matrix on real SoftHSM, in-process and through p11-kit, and writes
 * reports that parse.
 */
import { describe, expect, test, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { RunResults } from '../src/results.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '..', 'dist', 'src', 'cli.js');

describe('hsm-harness run on SoftHSM', () => {
  let out: string;
  let results: RunResults;
  let stderr: string;
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'hh-run-'));
    const r = await exec('node', [CLI, 'run', '--driver', 'softhsm', '--driver', 'softhsm-p11kit', '--driver', 'pkcs11', '--out', out],
      { env: { ...process.env, HSM_PKCS11_MODULE: '', HSM_PKCS11_URI: '' } });
    stderr = r.stderr;
    results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
  });

  test('both SoftHSM drivers ran and every case passed or is recorded as unsupported', () => {
    for (const id of ['softhsm', 'softhsm-p11kit']) {
      const d = results.drivers.find((x) => x.id === id)!;
      expect(d.status).toBe('ran');
      const bad = d.cases.filter((c) => !['pass', 'unsupported', 'skip'].includes(c.status));
      expect(bad).toEqual([]);
      expect(d.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
    }
  });

  test('an unconfigured driver is unavailable with its reason, in JUnit too', async () => {
    const d = results.drivers.find((x) => x.id === 'pkcs11')!;
    expect(d.available).toBe(false);
    expect(d.availabilityReason).toMatch(/HSM_PKCS11_MODULE/);
    const xml = await readFile(join(out, 'junit.xml'), 'utf8');
    expect(XMLValidator.validate(xml)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(xml);
    const suites = [doc.testsuites.testsuite].flat();
    const pk = suites.find((s: { '@_name': string }) => s['@_name'] === 'pkcs11');
    const tc = [pk.testcase].flat()[0];
    expect(tc).toHaveProperty('skipped');
    const props = [tc.properties.property].flat();
    expect(props.find((p: { '@_name': string }) => p['@_name'] === 'skip-reason')['@_value']).toMatch(/HSM_PKCS11_MODULE/);
  });

  test('progress went to stderr as plain lines (not a TTY)', () => {
    expect(stderr).toMatch(/softhsm\s+starting/);
    expect(stderr).not.toMatch(/\x1b\[/);
  });
});
