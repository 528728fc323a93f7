/**
 * Key generation and attribute policy, the way DNSSEC signers create and find keys (docs/pkcs11-notes.md §5, §9):
 * on-token RSA/EC/Ed25519 pairs that are SENSITIVE and not EXTRACTABLE, label and binary CKA_ID set at
 * generation, lookup by label and by ID, relabelling, and importing keys with C_CreateObject (Knot).
 * Attributes are read one per call: pkcs11js's C_GetAttributeValue is all-or-nothing (PKCS#11 3.0 §5.7.5; docs/pkcs11-notes.md §5).
 */
import { type JsonWebKey, type KeyObject, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { CaseHandle, Suite, SuiteCase, SuiteContext } from '../../src/suite.js';
import { pkcs11, readBool, trimPadded, type Handle, type Template } from '../../src/pkcs11/module.js';
import { ckrOf } from '../../src/pkcs11/ckr.js';
import type { Token } from '../../src/pkcs11/token.js';
import { CKF_GENERATE_KEY_PAIR, attributeName, ckrName, mechanismName } from '../../src/pkcs11/constants.js';
import { KEY_ALGS, generateKeyPair, readPublicKey, signAsync, type KeyAlg, type KeyPair } from '../../src/pkcs11/keys.js';
import { toKeyObject, unwrapOctetString } from '../../src/pkcs11/public-key.js';
import { schemeForKey } from '../../src/pkcs11/mechanisms.js';
import type { Capability } from '../../src/capabilities.js';
import { CAPABILITY_ANSWERS, type DriverReport } from '../../src/results.js';
import { notOfferedReason } from '../../src/pkcs11/transport.js';
import { allowedFor, expectFailure } from './codes.js';

const ALGS: KeyAlg[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384', 'ec-p521', 'ed25519'];
const CAPABILITY: Record<KeyAlg, Capability> = {
  'rsa-2048': 'keygen:rsa-2048',
  'rsa-3072': 'keygen:rsa-3072',
  'rsa-4096': 'keygen:rsa-4096',
  'ec-p256': 'keygen:ec-p256',
  'ec-p384': 'keygen:ec-p384',
  'ec-p521': 'keygen:ec-p521',
  ed25519: 'keygen:ed25519',
};
/** node:crypto's names for the curves, to check the token made the curve it was asked for. */
const NODE_CURVE = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' } as const;

/** Why the token's mechanism info rules this key out, or undefined when it allows it. */
function mechanismBlocks(token: Token, alg: KeyAlg, report?: DriverReport): string | undefined {
  const info = KEY_ALGS[alg];
  const name = mechanismName(info.mechanism);
  if (!token.offeredMechanisms().has(info.mechanism))
    return report?.transport?.hiddenMechanisms.includes(name) ? notOfferedReason(report, info.mechanism) : `${name} is not in the token's mechanism list`;
  const mi = token.lib.C_GetMechanismInfo(token.slot, info.mechanism);
  if ((mi.flags & CKF_GENERATE_KEY_PAIR) === 0) return `${name} lacks CKF_GENERATE_KEY_PAIR`;
  // Edwards sizes are not checked: SoftHSM reports 256..456 for 255/448-bit curves (discovery records it).
  if (info.family !== 'ed25519' && (info.bits < mi.minKeySize || info.bits > mi.maxKeySize)) {
    return `${name} allows ${mi.minKeySize}..${mi.maxKeySize} bits, not ${info.bits}`;
  }
  return undefined;
}

function sameHandles(a: Handle[], b: Handle[]): boolean {
  const hex = (hs: Handle[]) =>
    hs
      .map((h) => h.toString('hex'))
      .sort()
      .join(',');
  return hex(a) === hex(b);
}

/**
 * A call the case is about failed: record its code (case CKR and golden value). A capability answer
 * (CAPABILITY_ANSWERS, e.g. CKR_FUNCTION_NOT_SUPPORTED) stops the case as unsupported; any other code is a
 * failure, and one the specification does not allow for the function says so.
 */
function unsupportedWithCode(ctx: SuiteContext, c: CaseHandle, fn: string, situation: string, err: unknown): never {
  const code = ckrOf(err);
  if (code === undefined) throw err;
  c.ckr(code);
  ctx.report.goldenCodes[`${fn}: ${situation}`] = ckrName(code);
  const { allowed, where } = allowedFor(fn, code);
  if (!allowed) throw new Error(`${fn} returned ${ckrName(code)} (${situation}), which ${where} does not allow`);
  if (CAPABILITY_ANSWERS.includes(ckrName(code))) c.unsupported(`${fn} (${situation}) returned ${ckrName(code)}: the token does not offer it`);
  throw new Error(`${fn} (${situation}) failed with ${ckrName(code)}`);
}

async function generateAndCheck(c: CaseHandle, token: Token, alg: KeyAlg): Promise<KeyPair> {
  const info = KEY_ALGS[alg];
  const pair = await generateKeyPair(token, alg, { label: `hsm-harness-keygen-${alg}` });
  const key = toKeyObject(readPublicKey(token, pair.publicKey));
  const d = key.asymmetricKeyDetails ?? {};
  if (info.family === 'rsa' && d.modulusLength !== info.bits) throw new Error(`asked for a ${info.bits}-bit modulus, got ${d.modulusLength}`);
  if (info.family === 'ec' && d.namedCurve !== NODE_CURVE[info.curve!]) throw new Error(`asked for ${info.curve}, got ${d.namedCurve}`);
  if (info.family === 'ed25519' && key.asymmetricKeyType !== 'ed25519') throw new Error(`asked for Ed25519, got ${key.asymmetricKeyType}`);
  if (info.family !== 'rsa') {
    // PKCS#11 2.40 §2.3.3: CKA_EC_POINT is DER OCTET STRING(04‖X‖Y); PKCS#11 3.1 makes Edwards points raw.
    const raw = token.attr(pair.publicKey, pkcs11.CKA_EC_POINT);
    const { derWrapped } = unwrapOctetString(raw);
    c.detail('ecPointEncoding', derWrapped ? 'der-octet-string' : 'raw');
    c.detail('ecPointBytes', raw.length);
  }
  return pair;
}

/** Flags the token sets at generation (PKCS#11 v2.40 §4.9), which OpenSC may report stale in the generating process. */
const GENERATION_FLAGS = [pkcs11.CKA_SENSITIVE, pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_LOCAL].map(attributeName);

async function policyChecks(ctx: SuiteContext, c: CaseHandle, token: Token, pair: KeyPair): Promise<void> {
  let problems = attributeProblems(token, pair);
  const wrongFlags = (ps: string[]) => ps.filter((p) => GENERATION_FLAGS.some((f) => p.includes(` ${f} is false`)));
  if (wrongFlags(problems).length) {
    // Judge the token by what it stores, not by the module's in-process cache: a fresh C_Initialize and login.
    const before = wrongFlags(problems);
    token.reopen();
    problems = attributeProblems(token, pair);
    const stale = before.filter((p) => !problems.includes(p));
    if (stale.length) {
      c.detail('staleInProcessView', stale);
      ctx.finding(
        'note',
        `${trimPadded(token.lib.C_GetInfo().libraryDescription)}: in the process that generated a key, the module reports ` +
          "attributes the token sets at generation as false that a fresh module session reads true (a module cache, not the token's policy)",
      );
    }
  }
  // The private value must not come out (CKR_ATTRIBUTE_SENSITIVE, v2.40 §5.7 C_GetAttributeValue).
  const priv = pair.privateKey;
  const family = KEY_ALGS[pair.alg].family;
  const secret = family === 'rsa' ? pkcs11.CKA_PRIVATE_EXPONENT : pkcs11.CKA_VALUE;
  let leaked = false;
  try {
    token.attr(priv, secret);
    leaked = true;
  } catch (err) {
    const situation = `${attributeName(secret)} of a sensitive ${family === 'rsa' ? 'RSA' : family === 'ec' ? 'EC' : 'Ed25519'} private key`;
    expectFailure(ctx, c, 'C_GetAttributeValue', situation, err, pkcs11.CKR_ATTRIBUTE_SENSITIVE);
  }
  if (leaked) problems.push(`${attributeName(secret)} of a SENSITIVE, non-EXTRACTABLE private key is readable`);
  if (problems.length) throw new Error(problems.join('; '));
}

function attributeProblems(token: Token, pair: KeyPair): string[] {
  const problems: string[] = [];
  const expectBool = (h: Handle, type: number, want: boolean, half: string) => {
    try {
      const got = readBool(token.attr(h, type));
      if (got !== want) problems.push(`${half} ${attributeName(type)} is ${got}, expected ${want}`);
    } catch (err) {
      problems.push(`${half} ${attributeName(type)} unreadable: ${ckrOf(err) !== undefined ? ckrName(ckrOf(err)!) : (err as Error).message}`);
    }
  };
  const priv = pair.privateKey;
  expectBool(priv, pkcs11.CKA_PRIVATE, true, 'private');
  expectBool(priv, pkcs11.CKA_SENSITIVE, true, 'private');
  expectBool(priv, pkcs11.CKA_EXTRACTABLE, false, 'private');
  // PKCS#11 v2.40 §4.9: set by the token for keys that were always sensitive / never extractable / generated on it.
  expectBool(priv, pkcs11.CKA_ALWAYS_SENSITIVE, true, 'private');
  expectBool(priv, pkcs11.CKA_NEVER_EXTRACTABLE, true, 'private');
  expectBool(priv, pkcs11.CKA_LOCAL, true, 'private');
  expectBool(pair.publicKey, pkcs11.CKA_LOCAL, true, 'public');
  for (const [half, h] of [
    ['private', priv],
    ['public', pair.publicKey],
  ] as const) {
    if (token.attr(h, pkcs11.CKA_LABEL).toString('utf8') !== pair.label) problems.push(`${half} CKA_LABEL differs from the one set at generation`);
    if (!token.attr(h, pkcs11.CKA_ID).equals(pair.id)) problems.push(`${half} CKA_ID differs from the one set at generation`);
  }
  return problems;
}

/** What the cases share: the pair of each key type until its policy case, the pairs of the ID cases, the imported halves. */
interface KeygenState {
  token: Token;
  pairs: Partial<Record<KeyAlg, KeyPair>>;
  ecPointsDer: boolean[];
  /** Pairs made by the ID cases (undefined until one ran): find-by-label and set-label use the last. */
  idPairs?: KeyPair[];
  imported: Handle[];
  works: Record<'public' | 'private', boolean>;
  importKey?: ImportKey;
}

async function generateCase(c: CaseHandle, s: KeygenState, ctx: SuiteContext, alg: KeyAlg): Promise<void> {
  const { token } = s;
  const blocked = mechanismBlocks(token, alg, ctx.report);
  if (blocked) {
    ctx.capability(CAPABILITY[alg], false);
    c.unsupported(blocked);
  }
  let pair: KeyPair;
  try {
    pair = await generateAndCheck(c, token, alg);
  } catch (err) {
    ctx.capability(CAPABILITY[alg], false);
    throw err;
  }
  s.pairs[alg] = pair;
  ctx.capability(CAPABILITY[alg], true);
  if (KEY_ALGS[alg].family === 'ec') {
    s.ecPointsDer.push(unwrapOctetString(token.attr(pair.publicKey, pkcs11.CKA_EC_POINT)).derWrapped);
    const der = s.ecPointsDer.every(Boolean);
    ctx.capability('ec-point:der', der);
    if (!der)
      ctx.finding(
        'deviation',
        'CKA_EC_POINT of EC keys is a raw point; PKCS#11 2.40 §2.3.3 requires a DER OCTET STRING (PowerDNS and OpenSSL providers expect it)',
      );
  }
  if (alg === 'ed25519') {
    const raw = token.attr(pair.publicKey, pkcs11.CKA_EC_POINT);
    if (raw.length !== 32)
      ctx.finding(
        'note',
        `Ed25519 CKA_EC_POINT is ${raw.length} bytes (${unwrapOctetString(raw).derWrapped ? 'DER OCTET STRING' : 'unknown form'}); PKCS#11 3.1 specifies the raw 32-byte key, 3.0 a DER encoding, so consumers must accept both (pkcs11-provider #478)`,
      );
  }
}

/** The cheapest key type the token generates, for the label and ID cases (asked of the mechanism list when keygen/generate did not run). */
function idAlgOf(ctx: SuiteContext, token: Token): KeyAlg | undefined {
  return (['ec-p256', 'rsa-2048', 'ed25519'] as KeyAlg[]).find((a) => ctx.has(CAPABILITY[a]) ?? !mechanismBlocks(token, a));
}

async function idCase(c: CaseHandle, s: KeygenState, ctx: SuiteContext, len: 16 | 20): Promise<void> {
  const { token } = s;
  s.idPairs ??= [];
  const idAlg = idAlgOf(ctx, token);
  if (!idAlg) return c.skip('no key type could be generated');
  // Binary IDs with 0x00 and 0xff: OpenDNSSEC uses 16 random bytes, Cascade and Knot 20 (docs/pkcs11-notes.md §9).
  // The first 12 bytes are the run's prefix and counter (so a leftover is provably ours); the bytes after them are free.
  const id = token.newId(len);
  id[len - 2] = 0x00;
  id[len - 1] = 0xff;
  const pair = await generateKeyPair(token, idAlg, { id, label: `hsm-harness-id${len}-${randomBytes(4).toString('hex')}` });
  s.idPairs.push(pair);
  const ok = [pair.privateKey, pair.publicKey].every((h) => token.attr(h, pkcs11.CKA_ID).equals(id));
  ctx.capability(`id-binary-${len}`, ok);
  if (!ok) throw new Error(`CKA_ID read back differs from the ${len}-byte binary ID set at generation`);
  const found = token.find([{ type: pkcs11.CKA_ID, value: id }]);
  c.detail('foundById', found.length);
  const byId = sameHandles(found, [pair.privateKey, pair.publicKey]);
  ctx.capability('find-by-id', (ctx.has('find-by-id') ?? true) && byId);
  if (!byId) throw new Error(`C_FindObjects by CKA_ID found ${found.length} objects, expected the 2 halves of the pair`);
}

/** The pair the label cases work on: the ID cases' last one, or (when they did not run, e.g. run --case) a new one. */
async function labelPair(c: CaseHandle, s: KeygenState, ctx: SuiteContext): Promise<KeyPair> {
  if (!s.idPairs) {
    const alg = idAlgOf(ctx, s.token);
    if (!alg) return c.skip('no key type could be generated');
    s.idPairs = [await generateKeyPair(s.token, alg, { label: `hsm-harness-label-${randomBytes(4).toString('hex')}` })];
  }
  return s.idPairs.at(-1) ?? c.skip('no key pair from the ID cases');
}

function findByLabelCase(token: Token, ctx: SuiteContext, pair: KeyPair): void {
  const both = token.find([{ type: pkcs11.CKA_LABEL, value: pair.label }]);
  // PowerDNS looks keys up by CKA_LABEL + CKA_CLASS (PowerDNS/pdns pdns/pkcs11signers.cc).
  const priv = token.find([
    { type: pkcs11.CKA_LABEL, value: pair.label },
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
  ]);
  const ok = sameHandles(both, [pair.privateKey, pair.publicKey]) && sameHandles(priv, [pair.privateKey]);
  ctx.capability('find-by-label', ok);
  if (!ok) throw new Error(`C_FindObjects by label found ${both.length} objects (expected 2) and by label + class ${priv.length} (expected 1)`);
}

function setLabelCase(c: CaseHandle, token: Token, ctx: SuiteContext, pair: KeyPair): void {
  const label = `hsm-harness-relabelled-${randomBytes(4).toString('hex')}`;
  try {
    for (const h of [pair.privateKey, pair.publicKey]) token.lib.C_SetAttributeValue(token.session, h, [{ type: pkcs11.CKA_LABEL, value: label }]);
  } catch (err) {
    // Not a failure: Cascade only loses relabelling (the NetHSM cannot do it).
    ctx.capability('set-label', false);
    unsupportedWithCode(ctx, c, 'C_SetAttributeValue', 'CKA_LABEL of a key pair', err);
  }
  const readBack = [pair.privateKey, pair.publicKey].every((h) => token.attr(h, pkcs11.CKA_LABEL).toString('utf8') === label);
  const found = token.find([{ type: pkcs11.CKA_LABEL, value: label }]);
  const ok = readBack && sameHandles(found, [pair.privateKey, pair.publicKey]);
  ctx.capability('set-label', ok);
  if (!ok) throw new Error(`C_SetAttributeValue(CKA_LABEL) returned CKR_OK but the label ${readBack ? 'is not found by C_FindObjects' : 'did not change'}`);
}

/** The pairs of a case, destroyed once no later case uses them (a failed destroy stays tracked for the cleanup check). */
function destroyPairs(token: Token, pairs: (KeyPair | undefined)[]): void {
  for (const p of pairs) token.objects.destroyPair(p);
}

export const keygenSuite: Suite<KeygenState> = {
  name: 'keygen',
  title: 'Key generation (RSA, EC, Ed25519), attribute policy, labels and IDs, C_CreateObject',
  needs: 'pkcs11',
  setup: (ctx) => ({ token: ctx.token!, pairs: {}, ecPointsDer: [], imported: [], works: { public: false, private: false } }),
  cases: [
    ...ALGS.flatMap((alg): SuiteCase<KeygenState>[] => [
      { name: `generate/${alg}`, run: (c, s, ctx) => generateCase(c, s, ctx, alg) },
      {
        name: `policy/${alg}`,
        needs: [`generate/${alg}`],
        async run(c, s, ctx) {
          try {
            await policyChecks(ctx, c, s.token, s.pairs[alg]!);
          } finally {
            destroyPairs(s.token, [s.pairs[alg]]);
            delete s.pairs[alg];
          }
        },
      },
    ]),
    { name: 'id-binary-16', run: (c, s, ctx) => idCase(c, s, ctx, 16) },
    { name: 'id-binary-20', run: (c, s, ctx) => idCase(c, s, ctx, 20) },
    { name: 'find-by-label', run: async (c, s, ctx) => findByLabelCase(s.token, ctx, await labelPair(c, s, ctx)) },
    {
      name: 'set-label',
      async run(c, s, ctx) {
        try {
          setLabelCase(c, s.token, ctx, await labelPair(c, s, ctx));
        } finally {
          destroyPairs(s.token, s.idPairs ?? []);
          s.idPairs = [];
        }
      },
    },
    { name: 'create-object/public', run: (c, s, ctx) => createObjectCase(c, s, ctx, 'public') },
    { name: 'create-object/private', run: (c, s, ctx) => createObjectCase(c, s, ctx, 'private') },
  ],
  teardown(_ctx, s) {
    destroyPairs(s.token, [...Object.values(s.pairs), ...(s.idPairs ?? [])]);
    if (s.imported.length) s.token.objects.destroyPair({ publicKey: s.imported[0]!, privateKey: s.imported.at(-1)! });
  },
};

/** The EC P-256 key both create-object cases import, made by node:crypto; one CKA_ID and label for both halves. */
interface ImportKey {
  publicKey: KeyObject;
  jwk: JsonWebKey;
  common: Template;
  point: Buffer;
}

function importKey(token: Token): ImportKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([0x04, 0x41, 0x04]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const id = token.newId();
  const common = [
    { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_EC },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_LABEL, value: `hsm-harness-import-${id.subarray(8, 12).toString('hex')}` },
    { type: pkcs11.CKA_ID, value: id },
    { type: pkcs11.CKA_EC_PARAMS, value: KEY_ALGS['ec-p256'].ecParams! },
  ];
  return { publicKey, jwk, common, point };
}

/** Knot imports keys with C_CreateObject (CZ-NIC/knot src/libknot/dnssec/keystore/pkcs11.c). The key material comes from node:crypto. */
async function createObjectCase(c: CaseHandle, s: KeygenState, ctx: SuiteContext, half: 'public' | 'private'): Promise<void> {
  const { token } = s;
  const key = (s.importKey ??= importKey(token));
  try {
    if (half === 'public') importPublic(c, token, ctx, key, s.imported);
    else await importPrivate(c, token, ctx, key, s.imported);
    s.works[half] = true;
  } finally {
    ctx.capability('create-object', s.works.public && s.works.private);
    if (half === 'private') {
      // Both halves share one CKA_ID: a failed destroy stays tracked for the cleanup check, which reports it.
      token.objects.destroyPair(s.imported.length ? { publicKey: s.imported[0]!, privateKey: s.imported.at(-1)! } : undefined);
      s.imported = [];
    }
  }
}

function importPublic(c: CaseHandle, token: Token, ctx: SuiteContext, key: ImportKey, created: Handle[]): void {
  let h: Handle;
  try {
    h = token.createObject([
      ...key.common,
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PUBLIC_KEY },
      { type: pkcs11.CKA_PRIVATE, value: false },
      { type: pkcs11.CKA_VERIFY, value: true },
      { type: pkcs11.CKA_EC_POINT, value: key.point },
    ]);
  } catch (err) {
    unsupportedWithCode(ctx, c, 'C_CreateObject', 'EC P-256 public key', err);
  }
  created.push(h);
  const back = toKeyObject(readPublicKey(token, h)).export({ format: 'jwk' });
  if (back.x !== key.jwk.x || back.y !== key.jwk.y) throw new Error('the imported public key reads back as a different point');
}

async function importPrivate(c: CaseHandle, token: Token, ctx: SuiteContext, key: ImportKey, created: Handle[]): Promise<void> {
  let h: Handle;
  try {
    h = token.createObject([
      ...key.common,
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
      { type: pkcs11.CKA_PRIVATE, value: true },
      { type: pkcs11.CKA_SENSITIVE, value: true },
      { type: pkcs11.CKA_EXTRACTABLE, value: false },
      { type: pkcs11.CKA_SIGN, value: true },
      { type: pkcs11.CKA_VALUE, value: Buffer.from(key.jwk.d!, 'base64url') },
    ]);
  } catch (err) {
    unsupportedWithCode(ctx, c, 'C_CreateObject', 'EC P-256 private key', err);
  }
  created.push(h);
  // The imported key must sign, and node:crypto's copy of the public key must accept the signature.
  const data = randomBytes(64);
  const scheme = schemeForKey('ec-p256');
  const session = token.openSession();
  let sig: Buffer;
  try {
    sig = await signAsync(token, session, scheme.mechanism, h, scheme.input(data));
  } finally {
    token.closeSession(session);
  }
  if (!scheme.verify(key.publicKey, data, sig)) throw new Error('signature by the imported private key does not verify');
  // PKCS#11 v2.40 §4.9: CKA_LOCAL is true only for keys generated on the token.
  const local = readBool(token.attr(h, pkcs11.CKA_LOCAL));
  c.detail('local', local);
  if (local) ctx.finding('deviation', 'an imported private key reports CKA_LOCAL = true; PKCS#11 reserves it for keys generated on the token');
}
