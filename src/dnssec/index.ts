/**
 * DNSSEC building blocks shared by the PKCS#11 and KMIP suites:
 * - dnskey.ts: dnskeyRdata(alg, publicKey), keyTag(rdata), dnskeyToKeyObject(rdata);
 * - rrsig.ts:  signingInput(fields, rrset) in RFC 4034 canonical form, tokenSigner / keyObjectSigner;
 * - zone.ts:   exampleZone, signZone (adds DNSKEY + NSEC chain), zoneText, withDamagedSignature;
 * - ldns.ts:   ldnsVerifyZone, ldnsDs (the independent oracle).
 */
export * from './dnskey.js';
export * from './rrsig.js';
export * from './zone.js';
export * from './ldns.js';
export * from './wire.js';
