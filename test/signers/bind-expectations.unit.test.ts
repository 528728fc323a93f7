/**
 * BIND 9.20 as Debian packages it dies when pkcs11-provider loads the module with RTLD_DEEPBIND, but how it dies
 * varies from run to run and between in-process SoftHSM and p11-kit (glibc's "free(): invalid pointer" or
 * "double free or corruption (out)" with SIGABRT; SIGSEGV or SIGBUS in free()). The softhsm expectation entries
 * must recognise the fact (killed by a signal, in dnssec-keygen and again in dnssec-keyfromlabel), not one text,
 * and must not take any other failure of BIND for it. The reasons below are the suite's wording of runs observed
 * on 2026-12-07 (the SIGSEGV/SIGBUS ones with the signal substituted, as the earlier helper saw them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Expectations, type ExpectationsFile } from '../../src/expectations.js';
import type { CaseRecord } from '../../src/results.js';

const ROOT = join(import.meta.dirname, '..', '..');
const file = (id: string) => JSON.parse(readFileSync(join(ROOT, 'drivers', `${id}.expect.json`), 'utf8')) as ExpectationsFile;
const record = (reason: string): CaseRecord => ({ driver: 'x', suite: 'signers', case: 'x', status: 'fail', durationMs: 1, reason });
const died = (keyfromlabel: string, keygen: string) =>
  `with a key made by the harness: import key: dnssec-keyfromlabel: ${keyfromlabel}; before that, keygen: dnssec-keygen: ${keygen}`;

const VARIANTS = [
  died('double free or corruption (out) (killed by SIGABRT)', 'free(): invalid pointer (killed by SIGABRT)'),
  died('free(): invalid pointer (killed by SIGABRT)', 'free(): invalid pointer (killed by SIGABRT)'),
  died('(no output) (killed by SIGSEGV)', '(no output) (killed by SIGSEGV)'),
  died('(no output) (killed by SIGBUS)', 'free(): invalid pointer (killed by SIGABRT)'),
];
const NOT_THE_ABORT = [
  // BIND that ran and failed for another reason is not the known abort at load.
  died('fatal: failed to write key example.test/RSASHA256/1 (exit 1)', 'free(): invalid pointer (killed by SIGABRT)'),
  'sign: dnssec-signzone: Enter PIN for PKCS#11 Token (Slot 1): | No self-signed DNSKEY found (exit 1)',
  "verification: 3 of 46 RRSIGs failed the harness's check: bad signature",
];

describe.each(['softhsm', 'softhsm-p11kit', 'softhsm-container'])('%s: BIND as packaged', (driver) => {
  const f = file(driver);
  // Ed25519 does not reach BIND through p11-kit 0.24's RPC (unsupported there); in-process it has its own entry below.
  const algorithms = ['RSASHA256', 'RSASHA512', 'ECDSAP256SHA256', 'ECDSAP384SHA384'];
  test.each(algorithms)('%s: every way it dies at load is the known failure, nothing else is', (alg) => {
    const e = f.cases[`signers/bind/${alg}`]!;
    for (const r of VARIANTS) expect(Expectations.matches(e, record(r)), r).toBe(true);
    for (const r of NOT_THE_ABORT) expect(Expectations.matches(e, record(r)), r).toBe(false);
  });
});

test('softhsm: BIND Ed25519 as packaged (software key, then the abort with the harness key) in every variant', () => {
  const e = file('softhsm').cases['signers/bind/ED25519']!;
  const software = 'made the ED25519 key in software, not on the token (its .private file holds the raw private key) (exit 0)';
  for (const signal of ['SIGABRT', 'SIGSEGV', 'SIGBUS']) {
    const r = `with a key made by the harness: import key: dnssec-keyfromlabel: x (killed by ${signal}); before that, keygen: dnssec-keygen ${software}`;
    expect(Expectations.matches(e, record(r)), r).toBe(true);
  }
  expect(
    Expectations.matches(
      e,
      record(`with a key made by the harness: import key: dnssec-keyfromlabel: x (exit 1); before that, keygen: dnssec-keygen ${software}`),
    ),
  ).toBe(false);
});
