/**
 * The discovery, keygen, sessions and suitability suites end to end: the built CLI runs them on real
 * SoftHSM (in-process, through p11-kit, and as a "physical" token through the generic pkcs11 driver), and
 * the mechanism table is checked against OpenSC's pkcs11-tool on the same token as an independent oracle.
 * Expected codes and findings come from the PKCS#11 specification and docs/pkcs11-notes.md, not from the suites.
 */
import { describe, expect, test, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DriverReport, RunResults } from '../../src/results.js';
import { SoftHsmStore, SOFTHSM_MODULE } from '../../src/softhsm.js';
import { evaluate, loadProfiles, verdictFor } from '../../suites/suitability.js';
import { WRONG_PIN_SKIP } from '../../suites/pkcs11/sessions.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'src', 'cli.js');
const SUITES = ['discovery', 'keygen', 'sessions', 'suitability'];

let results: RunResults;
let store: SoftHsmStore;
let toolOutput: string;
let out: string;
const driver = (id: string): DriverReport => results.drivers.find((d) => d.id === id)!;

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'hh-pkcs11-'));
  // A token of our own for the generic driver (treated as a physical device) and for pkcs11-tool.
  store = await SoftHsmStore.create();
  const token = await store.addToken('hh-conformance');
  const env = {
    ...process.env,
    ...store.env,
    HSM_PKCS11_MODULE: SOFTHSM_MODULE,
    HSM_PKCS11_TOKEN: token.label,
    HSM_PKCS11_PIN: token.pin,
    HSM_PKCS11_URI: '',
    HSM_ALLOW_WRONG_PIN: '',
  };
  const run = exec(
    'node',
    [CLI, 'run', '--driver', 'softhsm', '--driver', 'softhsm-p11kit', '--driver', 'pkcs11', ...SUITES.flatMap((s) => ['--suite', s]), '--out', out],
    { env },
  );
  const tool = exec('pkcs11-tool', ['--module', SOFTHSM_MODULE, '--token-label', token.label, '--list-mechanisms'], { env });
  toolOutput = (await tool).stdout;
  await run.catch((err: { stdout?: string; stderr?: string }) => {
    throw new Error(`hsm-harness run failed: ${err.stderr ?? err}`);
  });
  results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
  // A hang guard, not a speed check: three drivers exercise every function of every DNSSEC mechanism on a shared machine.
}, 600_000);

afterAll(async () => {
  await store?.remove();
  if (out) await rm(out, { recursive: true, force: true });
});

describe('conformance suites on SoftHSM', () => {
  test('every case passes, except what the token cannot do, each with its reason', () => {
    for (const id of ['softhsm', 'softhsm-p11kit', 'pkcs11']) {
      const d = driver(id);
      expect(d.status).toBe('ran');
      for (const s of SUITES.filter((x) => x !== 'suitability')) expect(d.cases.some((c) => c.suite === s)).toBe(true);
      // Verdicts are not cases.
      expect(d.cases.some((c) => c.suite === 'suitability')).toBe(false);
      const notPassed = d.cases.filter((c) => c.status !== 'pass');
      for (const c of notPassed) expect(c.reason, `${id} ${c.suite}/${c.case}`).toBeTruthy();
      expect(notPassed.filter((c) => !['unsupported', 'skip'].includes(c.status))).toEqual([]);
      expect(d.cases.find((c) => c.suite === 'cleanup')?.status).toBe('pass');
    }
    // In-process SoftHSM 2.6.1 does everything these suites ask for, except two hashing ECDSA mechanisms it does not list.
    const notListed = (d: DriverReport) =>
      d.cases
        .filter((c) => c.status !== 'pass')
        .map((c) => `${c.suite}/${c.case}`)
        .sort();
    expect(notListed(driver('softhsm'))).toEqual(['discovery/exercise/CKM_ECDSA_SHA256', 'discovery/exercise/CKM_ECDSA_SHA384']);
    // Through p11-kit, EdDSA and AES key wrap are not forwarded either; the suites say so without any expectations entry,
    // naming p11-kit's RPC for what SoftHSM offers behind it (a transport finding).
    const hidden = driver('softhsm-p11kit').transport!.hiddenMechanisms;
    expect(hidden).toEqual(expect.arrayContaining(['CKM_AES_KEY_WRAP', 'CKM_AES_KEY_WRAP_PAD', 'CKM_EC_EDWARDS_KEY_PAIR_GEN', 'CKM_EDDSA']));
    const remote = driver('softhsm-p11kit').cases.filter((c) => c.status !== 'pass');
    expect(notListed(driver('softhsm-p11kit'))).toEqual([
      'discovery/exercise/CKM_AES_KEY_WRAP',
      'discovery/exercise/CKM_AES_KEY_WRAP_PAD',
      'discovery/exercise/CKM_ECDSA_SHA256',
      'discovery/exercise/CKM_ECDSA_SHA384',
      'discovery/exercise/CKM_EC_EDWARDS_KEY_PAIR_GEN',
      'discovery/exercise/CKM_EDDSA',
      'keygen/generate/ed25519',
      'keygen/policy/ed25519',
    ]);
    for (const c of remote.filter((x) => x.status === 'unsupported')) {
      const byTransport = !/ECDSA_SHA/.test(c.case); // SoftHSM itself lacks CKM_ECDSA_SHA256/384
      expect(c.reason).toMatch(
        byTransport ? /^CKM_\w+ is hidden by p11-kit \d+\.\d+ RPC \(the token behind it offers it/ : /not offered \(not in C_GetMechanismList\)/,
      );
      expect(c.expected).toBeUndefined();
    }
    expect(driver('softhsm-p11kit').capabilities['keygen:ed25519']).toBe(false);
    // The generic driver treats the token as physical: what it does not list is not tried.
    for (const c of driver('pkcs11').cases.filter((x) => x.case.startsWith('exercise/') && x.status === 'unsupported')) {
      expect(c.details).toMatchObject({ offered: false });
      expect(c.details?.works).toBeUndefined();
    }
  });

  test('the mechanism table lists the DNSSEC mechanisms, exercised', () => {
    const d = driver('softhsm');
    const byName = new Map(d.mechanisms.map((m) => [m.name, m]));
    for (const name of ['CKM_RSA_PKCS', 'CKM_SHA256_RSA_PKCS', 'CKM_ECDSA', 'CKM_EDDSA']) {
      expect(byName.get(name)?.exercisedFlags, name).toEqual({ SIGN: 'works', VERIFY: 'works' });
    }
    expect(byName.get('CKM_RSA_PKCS_KEY_PAIR_GEN')?.exercisedFlags).toEqual({ GENERATE_KEY_PAIR: 'works' });
    expect(byName.get('CKM_SHA256')?.exercisedFlags).toEqual({ DIGEST: 'works' });
    expect(byName.get('CKM_AES_KEY_WRAP_PAD')?.exercisedFlags).toEqual({ WRAP: 'works', UNWRAP: 'works' });
    expect(byName.get('CKM_RSA_PKCS')!.flags).toEqual(expect.arrayContaining(['SIGN', 'VERIFY']));
    expect(d.info.tokenLabel).toBe('hsm-harness');
    expect(d.info.tokenFlags).toContain('TOKEN_INITIALIZED');
    expect(d.info.libraryManufacturer).toBe('SoftHSM');
    // Through p11-kit the library is p11-kit's proxy, but the token is the same SoftHSM.
    expect(driver('softhsm-p11kit').info.libraryDescription).toMatch(/p11-kit|PKCS#11 Kit/i);
    expect(driver('softhsm-p11kit').info.tokenModel).toBe('SoftHSM v2');
  });

  test("the mechanism table matches OpenSC pkcs11-tool's --list-mechanisms on the same token", () => {
    const rows = driver('pkcs11').mechanisms;
    // pkcs11-tool lines look like "  RSA-PKCS, keySize={512,16384}, encrypt, decrypt, sign, ...".
    const toolRows = toolOutput
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => {
        const parts = l.trim().split(', ');
        const name = parts[0]!;
        const size = /^keySize=\{(\d+),(\d+)\}$/.exec(parts[1] ?? '');
        return { name, min: size ? Number(size[1]) : 0, max: size ? Number(size[2]) : 0, flags: parts.slice(size ? 2 : 1) };
      });
    expect(toolRows.length).toBeGreaterThan(20);
    expect(rows.length).toBe(toolRows.length);
    // OpenSC prints CKM_X_Y as X-Y, and mechtype-0x… for types it has no name for.
    const TOOL_FLAG: Record<string, string> = {
      encrypt: 'ENCRYPT',
      decrypt: 'DECRYPT',
      sign: 'SIGN',
      verify: 'VERIFY',
      wrap: 'WRAP',
      unwrap: 'UNWRAP',
      derive: 'DERIVE',
      digest: 'DIGEST',
      generate: 'GENERATE',
      generate_key_pair: 'GENERATE_KEY_PAIR',
      hw: 'HW',
      sign_recover: 'SIGN_RECOVER',
      verify_recover: 'VERIFY_RECOVER',
      'EC F_P': 'EC_F_P',
      'EC F_2M': 'EC_F_2M',
      'EC parameters': 'EC_ECPARAMETERS',
      'EC OID': 'EC_NAMEDCURVE',
      'EC uncompressed': 'EC_UNCOMPRESS',
      'EC compressed': 'EC_COMPRESS',
    };
    for (const t of toolRows) {
      const hex = /^mechtype-0x([0-9A-Fa-f]+)$/.exec(t.name);
      const row = hex ? rows.find((r) => r.code === parseInt(hex[1]!, 16)) : rows.find((r) => r.name.replace(/^CKM_/, '').replaceAll('_', '-') === t.name);
      expect(row, t.name).toBeDefined();
      expect([row!.minKeySize, row!.maxKeySize], t.name).toEqual([t.min, t.max]);
      expect([...row!.flags].sort(), t.name).toEqual(t.flags.map((f) => TOOL_FLAG[f] ?? f).sort());
    }
  });

  test('golden codes are the ones PKCS#11 prescribes for each situation', () => {
    // PKCS#11 v2.40 §5: the code that names each situation.
    const want = {
      'C_GenerateKeyPair: private key, not logged in': 'CKR_USER_NOT_LOGGED_IN',
      'C_GenerateKeyPair: token objects in a read-only session': 'CKR_SESSION_READ_ONLY',
      'C_SignInit: private key with CKA_SIGN=false': 'CKR_KEY_FUNCTION_NOT_PERMITTED',
      'C_Sign: 10-byte output buffer': 'CKR_BUFFER_TOO_SMALL',
      'C_GetAttributeValue: CKA_PRIVATE_EXPONENT of a sensitive RSA private key': 'CKR_ATTRIBUTE_SENSITIVE',
      'C_GetAttributeValue: CKA_VALUE of a sensitive EC private key': 'CKR_ATTRIBUTE_SENSITIVE',
    };
    for (const id of ['softhsm', 'softhsm-p11kit', 'pkcs11']) expect(driver(id).goldenCodes).toMatchObject(want);
    expect(driver('softhsm').goldenCodes['C_Login: wrong user PIN']).toBe('CKR_PIN_INCORRECT');
    const c = driver('softhsm').cases.find((x) => x.case === 'read-only-session')!;
    expect(c.ckr).toEqual({ code: 0xb5, name: 'CKR_SESSION_READ_ONLY' });
  });

  test('a token treated as physical gets no wrong-PIN attempt, and the logout checks run on it safely', () => {
    const d = driver('pkcs11');
    const wrong = d.cases.find((c) => c.case === 'wrong-pin')!;
    expect(wrong.status).toBe('skip');
    expect(wrong.reason).toBe(WRONG_PIN_SKIP);
    expect(d.goldenCodes['C_Login: wrong user PIN']).toBeUndefined();
    expect(d.cases.find((c) => c.case === 'not-logged-in')?.status).toBe('pass');
  });

  test('key policy, encodings and known SoftHSM deviations are recorded', () => {
    const d = driver('softhsm');
    for (const cap of [
      'keygen:rsa-2048',
      'keygen:rsa-4096',
      'keygen:ec-p256',
      'keygen:ec-p521',
      'keygen:ed25519',
      'ec-point:der',
      'id-binary-16',
      'id-binary-20',
      'set-label',
      'create-object',
      'random',
    ])
      expect(d.capabilities[cap], cap).toBe(true);
    // PKCS#11 2.40 mechanisms §2.3; docs/pkcs11-notes.md §6: P-256 CKA_EC_POINT is 04 41 04‖X‖Y (67 bytes); Ed25519 is DER-wrapped too (34 bytes).
    expect(d.cases.find((c) => c.case === 'generate/ec-p256')?.details).toMatchObject({ ecPointEncoding: 'der-octet-string', ecPointBytes: 67 });
    expect(d.cases.find((c) => c.case === 'generate/ed25519')?.details).toMatchObject({ ecPointEncoding: 'der-octet-string', ecPointBytes: 34 });
    // SoftHSMv2#559: EdDSA sizes 256/456.
    expect(d.findings.some((f) => f.kind === 'deviation' && /CKM_EDDSA.*256\.\.456/.test(f.text))).toBe(true);
    expect(d.findings.filter((f) => f.kind === 'lie')).toEqual([]);
  });

  test('suitability verdicts exist for every signer, "not tested" without the signing suite', () => {
    for (const id of ['softhsm', 'softhsm-p11kit']) {
      const v = driver(id).suitability;
      expect(v.map((x) => x.signer)).toEqual(loadProfiles().map((p) => p.signer));
      // Signing was not run here, so no signer can be called suitable, and each says why.
      for (const x of v) {
        expect(x.suitable).toBe(false);
        expect(x.reasons.some((r) => r.startsWith('not tested: '))).toBe(true);
      }
    }
  });
});

describe('signer profiles', () => {
  const profile = (id: string) => loadProfiles().find((p) => p.id === id)!;
  // Every capability any profile names, all true: a token that can do everything.
  const everything = Object.fromEntries(
    loadProfiles()
      .flatMap((p) => p.requirements.flatMap((r) => [...(r.all ?? []), ...(r.any ?? []).flat()]))
      .map((c) => [c, true]),
  );

  test('every requirement names its source', () => {
    for (const p of loadProfiles()) for (const r of p.requirements) expect(r.source, `${p.id}: ${r.need}`).toMatch(/\S{6,}/);
  });

  test('a token that can do everything suits every signer', () => {
    for (const p of loadProfiles()) expect(verdictFor(p, everything).verdict.suitable, p.id).toBe(true);
  });

  test('Knot generates on the token, so it does without C_CreateObject but not without lookup by CKA_ID; Cascade only loses relabelling without C_SetAttributeValue', () => {
    // Knot 3.2 signs on an emulated SmartCard-HSM that refuses C_CreateObject, with keys it generated there (issue 20).
    expect(verdictFor(profile('knot'), { ...everything, 'create-object': false }).verdict.suitable).toBe(true);
    const knot = verdictFor(profile('knot'), { ...everything, 'find-by-id': false }).verdict;
    expect(knot.suitable).toBe(false);
    expect(knot.reasons.join(' ')).toMatch(/missing: .*find-by-id = false/);
    const cascade = verdictFor(profile('cascade'), { ...everything, 'set-label': false }).verdict;
    expect(cascade.suitable).toBe(true);
    expect(cascade.reasons.join(' ')).toMatch(/caveat: .*CKA_LABEL/);
  });

  test('PowerDNS needs C_Verify on the mechanism it signs with: false is "missing", never tried is "not tested"', () => {
    const rsa = 'verify:CKM_SHA256_RSA_PKCS/rsa-2048';
    const ec = 'verify:CKM_ECDSA/ec-p256';
    const { [rsa]: _r, [ec]: _e, ...untried } = everything;
    const no = verdictFor(profile('powerdns'), { ...everything, [rsa]: false, [ec]: false }).verdict;
    const unknown = verdictFor(profile('powerdns'), untried).verdict;
    expect(no.suitable).toBe(false);
    expect(unknown.suitable).toBe(false);
    expect(no.reasons.join(' ')).toMatch(/missing: .*C_Verify/);
    expect(unknown.reasons.join(' ')).toMatch(/not tested: .*C_Verify/);
    // One mechanism that verifies is enough, and a raw CKM_RSA_PKCS that PowerDNS never calls does not count.
    expect(verdictFor(profile('powerdns'), { ...everything, [rsa]: false }).verdict.suitable).toBe(true);
    expect(verdictFor(profile('powerdns'), { ...everything, 'verify:CKM_RSA_PKCS/rsa-2048': false, 'verify:CKM_RSA_PKCS': false }).verdict.suitable).toBe(true);
  });

  test('one working algorithm is enough where a signer offers alternatives', () => {
    const req = profile('cascade').requirements[0]!;
    expect(
      evaluate(req, { 'keygen:ec-p256': true, 'sign:CKM_ECDSA/ec-p256': true, 'ecdsa-raw-signature': true, 'dnssec:13': true, 'keygen:rsa-2048': false }).state,
    ).toBe('yes');
    expect(evaluate(req, { 'keygen:ec-p256': false, 'keygen:rsa-2048': false }).state).toBe('no');
    expect(evaluate(req, { 'keygen:ec-p256': false }).state).toBe('not tested');
  });
});
