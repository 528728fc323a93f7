/**
 * The built CLI: `kmip decode`/`kmip encode` round-trip every golden vector, and bad input exits 2 with one line.
 */
import { describe, expect, test } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');
const FIX = join(ROOT, 'fixtures', 'kmip');
const vectors: { name: string; hex: string }[] = [
  ...JSON.parse(readFileSync(join(FIX, 'spec-primitives.json'), 'utf8')).vectors,
  ...JSON.parse(readFileSync(join(FIX, 'test-cases.json'), 'utf8')).vectors,
];

describe('hsm-harness kmip decode/encode', () => {
  test('every golden vector round-trips: decode <hex>, then encode - (JSON on standard input)', async () => {
    // One process per step, a few at a time: node start-up dominates, and the machine has two cores.
    const roundTrip = async (hex: string) => {
      const dec = await exec('node', [CLI, 'kmip', 'decode', hex]);
      expect(JSON.parse(dec.stdout).type).toBeDefined();
      const child = execFile('node', [CLI, 'kmip', 'encode', '-']);
      const done = new Promise<string>((resolve, reject) => {
        let out = '',
          err = '';
        child.stdout!.on('data', (d) => {
          out += d;
        });
        child.stderr!.on('data', (d) => {
          err += d;
        });
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`encode exited ${code}: ${err}`))));
      });
      child.stdin!.end(dec.stdout);
      return (await done).trim();
    };
    const queue = [...vectors];
    await Promise.all(
      [0, 1, 2].map(async () => {
        for (let v = queue.shift(); v; v = queue.shift()) expect(await roundTrip(v.hex), v.name).toBe(v.hex.toUpperCase());
      }),
    );
  });

  test('names render: operations, enumerations, ISO dates', async () => {
    const v = vectors.find((x) => x.name === 'create-key-pair-response')!;
    const out = (await exec('node', [CLI, 'kmip', 'decode', v.hex])).stdout;
    expect(out).toContain('"Create Key Pair"');
    expect(out).toContain('"Success"');
    expect(out).toContain('"2010-02-11T08:35:06Z"'); // 0x4B73C13A
  });

  test('malformed input exits 2 with one line naming the offset and path', () => {
    const r = spawnSync('node', [CLI, 'kmip', 'decode', '42007801000000604200770100000038'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/at byte 4 \(Request Message\)/);
    const bad = spawnSync('node', [CLI, 'kmip', 'encode', '{"tag":"Nope","type":"Integer","value":1}'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown tag "Nope"/);
    expect(bad.stdout).toBe('');
  });
});
