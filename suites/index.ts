/**
 * The suites, in the order they run. Later suites read capabilities that earlier ones recorded
 * (suitability reads everything), so the order matters.
 */
import type { Suite } from '../src/suite.js';

export const suites: Suite[] = [];

export function suiteByName(name: string): Suite | undefined {
  return suites.find((s) => s.name === name);
}
