/**
 * Discovery: what the library, slot and token say about themselves, the mechanism table, and whether the
 * mechanism flags tell the truth. Tokens (and shims) lie in C_GetMechanismInfo (pkcs11.md §7), so the
 * DNSSEC-relevant mechanisms are exercised, and "advertised but fails" is reported apart from "works but
 * not advertised".
 */
import { randomBytes } from 'node:crypto';
import type { Suite, SuiteContext } from '../../src/suite.js';
import type { MechanismRow } from '../../src/results.js';
import { pkcs11, ckrOf, trimPadded, type Token } from '../../src/pkcs11/token.js';
import { CKM_EDDSA, ckrName, mechanismFlagNames, mechanismName } from '../../src/pkcs11/constants.js';
import { generateKeyPair, publicKeyObject, signAsync, type KeyAlg, type KeyPair } from '../../src/pkcs11/keys.js';
import { FLAG, MECHANISMS, SMALLEST_KEY, signScheme, type FlagName, type SignScheme } from '../../src/pkcs11/mechanisms.js';

// CK_SLOT_INFO and CK_TOKEN_INFO flag bits, PKCS#11 v2.40 §3.2 (pkcs11t.h).
const SLOT_FLAGS: [number, string][] = [[0x1, 'TOKEN_PRESENT'], [0x2, 'REMOVABLE_DEVICE'], [0x4, 'HW_SLOT']];
const TOKEN_FLAGS: [number, string][] = [
  [0x1, 'RNG'], [0x2, 'WRITE_PROTECTED'], [0x4, 'LOGIN_REQUIRED'], [0x8, 'USER_PIN_INITIALIZED'],
  [0x20, 'RESTORE_KEY_NOT_NEEDED'], [0x40, 'CLOCK_ON_TOKEN'], [0x100, 'PROTECTED_AUTHENTICATION_PATH'],
  [0x200, 'DUAL_CRYPTO_OPERATIONS'], [0x400, 'TOKEN_INITIALIZED'], [0x800, 'SECONDARY_AUTHENTICATION'],
  [0x10000, 'USER_PIN_COUNT_LOW'], [0x20000, 'USER_PIN_FINAL_TRY'], [0x40000, 'USER_PIN_LOCKED'],
  [0x80000, 'USER_PIN_TO_BE_CHANGED'], [0x100000, 'SO_PIN_COUNT_LOW'], [0x200000, 'SO_PIN_FINAL_TRY'],
  [0x400000, 'SO_PIN_LOCKED'], [0x800000, 'SO_PIN_TO_BE_CHANGED'], [0x1000000, 'ERROR_STATE'],
];

function flagNames(flags: number, table: [number, string][]): string {
  return table.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n).join(' | ');
}
const version = (v: { major: number; minor: number }) => `${v.major}.${v.minor}`;

/** CK_EFFECTIVELY_INFINITE is 0; CK_UNAVAILABLE_INFORMATION is ~0 (pkcs11js hands it over truncated to 32 bits). */
export function sessionLimit(n: number): number | 'effectively infinite' | 'unavailable' {
  if (n === 0) return 'effectively infinite';
  if (n >= 0xffffffff) return 'unavailable';
  return n;
}

/** Mechanisms of the table by key family, for the key-size unit checks. */
const mechsOf = (family: string) => new Set(MECHANISMS.filter((m) => m.keyFamily === family).map((m) => m.code));
const RSA_MECHS = mechsOf('rsa');
const EC_MECHS = mechsOf('ec');
const EDDSA_MECHS = mechsOf('ed25519');

/**
 * The mechanisms DNSSEC signers use, each with how to exercise it. Bounded on purpose: the other hundred
 * mechanisms a token lists are recorded, not tried.
 */
interface Exercise {
  mechanism: number;
  /** The flag the mechanism must advertise for this use. */
  flagName: FlagName;
  /** Key pair generation: the key algorithm generated. Signing: the key it signs with. */
  alg: KeyAlg;
  kind: 'generate' | 'sign';
  scheme?: SignScheme;
}

const EXERCISES: Exercise[] = [
  ...MECHANISMS.filter((m) => m.class === 'key-pair-gen')
    .map((m): Exercise => ({ mechanism: m.code, flagName: 'GENERATE_KEY_PAIR', alg: m.generates![0]!, kind: 'generate' })),
  ...[pkcs11.CKM_RSA_PKCS, pkcs11.CKM_SHA256_RSA_PKCS, pkcs11.CKM_SHA512_RSA_PKCS, pkcs11.CKM_ECDSA, CKM_EDDSA].map((code): Exercise => {
    const scheme = signScheme(code, SMALLEST_KEY[MECHANISMS.find((m) => m.code === code)!.keyFamily!]);
    return { mechanism: code, flagName: 'SIGN', alg: scheme.key, kind: 'sign', scheme };
  }),
];

function describe(err: unknown): string {
  const code = ckrOf(err);
  return code !== undefined ? ckrName(code) : (err as Error).message;
}

function readInfo(ctx: SuiteContext, token: Token): void {
  const lib = token.lib;
  const info = lib.C_GetInfo();
  const slot = lib.C_GetSlotInfo(token.slot);
  const t = token.tokenInfo();
  Object.assign(ctx.report.info, {
    cryptokiVersion: version(info.cryptokiVersion),
    libraryManufacturer: trimPadded(info.manufacturerID),
    libraryDescription: trimPadded(info.libraryDescription),
    libraryVersion: version(info.libraryVersion),
    slotDescription: trimPadded(slot.slotDescription),
    slotManufacturer: trimPadded(slot.manufacturerID),
    slotFlags: flagNames(slot.flags, SLOT_FLAGS),
    tokenLabel: trimPadded(t.label),
    tokenManufacturer: trimPadded(t.manufacturerID),
    tokenModel: trimPadded(t.model),
    tokenSerial: trimPadded(t.serialNumber),
    tokenFlags: flagNames(t.flags, TOKEN_FLAGS),
    hardwareVersion: version(t.hardwareVersion),
    firmwareVersion: version(t.firmwareVersion),
    maxSessionCount: sessionLimit(t.maxSessionCount),
    maxRwSessionCount: sessionLimit(t.maxRwSessionCount),
    minPinLen: t.minPinLen,
    maxPinLen: t.maxPinLen,
  });
}

/** Generate (or reuse) the key for one exercise; an Error when generation fails. Keys are destroyed at the end. */
async function keyFor(token: Token, alg: KeyAlg, keys: Map<KeyAlg, KeyPair | Error>): Promise<KeyPair | Error> {
  let k = keys.get(alg);
  if (!k) {
    try {
      k = await generateKeyPair(token, alg, { label: `hsm-harness-discovery-${alg}` });
      publicKeyObject(token, k.publicKey); // a key pair whose public half cannot be read is of no use to a signer
    } catch (err) {
      k = new Error(describe(err));
    }
    keys.set(alg, k);
  }
  return k;
}

export const discoverySuite: Suite = {
  name: 'discovery',
  title: 'Library, slot and token information; mechanism table; do the mechanism flags tell the truth',
  needs: 'pkcs11',
  async run(ctx) {
    const token = ctx.token!;
    const lib = token.lib;

    await ctx.case('info', (c) => {
      readInfo(ctx, token);
      c.detail('cryptokiVersion', ctx.report.info.cryptokiVersion);
      c.detail('tokenFlags', ctx.report.info.tokenFlags);
      if (!String(ctx.report.info.tokenFlags).includes('TOKEN_INITIALIZED')) throw new Error('token does not report CKF_TOKEN_INITIALIZED');
    });

    const rows: MechanismRow[] = [];
    const flagsByCode = new Map<number, number>();
    await ctx.case('mechanism-list', (c) => {
      const codes = lib.C_GetMechanismList(token.slot);
      const failures: string[] = [];
      for (const code of codes) {
        try {
          const mi = lib.C_GetMechanismInfo(token.slot, code);
          flagsByCode.set(code, mi.flags);
          rows.push({ name: mechanismName(code), code, minKeySize: mi.minKeySize, maxKeySize: mi.maxKeySize, flags: mechanismFlagNames(mi.flags) });
        } catch (err) {
          failures.push(`${mechanismName(code)}: ${describe(err)}`);
          rows.push({ name: mechanismName(code), code, minKeySize: 0, maxKeySize: 0, flags: [], exercised: `C_GetMechanismInfo fails: ${describe(err)}` });
        }
      }
      ctx.report.mechanisms = rows;
      c.detail('count', codes.length);
      if (codes.length === 0) throw new Error('C_GetMechanismList returned no mechanisms');
      if (failures.length) throw new Error(`C_GetMechanismInfo failed for listed mechanisms: ${failures.join(', ')}`);
    });

    await ctx.case('min-le-max', () => {
      // maxKeySize 0 with min 0 means "no key size" (digests); anything else must be an ordered range.
      const bad = rows.filter((r) => r.maxKeySize !== 0 && r.minKeySize > r.maxKeySize);
      if (bad.length) throw new Error(`ulMinKeySize > ulMaxKeySize for ${bad.map((r) => `${r.name} (${r.minKeySize} > ${r.maxKeySize})`).join(', ')}`);
    });

    await ctx.case('key-size-units', (c) => {
      // PKCS#11 gives RSA sizes in modulus bits, EC sizes in field bits (v2.40 current mechanisms §2.1, §2.3)
      // and Edwards sizes in curve bits (3.0 §2.3.5). A byte count shows up as implausibly small maxima.
      const wrong: string[] = [];
      for (const r of rows) {
        if (RSA_MECHS.has(r.code) && r.maxKeySize > 0 && r.maxKeySize <= 512) wrong.push(`${r.name} max ${r.maxKeySize} (bytes?)`);
        if ((EC_MECHS.has(r.code) || EDDSA_MECHS.has(r.code)) && r.maxKeySize > 0 && r.maxKeySize < 160) wrong.push(`${r.name} max ${r.maxKeySize} (bytes?)`);
        if (EDDSA_MECHS.has(r.code) && (![255, 448].includes(r.minKeySize) || ![255, 448].includes(r.maxKeySize))) {
          ctx.finding('deviation', `${r.name} reports key sizes ${r.minKeySize}..${r.maxKeySize}; Edwards curves are 255 (Ed25519) and 448 (Ed448) bits (SoftHSMv2#559)`);
          c.detail(`${r.name}`, `${r.minKeySize}..${r.maxKeySize}`);
        }
      }
      if (wrong.length) throw new Error(`key sizes not in bits: ${wrong.join(', ')}`);
    });

    // Exercise the DNSSEC-relevant mechanisms whether or not they are advertised.
    const keys = new Map<KeyAlg, KeyPair | Error>();
    const data = randomBytes(100);
    try {
      for (const ex of EXERCISES) {
        const name = mechanismName(ex.mechanism);
        const row = rows.find((r) => r.code === ex.mechanism);
        const advertised = ((flagsByCode.get(ex.mechanism) ?? 0) & FLAG[ex.flagName]) !== 0;
        await ctx.case(`exercise/${name}`, async (c) => {
          c.detail('advertised', advertised);
          let outcome: { works: boolean; why: string };
          if (ex.kind === 'generate') {
            const k = await keyFor(token, ex.alg, keys);
            outcome = k instanceof Error ? { works: false, why: `${ex.alg} key generation failed: ${k.message}` } : { works: true, why: '' };
          } else {
            const k = await keyFor(token, ex.alg, keys);
            if (k instanceof Error) {
              if (row) row.exercised = `not tried: no ${ex.alg} key (${k.message})`;
              return c.unsupported(`cannot exercise ${name}: no ${ex.alg} key could be generated (${k.message})`);
            }
            const scheme = ex.scheme!;
            try {
              const session = token.openSession();
              try {
                const sig = await signAsync(token, session, scheme.mechanism, k.privateKey, scheme.input(data));
                const ok = scheme.verify(publicKeyObject(token, k.publicKey), data, sig);
                outcome = ok ? { works: true, why: '' } : { works: false, why: 'signature does not verify with node:crypto' };
              } finally { token.closeSession(session); }
            } catch (err) {
              outcome = { works: false, why: describe(err) };
              const code = ckrOf(err);
              if (code !== undefined) c.ckr(code);
            }
          }
          if (row) row.exercised = outcome.works ? 'works' : `fails: ${outcome.why}`;
          c.detail('works', outcome.works);
          if (advertised && !outcome.works) {
            ctx.finding('lie', `${name} advertises CKF_${ex.flagName} but ${ex.kind === 'generate' ? 'key generation' : 'signing'} fails: ${outcome.why}`);
            throw new Error(`advertised CKF_${ex.flagName} but fails: ${outcome.why}`);
          }
          if (!advertised && outcome.works) {
            ctx.finding('unadvertised', `${name} works for ${ex.kind === 'generate' ? 'key generation' : 'signing'} but ${row ? `lacks CKF_${ex.flagName}` : 'is not in C_GetMechanismList'}`);
          }
          if (!advertised && !outcome.works) {
            ctx.finding('note', `${name} is not offered${row ? ` with CKF_${ex.flagName}` : ' (not in C_GetMechanismList)'} and ${ex.kind === 'generate' ? 'key generation' : 'signing'} fails (${outcome.why}): DNSSEC signers cannot use it on this token`);
            c.unsupported(`${name} is not advertised ${row ? `with CKF_${ex.flagName}` : 'in C_GetMechanismList'}, and fails: ${outcome.why}`);
          }
        });
      }
    } finally {
      // Anything left (a destroy that failed) stays tracked and the runner's cleanup retries it.
      for (const k of keys.values()) if (!(k instanceof Error)) token.destroyPair(k);
    }
  },
};
