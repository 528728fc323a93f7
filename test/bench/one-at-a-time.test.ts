/**
 * A token that executes one command at a time (a smartcard: maxConcurrency 1, physical) gets a short bench
 * that respects it: one signer thread, no event-loop path, only RSA-2048 and ECDSA P-256, no ods-hsmspeed,
 * and no object left behind. Run on a real SoftHSM token declared with a smartcard's traits; what a card's
 * own table says about speed is not tested here, only that the limits are honoured.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SoftHsmStore, SOFTHSM_MODULE } from '../../src/softhsm.js';
import { Token } from '../../src/pkcs11/token.js';
import { makeContext } from '../../src/runner/context.js';
import { runCaseTable } from '../../src/runner/cases.js';
import { Expectations } from '../../src/expectations.js';
import { DEFAULT_TRAITS } from '../../src/driver.js';
import { emptyDriverReport, type DriverReport } from '../../src/results.js';
import { benchSuite } from '../../suites/bench.js';
import type { BenchSection } from '../../bench/types.js';

let store: SoftHsmStore;
let token: Token;
let report: DriverReport;
let before: number;
let after: number;

beforeAll(async () => {
  store = await SoftHsmStore.create();
  const t = await store.addToken('hh-one-at-a-time');
  Object.assign(process.env, store.env);
  token = Token.open(SOFTHSM_MODULE, { label: t.label }, t.pin);
  token.login();
  before = token.countObjects();
  report = emptyDriverReport('card-like', 'card-like', 'pkcs11');
  const ctx = makeContext({
    driverId: 'card-like',
    traits: { ...DEFAULT_TRAITS, physical: true, maxConcurrency: 1 },
    env: process.env,
    report,
    expectations: new Expectations({ cases: {} }),
    token,
    connections: { pkcs11: { modulePath: SOFTHSM_MODULE, token: { label: t.label }, pin: t.pin, env: store.env, wrongPinAllowed: false } },
    events: { onCaseStart() {}, onCaseEnd() {}, log() {} },
    options: { bench: { quick: true, timeSeconds: 4, compareOnly: false } },
  });
  ctx.suite = benchSuite.name;
  await runCaseTable(ctx, benchSuite, [benchSuite]);
  after = token.countObjects();
}, 240_000);

afterAll(async () => {
  try {
    token?.close();
  } catch {
    /* gone */
  }
  await store?.remove();
});

describe('bench on a one-command-at-a-time token', () => {
  test('one signer thread only, no event-loop path, the two mainstream algorithms', () => {
    const b = report.sections.bench as BenchSection;
    expect(b.threadLevels).toEqual([1]);
    expect(b.sign.map((s) => s.algorithm)).toEqual(['RSA-2048', 'ECDSA P-256']);
    for (const s of b.sign) {
      expect(s.threads.map((t) => t.threads)).toEqual([1]);
      expect(s.eventLoop).toBeUndefined();
      expect(s.verifiedSignatures).toBeGreaterThan(0);
    }
    expect(b.keygen.map((k) => k.algorithm)).toEqual(['RSA-2048', 'ECDSA P-256']);
  });

  test('ods-hsmspeed is skipped with its reason, one case per allowed thread count', () => {
    const cases = report.cases.filter((c) => c.case.startsWith('ods-hsmspeed'));
    expect(cases.map((c) => [c.case, c.status])).toEqual([['ods-hsmspeed-t1', 'skip']]);
    expect(cases[0]!.reason).toMatch(/quick pass on a physical token/);
  });

  test('every case passed or was skipped, and the token holds exactly the objects it held before', () => {
    expect(report.cases.filter((c) => c.status !== 'pass' && c.status !== 'skip')).toEqual([]);
    expect(after).toBe(before);
  });
});
