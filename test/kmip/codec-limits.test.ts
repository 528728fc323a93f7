/**
 * KMIP codec denial of service (issue 11, item 6), through the built CLI: megabytes of hex, JSON nested a
 * hundred thousand deep and a 512 KiB Big Integer. Each is either refused with exit 2 and one line naming
 * the offset and the limit, or handled in linear time. Time is bounded by killing the process (generous
 * margins for a loaded machine), never asserted.
 */
import { describe, expect, test } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CLI } from '../core/helpers.js';

const KILL_AFTER_MS = 90_000;

/** Run `hsm-harness kmip …` with `input` on stdin; killed after KILL_AFTER_MS. */
function kmip(args: string[], input: string): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('node', [CLI, 'kmip', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

function expectOneLine(r: { code: number | null; signal: string | null; stderr: string }, pattern: RegExp): void {
  expect(r.signal, 'killed: the input was not handled in bounded time').toBeNull();
  expect(r.code).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/** One TTLV item header: tag, type, length. */
const header = (tag: string, type: string, len: number) => `${tag}${type}${len.toString(16).padStart(8, '0')}`;

describe.concurrent('kmip decode / encode under hostile input', () => {
  test(
    '8 MiB of hex is refused at the 1 MiB message limit, with the offset',
    async () => {
      // A Text String claiming 4 MiB: well-formed hex all the way, far over the limit.
      const hex = header('420094', '07', 4 << 20) + '41'.repeat(4 << 20);
      expectOneLine(
        await kmip(['decode', '-'], hex),
        /kmip decode: message is larger than the limit of 1048576 bytes \(byte 1048576 reached at input offset \d+\)/,
      );
    },
    KILL_AFTER_MS + 30_000,
  );

  test(
    'a bad character deep in a long input is named with its offset',
    async () => {
      const hex = `${'42'.repeat(300_000)}zz`;
      expectOneLine(await kmip(['decode', '-'], hex), /input is not hex: character "z" at offset 600000/);
    },
    KILL_AFTER_MS + 30_000,
  );

  test(
    'JSON nested 100,000 structures deep is refused with the character offset',
    async () => {
      const open = '{"tag":"Request Payload","type":"Structure","value":[';
      const json = open.repeat(100_000) + ']}'.repeat(100_000);
      // The 33rd nested Structure goes too deep: its "[" is the 66th bracket.
      expectOneLine(await kmip(['encode', '-'], json), new RegExp(`nested deeper than 32 TTLV structures at character ${open.length * 33 - 1}`));
    },
    KILL_AFTER_MS + 30_000,
  );

  test(
    'TTLV nested 40 deep is refused with the offset and the tag path',
    async () => {
      let hex = `${header('420020', '02', 4)}0000000100000000`;
      for (let i = 0; i < 40; i++) hex = header('420020', '01', hex.length / 2) + hex;
      expectOneLine(await kmip(['decode', hex], ''), /TTLV: nesting deeper than 32 at byte 256 \(/);
    },
    KILL_AFTER_MS + 30_000,
  );

  test(
    'a 512 KiB Big Integer decodes and encodes back, byte for byte, in bounded time',
    async () => {
      const value = randomBytes(512 * 1024);
      value[0] = 0x5a;
      const hex = (header('420052', '04', value.length) + value.toString('hex')).toUpperCase();
      const d = await kmip(['decode', '-'], hex);
      expect(d.signal).toBeNull();
      expect(d.code).toBe(0);
      const json = JSON.parse(d.stdout) as { tag: string; type: string; value: string };
      expect(json).toEqual({ tag: 'Modulus', type: 'BigInteger', value: `0x${value.toString('hex')}` });
      const e = await kmip(['encode', '-'], d.stdout);
      expect(e.signal).toBeNull();
      expect(e.code).toBe(0);
      expect(e.stdout.trim()).toBe(hex);
    },
    2 * KILL_AFTER_MS + 30_000,
  );
});
