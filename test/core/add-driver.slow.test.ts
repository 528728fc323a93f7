/**
 * Adding a driver is one driver file plus one expectations file in drivers/, nothing else (docs/drivers.md,
 * "Adding a driver for a new PKCS#11 module"). This test does exactly that in a copy of the built project (so the
 * throwaway driver never shows up in other tests running at the same time): it writes the two files, builds the
 * driver file with tsc, and runs the copy's CLI. The throwaway driver reaches a SoftHSM token made by
 * softhsm2-util, not by the harness. The copy is removed afterwards.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SOFTHSM_MODULE, cli, driverVariables, makeSoftHsmToken } from './helpers.js';

const exec = promisify(execFile);
const ID = 'acme-softhsm';

/** The driver file, written the way docs/drivers.md shows. */
const DRIVER_TS = `/** ACME HSM (here: a SoftHSM token standing in for it). Needs ACME_PIN, ACME_TOKEN_LABEL and ACME_SOFTHSM2_CONF. */
import { existsSync } from 'node:fs';
import { DEFAULT_TRAITS, type Driver } from '../src/driver.js';
import { UsageError } from '../src/errors.js';
import { registerSecret } from '../src/secrets.js';

const MODULE = '${SOFTHSM_MODULE}';

export const driver: Driver = {
  id: '${ID}',
  title: 'ACME HSM',
  order: 35,
  envVars: ['ACME_PIN', 'ACME_TOKEN_LABEL', 'ACME_SOFTHSM2_CONF'],
  kind: 'pkcs11',
  traits: { ...DEFAULT_TRAITS, physical: true, caseTimeoutMs: 120_000 },
  async probe(env) {
    if (!env.ACME_TOKEN_LABEL || !env.ACME_SOFTHSM2_CONF) return { ok: false, reason: 'ACME_TOKEN_LABEL and ACME_SOFTHSM2_CONF are not set' };
    if (!existsSync(MODULE)) throw new UsageError(\`${ID}: PKCS#11 module not found: \${MODULE}\`);
    return { ok: true, reason: \`\${MODULE}, token "\${env.ACME_TOKEN_LABEL}"\` };
  },
  async start(env) {
    const pin = env.ACME_PIN;
    if (!pin) throw new UsageError('${ID}: ACME_PIN is not set; export the user PIN in ACME_PIN');
    registerSecret(pin, 'ACME_PIN');
    return {
      connections: { pkcs11: { modulePath: MODULE, token: { label: env.ACME_TOKEN_LABEL }, pin, env: { SOFTHSM2_CONF: env.ACME_SOFTHSM2_CONF! },
        wrongPinAllowed: env.HSM_ALLOW_WRONG_PIN === '1' } },
      async stop() { /* nothing started */ },
    };
  },
};
`;

const EXPECT_JSON = {
  $comment: 'Throwaway expectations: one case SoftHSM does pass, so the run shows this file was found by the driver id.',
  cases: {
    'discovery/exercise/CKM_EDDSA': {
      status: 'unsupported',
      code: 'CKR_MECHANISM_INVALID',
      why: 'listed by the add-driver test',
      source: { kind: 'document', ref: 'https://docs.oasis-open.org/pkcs11/pkcs11-curr/v3.0/pkcs11-curr-v3.0.html' },
    },
  },
};

let copy: string;
let token: { conf: string; dir: string };

beforeAll(async () => {
  copy = await mkdtemp(join(tmpdir(), 'hh-add-driver-'));
  // The project as a user has it after npm run build: sources, drivers with their expectations, the build.
  for (const d of ['src', 'drivers', 'suites', 'bench', 'dist']) await cp(join(ROOT, d), join(copy, d), { recursive: true });
  for (const f of ['package.json', 'tsconfig.json']) await cp(join(ROOT, f), join(copy, f));
  await symlink(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
  await symlink(join(ROOT, 'fixtures'), join(copy, 'fixtures'));
  // The two files, then a build of the driver file.
  await writeFile(join(copy, 'drivers', `${ID}.ts`), DRIVER_TS);
  await writeFile(join(copy, 'drivers', `${ID}.expect.json`), `${JSON.stringify(EXPECT_JSON, null, 2)}\n`);
  await exec(
    'node',
    [
      join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--strict',
      '--skipLibCheck',
      '--types',
      'node',
      '--rootDir',
      copy,
      '--outDir',
      join(copy, 'dist'),
      join(copy, 'drivers', `${ID}.ts`),
    ],
    { cwd: copy },
  );
  token = await makeSoftHsmToken('acme-test', '492817');
}, 300_000);

afterAll(async () => {
  if (copy) await rm(copy, { recursive: true, force: true });
  if (token) await rm(token.dir, { recursive: true, force: true });
});

describe('a driver added as one driver file plus one expectations file', () => {
  test('is listed in its declared order and runs the PKCS#11 suites on its token', async () => {
    const env = { ACME_PIN: '492817', ACME_TOKEN_LABEL: 'acme-test', ACME_SOFTHSM2_CONF: token.conf };
    const listed = await cli(['drivers', '--json'], env, { cwd: copy, cli: join(copy, 'dist', 'src', 'cli.js') });
    expect(listed.code, listed.stderr).toBe(0);
    const ids = (JSON.parse(listed.stdout) as { id: string; available: boolean }[]).map((d) => d.id);
    expect(ids.indexOf(ID)).toBe(ids.indexOf('pkcs11') + 1); // order 35: after pkcs11 (30), before smartcard-hsm (40)

    const out = join(copy, 'reports');
    const r = await cli(['run', '--driver', ID, '--suite', 'discovery', '--suite', 'signing', '--out', out, '--quiet'], env, {
      cwd: copy,
      cli: join(copy, 'dist', 'src', 'cli.js'),
    });
    expect(r.code, r.stderr).not.toBe(2);
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as {
      drivers: { id: string; available: boolean; cases: { suite: string; case: string; status: string; unexpectedPass?: boolean; reason?: string }[] }[];
    };
    const d = results.drivers.find((x) => x.id === ID)!;
    expect(d.available).toBe(true);
    const status = (name: string) => d.cases.find((c) => `${c.suite}/${c.case}` === name)?.status;
    expect(status('discovery/info')).toBe('pass');
    expect(d.cases.filter((c) => c.suite === 'signing' && c.status === 'pass').length).toBeGreaterThan(3);
    const listedCase = d.cases.find((c) => `${c.suite}/${c.case}` === 'discovery/exercise/CKM_EDDSA')!;
    expect(listedCase.unexpectedPass).toBe(true);
    expect(listedCase.reason).toContain(`drivers/${ID}.expect.json`);
    expect(r.stdout + r.stderr).not.toContain('492817');
  });
});

describe('the test helper strips the variables the drivers declare', () => {
  test('declared names, declared families and HSM_* switches go; everything else stays', async () => {
    const strip = await driverVariables();
    for (const v of [
      'SCHSM_PIN',
      'SCHSM_DKEK_2_PASSWORD',
      'YUBIHSM_PKCS11_CONF',
      'KMIP_BRIDGE_ADDR',
      'HSM_PKCS11_URI',
      'HSM_CASE_TIMEOUT_S',
      'NETHSM_PKCS11_LIB',
    ]) {
      expect(strip(v), v).toBe(true);
    }
    for (const v of ['PATH', 'HOME', 'SOFTHSM2_CONF', 'KMIP_SOMETHING_ELSE', 'SCHSM_NOT_A_VARIABLE']) expect(strip(v), v).toBe(false);
  });
});
