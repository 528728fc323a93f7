/**
 * The suites, in the order they run. Later suites read capabilities that earlier ones recorded
 * (suitability reads everything), so the order matters.
 */
import type { Suite } from '../src/suite.js';
import { signing } from './pkcs11/signing.js';
import { dnssec } from './pkcs11/dnssec.js';

export const suites: Suite[] = [
  signing,
  dnssec,
];

export function suiteByName(name: string): Suite | undefined {
  return suites.find((s) => s.name === name);
}
