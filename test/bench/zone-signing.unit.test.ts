/**
 * Zone-signing figures in bench.json: one `zone-signing` record per signer × algorithm × zone size from the signers
 * section, with the token's raw rate from the same run beside it and the ratio computed from those two figures
 * (not copied from the suite's own rounding). A case without a raw rate (the bench did not run) has no ratio.
 * The same figures in index.html's benchmark section and bench.md: one table per driver, the cells as the fixture gives them.
 */
import { describe, expect, test } from 'vitest';
import { emptyDriverReport } from '../../src/results.js';
import { benchRecords, benchReport, renderBenchMarkdown, zoneSigningRecords } from '../../bench/report.js';
import { renderHtml } from '../../src/reports/html.js';
import { runResultsOf } from '../core/helpers.js';
import type { SignersSectionData } from '../../suites/signers/types.js';

function driverWithSpeed(id = 'softhsm') {
  const d = emptyDriverReport(id, 'SoftHSM', 'pkcs11');
  const signers: SignersSectionData = {
    driver: id,
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

/** The cells of each table row (<td>…</td>) in an HTML fragment, tags inside a cell removed. */
function rows(html: string): string[][] {
  return [...html.matchAll(/<tr>([\s\S]*?)<\/tr>/g)]
    .map((m) => [...m[1]!.matchAll(/<td>([\s\S]*?)<\/td>/g)].map((c) => c[1]!.replace(/<[^>]+>/g, '')))
    .filter((r) => r.length);
}

describe('zone-signing figures in the benchmark section of index.html and in bench.md', () => {
  // A second driver, whose only figure is BIND's RSA zone without a raw rate: the tables must stay apart.
  const other = emptyDriverReport('softhsm-p11kit', 'SoftHSM via p11-kit', 'pkcs11');
  other.sections.signers = {
    driver: 'softhsm-p11kit',
    isolation: { how: 'unshare -m', isolated: true },
    tracing: 'pkcs11-spy',
    signers: [
      {
        id: 'bind',
        title: 'BIND 9.20',
        claims: { algorithms: [8], source: 'doc' },
        exposures: [],
        cases: [{ case: 'bind/RSASHA256', algorithm: 8, status: 'pass', speed: [{ records: 10000, rrsigs: 20002, seconds: 123, rrsigsPerSecond: 162.6 }] }],
      },
    ],
  };
  const results = runResultsOf([driverWithSpeed(), other]);

  test('one table per driver under its heading: signer, algorithm, records, RRSIGs, seconds, RRSIGs/s, raw rate, ratio', () => {
    const html = renderHtml(results, new Map([['bench', benchReport]]));
    const section = /<section id="bench">([\s\S]*?)<\/section>/.exec(html)?.[1];
    expect(section, 'index.html has a benchmark section').toBeDefined();
    expect(section).toContain('<th>token&#39;s raw rate (sig/s)</th>');
    const [first, second] = section!.split('<h3>softhsm-p11kit</h3>');
    expect(first).toContain('<h3>softhsm</h3>');
    expect(rows(first!)).toEqual([
      ['knot', 'ECDSAP256SHA256', '1000', '2004', '2.5', '802', '4,008', '0.200'],
      ['knot', 'ECDSAP256SHA256', '10000', '20004', '20', '1,000', '—', '—'],
    ]);
    expect(rows(second!)).toEqual([['bind', 'RSASHA256', '10000', '20002', '123', '163', '—', '—']]);
  });

  test('the benchmark section exists for zone-signing figures alone (no bench suite ran, so no chart)', () => {
    expect(renderHtml(results, new Map([['bench', benchReport]]))).toContain('<a href="#bench">Benchmarks</a>');
  });

  test('bench.md has the same table per driver', () => {
    const md = renderBenchMarkdown(results)!;
    expect(md).toContain('| knot | ECDSAP256SHA256 | 1000 | 2004 | 2.5 | 802 | 4,008 | 0.200 |');
    expect(md.indexOf('| bind | RSASHA256 | 10000 | 20002 | 123 | 163 | — | — |')).toBeGreaterThan(md.indexOf('## softhsm-p11kit'));
  });
});
