/**
 * Finds the drivers, suites (and the bench command) at run time, so that the core imports none of them (docs/architecture.md,
 * "Layering"). Drivers are found by their folder: every module in drivers/ that exports `driver` is one, in
 * the report order each declares. Suites run in the order of the explicit list in suites/index.ts.
 * From the build (dist/src) this loads dist/drivers and dist/suites; from the sources (vitest), the .ts files.
 */
import { readdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Driver } from './driver.js';
import type { Suite } from './suite.js';
import type { SectionReport } from './reports/sections.js';

const here = fileURLToPath(import.meta.url);
/** The tree this module was loaded from (dist/ or the project root) and its module extension (.js or .ts). */
const tree = join(dirname(here), '..');
const ext = extname(here);

let drivers: Promise<Driver[]> | undefined;
let suites: Promise<Suite[]> | undefined;

async function importDriver(file: string): Promise<Driver | undefined> {
  const mod = (await import(pathToFileURL(join(tree, 'drivers', file)).href)) as { driver?: Driver };
  return mod.driver;
}

/** Every driver, in report order (its `order`, then its id). */
export function loadDrivers(): Promise<Driver[]> {
  drivers ??= (async () => {
    const files = readdirSync(join(tree, 'drivers'))
      .filter((f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`))
      .sort();
    const found = (await Promise.all(files.map(importDriver))).filter((d): d is Driver => d !== undefined);
    return found.sort((a, b) => a.order - b.order || a.id.localeCompare(b.id));
  })();
  return drivers;
}

export async function driverById(id: string): Promise<Driver | undefined> {
  return (await loadDrivers()).find((d) => d.id === id);
}

/** A module outside src/ by its path from the project root, without extension ('bench/command'). */
export function importFromTree<T>(path: string): Promise<T> {
  return import(pathToFileURL(join(tree, `${path}${ext}`)).href) as Promise<T>;
}

/** The suites in the order they run (suites/index.ts keeps that order explicit: suitability last). */
export function loadSuites(): Promise<Suite[]> {
  suites ??= importFromTree<{ suites: Suite[] }>('suites/index').then((m) => m.suites);
  return suites;
}

/** Section name → how it is reported, from every suite that describes its section (Suite.report). */
export async function loadSectionReports(): Promise<Map<string, SectionReport>> {
  return new Map((await loadSuites()).flatMap((s) => (s.report ? [[s.name, s.report] as const] : [])));
}
