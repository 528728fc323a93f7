/**
 * Zone-signing figures in bench.json: one `zone-signing` record per signer × algorithm × zone size from the signers
 * section, with the token's raw rate from the same run beside it and the ratio computed from those two figures
 * (not copied from the suite's own rounding). A case without a raw rate (the bench did not run) has no ratio.
 */
import { describe, expect, test } from 'vitest';
import { emptyDriverReport } from '../../src/results.js';
import { benchRecords, zoneSigningRecords } from '../../bench/report.js';
import type { SignersSectionData } from '../../suites/signers/types.js';

function driverWithSpeed() {
  const d = emptyDriverReport('softhsm', 'SoftHSM', 'pkcs11');
  const signers: SignersSectionData = {
    driver: 'softhsm',
    isolation: { how: 'unshare -m', isolated: true },
    tracing: 'pkcs11-spy',
    signers: [
      {
        id: 'knot',
        title: 'Knot',
        claims: { algorithms: [8, 13], source: 'doc' },
        exposures: [],
        cases: [
          {
            case: 'knot/ECDSAP256SHA256',
            algorithm: 13,
            status: 'pass',
            speed: [
              { records: 1000, rrsigs: 2004, seconds: 2.5, rrsigsPerSecond: 801.6, tokenRawRate: 4008, ofRawRate: 0.2 },
              { records: 10000, rrsigs: 20004, seconds: 20, rrsigsPerSecond: 1000.2 },
            ],
          },
          { case: 'knot/ED25519', algorithm: 15, status: 'fail' },
        ],
      },
    ],
  };
  d.sections.signers = signers;
  return d;
}

describe('zone-signing records', () => {
  test('one record per signer × algorithm × zone size, RRSIGs/s beside the raw rate, the ratio from the two', () => {
    const recs = zoneSigningRecords(driverWithSpeed());
    expect(recs).toHaveLength(2);
    const [small, large] = recs;
    expect(small).toMatchObject({ driver: 'softhsm', operation: 'zone-signing', signer: 'knot', algorithm: 'ECDSAP256SHA256', records: 1000 });
    expect(small!.opsPerSec).toBe(801.6);
    expect(small!.tokenRawRate).toBe(4008);
    expect(small!.vsTokenRaw).toBeCloseTo(801.6 / 4008, 4);
    expect(large).toMatchObject({ records: 10000, rrsigs: 20004, wallSeconds: 20 });
    expect(large!.vsTokenRaw).toBeUndefined();
  });

  test('bench.json carries them for a driver that ran the signers suite but no bench', () => {
    const results = { drivers: [driverWithSpeed()] } as never;
    expect(benchRecords(results).filter((r) => r.operation === 'zone-signing')).toHaveLength(2);
  });
});
