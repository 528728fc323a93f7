/**
 * The capability names suites record and signer profiles require: one typed list, so that a typo in a suite
 * or in fixtures/pkcs11/signer-profiles.json is an error instead of a requirement that is silently never met
 * (or never checked). Signing and verification are recorded per mechanism ("sign:CKM_ECDSA": any key) and
 * per mechanism and key ("sign:CKM_ECDSA/ec-p384"), because tokens differ per key type and signers use one.
 */
export const KEY_NAMES = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384', 'ec-p521', 'ed25519'] as const;
const SCHEMES = [
  'CKM_RSA_PKCS/rsa-2048',
  'CKM_SHA256_RSA_PKCS/rsa-2048',
  'CKM_SHA512_RSA_PKCS/rsa-2048',
  'CKM_RSA_PKCS_PSS/rsa-2048',
  'CKM_ECDSA/ec-p256',
  'CKM_ECDSA/ec-p384',
  'CKM_ECDSA/ec-p521',
  'CKM_ECDSA_SHA256/ec-p256',
  'CKM_ECDSA_SHA384/ec-p384',
  'CKM_EDDSA/ed25519',
] as const;
const SIGN_MECHANISMS = [
  'CKM_RSA_PKCS',
  'CKM_SHA256_RSA_PKCS',
  'CKM_SHA512_RSA_PKCS',
  'CKM_RSA_PKCS_PSS',
  'CKM_ECDSA',
  'CKM_ECDSA_SHA256',
  'CKM_ECDSA_SHA384',
  'CKM_EDDSA',
] as const;

type KeyName = (typeof KEY_NAMES)[number];
type SignMechanism = (typeof SIGN_MECHANISMS)[number];
type SchemeName = (typeof SCHEMES)[number];

export type Capability =
  | `keygen:${KeyName}`
  | `sign:${SignMechanism}`
  | `sign:${SchemeName}`
  | `verify:${SignMechanism}`
  | `verify:${SchemeName}`
  | 'dnssec:8'
  | 'dnssec:10'
  | 'dnssec:13'
  | 'dnssec:14'
  | 'dnssec:15'
  | 'ecdsa-raw-signature'
  | 'multipart-sign'
  | 'ec-point:der'
  | 'id-binary-16'
  | 'id-binary-20'
  | 'find-by-id'
  | 'find-by-label'
  | 'set-label'
  | 'create-object'
  | 'random'
  | 'wrap'
  | 'nethsm:backup-restore'
  | 'kmip:tls1.3'
  | 'kmip:cascade-profile'
  | 'kmip:rsa-2048'
  | 'kmip:ecdsa-p256';

/** Every capability name, at run time (the union above, spelled out). */
export const CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  ...KEY_NAMES.map((k) => `keygen:${k}` as const),
  ...[...SIGN_MECHANISMS, ...SCHEMES].flatMap((m) => [`sign:${m}`, `verify:${m}`] as const),
  'dnssec:8',
  'dnssec:10',
  'dnssec:13',
  'dnssec:14',
  'dnssec:15',
  'ecdsa-raw-signature',
  'multipart-sign',
  'ec-point:der',
  'id-binary-16',
  'id-binary-20',
  'find-by-id',
  'find-by-label',
  'set-label',
  'create-object',
  'random',
  'wrap',
  'nethsm:backup-restore',
  'kmip:tls1.3',
  'kmip:cascade-profile',
  'kmip:rsa-2048',
  'kmip:ecdsa-p256',
]);

export function isCapability(name: string): name is Capability {
  return CAPABILITIES.has(name as Capability);
}

/** A name built at run time (e.g. from a mechanism name), checked against the list. */
export function capability(name: string): Capability {
  if (!isCapability(name)) throw new Error(`unknown capability name "${name}": add it to src/capabilities.ts first`);
  return name;
}
