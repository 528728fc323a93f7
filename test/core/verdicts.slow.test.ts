/**
 * Signer verdicts from per-mechanism capabilities, end to end: a full SoftHSM run suits every signer; taking
 * away one capability flips exactly the signers whose own calls need it (from their sources, written out
 * here); and capabilities.md, index.html and junit.xml show the same verdicts and case statuses as
 * results.json. A second driver, the lying shim in front of SoftHSM without object management, gives the
 * reports verdicts that differ per signer.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { basisLabel, statusLabel, verdictLabel, type DriverReport, type RunResults } from '../../src/results.js';
import type { SoftHsmStore } from '../../src/softhsm.js';
import { loadProfiles, verdictFor } from '../../suites/suitability.js';
import { CAPABILITIES } from '../../src/capabilities.js';
import { CLI, shimOverSoftHsm } from './helpers.js';

const exec = promisify(execFile);
const SUITES = ['discovery', 'keygen', 'signing', 'dnssec', 'sessions', 'suitability'];

let out: string;
let store: SoftHsmStore;
let results: RunResults;
const driver = (id: string): DriverReport => results.drivers.find((d) => d.id === id)!;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'hh-verdicts-'));
  let env: NodeJS.ProcessEnv;
  ({ store, env } = await shimOverSoftHsm('pkcs11/lying-shim.c', out, 'hh-verdicts', { SHIM_REFUSE_OBJECTS: '1', CI: '' }));
  // Exit 1: the shim's lies fail discovery. The reports are written all the same.
  await exec('node', [CLI, 'run', '--driver', 'softhsm', '--driver', 'pkcs11', ...SUITES.flatMap((s) => ['--suite', s]), '--out', out], { env }).catch(
    (err: { code?: number; stderr?: string }) => {
      if (err.code !== 1) throw new Error(`run failed: ${err.stderr}`);
    },
  );
  results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
}, 600_000);

afterAll(async () => {
  await store?.remove();
  if (out) await rm(out, { recursive: true, force: true });
});

/** Which signers each capability is indispensable for, read from their sources (see signer-profiles.json). */
const NEEDED_BY: Record<string, string[]> = {
  random: ['opendnssec-2'],
  'find-by-label': ['powerdns'],
  'id-binary-16': ['opendnssec-2'],
  'id-binary-20': ['cascade', 'bind', 'knot'],
  'find-by-id': ['cascade', 'bind', 'knot', 'opendnssec-2'],
  // OpenDNSSEC signs RSA only; the others have an ECDSA alternative.
  'keygen:rsa-2048': ['opendnssec-2'],
  'sign:CKM_RSA_PKCS/rsa-2048': ['opendnssec-2'],
  'dnssec:8': ['opendnssec-2'],
};

describe('signer verdicts from per-mechanism capabilities', () => {
  test('a full SoftHSM run is suitable for every signer', () => {
    const v = driver('softhsm').suitability;
    expect(v.map((x) => x.signer)).toEqual(loadProfiles().map((p) => p.signer));
    for (const x of v) expect(verdictLabel(x), `${x.signer}: ${x.reasons.join('; ')}`).toBe('suitable');
  });

  test('every capability the suites recorded is a known name', () => {
    for (const d of results.drivers) for (const c of Object.keys(d.capabilities)) expect(CAPABILITIES.has(c as never), c).toBe(true);
  });

  test('taking away one capability flips exactly the signers that need it (false and never tried alike)', () => {
    const caps = driver('softhsm').capabilities;
    const suitable = (c: Record<string, boolean>) =>
      loadProfiles()
        .filter((p) => verdictFor(p, c).verdict.suitable)
        .map((p) => p.id);
    const all = suitable(caps);
    expect(all).toHaveLength(5);
    for (const name of Object.keys(caps).filter((k) => caps[k])) {
      const { [name]: _, ...untried } = caps;
      for (const without of [{ ...caps, [name]: false }, untried]) {
        const flipped = all.filter((id) => !suitable(without).includes(id));
        expect(flipped, name).toEqual(NEEDED_BY[name] ?? []);
      }
    }
    // The one wrong code of issue 10: raw CKM_RSA_PKCS verification, which PowerDNS never calls.
    expect(suitable({ ...caps, 'verify:CKM_RSA_PKCS/rsa-2048': false, 'verify:CKM_RSA_PKCS': false })).toEqual(all);
    // Without RSA-2048 and P-256 keys, only Knot (Ed25519) is left.
    expect(suitable({ ...caps, 'keygen:rsa-2048': false, 'keygen:ec-p256': false })).toEqual(['knot']);
  });

  test('a token that refuses C_Verify and C_CreateObject is not suitable for PowerDNS, and is for the others (Knot makes its keys on the token)', () => {
    const label = (id: string) => verdictLabel(driver('pkcs11').suitability.find((v) => v.signer === loadProfiles().find((p) => p.id === id)!.signer)!);
    expect(label('powerdns')).toBe('not suitable');
    for (const id of ['cascade', 'bind', 'knot', 'opendnssec-2']) expect(label(id), id).toBe('suitable');
  });
});

describe('capabilities.md, index.html and junit.xml agree with results.json', () => {
  test('the same signer verdicts and case statuses in all three', async () => {
    const md = await readFile(join(out, 'capabilities.md'), 'utf8');
    const html = await readFile(join(out, 'index.html'), 'utf8');
    const xml = new XMLParser({ ignoreAttributes: false }).parse(await readFile(join(out, 'junit.xml'), 'utf8'));
    const junitSuites = [xml.testsuites.testsuite].flat() as Record<string, unknown>[];
    const props = (node: unknown) =>
      Object.fromEntries(
        [(node as { properties?: { property?: unknown } }).properties?.property ?? []]
          .flat()
          .map((p) => [(p as Record<string, string>)['@_name'], (p as Record<string, string>)['@_value']]),
      );

    // The markdown overview table: | Driver | signer… |
    const mdTable = md.split('## DNSSEC signer suitability')[1]!.split('\n\n')[1]!.split('\n');
    const mdSigners = mdTable[0]!
      .split('|')
      .map((x) => x.trim())
      .filter(Boolean)
      .slice(1);
    // The HTML overview table, cell by cell.
    const htmlSection = /<section id="suitability">([\s\S]*?)<\/section>/.exec(html)![1]!;
    const htmlRows = [...htmlSection.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => [...m[1]!.matchAll(/<t[hd]>([\s\S]*?)<\/t[hd]>/g)].map((c) => c[1]!));
    const htmlSigners = htmlRows[0]!.slice(1);

    for (const id of ['softhsm', 'pkcs11']) {
      const d = driver(id);
      expect(d.suitability.length).toBe(5);
      const mdRow = mdTable
        .find((l) => l.startsWith(`| ${id} |`))!
        .split('|')
        .map((x) => x.trim())
        .filter(Boolean)
        .slice(1);
      const htmlRow = htmlRows.find((r) => r[0]!.includes(`>${id}<`))!.slice(1);
      const junitProps = props(junitSuites.find((s) => s['@_name'] === id));
      for (const v of d.suitability) {
        const want = verdictLabel(v);
        expect(mdRow[mdSigners.indexOf(v.signer)], `md ${id} ${v.signer}`).toBe(`${want}, ${basisLabel(v)}`);
        expect(/<span class="pill[^"]*">([^<]*)<\/span>/.exec(htmlRow[htmlSigners.indexOf(v.signer)]!)![1], `html ${id} ${v.signer}`).toBe(want);
        expect(junitProps[`suitability: ${v.signer}`], `junit ${id} ${v.signer}`).toBe(want);
      }
      // Case statuses: JUnit's status property and failure/skipped element, the markdown "not passed" table.
      const testcases = [junitSuites.find((s) => s['@_name'] === id)!.testcase].flat() as Record<string, unknown>[];
      expect(testcases.length).toBe(d.cases.length);
      for (const c of d.cases) {
        const tc = testcases.find((t) => t['@_classname'] === `${id}.${c.suite}` && t['@_name'] === c.case)!;
        expect(props(tc).status, `${c.suite}/${c.case}`).toBe(statusLabel(c));
        expect('failure' in tc, `${c.suite}/${c.case}`).toBe(c.status === 'fail' && !c.expected);
        if (c.status !== 'pass') expect(md, `${c.suite}/${c.case}`).toContain(`| ${c.suite}/${c.case} | ${statusLabel(c)} |`);
      }
    }
    expect(driver('pkcs11').cases.some((c) => c.status === 'fail')).toBe(true);
  });
});
