/**
 * The NetHSM provisioning client and the REST suite, run against a local HTTPS replay of the exchange in
 * fixtures/nethsm (see replay-server.ts), not against a NetHSM.
 *
 * What this proves and what it does not: the expected requests in the replay were written from the same
 * reading of the NetHSM API as the suite itself. So these tests prove request order and parsing (the suite
 * sends what that reading says, in that order, within the OpenAPI schemas, and decodes the answers; the
 * replayed signatures were made by the OpenSSL CLI and must verify). They do not prove that a NetHSM behaves
 * like this: a misreading shared by the suite and the replay would pass here. Only the real container does
 * that (drivers/nethsm.ts, on a machine that can pull the image pinned in containers/nethsm/Dockerfile).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { NethsmClient, NethsmError } from '../../src/nethsm/client.js';
import { clientFor, markLaunchedContainer, newPassphrases, provisionNethsm } from '../../src/nethsm/provision.js';
import type { NethsmPassphrases } from '../../src/nethsm/provision.js';
import { nethsm as nethsmSuite, NETHSM_MESSAGE } from '../../suites/nethsm.js';
import { p11nethsmConf, P11_SLOT_LABEL } from '../../drivers/nethsm.js';
import { makeContext } from '../../src/runner/context.js';
import { runCaseTable } from '../../src/runner/cases.js';
import { Expectations } from '../../src/expectations.js';
import { emptyDriverReport } from '../../src/results.js';
import type { CaseRecord, DriverReport } from '../../src/results.js';
import { DEFAULT_TRAITS } from '../../src/driver.js';
import { redact } from '../../src/secrets.js';
import { validate } from './openapi.js';
import { loadExchange, startReplayServer } from './replay-server.js';
import type { Exchange, ReplayServer } from './replay-server.js';

let tls: { key: string; cert: string };
let dir: string;

/** A throwaway self-signed P-256 certificate made by OpenSSL, like the NetHSM's own: its key and certificate in PEM. */
function selfSigned(name: string): { key: string; cert: string } {
  const [key, cert] = [join(dir, `${name}.key`), join(dir, `${name}.pem`)];
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}`];
  execFileSync('openssl', [...args, '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hh-nethsm-replay-'));
  tls = selfSigned('nethsm-replay');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Provision against `primary`, then run the suite with startFresh handing out `fresh`. */
async function runSuite(
  exchange: Exchange,
): Promise<{ report: DriverReport; primary: ReplayServer; fresh: ReplayServer; pass: NethsmPassphrases; freshStopped: boolean }> {
  const primary = await startReplayServer(exchange.primary, tls);
  const fresh = await startReplayServer(exchange.fresh, tls);
  const pass = newPassphrases();
  await provisionNethsm(clientFor(primary.baseUrl), pass, 5_000);
  const report = emptyDriverReport('nethsm', 'NetHSM replay', 'nethsm');
  let freshStopped = false;
  const ctx = makeContext({
    driverId: 'nethsm',
    traits: DEFAULT_TRAITS,
    env: process.env,
    report,
    expectations: new Expectations({ cases: {} }),
    connections: {
      nethsm: {
        baseUrl: primary.baseUrl,
        ...pass,
        startFresh: async () => ({
          baseUrl: fresh.baseUrl,
          stop: async () => {
            freshStopped = true;
          },
        }),
      },
    },
    events: { onCaseStart() {}, onCaseEnd() {}, log() {} },
  });
  ctx.suite = nethsmSuite.name;
  await runCaseTable(ctx, nethsmSuite, [nethsmSuite]);
  await primary.close();
  await fresh.close();
  return { report, primary, fresh, pass, freshStopped };
}

const statuses = (cases: CaseRecord[]) => Object.fromEntries(cases.map((c) => [c.case, c.status]));

describe('NetHSM suite against a replay written from our own reading of the API (request order and parsing only, not NetHSM behaviour)', () => {
  test('the fixture is consistent with the suite and the OpenAPI response schemas', () => {
    const ex = loadExchange();
    expect(ex.message).toBe(NETHSM_MESSAGE.toString());
    for (const e of [...ex.primary, ...ex.fresh]) {
      if (e.responseSchema) expect(validate(e.responseSchema, e.response.json), `${e.request.method} ${e.request.path}`).toEqual([]);
    }
  });

  test('replay: provisioning, key generation, signing (verified by node:crypto), backup, restore, unlock are requested in order and parsed', async () => {
    const { report, primary, fresh, pass, freshStopped } = await runSuite(loadExchange());
    expect(primary.problems).toEqual([]);
    expect(fresh.problems).toEqual([]);
    expect(primary.remaining()).toBe(0);
    expect(fresh.remaining()).toBe(0);
    expect(statuses(report.cases)).toEqual({
      'generate/EC_P256': 'pass',
      'generate/RSA-2048': 'pass',
      'generate/Curve25519': 'pass',
      'sign/ECDSA': 'pass',
      'sign/PKCS1': 'pass',
      'sign/EdDSA': 'pass',
      backup: 'pass',
      restore: 'pass',
      'restore/unlock': 'pass',
      'restore/sign': 'pass',
      cleanup: 'pass',
    });
    expect(report.capabilities).toMatchObject({
      'keygen:ec-p256': true,
      'keygen:rsa-2048': true,
      'keygen:ed25519': true,
      'sign:CKM_ECDSA': true,
      'sign:CKM_RSA_PKCS': true,
      'sign:CKM_EDDSA': true,
      'nethsm:backup-restore': true,
    });
    expect(freshStopped).toBe(true);

    // The passphrases line up across requests: each user logs in with what it was given, the restore and
    // unlock on the fresh instance use the original backup and unlock passphrases.
    const body = (path: string) => primary.seen.find((s) => s.path === path)!.json!;
    expect(body('/provision')).toMatchObject({ unlockPassphrase: pass.unlockPassphrase, adminPassphrase: pass.adminPassphrase });
    expect(body('/users/operator').passphrase).toBe(pass.operatorPassphrase);
    expect(body('/config/backup-passphrase').newPassphrase).toBe(pass.backupPassphrase);
    for (const s of [...primary.seen, ...fresh.seen].filter((x) => x.user)) {
      const expected = { admin: pass.adminPassphrase, operator: pass.operatorPassphrase, backup: pass.backupPassphrase }[s.user as 'admin'];
      expect(s.passphrase, `${s.method} ${s.path}`).toBe(expected);
    }
    expect(fresh.seen.find((s) => s.path === '/system/restore')!.multipartJson!.backupPassphrase).toBe(pass.backupPassphrase);
    expect(fresh.seen.find((s) => s.path === '/unlock')!.json!.passphrase).toBe(pass.unlockPassphrase);
    // Generated per run and registered as secrets: never in the report.
    const text = JSON.stringify(report);
    for (const p of Object.values(pass)) {
      expect(p.length).toBeGreaterThanOrEqual(10);
      expect(text).not.toContain(p);
      expect(redact(`x ${p} y`)).toBe('x *** y');
    }
  });

  test('a signature that does not verify fails its case (and only that one)', async () => {
    const ex = loadExchange();
    const sign = ex.primary.find((e) => e.request.path === '/keys/hhed25519/sign')!;
    const sig = Buffer.from((sign.response.json as { signature: string }).signature, 'base64');
    sig[10] ^= 0x01;
    sign.response.json = { signature: sig.toString('base64') };
    const { report } = await runSuite(ex);
    const s = statuses(report.cases);
    expect(s['sign/EdDSA']).toBe('fail');
    expect(s['sign/ECDSA']).toBe('pass');
    expect(report.capabilities['sign:CKM_EDDSA']).toBe(false);
    expect(report.cases.find((c) => c.case === 'sign/EdDSA')!.reason).toMatch(/does not verify/);
  });

  test('a NetHSM that is not Unprovisioned is not provisioned again', async () => {
    const server = await startReplayServer(
      [{ request: { method: 'GET', path: '/health/state' }, response: { status: 200, json: { state: 'Operational' } } }],
      tls,
    );
    try {
      await expect(provisionNethsm(clientFor(server.baseUrl), newPassphrases(), 5_000)).rejects.toThrow(/is Operational, not Unprovisioned/);
      expect(server.seen.map((s) => s.path)).toEqual(['/health/state']);
    } finally {
      await server.close();
    }
  });

  test('an error answer becomes a NethsmError with the status and the server message, no passphrase', async () => {
    const server = await startReplayServer([], tls);
    try {
      const pass = newPassphrases();
      const client = new NethsmClient(server.baseUrl, { insecure: true });
      const err = await client.unlock(pass.unlockPassphrase).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NethsmError);
      expect((err as NethsmError).status).toBe(400);
      expect((err as Error).message).toMatch(/POST \/unlock answered 400: replay: no more recorded requests/);
      expect((err as Error).message).not.toContain(pass.unlockPassphrase);
    } finally {
      await server.close();
    }
  });

  test('verification against a pinned certificate accepts that certificate and refuses another', async () => {
    const server = await startReplayServer(
      [{ request: { method: 'GET', path: '/health/state' }, response: { status: 200, json: { state: 'Unprovisioned' } } }],
      tls,
    );
    try {
      expect(await new NethsmClient(server.baseUrl, { ca: tls.cert }).state()).toBe('Unprovisioned');
      const other = selfSigned('someone-else');
      await expect(new NethsmClient(server.baseUrl, { ca: other.cert }).state()).rejects.toThrow();
      expect(server.seen).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  test('clientFor turns TLS verification off only for loopback and for containers the harness started', () => {
    expect(() => clientFor('https://nethsm.example.net:8443/api/v1')).toThrow(/only containers the harness started, or loopback/);
    expect(() => clientFor('https://172.17.0.1:32768/api/v1')).toThrow(/only containers the harness started/);
    markLaunchedContainer('https://172.17.0.1:32768/api/v1');
    expect(clientFor('https://172.17.0.1:32768/api/v1').baseUrl).toBe('https://172.17.0.1:32768/api/v1');
    expect(() => clientFor('https://172.17.0.1:32769/api/v1')).toThrow(/only containers the harness started/);
    expect(clientFor('https://127.0.0.1:8443/api/v1').baseUrl).toBe('https://127.0.0.1:8443/api/v1');
  });

  test('p11nethsm.conf has the shape nethsm-pkcs11 reads (Nitrokey/nethsm-pkcs11 p11nethsm.example.conf), with both logins and a timeout', () => {
    const conf = parseYaml(p11nethsmConf('https://127.0.0.1:32768/api/v1', 'op "pass"', 'admin:pass')) as Record<string, unknown>;
    expect(conf).toEqual({
      enable_set_attribute_value: false,
      slots: [
        {
          label: P11_SLOT_LABEL,
          operator: { username: 'operator', password: 'op "pass"' },
          administrator: { username: 'admin', password: 'admin:pass' },
          instances: [{ url: 'https://127.0.0.1:32768/api/v1', danger_insecure_cert: true, max_idle_connections: 10 }],
          retries: { count: 2, delay_seconds: 1 },
          timeout_seconds: 30,
        },
      ],
    });
  });
});
