/**
 * A run SIGKILLed while BIND's keys are on a persistent token (as test/signers/killed.slow.test.ts does for Knot): BIND names
 * its keys itself ("<zone>-<policy>-<role>-<time>"), so the journal records the case's directory, where BIND keeps its
 * record of them (K*.private files, each with the key's pkcs11: URI); `hsm-harness cleanup` removes exactly those keys.
 * The workaround case runs its as-packaged case first, so this takes longer than an integration test may.
 */
import { describe, expect, test } from 'vitest';
import { readFileSync } from 'node:fs';
import { exec, haveTools, TOOLS_MISSING } from '../safety/helpers.js';
import { which } from '../../src/proc.js';
import { killWithSignerKeys, type Recorded } from './kill-helpers.js';

const haveBind = haveTools && (await which('dnssec-keygen')) !== undefined && (await which('dnssec-signzone')) !== undefined;

describe.skipIf(!haveBind)(haveBind ? 'BIND keys after a kill' : `BIND keys after a kill (skipped: ${TOOLS_MISSING}, and BIND 9.20)`, () => {
  test('cleanup reads the keys BIND made from its K*.private files in the journalled directory and removes exactly those', async () => {
    // BIND's record: a K*.private file naming the key on the token (a Label: line, RFC 7512 URI in base64).
    const recorded: Recorded = async (caseDir) => {
      const r = await exec('find', [caseDir, '-name', 'K*.private']);
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .some((f) => /^Label: /m.test(readFileSync(f, 'utf8')));
    };
    const made = await killWithSignerKeys('bind', 'signers/bind/ECDSAP256SHA256/workaround-no-deepbind', recorded, (m) =>
      m[0]!.replace(/^[^:]+: /, '').replace(/ id=.*$/, ''),
    );
    // BIND labels its keys "<zone>-<policy>-<role>-<time>"; the harness's policy name carries the run's label prefix.
    expect(made.every((o) => /: example\.test\.-hsm-harness-[0-9a-f]{16}-bind-13\.-ksk-\d{14} id=[0-9a-f]+$/.test(o))).toBe(true);
  }, 240_000);
});
