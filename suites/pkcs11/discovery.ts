/**
 * Discovery: what the library, slot and token say about themselves, the mechanism table, and whether the
 * mechanism flags tell the truth. Reduced tokens and shims advertise what they cannot do (the lesson of the
 * smartcards4dnssec project), so every function flag of every DNSSEC-relevant mechanism (src/pkcs11/mechanisms.ts)
 * is checked: against the mechanism's class in the PKCS#11 mechanism tables (a digest claiming CKF_SIGN is a
 * contradiction), and against what the token does when asked. Each contradiction is one 'lie' finding naming
 * mechanism, flag and observed result. A physical token is never asked to perform a mechanism it does not list.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CaseHandle, Suite, SuiteCase, SuiteContext } from '../../src/suite.js';
import type { MechanismRow } from '../../src/results.js';
import { pkcs11, trimPadded, type Handle } from '../../src/pkcs11/module.js';
import { ckrOf } from '../../src/pkcs11/ckr.js';
import type { Token } from '../../src/pkcs11/token.js';
import { ckrName, mechanismFlagNames, mechanismName } from '../../src/pkcs11/constants.js';
import { generateKeyPair, keyTemplates, publicKeyObject, signAsync, type KeyAlg, type KeyPair } from '../../src/pkcs11/keys.js';
import { notOfferedReason } from '../../src/pkcs11/transport.js';
import {
  FLAG,
  FUNCTION_FLAGS,
  MECHANISMS,
  SMALLEST_KEY,
  signScheme,
  type FlagName,
  type MechanismClass,
  type MechanismSpec,
} from '../../src/pkcs11/mechanisms.js';

// CK_SLOT_INFO and CK_TOKEN_INFO flag bits, PKCS#11 v2.40 §3.2 (pkcs11t.h).
const SLOT_FLAGS: [number, string][] = [
  [0x1, 'TOKEN_PRESENT'],
  [0x2, 'REMOVABLE_DEVICE'],
  [0x4, 'HW_SLOT'],
];
const TOKEN_FLAGS: [number, string][] = [
  [0x1, 'RNG'],
  [0x2, 'WRITE_PROTECTED'],
  [0x4, 'LOGIN_REQUIRED'],
  [0x8, 'USER_PIN_INITIALIZED'],
  [0x20, 'RESTORE_KEY_NOT_NEEDED'],
  [0x40, 'CLOCK_ON_TOKEN'],
  [0x100, 'PROTECTED_AUTHENTICATION_PATH'],
  [0x200, 'DUAL_CRYPTO_OPERATIONS'],
  [0x400, 'TOKEN_INITIALIZED'],
  [0x800, 'SECONDARY_AUTHENTICATION'],
  [0x10000, 'USER_PIN_COUNT_LOW'],
  [0x20000, 'USER_PIN_FINAL_TRY'],
  [0x40000, 'USER_PIN_LOCKED'],
  [0x80000, 'USER_PIN_TO_BE_CHANGED'],
  [0x100000, 'SO_PIN_COUNT_LOW'],
  [0x200000, 'SO_PIN_FINAL_TRY'],
  [0x400000, 'SO_PIN_LOCKED'],
  [0x800000, 'SO_PIN_TO_BE_CHANGED'],
  [0x1000000, 'ERROR_STATE'],
];

function flagNames(flags: number, table: [number, string][]): string {
  return table
    .filter(([bit]) => (flags & bit) !== 0)
    .map(([, n]) => n)
    .join(' | ');
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

/** What the cases share: the token's mechanism table (read by mechanism-list, or on first use) and the probe's keys. */
interface DiscoveryState {
  token: Token;
  mechanisms?: { rows: MechanismRow[]; flagsByCode: Map<number, number>; failures: string[] };
  keys: Map<KeyAlg, KeyPair | Error>;
  probe: Probe;
}

function readMechanisms(token: Token): NonNullable<DiscoveryState['mechanisms']> {
  const rows: MechanismRow[] = [];
  const flagsByCode = new Map<number, number>();
  const failures: string[] = [];
  for (const code of token.lib.C_GetMechanismList(token.slot)) {
    try {
      const mi = token.lib.C_GetMechanismInfo(token.slot, code);
      flagsByCode.set(code, mi.flags);
      rows.push({ name: mechanismName(code), code, minKeySize: mi.minKeySize, maxKeySize: mi.maxKeySize, flags: mechanismFlagNames(mi.flags) });
    } catch (err) {
      failures.push(`${mechanismName(code)}: ${describe(err)}`);
      rows.push({ name: mechanismName(code), code, minKeySize: 0, maxKeySize: 0, flags: [], exercised: `C_GetMechanismInfo fails: ${describe(err)}` });
    }
  }
  return { rows, flagsByCode, failures };
}

function mechanismsOf(s: DiscoveryState): NonNullable<DiscoveryState['mechanisms']> {
  s.mechanisms ??= readMechanisms(s.token);
  return s.mechanisms;
}

function mechanismListCase(c: CaseHandle, s: DiscoveryState, ctx: SuiteContext): void {
  s.mechanisms = undefined;
  const { rows, failures } = mechanismsOf(s);
  ctx.report.mechanisms = rows;
  c.detail('count', rows.length);
  if (rows.length === 0) throw new Error('C_GetMechanismList returned no mechanisms');
  if (failures.length) throw new Error(`C_GetMechanismInfo failed for listed mechanisms: ${failures.join(', ')}`);
}

function keySizeUnitsCase(c: CaseHandle, s: DiscoveryState, ctx: SuiteContext): void {
  // PKCS#11 gives RSA sizes in modulus bits, EC sizes in field bits (v2.40 current mechanisms §2.1, §2.3)
  // and Edwards sizes in curve bits (3.0 §2.3.5). A byte count shows up as implausibly small maxima.
  const wrong: string[] = [];
  for (const r of mechanismsOf(s).rows) {
    if (RSA_MECHS.has(r.code) && r.maxKeySize > 0 && r.maxKeySize <= 512) wrong.push(`${r.name} max ${r.maxKeySize} (bytes?)`);
    if ((EC_MECHS.has(r.code) || EDDSA_MECHS.has(r.code)) && r.maxKeySize > 0 && r.maxKeySize < 160) wrong.push(`${r.name} max ${r.maxKeySize} (bytes?)`);
    if (EDDSA_MECHS.has(r.code) && (![255, 448].includes(r.minKeySize) || ![255, 448].includes(r.maxKeySize))) {
      ctx.finding(
        'deviation',
        `${r.name} reports key sizes ${r.minKeySize}..${r.maxKeySize}; Edwards curves are 255 (Ed25519) and 448 (Ed448) bits (SoftHSMv2#559)`,
      );
      c.detail(`${r.name}`, `${r.minKeySize}..${r.maxKeySize}`);
    }
  }
  if (wrong.length) throw new Error(`key sizes not in bits: ${wrong.join(', ')}`);
}

/** A DNSSEC-relevant mechanism the token does not list: tried anyway on a software token, to catch unadvertised ones. */
async function unlistedMechanism(c: CaseHandle, s: DiscoveryState, ctx: SuiteContext, m: MechanismSpec): Promise<void> {
  const primary = PRIMARY[m.class];
  if (ctx.traits.physical) {
    c.unsupported(`${m.name} is not offered (not in C_GetMechanismList); a physical token is not asked to perform a mechanism it does not list`);
  }
  const o = await s.probe.exercise(m, primary);
  c.detail('works', o.works);
  if (o.works) {
    ctx.finding('unadvertised', `${m.name} works for ${VERB[primary]} but is not in C_GetMechanismList`);
    return;
  }
  const notOffered = ctx.report.transport?.hiddenMechanisms.includes(m.name)
    ? notOfferedReason(ctx.report, m.code)
    : `${m.name} is not offered (not in C_GetMechanismList)`;
  return c.unsupported(`${notOffered}, and ${VERB[primary]} ${o.tried ? 'fails' : 'cannot be tried'}: ${o.why}`);
}

/** Each advertised function flag checked against the mechanism's class and exercised; what was observed, and the lies. */
async function checkFlags(c: CaseHandle, s: DiscoveryState, ctx: SuiteContext, m: MechanismSpec, flags: number) {
  const observed: Record<string, string> = {};
  const lies: string[] = [];
  let refusalCode: number | undefined;
  for (const f of FUNCTION_FLAGS) {
    if ((flags & FLAG[f]) === 0) continue;
    if (!m.allowedFlags.includes(f)) {
      const answer = await s.probe.contradiction(m, f);
      observed[f] = `contradicts the mechanism class (${answer})`;
      ctx.finding('lie', `${m.name} advertises CKF_${f}, which PKCS#11 does not define for a ${CLASS_TEXT[m.class]} mechanism (observed: ${answer})`);
      lies.push(`CKF_${f} contradicts the mechanism class (${answer})`);
      continue;
    }
    if (!EXERCISED[m.class].includes(f)) continue;
    const o = await s.probe.exercise(m, f);
    observed[f] = o.works ? 'works' : o.tried ? `fails: ${o.why}` : `not tried: ${o.why}`;
    if (o.tried && !o.works) {
      if (o.code !== undefined && !refusalCode) c.ckr((refusalCode = o.code)); // the first refusal is the case's code
      if (o.wrongCode) {
        ctx.finding('deviation', `${m.name}: a valid signature verifies, but ${o.why} (PKCS#11 v2.40 §5.13 C_Verify)`);
        lies.push(`CKF_${f} works, but ${o.why}`);
      } else {
        ctx.finding('lie', `${m.name} advertises CKF_${f} but ${VERB[f]} fails: ${o.why}`);
        lies.push(`advertised CKF_${f} but fails: ${o.why}`);
      }
    }
  }
  return { observed, lies };
}

async function exerciseCase(c: CaseHandle, s: DiscoveryState, ctx: SuiteContext, m: MechanismSpec): Promise<void> {
  const primary = PRIMARY[m.class];
  const { rows, flagsByCode } = mechanismsOf(s);
  const row = rows.find((r) => r.code === m.code);
  c.detail('offered', row !== undefined);
  if (!row) return unlistedMechanism(c, s, ctx, m);
  const flags = flagsByCode.get(m.code) ?? 0;
  const { observed, lies } = await checkFlags(c, s, ctx, m, flags);
  // Listed without the flag of its main function: worth knowing when it works anyway (never tried on a physical token).
  if ((flags & FLAG[primary]) === 0 && !ctx.traits.physical) {
    const o = await s.probe.exercise(m, primary);
    observed[primary] = o.works ? 'works (not advertised)' : `not advertised; ${o.tried ? 'fails' : 'not tried'}: ${o.why}`;
    if (o.works) ctx.finding('unadvertised', `${m.name} works for ${VERB[primary]} but lacks CKF_${primary}`);
  }
  row.exercised =
    Object.entries(observed)
      .map(([f, r]) => `${f} ${r}`)
      .join('; ') || 'no function flag to exercise';
  row.exercisedFlags = observed;
  c.detail('flags', observed);
  if (lies.length) throw new Error(lies.join('; '));
  if ((flags & FLAG[primary]) === 0 && !observed[primary]?.startsWith('works')) {
    c.unsupported(`${m.name} is listed without CKF_${primary}`);
  }
}

export const discoverySuite: Suite<DiscoveryState> = {
  name: 'discovery',
  title: 'Library, slot and token information; mechanism table; do the mechanism flags tell the truth',
  needs: 'pkcs11',
  setup(ctx) {
    const keys = new Map<KeyAlg, KeyPair | Error>();
    return { token: ctx.token!, keys, probe: new Probe(ctx.token!, keys) };
  },
  cases: [
    {
      name: 'info',
      run(c, s, ctx) {
        readInfo(ctx, s.token);
        c.detail('cryptokiVersion', ctx.report.info.cryptokiVersion);
        c.detail('tokenFlags', ctx.report.info.tokenFlags);
        if (!String(ctx.report.info.tokenFlags).includes('TOKEN_INITIALIZED')) throw new Error('token does not report CKF_TOKEN_INITIALIZED');
      },
    },
    { name: 'mechanism-list', run: mechanismListCase },
    {
      name: 'min-le-max',
      run(_c, s) {
        // maxKeySize 0 with min 0 means "no key size" (digests); anything else must be an ordered range.
        const bad = mechanismsOf(s).rows.filter((r) => r.maxKeySize !== 0 && r.minKeySize > r.maxKeySize);
        if (bad.length) throw new Error(`ulMinKeySize > ulMaxKeySize for ${bad.map((r) => `${r.name} (${r.minKeySize} > ${r.maxKeySize})`).join(', ')}`);
      },
    },
    { name: 'key-size-units', run: keySizeUnitsCase },
    // Every DNSSEC-relevant mechanism: each advertised function flag checked against its class and exercised.
    ...MECHANISMS.map((m): SuiteCase<DiscoveryState> => ({ name: `exercise/${m.name}`, run: (c, s, ctx) => exerciseCase(c, s, ctx, m) })),
  ],
  teardown(_ctx, s) {
    // Anything left (a destroy that failed) stays tracked and the cleanup check retries it.
    for (const k of s.keys.values()) if (!(k instanceof Error)) s.token.objects.destroyPair(k);
  },
};

/** The function that defines each class, and the function flags exercised for it ("where relevant" for DNSSEC). */
const PRIMARY: Record<MechanismClass, FlagName> = { 'key-pair-gen': 'GENERATE_KEY_PAIR', 'key-gen': 'GENERATE', sign: 'SIGN', digest: 'DIGEST', wrap: 'WRAP' };
const EXERCISED: Record<MechanismClass, FlagName[]> = {
  'key-pair-gen': ['GENERATE_KEY_PAIR'],
  'key-gen': ['GENERATE'],
  sign: ['SIGN', 'VERIFY'],
  digest: ['DIGEST'],
  wrap: ['WRAP', 'UNWRAP', 'ENCRYPT', 'DECRYPT'],
};
const CLASS_TEXT: Record<MechanismClass, string> = {
  'key-pair-gen': 'key pair generation',
  'key-gen': 'secret key generation',
  sign: 'signature',
  digest: 'digest',
  wrap: 'key wrapping',
};
const VERB: Partial<Record<FlagName, string>> & Record<FlagName, string> = {
  ENCRYPT: 'encryption',
  DECRYPT: 'decryption',
  DIGEST: 'digesting',
  SIGN: 'signing',
  SIGN_RECOVER: 'signing with recovery',
  VERIFY: 'verification',
  VERIFY_RECOVER: 'verification with recovery',
  GENERATE: 'key generation',
  GENERATE_KEY_PAIR: 'key generation',
  WRAP: 'key wrapping',
  UNWRAP: 'key unwrapping',
  DERIVE: 'key derivation',
};

interface Outcome {
  works: boolean;
  tried: boolean;
  why: string;
  code?: number;
  /**
   * The function works but answers a wrong return code (a tampered signature gets CKR_GENERAL_ERROR instead of
   * CKR_SIGNATURE_INVALID): a deviation from the specification, not an advertised function that fails.
   */
  wrongCode?: boolean;
}
const works: Outcome = { works: true, tried: true, why: '' };
const notTried = (why: string): Outcome => ({ works: false, tried: false, why });
const failed = (err: unknown): Outcome => ({ works: false, tried: true, why: describe(err), code: ckrOf(err) });

const AES_TEMPLATE = (extra: pkcs11.Template = []): pkcs11.Template => [
  { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
  { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
  { type: pkcs11.CKA_TOKEN, value: false },
  { type: pkcs11.CKA_VALUE_LEN, value: 32 },
  ...extra,
];

/** Runs each function of a mechanism once, in its own session, with keys made for the purpose. */
class Probe {
  /** One signature per signing mechanism, for the VERIFY check. */
  private readonly signatures = new Map<number, { data: Buffer; signature: Buffer; key: KeyPair }>();

  constructor(
    private readonly token: Token,
    private readonly keys: Map<KeyAlg, KeyPair | Error>,
  ) {}

  private async inSession<T>(fn: (s: Handle) => Promise<T> | T): Promise<T> {
    const s = this.token.openSession();
    try {
      return await fn(s);
    } finally {
      this.token.closeSession(s);
    }
  }

  async exercise(m: MechanismSpec, f: FlagName): Promise<Outcome> {
    try {
      switch (f) {
        case 'GENERATE_KEY_PAIR': {
          const k = await keyFor(this.token, m.generates![0]!, this.keys);
          return k instanceof Error ? { works: false, tried: true, why: `${m.generates![0]} key generation failed: ${k.message}` } : works;
        }
        case 'SIGN':
          return await this.sign(m);
        case 'VERIFY':
          return await this.verify(m);
        case 'DIGEST':
          return await this.digest(m);
        case 'GENERATE':
          return await this.inSession((s) => {
            this.token.lib.C_DestroyObject(s, this.token.lib.C_GenerateKey(s, { mechanism: m.code }, AES_TEMPLATE()));
            return works;
          });
        default:
          return await this.wrap(m, f);
      }
    } catch (err) {
      return failed(err);
    }
  }

  private async sign(m: MechanismSpec): Promise<Outcome> {
    const k = await keyFor(this.token, SMALLEST_KEY[m.keyFamily!], this.keys);
    if (k instanceof Error) return notTried(`no ${SMALLEST_KEY[m.keyFamily!]} key (${k.message})`);
    const scheme = signScheme(m.code, k.alg);
    const data = randomBytes(100);
    const sig = await this.inSession((s) => signAsync(this.token, s, scheme.mechanism, k.privateKey, scheme.input(data)));
    if (!scheme.verify(publicKeyObject(this.token, k.publicKey), data, sig))
      return { works: false, tried: true, why: 'signature does not verify with node:crypto' };
    this.signatures.set(m.code, { data, signature: sig, key: k });
    return works;
  }

  /** With a token signature: it must verify and a tampered copy must not. Without one: a wrong signature must be rejected. */
  private async verify(m: MechanismSpec): Promise<Outcome> {
    const made = this.signatures.get(m.code);
    const k = made?.key ?? (await keyFor(this.token, SMALLEST_KEY[m.keyFamily!], this.keys));
    if (k instanceof Error) return notTried(`no ${SMALLEST_KEY[m.keyFamily!]} key (${k.message})`);
    const scheme = signScheme(m.code, k.alg);
    const check = (data: Buffer, sig: Buffer) =>
      this.inSession((s) => {
        this.token.lib.C_VerifyInit(s, scheme.mechanism, k.publicKey);
        try {
          return this.token.lib.C_Verify(s, scheme.input(data), sig);
        } catch (err) {
          if (ckrOf(err) === pkcs11.CKR_SIGNATURE_INVALID || ckrOf(err) === pkcs11.CKR_SIGNATURE_LEN_RANGE) return false;
          throw err;
        }
      });
    if (made) {
      if (!(await check(made.data, made.signature))) return { works: false, tried: true, why: 'C_Verify rejects a valid signature' };
      const bad = Buffer.from(made.signature);
      bad[bad.length >> 1]! ^= 1;
      let accepted: boolean;
      try {
        accepted = await check(made.data, bad);
      } catch (err) {
        const code = ckrOf(err);
        if (code === undefined) throw err;
        return { works: false, tried: true, code, wrongCode: true, why: `a tampered signature gets ${ckrName(code)} instead of CKR_SIGNATURE_INVALID` };
      }
      if (accepted) return { works: false, tried: true, why: 'C_Verify accepts a tampered signature' };
      return works;
    }
    const size = m.keyFamily === 'rsa' ? 256 : 64;
    if (await check(randomBytes(100), randomBytes(size))) return { works: false, tried: true, why: 'C_Verify accepts a random signature' };
    return works;
  }

  private async digest(m: MechanismSpec): Promise<Outcome> {
    const data = randomBytes(100);
    const got = await this.inSession((s) => {
      this.token.lib.C_DigestInit(s, { mechanism: m.code });
      return this.token.lib.C_Digest(s, data, Buffer.alloc(64));
    });
    return got.equals(createHash(m.hash!).update(data).digest()) ? works : { works: false, tried: true, why: "the digest differs from node:crypto's" };
  }

  /** AES key wrap: encrypt/decrypt and wrap/unwrap round trips with keys made on the token (session objects). */
  private async wrap(m: MechanismSpec, f: FlagName): Promise<Outcome> {
    if (!this.token.offeredMechanisms().has(pkcs11.CKM_AES_KEY_GEN)) return notTried('the token does not offer CKM_AES_KEY_GEN to make a key');
    return this.inSession((s) => {
      const lib = this.token.lib;
      const kek = lib.C_GenerateKey(
        s,
        { mechanism: pkcs11.CKM_AES_KEY_GEN },
        AES_TEMPLATE([
          { type: pkcs11.CKA_ENCRYPT, value: true },
          { type: pkcs11.CKA_DECRYPT, value: true },
          { type: pkcs11.CKA_WRAP, value: true },
          { type: pkcs11.CKA_UNWRAP, value: true },
        ]),
      );
      if (f === 'ENCRYPT' || f === 'DECRYPT') {
        const plain = randomBytes(32);
        lib.C_EncryptInit(s, { mechanism: m.code }, kek);
        const sealed = lib.C_Encrypt(s, plain, Buffer.alloc(64));
        lib.C_DecryptInit(s, { mechanism: m.code }, kek);
        const back = lib.C_Decrypt(s, sealed, Buffer.alloc(64));
        return back.equals(plain) ? works : { works: false, tried: true, why: 'decryption does not give back the plaintext' };
      }
      const secret = [
        { type: pkcs11.CKA_SENSITIVE, value: false },
        { type: pkcs11.CKA_EXTRACTABLE, value: true },
      ];
      const key = lib.C_GenerateKey(s, { mechanism: pkcs11.CKM_AES_KEY_GEN }, AES_TEMPLATE(secret));
      const wrapped = lib.C_WrapKey(s, { mechanism: m.code }, kek, key, Buffer.alloc(128));
      const unwrapped = lib.C_UnwrapKey(s, { mechanism: m.code }, kek, wrapped, [
        { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
        { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
        { type: pkcs11.CKA_TOKEN, value: false },
        ...secret,
      ]);
      const value = (h: Handle) => this.token.attr(h, pkcs11.CKA_VALUE, s);
      return value(unwrapped).equals(value(key)) ? works : { works: false, tried: true, why: 'the unwrapped key differs from the wrapped one' };
    });
  }

  /** A flag outside the mechanism's class: what the token answers when the function is started with it. */
  async contradiction(m: MechanismSpec, f: FlagName): Promise<string> {
    const answer = (fn: string, start: (s: Handle) => unknown) =>
      this.inSession((s) => {
        try {
          const made = start(s);
          if (Buffer.isBuffer(made)) this.token.lib.C_DestroyObject(s, made);
          return `${fn} accepted it`;
        } catch (err) {
          return `${fn} returned ${describe(err)}`;
        }
      });
    const rsa = f === 'SIGN' || f === 'VERIFY' ? await keyFor(this.token, 'rsa-2048', this.keys) : undefined;
    if (rsa instanceof Error) return `not tried: no rsa-2048 key (${rsa.message})`;
    switch (f) {
      case 'SIGN':
        return answer('C_SignInit', (s) => {
          this.token.lib.C_SignInit(s, { mechanism: m.code }, rsa!.privateKey);
        });
      case 'VERIFY':
        return answer('C_VerifyInit', (s) => {
          this.token.lib.C_VerifyInit(s, { mechanism: m.code }, rsa!.publicKey);
        });
      case 'DIGEST':
        return answer('C_DigestInit', (s) => {
          this.token.lib.C_DigestInit(s, { mechanism: m.code });
        });
      case 'GENERATE':
        return answer('C_GenerateKey', (s) => this.token.lib.C_GenerateKey(s, { mechanism: m.code }, AES_TEMPLATE()));
      case 'GENERATE_KEY_PAIR':
        return answer('C_GenerateKeyPair', (s) => {
          const { publicTemplate, privateTemplate } = keyTemplates('rsa-2048', 'hsm-harness-discovery-contradiction', randomBytes(20), { onToken: false });
          const pair = this.token.lib.C_GenerateKeyPair(s, { mechanism: m.code }, publicTemplate, privateTemplate);
          this.token.lib.C_DestroyObject(s, pair.privateKey);
          return pair.publicKey;
        });
      default:
        return 'not tried';
    }
  }
}
