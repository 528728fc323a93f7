/**
 * hsm-harness merge, end to end: real runs made here (in-process SoftHSM, SoftHSM through p11-kit, PyKMIP,
 * and the container and emulated-card drivers where this machine has them), merged into one site that is
 * opened in headless Chromium. The matrix, the tested-HSMs tables and the benchmark history are checked cell
 * by cell against the results.json and bench.json files the runs wrote. Hostile text in a run shows as text.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { verdictLabel, type DriverReport, type RunResults } from '../../src/results.js';
import { CHROMIUM, CHROMIUM_ARGS, NO_CHROMIUM, ROOT, cli, skipWithReason } from '../core/helpers.js';

const SHOTS = join(ROOT, 'reports', 'selftest-fleet');
/** Drivers that need a container engine or the emulated card: merged when this machine has them. */
const OPTIONAL = ['softhsm-container', 'bridge-container', 'nethsm', 'smartcard-hsm'];
const SUITES = ['discovery', 'keygen', 'signing', 'sessions', 'dnssec', 'suitability', 'kmip'];

const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormatsModule.default(ajv);
const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'docs', 'results.schema.json'), 'utf8')));

const tmp: string[] = [];
let browser: Browser | undefined;
let probes: { id: string; available: boolean; reason: string }[] = [];
/** The runs: a conformance run of every driver, and two benchmark runs of the in-process SoftHSM. */
const runs: { dir: string; results: RunResults; text: string }[] = [];
let site = '';

async function harnessRun(args: string[]): Promise<{ dir: string; results: RunResults; text: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hh-fleet-run-'));
  tmp.push(dir);
  const r = await cli(['run', ...args, '--out', dir, '--quiet'], {}, { timeoutMs: 900_000 });
  if (!existsSync(join(dir, 'results.json'))) throw new Error(`run wrote no results.json (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  const text = await readFile(join(dir, 'results.json'), 'utf8');
  return { dir, results: JSON.parse(text), text };
}

beforeAll(async () => {
  const list = await cli(['drivers', '--json']);
  probes = JSON.parse(list.stdout);
  const extra = OPTIONAL.filter((id) => probes.find((p) => p.id === id)?.available);
  runs.push(
    ...(await Promise.all([
      harnessRun([
        '--driver',
        'softhsm',
        '--driver',
        'softhsm-p11kit',
        '--driver',
        'pykmip',
        '--driver',
        'pkcs11',
        ...extra.flatMap((d) => ['--driver', d]),
        ...SUITES.flatMap((s) => ['--suite', s]),
      ]),
      harnessRun(['--driver', 'softhsm', '--suite', 'bench']),
      harnessRun(['--driver', 'softhsm', '--suite', 'bench']),
    ])),
  );
  site = join(await mkdtemp(join(tmpdir(), 'hh-fleet-site-')), 'site');
  tmp.push(dirname(site));
  // A directory, a directory, and a results.json file: all three ways of naming a run.
  const m = await cli(['merge', runs[0]!.dir, runs[1]!.dir, join(runs[2]!.dir, 'results.json'), '--out', site]);
  if (m.code !== 0) throw new Error(`merge failed (exit ${m.code}): ${m.stderr}`);
  if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 1_200_000);

afterAll(async () => {
  await browser?.close();
  for (const d of tmp) await rm(d, { recursive: true, force: true });
});

/** Opens a file, letting through only files of the site; returns every URL asked for. */
async function open(file: string): Promise<{ page: Page; requests: () => string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1500, height: 900 } });
  const requests = new Set<string>();
  await page.route('**/*', (route) => {
    const url = route.request().url();
    requests.add(url);
    return url.startsWith(pathToFileURL(dirname(file)).href) ? route.continue() : route.abort();
  });
  page.on('request', (r) => requests.add(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, requests: () => [...requests] };
}

/** What identifies a matrix row, read straight from a driver's identity (module path, not the rendered label). */
function rowKey(d: DriverReport): string {
  const id = d.identity!;
  return JSON.stringify([id.product, id.firmware ?? '', id.module?.path, id.module?.version, id.provider?.path, id.server?.executable, d.kind]);
}
const tested = (r: RunResults) => r.drivers.filter((d) => d.available && d.identity);

describe('the runs merged', () => {
  test('every results.json the runs wrote validates against docs/results.schema.json', () => {
    expect(runs).toHaveLength(3);
    for (const r of runs) expect(validate(r.results) ? [] : validate.errors, r.dir).toEqual([]);
  });

  test.for(OPTIONAL)('%s is merged where this machine has it', async (id, ctx) => {
    const probe = probes.find((p) => p.id === id)!;
    if (!probe.available) await skipWithReason(ctx, `${id} is not available here: ${probe.reason}`);
    expect(tested(runs[0]!.results).map((d) => d.id)).toContain(id);
  });
});

describe('the site', () => {
  let page: Page;
  let requests: () => string[];
  let rows: {
    product: string;
    firmware: string;
    module: string;
    iface: string;
    cells: { signer: string; verdict: string; href: string; text: string }[];
    drivers: string;
    last: string;
    lastHref: string;
  }[];
  let signers: string[];

  beforeAll(async () => {
    if (!browser) return;
    ({ page, requests } = await open(join(site, 'index.html')));
    signers = (await page.locator('table.matrix thead th').allTextContents()).slice(4, -2);
    rows = await page.locator('table.matrix tbody tr').evaluateAll(
      (trs, n) =>
        trs.map((tr) => {
          const td = [...tr.querySelectorAll('td')];
          const text = (i: number) => td[i]!.textContent ?? '';
          return {
            product: text(0),
            firmware: text(1),
            module: text(2),
            iface: text(3),
            cells: td.slice(4, 4 + n).map((c, i) => ({
              signer: String(i),
              verdict: c.getAttribute('data-verdict') ?? '',
              href: c.querySelector('a')?.getAttribute('href') ?? '',
              text: c.textContent ?? '',
            })),
            drivers: text(4 + n),
            last: td[5 + n]!.querySelector('a')?.textContent ?? '',
            lastHref: td[5 + n]!.querySelector('a')?.getAttribute('href') ?? '',
          };
        }),
      (await page.locator('table.matrix thead th').count()) - 6,
    );
    for (const r of rows) for (const [i, c] of r.cells.entries()) c.signer = signers[i]!;
  });

  /** The row of one driver of one run, found by what a reader sees: product, firmware and the module's file name. */
  function rowOf(d: DriverReport) {
    const id = d.identity!;
    const file = basename(id.module?.path ?? id.server?.executable ?? '');
    const found = rows.filter(
      (r) =>
        r.product === id.product &&
        r.firmware === (id.firmware || '–') &&
        r.module.includes(file) &&
        (!id.module || r.module.includes(` ${id.module.version}`)) &&
        r.drivers.split(', ').includes(d.id),
    );
    expect(found, `${d.id}: ${JSON.stringify(rows.map((r) => [r.product, r.firmware, r.module]))}`).toHaveLength(1);
    return found[0]!;
  }

  /** A link in the site, resolved to the run page and the results.json beside it. */
  async function follow(href: string): Promise<{ results: RunResults; driverAnchor: string; html: string }> {
    const [path, hash] = href.split('#');
    const file = join(site, path!);
    expect(existsSync(file), href).toBe(true);
    return { results: JSON.parse(await readFile(join(dirname(file), 'results.json'), 'utf8')), driverAnchor: hash ?? '', html: await readFile(file, 'utf8') };
  }

  test('one row per token × firmware × module, and every signer the runs judged has a column', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const keys = new Set(runs.flatMap((r) => tested(r.results).map(rowKey)));
    expect(rows).toHaveLength(keys.size);
    const judged = new Set(runs.flatMap((r) => r.results.drivers.flatMap((d) => d.suitability.map((v) => v.signer))));
    expect(new Set(signers)).toEqual(judged);
    // Cascade, BIND, Knot, OpenDNSSEC and PowerDNS are the signers the suitability suite knows.
    for (const s of ['Cascade', 'BIND', 'Knot', 'OpenDNSSEC', 'PowerDNS'])
      expect(
        signers.some((x) => x.startsWith(s)),
        s,
      ).toBe(true);
  });

  test('each verdict cell shows the input verdict, its date, and links to the run and driver that proved it', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    let checked = 0;
    for (const run of runs) {
      for (const d of tested(run.results)) {
        const row = rowOf(d);
        for (const v of d.suitability) {
          // Only one run here judges each row, so its verdict is the one shown.
          const cell = row.cells.find((c) => c.signer === v.signer)!;
          expect(cell.verdict, `${d.id} ${v.signer}`).toBe(verdictLabel(v));
          expect(cell.text).toContain(run.results.finishedAt.slice(0, 10));
          const target = await follow(cell.href);
          expect(target.results).toEqual(run.results);
          expect(target.driverAnchor).toBe(`driver-${d.id}`);
          expect(target.html).toContain(`id="driver-${d.id}"`);
          checked++;
        }
        for (const c of row.cells.filter((x) => !d.suitability.some((v) => v.signer === x.signer))) {
          // A signer this driver was not judged for: the cell is empty unless another run of the same row judged it.
          const others = runs.flatMap((r) => tested(r.results)).filter((x) => rowKey(x) === rowKey(d) && x.suitability.some((v) => v.signer === c.signer));
          if (others.length === 0) expect(c.verdict).toBe('');
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10); // two SoftHSM drivers × five signers at least
  });

  test('the last-run column is the newest run of each row, whether or not it gave verdicts', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    for (const run of runs) {
      for (const d of tested(run.results)) {
        const row = rowOf(d);
        const newest = runs
          .filter((r) => tested(r.results).some((x) => rowKey(x) === rowKey(d)))
          .map((r) => r.results.finishedAt)
          .sort()
          .at(-1)!;
        expect(row.last, d.id).toBe(newest.slice(0, 10));
        expect((await follow(row.lastHref)).results.finishedAt).toBe(newest);
      }
    }
    // The in-process SoftHSM row merges all three runs.
    const soft = rowOf(tested(runs[0]!.results).find((d) => d.id === 'softhsm')!);
    expect(soft.drivers).toBe('softhsm');
  });

  test('the Markdown and reStructuredText tables have the same rows and cells as the page', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const expected = rows.map((r) => [r.product, r.firmware, r.iface, r.module, ...r.cells.map((c) => c.verdict || '–'), r.last]);
    const unescapeMd = (s: string) => s.replace(/\\(.)/g, '$1');
    const entities = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    const md = (await readFile(join(site, 'tested-hsms.md'), 'utf8')).split('\n').filter((l) => l.startsWith('| '));
    const mdRows = md.slice(1).map((l) =>
      l
        .slice(2, -2)
        .split(/(?<!\\) \| /)
        .map((c) => entities(unescapeMd(c))),
    );
    expect(md[0]).toContain('| HSM | Firmware | Interface | Module |');
    expect(mdRows).toEqual(expected);
    const rst = await readFile(join(site, 'tested-hsms.rst'), 'utf8');
    expect(rst).toContain('.. list-table:: Tested HSMs');
    const rstRows: string[][] = [];
    for (const line of rst.split('\n')) {
      const m = line.match(/^ {3}([* ]) - (.*)$/);
      if (!m) continue;
      if (m[1] === '*') rstRows.push([]);
      rstRows.at(-1)!.push(unescapeMd(m[2]!).trim());
    }
    expect(rstRows.slice(1)).toEqual(expected);
  });

  test("benchmark history: one point per benchmark run, with bench.json's figures, linked to its run", async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const benchRuns = runs.slice(1);
    const product = tested(benchRuns[0]!.results)[0]!.identity!.product;
    const section = page.locator(`section.bench[data-product="${product}"]`);
    await expect(section.count()).resolves.toBe(1);
    const seriesRows = await section.locator('tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        name: tr.querySelector('td.series')?.textContent ?? '',
        points: [...tr.querySelectorAll('td.points a')].map((a) => ({ href: a.getAttribute('href') ?? '', text: a.textContent ?? '' })),
      })),
    );
    type BenchJson = { records: { operation: string; algorithm: string; concurrency: number; opsPerSec: number }[] };
    const records = benchRuns.map((r) => JSON.parse(readFileSync(join(r.dir, 'bench.json'), 'utf8')) as BenchJson);
    const sign = records.map((b) => b.records.filter((x) => x.operation === 'sign-latency'));
    expect(sign[0]!.length).toBeGreaterThan(0);
    for (const rec of sign[0]!) {
      const row = seriesRows.find((s) => s.name === `sign-latency ${rec.algorithm} [softhsm]`)!;
      expect(row, rec.algorithm).toBeTruthy();
      expect(row.points).toHaveLength(2);
      // Oldest first, each linked to its own run, each figure the one bench.json recorded (shown to 3 significant digits).
      const order = [...benchRuns.keys()].sort((a, b) => benchRuns[a]!.results.finishedAt.localeCompare(benchRuns[b]!.results.finishedAt));
      for (const [i, runIndex] of order.entries()) {
        const want = sign[runIndex]!.find((x) => x.algorithm === rec.algorithm)!.opsPerSec;
        const shown = Number(row.points[i]!.text.split(' ')[0]);
        expect(Math.abs(shown - want) / want, `${rec.algorithm} point ${i}`).toBeLessThan(0.006);
        expect((await follow(row.points[i]!.href)).results).toEqual(benchRuns[runIndex]!.results);
      }
    }
  });

  test('the site requests nothing outside itself, and a cell link opens the run page at its driver', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, 'site.png'), fullPage: true });
    expect(requests()).toEqual([pathToFileURL(join(site, 'index.html')).href]);
    await page.locator('table.matrix td.cell[data-verdict] a').first().click();
    await page.waitForLoadState('load');
    const url = new URL(page.url());
    expect(fileURLToPath(url).startsWith(join(site, 'runs'))).toBe(true);
    await expect(page.locator(url.hash).count()).resolves.toBe(1);
    for (const r of requests()) expect(r.startsWith(pathToFileURL(site).href), r).toBe(true);
  });
});

describe('merge: bad input and hostile text', () => {
  const EVIL = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>';

  test('a folder that is not a site is never replaced; a site is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hh-fleet-out-'));
    tmp.push(dir);
    await writeFile(join(dir, 'precious.txt'), 'keep me');
    const r = await cli(['merge', runs[1]!.dir, '--out', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a site written by hsm-harness merge/);
    expect(await readFile(join(dir, 'precious.txt'), 'utf8')).toBe('keep me');
    const again = await cli(['merge', runs[1]!.dir, '--out', site]);
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(join(site, 'index.html'))).toBe(true);
    expect((await cli(['merge', '--out', site])).code).toBe(2);
    expect((await cli(['merge', join(dir, 'precious.txt'), '--out', site])).code).toBe(2);
  });

  test('labels, names and reasons from a run are shown as text in every output', async (ctx) => {
    if (!browser) await skipWithReason(ctx, NO_CHROMIUM);
    const r = structuredClone(runs[0]!.results);
    const d = r.drivers.find((x) => x.id === 'softhsm')!;
    d.identity!.product = `Token ${EVIL} | x`;
    d.identity!.firmware = `1.0 ${EVIL}`;
    d.identity!.module!.path = `/opt/${EVIL}/lib.so`;
    d.suitability[0]!.signer = `Signer ${EVIL}`;
    d.suitability[0]!.reasons = [EVIL];
    r.identity.runner.labels = [EVIL];
    r.identity.runner.runUrl = 'javascript:alert(1)';
    r.identity.machine.hostname = EVIL;
    expect(validate(r) ? [] : validate.errors).toEqual([]);
    const dir = await mkdtemp(join(tmpdir(), 'hh-fleet-evil-'));
    tmp.push(dir);
    await writeFile(join(dir, 'results.json'), JSON.stringify(r));
    const out = join(dir, 'site');
    const m = await cli(['merge', dir, '--out', out]);
    expect(m.code, m.stderr).toBe(0);
    const { page, requests } = await open(join(out, 'index.html'));
    await expect(page.locator('img, script').count()).resolves.toBe(0);
    await expect(page.locator('a[href^="javascript:"]').count()).resolves.toBe(0);
    expect(await page.title()).not.toContain('pwned');
    await expect(page.locator('body').textContent()).resolves.toContain(`Token ${EVIL}`);
    await expect(page.locator('table.matrix thead').textContent()).resolves.toContain(`Signer ${EVIL}`);
    expect(requests()).toEqual([pathToFileURL(join(out, 'index.html')).href]);
    await page.close();
    const md = await readFile(join(out, 'tested-hsms.md'), 'utf8');
    expect(md).not.toContain('<img');
    expect(
      md
        .split('\n')
        .filter((l) => l.startsWith('| '))
        .every((l) => l.split(/(?<!\\)\|/).length === md.split('\n')[2]!.split('|').length),
    ).toBe(true);
    const rst = await readFile(join(out, 'tested-hsms.rst'), 'utf8');
    expect(rst).toContain('Token \\<img');
  });
});
