/**
 * The pure parts of the benchmark: ods-hsmspeed's result line, conf.xml, statistics, signature sampling, the
 * DNSSEC view, the documented-table verdicts and the charts. Reference values come from ods-hsmspeed's
 * source (opendnssec libhsm/src/bin/hsmspeed.c prints "%d thread(s), %d signatures per thread, %.2f sig/s
 * (RSA %d bits)"), from node:crypto and from hand calculation.
 */
import { describe, expect, test } from 'vitest';
import { mkdtemp, rm, stat, readFile } from 'node:fs/promises';
import { verify } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { parseHsmspeedOutput, writeHsmspeedConf } from '../../bench/hsmspeed.js';
import { generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { latencyStats } from '../../bench/stats.js';
import { humanDuration, resignSeconds } from '../../bench/dnssec.js';
import { compareWithDocumented, isDocumentedDevice, loadDocumentedTable, verdict } from '../../bench/documented.js';
import { rateFigure, verifySamples } from '../../bench/pkcs11.js';
import { actionLatency, actionThroughput, renderDocumentedSvg, renderThroughputSvg } from '../../bench/report.js';
import { runResultsOf } from '../core/helpers.js';
import { emptyDriverReport } from '../../src/results.js';
import type { BenchSection, LatencyStats } from '../../bench/types.js';
import { actionFormatProblems } from './format.js';

describe('ods-hsmspeed result line', () => {
  test('parses the single-thread line', () => {
    const r = parseHsmspeedOutput('1 thread, 2000 signatures per thread, 512.34 sig/s (RSA 2048 bits)\n');
    expect(r).toMatchObject({ threads: 1, iterationsPerThread: 2000, rate: 512.34, bits: 2048 });
  });

  test('parses the plural form for several threads', () => {
    const r = parseHsmspeedOutput('2 threads, 1000 signatures per thread, 2488.71 sig/s (RSA 2048 bits)\n');
    expect(r).toMatchObject({ threads: 2, iterationsPerThread: 1000, rate: 2488.71, bits: 2048 });
  });

  test.each([
    ['wrong plural for one thread', '1 threads, 10 signatures per thread, 5.00 sig/s (RSA 2048 bits)\n'],
    ['singular for two threads', '2 thread, 10 signatures per thread, 5.00 sig/s (RSA 2048 bits)\n'],
    ['progress on stdout as well', 'Opening HSM Library...\n1 thread, 10 signatures per thread, 5.00 sig/s (RSA 2048 bits)\n'],
    ['rate without two decimals', '1 thread, 10 signatures per thread, 5 sig/s (RSA 2048 bits)\n'],
    ['nothing at all', ''],
    ['trailing text', '1 thread, 10 signatures per thread, 5.00 sig/s (RSA 2048 bits) extra\n'],
  ])('rejects %s', (_why, out) => {
    expect(() => parseHsmspeedOutput(out)).toThrow(/ods-hsmspeed/);
  });
});

describe('conf.xml for ods-hsmspeed', () => {
  test('holds the repository, escapes values and is readable by the owner only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hh-conf-'));
    try {
      const path = await writeHsmspeedConf(dir, { name: 'r1', modulePath: '/usr/lib/x.so', tokenLabel: 'A & <B>', pin: 'p"i<n' });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const xml = await readFile(path, 'utf8');
      expect(XMLValidator.validate(xml)).toBe(true);
      const doc = new XMLParser({ ignoreAttributes: false, parseTagValue: false }).parse(xml);
      const repo = doc.Configuration.RepositoryList.Repository;
      expect(repo['@_name']).toBe('r1');
      expect(repo.Module).toBe('/usr/lib/x.so');
      expect(repo.TokenLabel).toBe('A & <B>');
      expect(repo.PIN).toBe('p"i<n');
      for (const section of ['Common', 'Enforcer', 'Signer']) expect(doc.Configuration).toHaveProperty(section);
      expect(doc.Configuration.Signer).toHaveProperty('WorkingDirectory');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('statistics', () => {
  test('mean, median, sd and rme of 1..5 (by hand: sd √2.5, t(4) = 2.776)', () => {
    const s = latencyStats([5, 3, 1, 4, 2]);
    expect(s.mean).toBe(3);
    expect(s.p50).toBe(3);
    expect(s.min).toBe(1);
    expect(s.max).toBe(5);
    expect(s.sd).toBeCloseTo(Math.sqrt(2.5), 10);
    expect(s.rme).toBeCloseTo(((2.776 * Math.sqrt(2.5)) / Math.sqrt(5) / 3) * 100, 2);
  });
});

describe('rates of repeated batches', () => {
  test('median, best and worst from the batches themselves', () => {
    const f = rateFigure([100, 300, 200, 250], 50);
    expect(f).toMatchObject({ rates: [100, 300, 200, 250], median: 225, best: 300, worst: 100, operationsPerBatch: 50 });
  });
});

describe('signature sampling', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('signed data');
  const check = (sig: Buffer) => verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  const good = () => cryptoSign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });

  test('all good signatures: nothing to report', () => {
    expect(verifySamples([good(), good()], check)).toBeUndefined();
  });

  test('empty, garbage and missing samples are reported with their lengths', () => {
    expect(verifySamples([good(), Buffer.alloc(0)], check)).toMatch(/^1 of 2 sampled signatures do not verify .*length 0 bytes/);
    expect(verifySamples([Buffer.alloc(64, 0x5a)], check)).toMatch(/1 of 1 .*length 64 bytes/);
    expect(verifySamples([], check)).toBe('no signature was sampled');
  });

  test('a check that throws counts as a failure', () => {
    expect(
      verifySamples([good()], () => {
        throw new Error('bad key');
      }),
    ).toMatch(/1 of 1/);
  });
});

describe('DNSSEC view', () => {
  test('durations keep useful precision below a second', () => {
    expect(humanDuration(0.0196)).toBe('20 ms');
    expect(humanDuration(2.5)).toBe('2.5 s');
    expect(humanDuration(600)).toBe('10 min');
  });

  test('a smartcard at 6 sig/s needs about 4.6 hours for 100k RRsets', () => {
    expect(humanDuration(resignSeconds(100_000, 6))).toBe('4.6 h');
  });
});

describe('documented SmartCard-HSM table', () => {
  const table = loadDocumentedTable();

  test('keeps the published rows with their source, and flags the RSA-3072 key generation row', () => {
    expect(table.source.document).toMatch(/go-keychain/);
    expect(table.rows.map((r) => r.operation)).toContain('RSA 2048 Sign');
    const rsa3072 = table.rows.find((r) => r.operation === 'RSA 3072 Key Gen')!;
    expect(rsa3072.documented).toBe('12-15 seconds');
    expect(rsa3072.suspect).toBeTruthy();
    expect(table.rows.filter((r) => r.suspect)).toHaveLength(1);
  });

  test('verdicts against the documented range', () => {
    const sign = table.rows.find((r) => r.operation === 'RSA 2048 Sign')!; // 50-100 ms
    expect(verdict(75, sign)).toBe('within');
    expect(verdict(30, sign)).toBe('faster');
    expect(verdict(150, sign)).toBe('slower');
    const rng = table.rows.find((r) => r.operation === 'Hardware RNG (32 bytes)')!; // < 10 ms
    expect(verdict(4, rng)).toBe('within');
    expect(verdict(12, rng)).toBe('slower');
  });

  test("the documented device is recognised from the token's manufacturer, not from the driver", () => {
    // OpenSC reports a SmartCard-HSM as manufacturer "www.CardContact.de", model "PKCS#15 emulated".
    expect(isDocumentedDevice(table, { manufacturer: 'www.CardContact.de', model: 'PKCS#15 emulated' })).toBe(true);
    expect(isDocumentedDevice(table, { manufacturer: 'SoftHSM project', model: 'SoftHSM v2' })).toBe(false);
    expect(isDocumentedDevice(table, { manufacturer: 'Emulated card project', model: 'PKCS#15 emulated' })).toBe(false);
  });

  test('verdicts only for the documented device', () => {
    const lat = (mean: number): LatencyStats => ({ samples: 3, mean, p50: mean, p99: mean, min: mean, max: mean, sd: 0, rme: 0 });
    const measured = { keygen: [], random: undefined, sign: [{ alg: 'rsa-2048' as const, latency: lat(120) }] as unknown as BenchSection['sign'] };
    const card = compareWithDocumented(table, measured, { manufacturer: 'www.CardContact.de', model: 'PKCS#15 emulated' });
    expect(card.applies).toBe(true);
    expect(card.rows.find((r) => r.operation === 'RSA 2048 Sign')).toMatchObject({ measuredMs: 120, verdict: 'slower' });
    const other = compareWithDocumented(table, measured, { manufacturer: 'SoftHSM project', model: 'SoftHSM v2' });
    expect(other.applies).toBe(false);
    expect(other.token).toBe('SoftHSM project SoftHSM v2');
    expect(other.rows.find((r) => r.operation === 'RSA 2048 Sign')).toMatchObject({ measuredMs: 120 });
    expect(other.rows.every((r) => r.verdict === undefined)).toBe(true);
  });
});

describe('reports from two drivers', () => {
  const lat = (mean: number): LatencyStats => ({ samples: 10, mean, p50: mean, p99: mean * 2, min: mean / 2, max: mean * 3, sd: 0.1, rme: 1.5 });
  const rates = (base: number) => rateFigure([base * 0.9, base, base * 1.1], 100);
  const section = (scale: number): BenchSection => ({
    mode: 'quick',
    budgetSeconds: 10,
    environment: {},
    dnssec: [],
    threadLevels: [1, 2, 4],
    rejected: [],
    sign: ['RSA-2048', 'ECDSA P-256'].map((algorithm) => ({
      alg: (algorithm === 'RSA-2048' ? 'rsa-2048' : 'ec-p256') as 'rsa-2048' | 'ec-p256',
      algorithm,
      dnssec: 'X',
      mechanism: 'CKM_X',
      latency: lat(1 / scale),
      bareLoop: rates(1000 * scale),
      threads: [1, 2, 4].map((t) => ({ threads: t, ...rates(1000 * scale * Math.min(t, 2)) })),
      vsBareLoop: 1,
      verifiedSignatures: 12,
    })),
    keygen: [{ alg: 'rsa-2048', algorithm: 'RSA-2048', latency: lat(100 / scale) }],
    documented: {
      family: 'smartcard-hsm',
      source: 's',
      applies: false,
      token: 'x',
      rows: [{ operation: 'RSA 2048 Sign', documented: '50-100 ms', notes: '', measure: 'sign:rsa-2048', measuredMs: 1 / scale }],
    },
  });
  const results = runResultsOf(
    ['alpha', 'beta'].map((id, i) => ({
      ...emptyDriverReport(id, id, 'pkcs11'),
      available: true,
      status: 'ran' as const,
      sections: { bench: section(i + 1) },
    })),
  );

  test('throughput chart: axes and one series per driver in every panel', () => {
    const svg = renderThroughputSvg(results)!;
    expect(XMLValidator.validate(svg)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg);
    const panels = [doc.svg.g].flat().filter((g: Record<string, string>) => g['@_class'] === 'panel');
    expect(panels.map((p: Record<string, string>) => p['@_data-title'])).toEqual(['RSA-2048', 'ECDSA P-256']);
    for (const p of panels) {
      const groups = [p.g].flat();
      expect(groups.filter((g: Record<string, string>) => /\baxis\b/.test(g['@_class'])).length).toBe(2);
      const series = groups.filter((g: Record<string, string>) => g['@_class'] === 'series');
      expect(series.map((s: Record<string, string>) => s['@_data-driver'])).toEqual(['alpha', 'beta']);
      for (const s of series) expect(s.polyline['@_points'].split(' ')).toHaveLength(3);
    }
  });

  test('documented chart: a documented band and one marker per driver', () => {
    const svg = renderDocumentedSvg(results)!;
    expect(XMLValidator.validate(svg)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false }).parse(svg);
    const rows = [doc.svg.g].flat().filter((g: Record<string, string>) => g['@_class'] === 'row');
    const sign = rows.find((r: Record<string, string>) => r['@_data-operation'] === 'RSA 2048 Sign');
    expect(sign.rect['@_class']).toBe('documented');
    expect([sign.circle].flat().map((c: Record<string, string>) => c['@_data-driver'])).toEqual(['alpha', 'beta']);
  });

  test('action files keep the format, and names carry the driver and stay distinct', () => {
    for (const entries of [actionThroughput(results), actionLatency(results)]) {
      expect(actionFormatProblems(JSON.parse(JSON.stringify(entries)))).toEqual([]);
      expect(entries.some((e) => e.name.includes('[alpha]'))).toBe(true);
      expect(entries.some((e) => e.name.includes('[beta]'))).toBe(true);
    }
    expect(actionThroughput(results).find((e) => e.name === 'sign[beta] RSA-2048 threads=4')?.value).toBe(4000);
    expect(actionThroughput(results).find((e) => e.name === 'harness/bare-loop[beta] RSA-2048')).toMatchObject({ value: 1, unit: 'ratio' });
  });

  test('the validator itself rejects what the action rejects', () => {
    expect(actionFormatProblems({ name: 'x' })).not.toEqual([]);
    expect(actionFormatProblems([{ name: 'x', value: 'fast', unit: 'ops/s' }])).not.toEqual([]);
    expect(actionFormatProblems([{ name: 'x', value: 1 }])).not.toEqual([]);
    expect(actionFormatProblems([{ name: 'x', value: 1, unit: 'ms', range: 5 }])).not.toEqual([]);
  });

  test('no driver with figures: no benchmark files', () => {
    const none = { ...results, drivers: [emptyDriverReport('x', 'x', 'pkcs11')] };
    expect(renderThroughputSvg(none)).toBeUndefined();
    expect(renderDocumentedSvg(none)).toBeUndefined();
  });
});
