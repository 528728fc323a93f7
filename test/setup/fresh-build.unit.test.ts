/**
 * A stale build can no longer be tested by mistake: the global setup of the tiers that run dist/ decides
 * "stale" whenever a source or tsconfig.json is newer than the build, or a source has no build at all
 * (checked on a fixture tree with set mtimes), and the config wires it into exactly those tiers.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import config from '../../vitest.config.js';
import { staleBuild } from './fresh-build.js';

let root: string;
const T0 = new Date('2026-01-01T00:00:00Z');
const later = (s: number) => new Date(T0.getTime() + s * 1000);

function put(rel: string, at: Date): void {
  const p = join(root, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, '');
  utimesSync(p, at, at);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hh-fresh-build-'));
  put('tsconfig.json', T0);
  put('src/cli.ts', T0);
  put('suites/pkcs11/signing.ts', T0);
  put('src/types.d.ts', later(100)); // declarations emit nothing, so they never count as unbuilt
  // tsc rewrote every output a minute later.
  put('dist/src/cli.js', later(60));
  put('dist/suites/pkcs11/signing.js', later(61));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('staleBuild', () => {
  test('a build newer than every source and the config is fresh', () => {
    expect(staleBuild(root)).toBeUndefined();
  });

  test('a suite edited after the build makes it stale, naming the file', () => {
    put('suites/pkcs11/signing.ts', later(120));
    expect(staleBuild(root)).toBe('suites/pkcs11/signing.ts is newer than dist/');
    put('suites/pkcs11/signing.ts', T0);
  });

  test('an edit between two outputs of the same build counts (the oldest output is the build time)', () => {
    put('src/cli.ts', later(60.5));
    expect(staleBuild(root)).toBe('src/cli.ts is newer than dist/');
    put('src/cli.ts', T0);
  });

  test('a changed tsconfig.json makes it stale', () => {
    put('tsconfig.json', later(120));
    expect(staleBuild(root)).toBe('tsconfig.json is newer than dist/');
    put('tsconfig.json', T0);
  });

  test('a new source with no output makes it stale, even when older than the build', () => {
    put('drivers/new-driver.ts', T0);
    expect(staleBuild(root)).toBe('dist/ has no build of drivers/new-driver.ts');
    rmSync(join(root, 'drivers'), { recursive: true });
    expect(staleBuild(root)).toBeUndefined();
  });

  test('no dist/ at all is stale', () => {
    const empty = mkdtempSync(join(tmpdir(), 'hh-fresh-build-'));
    try {
      writeFileSync(join(empty, 'tsconfig.json'), '');
      mkdirSync(join(empty, 'src'));
      writeFileSync(join(empty, 'src', 'cli.ts'), '');
      expect(staleBuild(empty)).toBe('dist/ has no build of src/cli.ts');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

test('the integration, slow and alone tiers, which run dist/, rebuild first; the unit tier imports the sources', () => {
  const projects = (config.test?.projects ?? []) as { test: { name: string; globalSetup?: string[] } }[];
  const setupOf = Object.fromEntries(projects.map((p) => [p.test.name, p.test.globalSetup ?? []]));
  expect(Object.keys(setupOf).sort()).toEqual(['alone', 'integration', 'slow', 'unit']);
  expect(setupOf.integration).toEqual(['./test/setup/fresh-build.ts']);
  expect(setupOf.slow).toEqual(['./test/setup/fresh-build.ts']);
  expect(setupOf.alone).toEqual(['./test/setup/fresh-build.ts']);
  expect(setupOf.unit).toEqual([]);
});
