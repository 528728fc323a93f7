/**
 * reports/index.html, opened in headless Chromium (Debian's chromium, driven by playwright-core): a real run
 * on SoftHSM renders the matrix, the mechanisms and an unavailable driver's reason; the page makes no
 * request besides itself; hostile text from a token shows as text and runs nothing. The screenshot lands in
 * reports/selftest-html/report.png, so a CI artifact shows what the page looked like.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { MATRIX_COLUMNS } from '../../src/reports/capabilities.js';
import { renderHtml } from '../../src/reports/html.js';
import { loadSectionReports } from '../../src/registry.js';
import { emptyDriverReport, type RunResults } from '../../src/results.js';
import { CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, runResultsOf, skipWithReason } from '../core/helpers.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const OUT = join(ROOT, 'reports', 'selftest-html');
// Fast suites that fill the parts of the page worth looking at (about 15 s). All are registered: a missing
// one makes the run a usage error here instead of silently skipping the checks that need it.
// The bench suite is left out for time: its charts are checked below with figures given to the renderer.
const SUITES = ['discovery', 'keygen', 'signing', 'dkek', 'kmip', 'suitability'];

let browser: Browser | undefined;

/** Opens a file, letting through only the file itself; returns every URL the page asked for. */
async function open(file: string): Promise<{ page: Page; requests: () => string[] }> {
  const url = pathToFileURL(file).href;
  const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
  // Both the route and the request event, so nothing slips past either; the same URL counts once.
  const requests = new Set<string>();
  await page.route('**/*', (route) => {
    requests.add(route.request().url());
    return route.request().url() === url ? route.continue() : route.abort();
  });
  page.on('request', (r) => requests.add(r.url()));
  await page.goto(url, { waitUntil: 'load' });
  return { page, requests: () => [...requests] };
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
});

describe('index.html from a real SoftHSM run', () => {
  let results: RunResults;
  let page: Page;
  let requests: () => string[];

  beforeAll(async () => {
    if (!browser) return;
    if (!existsSync(join(ROOT, 'dist', 'src', 'reports', 'html.js'))) throw new Error('dist/ is stale or missing: run npx tsc -p . first');
    await rm(OUT, { recursive: true, force: true });
    const args = [
      CLI,
      'run',
      '--driver',
      'softhsm',
      '--driver',
      'pkcs11',
      '--driver',
      'pykmip',
      ...SUITES.flatMap((s) => ['--suite', s]),
      '--out',
      OUT,
      '--quiet',
    ];
    // pkcs11 without a module is the unavailable driver whose reason the page must show.
    // Exit 1 (some case failed) still writes the reports, and the page must render that too.
    const run = await exec('node', args, { env: { ...process.env, HSM_PKCS11_MODULE: '', HSM_PKCS11_URI: '' } }).catch(
      (err: { code?: number; stderr?: string }) => ({ stderr: err.stderr ?? String(err) }),
    );
    if (!existsSync(join(OUT, 'index.html'))) throw new Error(`hsm-harness run wrote no index.html: ${run.stderr.slice(-2000)}`);
    results = JSON.parse(await readFile(join(OUT, 'results.json'), 'utf8'));
    ({ page, requests } = await open(join(OUT, 'index.html')));
  });

  test('the matrix has a row for softhsm with a cell per capability, matching results.json', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const row = page.locator('table.matrix tr[data-driver="softhsm"]');
    await expect(row.count()).resolves.toBe(1);
    const cells = await row.locator('td').allTextContents();
    expect(cells).toHaveLength(2 + MATRIX_COLUMNS.length); // kind, status, then the capabilities
    expect(cells[1]).toContain('ran');
    const soft = results.drivers.find((d) => d.id === 'softhsm')!;
    MATRIX_COLUMNS.forEach((c, i) => {
      const v = soft.capabilities[c.key];
      expect(cells[2 + i], c.key).toBe(v === undefined ? '–' : v ? '✔' : '✘');
    });
  });

  test('the softhsm section lists its mechanisms', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const soft = results.drivers.find((d) => d.id === 'softhsm')!;
    const names = await page.locator('#driver-softhsm table.mechanisms tbody tr td:first-child').allTextContents();
    expect(names).toHaveLength(soft.mechanisms.length);
    // SoftHSM 2.6 implements ECDSA and RSA PKCS#1 (softhsm2 SoftHSM.cpp mechanism table).
    expect(names).toEqual(expect.arrayContaining(['CKM_ECDSA', 'CKM_RSA_PKCS']));
  });

  test('an unavailable driver shows why, in the matrix and in its section', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const reason = results.drivers.find((d) => d.id === 'pkcs11')!.availabilityReason;
    expect(reason).toMatch(/HSM_PKCS11_MODULE/);
    await expect(page.locator('table.matrix tr[data-driver="pkcs11"]').textContent()).resolves.toContain(reason);
    await expect(page.locator('#driver-pkcs11').textContent()).resolves.toContain(reason);
  });

  test('the DKEK round trips are listed with their status', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const trips = (results.drivers.find((d) => d.id === 'softhsm')!.sections.dkek as { roundTrips: { status: string }[] }).roundTrips;
    expect(trips.length).toBeGreaterThan(0);
    const statuses = await page.locator('#driver-softhsm table.dkek-round-trips tbody tr td:nth-child(3)').allTextContents();
    expect(statuses).toEqual(trips.map((t) => t.status));
  });

  test('the KMIP section shows the per-operation table for PyKMIP', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const py = results.drivers.find((d) => d.id === 'pykmip')!;
    if (!py.available) await skipWithReason(ctx, `pykmip is unavailable here: ${py.availabilityReason}`);
    const ops = (py.sections.kmip as { operations: Record<string, { observed: string }> }).operations;
    const rows = await page
      .locator('#driver-pykmip table.kmip-operations tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    expect(rows.map((r) => r[0])).toEqual(Object.keys(ops));
    // Sign is the operation Cascade needs most; PyKMIP implements it (PyKMIP docs, "Operations").
    expect(rows.find((r) => r[0] === 'Sign')?.[2]).toBe('works');
  });

  test('every case is listed with its status', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const soft = results.drivers.find((d) => d.id === 'softhsm')!;
    const rows = page.locator('#driver-softhsm table.cases tbody tr');
    await expect(rows.count()).resolves.toBe(soft.cases.length);
    const first = await rows.first().locator('td').allTextContents();
    expect(first.slice(0, 3)).toEqual([soft.cases[0].suite, soft.cases[0].case, soft.cases[0].status]);
  });

  test('the page requests nothing but itself, and the screenshot is saved', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    expect(requests()).toEqual([pathToFileURL(join(OUT, 'index.html')).href]);
    const png = join(OUT, 'report.png');
    await page.screenshot({ path: png, fullPage: true });
    const head = await readFile(png);
    expect(head.subarray(1, 4).toString()).toBe('PNG');
    expect(head.readUInt32BE(16)).toBe(1400); // IHDR width = the viewport
  });
});

describe('hostile and unknown content', () => {
  const EVIL = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>';

  function results(): RunResults {
    const d = emptyDriverReport('evil<u>', `Token ${EVIL}`, 'pkcs11');
    Object.assign(d, {
      available: true,
      status: 'ran',
      availabilityReason: `label ${EVIL}`,
      info: { label: EVIL, manufacturer: 'x" onmouseover="y' },
      mechanisms: [{ name: `CKM_${EVIL}`, code: 1, minKeySize: 0, maxKeySize: 0, flags: ['SIGN'] }],
      findings: [{ driver: 'evil', suite: 'discovery', kind: 'lie', text: EVIL }],
      cases: [{ driver: 'evil', suite: 'discovery', case: EVIL, status: 'fail', durationMs: 1, reason: EVIL, details: { label: EVIL } }],
      // A section no renderer knows: arrays of flat objects must become tables.
      sections: {
        future: {
          rounds: [
            { operation: 'sign', perSecond: 12 },
            { operation: 'verify', perSecond: 34 },
          ],
          note: EVIL,
        },
      },
    });
    const drivers = [d];
    return runResultsOf(drivers, { startedAt: 'a', finishedAt: 'b', environment: { node: 'v20', platform: 'linux', arch: 'x64', hostname: EVIL, ci: false } });
  }

  test('benchmark charts are inline SVG, drawn without any request', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const r = results();
    const latency = { samples: 10, mean: 1, p50: 1, p99: 2, min: 0.5, max: 3, sd: 0.2, rme: 1 };
    const rates = (v: number) => ({ rates: [v], median: v, best: v, worst: v, rme: 0, operationsPerBatch: 10 });
    r.drivers[0].sections = {
      bench: {
        mode: 'quick',
        budgetSeconds: 1,
        environment: {},
        keygen: [],
        dnssec: [],
        threadLevels: [1, 2],
        rejected: [],
        sign: [
          {
            alg: 'ec-p256',
            algorithm: 'ECDSA P-256',
            dnssec: 'ECDSAP256SHA256',
            mechanism: 'CKM_ECDSA',
            latency,
            bareLoop: rates(10),
            vsBareLoop: 1,
            verifiedSignatures: 3,
            threads: [1, 2].map((t) => ({ threads: t, ...rates(10 * t) })),
          },
        ],
      },
    };
    const dir = await mkdtemp(join(tmpdir(), 'hh-html-'));
    try {
      const file = join(dir, 'index.html');
      await writeFile(file, renderHtml(r, await loadSectionReports()));
      const { page, requests } = await open(file);
      const svg = page.locator('#bench figure svg').first();
      const box = await svg.boundingBox();
      expect(box?.width).toBeGreaterThan(100);
      expect(box?.height).toBeGreaterThan(100);
      await expect(svg.locator('circle').count()).resolves.toBe(2); // one marker per measured point
      await expect(page.locator('body').textContent()).resolves.not.toContain('<?xml');
      expect(requests()).toEqual([pathToFileURL(file).href]);
      await page.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('token text is shown as text: no element, no script, no request', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const dir = await mkdtemp(join(tmpdir(), 'hh-html-'));
    try {
      const file = join(dir, 'index.html');
      await writeFile(file, renderHtml(results()));
      const { page, requests } = await open(file);
      await expect(page.locator('img, script, u').count()).resolves.toBe(0);
      expect(await page.title()).not.toContain('pwned');
      expect(requests()).toEqual([pathToFileURL(file).href]);
      await expect(page.locator('body').textContent()).resolves.toContain(EVIL);
      await expect(page.locator('[onmouseover]').count()).resolves.toBe(0);
      // The unknown section rendered generically, as a table with its own column names.
      const headers = await page.locator('section.sub:has(h3:text-is("future")) th').allTextContents();
      expect(headers).toEqual(['operation', 'perSecond']);
      await page.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
