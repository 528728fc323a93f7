/**
 * What the DKEK backup suites share: the DKEK from share files or random shares, the message a restored
 * key signs, and the check of that signature with the original public key in node:crypto. One suite file
 * per backup method (aes-wrap, smartcard-hsm-dkek, yubihsm-wrap) runs the method its driver declares.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SuiteContext } from '../../src/suite.js';
import type { BackupOffer } from '../../src/driver.js';
import { pkcs11, type Handle, type Template } from '../../src/pkcs11/module.js';
import type { Token } from '../../src/pkcs11/token.js';
import { signAsync, type KeyAlg } from '../../src/pkcs11/keys.js';
import { signScheme } from '../../src/pkcs11/mechanisms.js';
import { Dkek, DkekError } from '../../src/dkek/dkek.js';
import { decryptShareFile } from '../../src/dkek/share.js';
import { registerSecret, wipe } from '../../src/secrets.js';
import type { DkekSection, RoundTrip } from './report.js';

export type { RoundTrip } from './report.js';

/** The backup method this run's driver declared, when it is the one a suite implements. */
export function offered<M extends BackupOffer['method']>(ctx: SuiteContext, method: M): Extract<BackupOffer, { method: M }> | undefined {
  const b = ctx.connections.pkcs11?.backup;
  return ctx.token && b?.method === method ? (b as Extract<BackupOffer, { method: M }>) : undefined;
}

/** The report section all DKEK suites write to. */
export function dkekSection(ctx: SuiteContext, path: string): { section: DkekSection; roundTrips: RoundTrip[] } {
  const roundTrips: RoundTrip[] = [];
  const section: DkekSection = { roundTrips, path };
  ctx.report.sections.dkek = section;
  return { section, roundTrips };
}

/** The DKEK assembled from share files and their passwords. */
export async function dkekFromShares(shares: { file: string; password: string }[]): Promise<Dkek> {
  const plain: Buffer[] = [];
  try {
    for (const s of shares) {
      registerSecret(s.password);
      plain.push(decryptShareFile(await readFile(s.file), s.password, s.file));
    }
    return Dkek.fromShares(plain);
  } finally {
    wipe(...plain);
  }
}

/**
 * The harness's own DKEK for the software round trip: from share files in HSM_HARNESS_DKEK_SHARES
 * (comma-separated, passwords in HSM_HARNESS_DKEK_<n>_PASSWORD or one HSM_HARNESS_DKEK_PASSWORD).
 */
export async function harnessDkekFromEnv(env: NodeJS.ProcessEnv): Promise<{ dkek: Dkek; source: string } | undefined> {
  const files = (env.HSM_HARNESS_DKEK_SHARES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!files.length) return undefined;
  const shares = files.map((file, i) => {
    const password = env[`HSM_HARNESS_DKEK_${i + 1}_PASSWORD`] ?? env.HSM_HARNESS_DKEK_PASSWORD;
    if (!password) throw new DkekError(`HSM_HARNESS_DKEK_${i + 1}_PASSWORD (or HSM_HARNESS_DKEK_PASSWORD) is not set for ${file}`);
    return { file, password };
  });
  return { dkek: await dkekFromShares(shares), source: `${files.length} share file(s) from HSM_HARNESS_DKEK_SHARES` };
}

export function randomDkek(): { dkek: Dkek; source: string } {
  const shares = [randomBytes(32), randomBytes(32)];
  const dkek = Dkek.fromShares(shares);
  wipe(...shares);
  return { dkek, source: 'two random in-memory shares' };
}

export const MESSAGE = Buffer.from('hsm-harness dkek round trip: sign with the restored key');

/** Sign MESSAGE on a token and check the signature with the original public key in node:crypto. */
export async function signAndVerify(token: Token, key: Handle, alg: KeyAlg, original: KeyObject): Promise<void> {
  const scheme = signScheme(alg.startsWith('ec-') ? pkcs11.CKM_ECDSA : pkcs11.CKM_SHA256_RSA_PKCS, alg);
  const sig = await signAsync(token, token.session, scheme.mechanism, key, scheme.input(MESSAGE));
  if (!scheme.verify(original, MESSAGE, sig)) throw new Error(`the restored key's ${scheme.spec.name} signature does not verify with the original public key`);
}

export function unwrapTemplate(alg: KeyAlg, label: string): Template {
  return [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: alg.startsWith('ec-') ? pkcs11.CKK_EC : pkcs11.CKK_RSA },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_SIGN, value: true },
    { type: pkcs11.CKA_LABEL, value: label },
  ];
}
