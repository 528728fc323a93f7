/**
 * The words reports can contain, derived from the tables that produce them: driver ids, titles, kinds and
 * families (the registry), suite names and their case names, PKCS#11 return-code, mechanism and attribute
 * names (src/pkcs11/constants.ts), key and DNSSEC algorithm names (src/pkcs11/keys.ts, src/dnssec/dnskey.ts),
 * KMIP tag and enumeration names (src/kmip/tags.ts). A PIN found inside one
 * of them would be masked inside ordinary report text and give itself away ("CKM_***_SHA256"), so
 * registerSecret refuses it once these words are loaded. Adding a driver or a suite adds its words here by
 * itself: nothing in the core names them.
 */
import { loadDrivers, loadSuites } from './registry.js';
import { addStructuralWords } from './redact.js';

let loaded: Promise<void> | undefined;

/** Load the report words once per process, before any secret is registered (run, drivers, the driver processes). */
export function loadReportWords(): Promise<void> {
  loaded ??= (async () => {
    const [drivers, suites] = await Promise.all([loadDrivers(), loadSuites()]);
    // Loaded here rather than statically: the PKCS#11 names come with the addon, which kmip decode must not load.
    const [{ pkcs11Names }, { kmipNames }, { KEY_ALGS }, { DNSSEC_ALGORITHMS }] = await Promise.all([
      import('./pkcs11/constants.js'),
      import('./kmip/tags.js'),
      import('./pkcs11/keys.js'),
      import('./dnssec/dnskey.js'),
    ]);
    addStructuralWords(
      ...drivers.flatMap((d) => [d.id, d.title, d.kind, d.traits.family ?? '']),
      ...suites.flatMap((s) => [s.name, ...s.cases.map((c) => c.name)]),
      ...pkcs11Names(),
      ...kmipNames(),
      ...Object.entries(KEY_ALGS).flatMap(([name, a]) => [name, a.family, a.curve ?? '']),
      ...Object.values(DNSSEC_ALGORITHMS).flatMap((a) => [a.name, a.hash ?? '', a.curve ?? '']),
    );
  })();
  return loaded;
}
