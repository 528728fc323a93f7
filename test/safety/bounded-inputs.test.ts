/**
 * Every file the harness reads is bounded (issue 23): /dev/zero, a FIFO named results.json, /proc/self, a
 * directory, an oversized regular file and a schema-valid results.json holding a 5,000-deep array are each
 * refused with exit 2 and one line on stderr, well inside the test's time limit (a hang or an unbounded read
 * would hit it). `kmip encode` with an Object.prototype name as a type is bad input too, not an internal error.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { emptyDriverReport } from '../../src/results.js';
import { ROOT, cli, runResultsOf } from '../core/helpers.js';

const exec = promisify(execFile);
let dir: string;
const env = { P: 'bounded-inputs-pw-1' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-bounded-'));
  await exec('mkfifo', [join(dir, 'fifo')]);
  await mkdir(join(dir, 'fifo-dir'));
  await exec('mkfifo', [join(dir, 'fifo-dir', 'results.json')]);
  await writeFile(join(dir, 'big.bin'), '');
  await truncate(join(dir, 'big.bin'), 64 * 1024 + 1);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Exit 2 with exactly one line on stderr that is not an internal error. */
function expectOneLineRefusal(r: { code: number; stdout: string; stderr: string }): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/internal error|Maximum call stack/);
}

describe('inputs without a size limit', () => {
  const wrap = join(ROOT, 'fixtures', 'dkek', 'wrapped-btc-key.bin');
  test.each([
    ['merge /dev/zero', ['merge', '/dev/zero', '--out', 'OUT'], /not a regular file/],
    ['diff a /dev/zero', ['diff', 'FIFODIR', '/dev/zero'], /FIFO|not a regular file/],
    ['merge /proc/self', ['merge', '/proc/self', '--out', 'OUT'], /no results\.json|entries/],
    ['merge of a FIFO named results.json', ['merge', 'FIFODIR', '--out', 'OUT'], /is a FIFO/],
    ['dkek share-decrypt /dev/zero', ['dkek', 'share-decrypt', '/dev/zero', '--password', 'env:P'], /device/],
    ['dkek share-decrypt FIFO', ['dkek', 'share-decrypt', 'FIFO', '--password', 'env:P'], /FIFO/],
    ['dkek share-decrypt directory', ['dkek', 'share-decrypt', 'DIR', '--password', 'env:P'], /directory/],
    ['dkek share-decrypt oversized file', ['dkek', 'share-decrypt', 'BIG', '--password', 'env:P'], /larger than 64 KiB/],
    ['dkek pwd-combine /dev/zero', ['dkek', 'pwd-combine', '/dev/zero'], /device/],
    ['dkek kcv --share /dev/zero', ['dkek', 'kcv', '--share', '/dev/zero', '--password', 'env:P'], /device/],
    ['dkek blob-verify --wrap /dev/zero', ['dkek', 'blob-verify', '--wrap', '/dev/zero', '--share', 'BIG', '--password', 'env:P'], /device/],
    [
      'dkek blob-verify --public-key /dev/zero',
      ['dkek', 'blob-verify', '--wrap', wrap, '--public-key', '/dev/zero', '--share', 'BIG', '--password', 'env:P'],
      /device/,
    ],
    ['a password file that is /dev/zero', ['dkek', 'share-create', '--out', 'OUT', '--password', 'file:/dev/zero'], /device/],
  ])('%s: exit 2, one line', async (_name, args, why) => {
    const subst = (a: string) =>
      ({ OUT: join(dir, 'out'), FIFO: join(dir, 'fifo'), FIFODIR: join(dir, 'fifo-dir'), DIR: dir, BIG: join(dir, 'big.bin') })[a] ?? a;
    const r = await cli(args.map(subst), env, { timeoutMs: 30_000 });
    expectOneLineRefusal(r);
    expect(r.stderr).toMatch(why);
  });

  test('a schema-valid results.json with a 5,000-deep array: merge refuses it before walking it', async () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormatsModule.default(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'docs', 'results.schema.json'), 'utf8')));
    const driver = emptyDriverReport('softhsm', 'SoftHSM', 'pkcs11');
    driver.cases.push({ driver: 'softhsm', suite: 'discovery', case: 'deep', status: 'pass', durationMs: 1, details: { deep: [] } });
    const plain = JSON.stringify(runResultsOf([driver]));
    const deep = plain.replace('"deep":[]', `"deep":${'['.repeat(5000)}${']'.repeat(5000)}`);
    expect(validate(JSON.parse(deep)), JSON.stringify(validate.errors)).toBe(true);
    await mkdir(join(dir, 'plain'));
    await mkdir(join(dir, 'deep'));
    await writeFile(join(dir, 'plain', 'results.json'), plain);
    await writeFile(join(dir, 'deep', 'results.json'), deep);
    // Control: the same file without the deep array merges.
    const ok = await cli(['merge', join(dir, 'plain'), '--out', join(dir, 'site-plain')], {}, { timeoutMs: 60_000 });
    expect(ok.code, ok.stderr).toBe(0);
    const r = await cli(['merge', join(dir, 'deep'), '--out', join(dir, 'site-deep')], {}, { timeoutMs: 60_000 });
    expectOneLineRefusal(r);
    expect(r.stderr).toMatch(/nests arrays or objects more than 64 deep/);
  });

  test.each(['toString', '__proto__', 'constructor', 'valueOf', 'hasOwnProperty'])('kmip encode with "type": "%s" is bad input', async (type) => {
    const r = await cli(['kmip', 'encode', JSON.stringify({ tag: 'Protocol Version', type, value: 1 })], {}, { timeoutMs: 30_000 });
    expectOneLineRefusal(r);
    expect(r.stderr).toMatch(/"type" must be one of/);
  });
});
