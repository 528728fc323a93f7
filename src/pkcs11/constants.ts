/**
 * PKCS#11 constants and name lookups. Values come from pkcs11js where it has them; the PKCS#11 3.0
 * additions it lacks (EdDSA) are defined here from the OASIS pkcs11t.h.
 */
// pkcs11js is CommonJS; only the default import carries all of its constants at run time.
import pkcs11 from 'pkcs11js';

export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
export const CKK_EC_EDWARDS = 0x40;
/** pkcs11js exposes CKF_* flags, but CKF_EC_F_P etc. share values with others, so name them here. */
const MECHANISM_FLAGS: [number, string][] = [
  [0x1, 'HW'],
  [0x100, 'ENCRYPT'],
  [0x200, 'DECRYPT'],
  [0x400, 'DIGEST'],
  [0x800, 'SIGN'],
  [0x1000, 'SIGN_RECOVER'],
  [0x2000, 'VERIFY'],
  [0x4000, 'VERIFY_RECOVER'],
  [0x8000, 'GENERATE'],
  [0x10000, 'GENERATE_KEY_PAIR'],
  [0x20000, 'WRAP'],
  [0x40000, 'UNWRAP'],
  [0x80000, 'DERIVE'],
  [0x100000, 'EC_F_P'],
  [0x200000, 'EC_F_2M'],
  [0x400000, 'EC_ECPARAMETERS'],
  [0x800000, 'EC_NAMEDCURVE'],
  [0x1000000, 'EC_UNCOMPRESS'],
  [0x2000000, 'EC_COMPRESS'],
];
export const CKF_SIGN = 0x800;
export const CKF_VERIFY = 0x2000;
export const CKF_GENERATE_KEY_PAIR = 0x10000;

function reverse(prefix: string, extra: Record<string, number> = {}): Map<number, string> {
  const m = new Map<number, string>();
  const all: Record<string, unknown> = { ...(pkcs11 as unknown as Record<string, unknown>), ...extra };
  for (const [k, v] of Object.entries(all)) {
    if (k.startsWith(prefix) && typeof v === 'number' && !m.has(v)) m.set(v, k);
  }
  return m;
}

// PKCS#11 v2.40 codes pkcs11js lacks (pkcs11t.h).
const ckrNames = reverse('CKR_', { CKR_ACTION_PROHIBITED: 0x1b, CKR_CURVE_NOT_SUPPORTED: 0x140 });
const ckmNames = reverse('CKM_', { CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA });
const ckaNames = reverse('CKA_');
/** CKM name → code, aliases included (CKM_ECDSA_KEY_PAIR_GEN and CKM_EC_KEY_PAIR_GEN are both 0x1040). */
const ckmCodes = new Map<string, number>(
  Object.entries({ ...(pkcs11 as unknown as Record<string, unknown>), CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA }).filter(
    (e): e is [string, number] => e[0].startsWith('CKM_') && typeof e[1] === 'number',
  ),
);

export function ckrName(code: number): string {
  return ckrNames.get(code) ?? (code >= 0x80000000 ? `CKR_VENDOR_DEFINED(0x${code.toString(16)})` : `CKR_0x${code.toString(16)}`);
}
export function mechanismName(code: number): string {
  return ckmNames.get(code) ?? (code >= 0x80000000 ? `CKM_VENDOR_DEFINED(0x${code.toString(16)})` : `CKM_0x${code.toString(16)}`);
}
export function attributeName(code: number): string {
  return ckaNames.get(code) ?? `CKA_0x${code.toString(16)}`;
}
export function mechanismFlagNames(flags: number): string[] {
  return MECHANISM_FLAGS.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
}
/** Every CKR_, CKM_ and CKA_ name and mechanism flag name the reports can show. */
export function pkcs11Names(): string[] {
  return [...ckrNames.values(), ...ckmNames.values(), ...ckaNames.values(), ...MECHANISM_FLAGS.map(([, n]) => n)];
}
export function mechanismCode(name: string): number | undefined {
  return ckmCodes.get(name);
}
