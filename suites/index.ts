/**
 * The suites, in the order they run. Later suites read capabilities that earlier ones recorded
 * (suitability reads everything), so the order matters.
 */
import type { Suite } from '../src/suite.js';
import { discoverySuite } from './pkcs11/discovery.js';
import { keygenSuite } from './pkcs11/keygen.js';
import { signing } from './pkcs11/signing.js';
import { dnssec } from './pkcs11/dnssec.js';
import { benchSuite } from './bench.js';
import { benchKmipSuite } from './bench-kmip.js';
import { nethsm } from './nethsm.js';
import { sessionsSuite } from './pkcs11/sessions.js';
import { signersSuite } from './signers/index.js';
import { suitabilitySuite } from './suitability.js';
import { kmipConformance } from './kmip/conformance.js';
import { kmipRobustness } from './kmip/robustness.js';
import { cleanupCheck, expectationsCheck, goldenCheck } from './checks.js';
import { dkekAesWrapSuite, dkekSmartcardHsmSuite, dkekYubihsmWrapSuite } from './dkek/index.js';

export const suites: Suite[] = [
  discoverySuite,
  keygenSuite,
  signing,
  dnssec,
  sessionsSuite,
  kmipConformance,
  kmipRobustness,
  nethsm,
  dkekAesWrapSuite,
  dkekSmartcardHsmSuite,
  dkekYubihsmWrapSuite,
  benchSuite,
  benchKmipSuite,
  signersSuite,
  // Last: reads the capabilities every suite above recorded.
  suitabilitySuite,
  // The runner's own checks, after everything: they read every case above (suites/checks.ts).
  expectationsCheck,
  goldenCheck,
  cleanupCheck,
];
