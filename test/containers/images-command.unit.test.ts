/**
 * `images build` loads the bridge driver's image helpers by path (src/ does not import drivers/), so the type
 * checker cannot see a rename there; this test does. A moved helper once broke CI's `images build` step.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { expect, test } from 'vitest';

test('every name images build loads from a driver file is exported by it', async () => {
  const source = readFileSync(new URL('../../src/commands/images.ts', import.meta.url), 'utf8');
  const loads = [...source.matchAll(/const \{ ([^}]+) \} = await importFromTree<\w+>\('(drivers\/[\w-]+)'\)/g)];
  expect(loads.length).toBeGreaterThan(0);
  for (const [, names, path] of loads) {
    const file = new URL(`../../${path}.ts`, import.meta.url);
    const mod = (await import(/* @vite-ignore */ pathToFileURL(file.pathname).href)) as Record<string, unknown>;
    for (const name of names!.split(',').map((n) => n.trim())) expect(mod[name], `${path} exports ${name}`).toBeDefined();
  }
});
