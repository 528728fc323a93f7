/**
 * docs/results.schema.json against what the harness really writes, and the identity it records.
 * Runs are made here with the built CLI: a generic-module run on a SoftHSM token made with softhsm2-util (whose
 * own --show-slots output is the independent source for manufacturer, model, serial and firmware), a run with
 * an unavailable driver, and (where gcc exists) a run whose module crashes. Ajv validates each file as written.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { ROOT, SOFTHSM_MODULE, cli, makeSoftHsmToken, buildFixtureModule } from '../core/helpers.js';

const exec = promisify(execFile);
const schema = JSON.parse(readFileSync(join(ROOT, 'docs', 'results.schema.json'), 'utf8'));
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormatsModule.default(ajv);
const validate = ajv.compile(schema);
const errorsOf = (v: unknown) => (validate(v) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message}`));

const PIN = 'schema-pin-4711';
const dirs: string[] = [];
let token: { conf: string; dir: string };
/** softhsm2-util's view of the token the generic driver tests. */
let slot: { manufacturer: string; model: string; serial: string; firmware: string };

// biome-ignore lint/suspicious/noExplicitAny: arbitrary JSON read back from the reports under test
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string; out: string; text: string; json: any }> {
  const out = await mkdtemp(join(tmpdir(), 'hh-schema-'));
  dirs.push(out);
  const r = await cli(['run', ...args, '--out', out, '--quiet'], env);
  const file = join(out, 'results.json');
  if (!existsSync(file)) throw new Error(`no results.json (exit ${r.code}): ${r.stderr.slice(-1500)}`);
  const text = await readFile(file, 'utf8');
  return { code: r.code, stderr: r.stderr, out, text, json: JSON.parse(text) };
}

const generic = (extra: Record<string, string> = {}) => ({
  HSM_PKCS11_MODULE: SOFTHSM_MODULE,
  HSM_PKCS11_TOKEN: 'schema-token',
  HSM_PKCS11_PIN: PIN,
  SOFTHSM2_CONF: token.conf,
  ...extra,
});

beforeAll(async () => {
  token = await makeSoftHsmToken('schema-token', PIN);
  const { stdout } = await exec('softhsm2-util', ['--show-slots'], { env: { ...process.env, SOFTHSM2_CONF: token.conf } });
  const block = stdout.split(/\n(?=Slot )/).find((b) => /Label:\s+schema-token\s*$/m.test(b))!;
  const tokenInfo = block.slice(block.indexOf('Token info:'));
  const field = (name: string) => tokenInfo.match(new RegExp(`${name}:\\s*(.*?)\\s*$`, 'm'))![1]!;
  slot = { manufacturer: field('Manufacturer ID'), model: field('Model'), serial: field('Serial number'), firmware: field('Firmware version') };
  expect(slot.serial).toMatch(/^[0-9a-f]{16}$/);
});

afterAll(async () => {
  for (const d of [...dirs, token?.dir]) if (d) await rm(d, { recursive: true, force: true });
});

describe('results.json written by hsm-harness run', () => {
  test('a generic-module run (plus an unavailable driver) validates, and records what was tested', async () => {
    const r = await run(['--driver', 'pkcs11', '--driver', 'yubihsm', '--suite', 'discovery', '--suite', 'sessions', '--suite', 'suitability'], generic());
    expect(errorsOf(r.json)).toEqual([]);
    expect(r.json.schemaVersion).toBe(2);
    const d = r.json.drivers.find((x: { id: string }) => x.id === 'pkcs11');
    const id = d.identity;
    expect(id.module.path).toBe(SOFTHSM_MODULE);
    expect(id.token.manufacturer).toBe(slot.manufacturer);
    expect(id.token.model).toBe(slot.model);
    expect(id.firmware).toBe(slot.firmware);
    expect(id.product).toBe(`${slot.manufacturer} ${slot.model}`);
    // The library version C_GetInfo gives is SoftHSM's own major.minor; the package is the one dpkg says owns the file.
    const owner = (await exec('dpkg', ['-S', (await exec('readlink', ['-f', SOFTHSM_MODULE])).stdout.trim()])).stdout.split(':')[0];
    const pkgVersion = (await exec('dpkg-query', ['-W', '-f=${Version}', owner!])).stdout;
    expect(id.module.package).toEqual({ name: owner, version: pkgVersion });
    expect(pkgVersion.startsWith(id.module.version)).toBe(true);
    // The unavailable driver validates too, and has no identity: nothing was reached.
    const yubi = r.json.drivers.find((x: { id: string }) => x.id === 'yubihsm');
    expect(yubi.available).toBe(false);
    expect(yubi.identity).toBeUndefined();
    // Harness and machine.
    const head = (await exec('git', ['-C', ROOT, 'rev-parse', 'HEAD'])).stdout.trim();
    expect(r.json.identity.harness.commit).toBe(head);
    expect(r.json.identity.harness.version).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  test('the serial is hashed everywhere unless HSM_PUBLISH_SERIALS=1; runner labels come from HSM_RUNNER_LABELS', async () => {
    const hashed = await run(['--driver', 'pkcs11', '--suite', 'discovery'], generic({ HSM_RUNNER_LABELS: 'lab-a, smartcard' }));
    expect(errorsOf(hashed.json)).toEqual([]);
    expect(hashed.text).not.toContain(slot.serial);
    const digest = createHash('sha256').update(`hsm-harness token serial\0${slot.manufacturer}\0${slot.model}\0${slot.serial}`).digest('hex');
    const expected = `sha256:${digest.slice(0, 16)}`;
    const d = hashed.json.drivers[0];
    expect(d.identity.token).toMatchObject({ serial: expected, serialHashed: true });
    expect(d.info.tokenSerial).toBe(expected);
    expect(hashed.json.identity.runner.labels).toEqual(['lab-a', 'smartcard']);
    for (const f of ['junit.xml', 'capabilities.md', 'index.html']) {
      const other = await readFile(join(hashed.out, f), 'utf8');
      expect(other, f).not.toContain(slot.serial);
    }

    const published = await run(['--driver', 'pkcs11', '--suite', 'discovery'], generic({ HSM_PUBLISH_SERIALS: '1' }));
    expect(errorsOf(published.json)).toEqual([]);
    expect(published.json.drivers[0].identity.token).toMatchObject({ serial: slot.serial, serialHashed: false });
  });

  test.skipIf(!existsSync('/usr/bin/gcc'))('a run whose module crashes validates (crash record, identity of what was reached)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hh-schema-fake-'));
    dirs.push(dir);
    const so = await buildFixtureModule('fake-modules/failing-module.c', dir);
    const r = await run(['--driver', 'pkcs11', '--suite', 'discovery'], {
      HSM_PKCS11_MODULE: so,
      HSM_PKCS11_TOKEN: 'fake-token',
      HSM_PKCS11_PIN: 'fake-pin-1234',
      FAKE_P11_MODE: 'segv-in-mechanisms',
    });
    expect(r.code).toBe(1);
    expect(r.json.drivers[0].status).toBe('crash');
    expect(errorsOf(r.json)).toEqual([]);
  });
});

describe('the schema is strict where it matters', () => {
  // biome-ignore lint/suspicious/noExplicitAny: arbitrary JSON read back from the reports under test
  let good: any;
  beforeAll(async () => {
    good = (await run(['--driver', 'softhsm', '--suite', 'discovery'])).json;
    expect(errorsOf(good)).toEqual([]);
  });
  // biome-ignore lint/suspicious/noExplicitAny: arbitrary JSON read back from the reports under test
  const mutated = (f: (r: any) => void) => {
    const r = structuredClone(good);
    f(r);
    return errorsOf(r);
  };

  test('identity and core fields: missing or misspelt is an error', () => {
    expect(
      mutated((r) => {
        delete r.identity;
      }),
    ).not.toEqual([]);
    expect(
      mutated((r) => {
        r.identity.harness.comit = 'x';
      }),
    ).not.toEqual([]);
    expect(
      mutated((r) => {
        delete r.drivers[0].identity;
      }),
    ).not.toEqual([]); // a driver that ran says what it was
    expect(
      mutated((r) => {
        r.drivers[0].identity.token.serial = 'plain-serial';
      }),
    ).not.toEqual([]); // marked hashed, but is not
    expect(
      mutated((r) => {
        r.drivers[0].cases[0].status = 'passed';
      }),
    ).not.toEqual([]);
    expect(
      mutated((r) => {
        r.schemaVersion = 1;
      }),
    ).not.toEqual([]);
    expect(
      mutated((r) => {
        r.finishedAt = 'yesterday';
      }),
    ).not.toEqual([]);
  });

  test('suites may add data: new sections, details, driver fields and summary counts stay valid', () => {
    expect(
      mutated((r) => {
        r.drivers[0].sections.future = { anything: [1, 'two'] };
        r.drivers[0].cases[0].details = { newObservation: true };
        r.drivers[0].leftovers = { objects: 0 };
        r.drivers[0].expectations = { file: 'drivers/softhsm.expect.json' };
        r.summary.xfail = 0;
      }),
    ).toEqual([]);
  });

  test('the CLI rejects an old-version file with a clear error naming the version (exit 2)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hh-schema-old-'));
    dirs.push(dir);
    const old = { ...structuredClone(good), schemaVersion: 1 };
    delete old.identity;
    await writeFile(join(dir, 'results.json'), JSON.stringify(old));
    const r = await cli(['diff', dir, dir]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/results schema version 1; hsm-harness .* reads version 2 only/);
    const m = await cli(['merge', dir, '--out', join(dir, 'site')]);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/version 1/);
    expect(existsSync(join(dir, 'site'))).toBe(false);
  });
});
