/**
 * The pure guards behind issue 23, without starting anything: the bounded reader refuses FIFOs, devices,
 * directories and oversized files before reading them; the JSON depth count; the shape of a harness temp
 * directory; the stderr tail that masks a PIN dripped a byte at a time, written in Latin-1, or at the end of
 * a very long line (expected values written out by hand from the inputs, not computed by the code).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../src/errors.js';
import { notHarnessTempDir } from '../../src/fsutil.js';
import { jsonDepth, readInputFile, readInputFileSync } from '../../src/input.js';
import { StderrTail } from '../../src/proc.js';
import { rememberSecret } from '../../src/secrets.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hh-guards-'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await writeFile(join(dir, 'small'), 'abcd');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('readInputFile', () => {
  test.each([
    ['/dev/zero', /is a device or socket, not a regular file/],
    ['FIFO', /is a FIFO, not a regular file/],
    ['DIR', /is a directory, not a regular file/],
    ['/nonexistent/x', /cannot read the file \/nonexistent\/x \(ENOENT\)/],
  ])('%s is refused with a UsageError, without blocking', async (p, why) => {
    const path = p === 'FIFO' ? join(dir, 'fifo') : p === 'DIR' ? dir : p;
    await expect(readInputFile(path, 1024, 'the file')).rejects.toThrow(why);
    expect(() => readInputFileSync(path, 1024, 'the file')).toThrow(UsageError);
  });

  test('a file of exactly the limit is read; one byte more is refused', async () => {
    expect((await readInputFile(join(dir, 'small'), 4, 'the file')).toString()).toBe('abcd');
    await expect(readInputFile(join(dir, 'small'), 3, 'the file')).rejects.toThrow(/is larger than/);
    expect(readInputFileSync(join(dir, 'small'), 4, 'the file').toString()).toBe('abcd');
  });
});

describe('jsonDepth', () => {
  test('counts brackets outside strings only', () => {
    expect(jsonDepth('{"a":[1,{"b":"[[[["}]}')).toBe(3);
    expect(jsonDepth('"\\"[[["')).toBe(0);
    expect(jsonDepth(`${'['.repeat(5000)}${']'.repeat(5000)}`, 64)).toBe(65);
  });
});

describe('notHarnessTempDir', () => {
  test.each([
    ['..', 'is not an absolute path'],
    ['relative/hsm-harness-zone-Ab12Cd', 'is not an absolute path'],
    ['/tmp/x/../hsm-harness-zone-Ab12Cd', 'is not in normal form'],
    ['/tmp//hsm-harness-zone-Ab12Cd', 'is not in normal form'],
    ['/home/user', 'is not named like a temporary directory of hsm-harness (hsm-harness-<what>-XXXXXX)'],
    ['/tmp/hsm-harness-zone-Ab12Cd/sub', 'is not named like a temporary directory of hsm-harness (hsm-harness-<what>-XXXXXX)'],
  ])('%s %s', (p, why) => {
    expect(notHarnessTempDir(p)).toBe(why);
  });
  test('a directory makeTempDir would name is accepted', () => {
    expect(notHarnessTempDir('/tmp/hsm-harness-softhsm-container-x9Y8z7')).toBeNull();
  });
});

describe('StderrTail', () => {
  const pin = 'Tail-sécret-61';
  beforeAll(() => rememberSecret(pin));

  test('a PIN written one byte per chunk is masked in the whole line', () => {
    const t = new StderrTail();
    for (const b of Buffer.from(`module: pin=${pin} done\n`)) t.push(Buffer.from([b]));
    expect(t.lastLine()).toBe('module: pin=*** done');
  });

  test('a PIN written in Latin-1 is masked, not decoded to U+FFFD around its rest', () => {
    const t = new StderrTail();
    t.push(Buffer.concat([Buffer.from('pin='), Buffer.from(pin, 'latin1'), Buffer.from('\n')]));
    expect(t.lastLine()).toBe('pin=***');
  });

  test('a long line is masked before it is cut; a line past the limit is not shown at all', () => {
    const t = new StderrTail();
    t.push(Buffer.from(`${'x'.repeat(9000)} pin=${pin}`));
    expect(t.lastLine(20_000)).toBe(`${'x'.repeat(9000)} pin=***`);
    expect(t.lastLine(10)).toBe(`${'x'.repeat(10)}…`);
    const huge = new StderrTail();
    huge.push(Buffer.from(`${'y'.repeat(70 * 1024)}${pin}\n`));
    expect(huge.lastLine()).toBe('(a line of more than 64 KiB, not shown)');
  });

  test('the last non-empty line wins; control characters are escaped', () => {
    const t = new StderrTail();
    t.push(Buffer.from('first\n\x1b[2Jsecond\n\n'));
    expect(t.lastLine()).toBe('\\x1b[2Jsecond');
  });
});
