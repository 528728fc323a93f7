/**
 * DKEK backup by PKCS#11 key wrapping, for tokens whose driver declares the 'aes-wrap' method and offers two
 * spare tokens (SoftHSM): the same DKEK-derived AES-256 key on tokens A and B; a key generated on A is
 * wrapped (CKM_AES_KEY_WRAP_PAD), unwrapped on B, signs there and verifies with A's public key. The same key
 * is also exported as a SmartCard-HSM key blob by src/dkek, verified offline, restored from the blob into a
 * third token and used to sign. Where the mechanism is missing (p11-kit's RPC drops it) the blob round trip
 * still runs, from a non-sensitive key.
 */
import { createDecipheriv, createPrivateKey, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CaseHandle, Suite, SuiteCase, SuiteContext } from '../../src/suite.js';
import { pkcs11, type Handle, type Template } from '../../src/pkcs11/module.js';
import { Token } from '../../src/pkcs11/token.js';
import { ckrOf } from '../../src/pkcs11/ckr.js';
import { ckrName } from '../../src/pkcs11/constants.js';
import { notOfferedReason } from '../../src/pkcs11/transport.js';
import { generateKeyPair, publicKeyObject, readPublicKey, KEY_ALGS, type KeyAlg, type KeyPair } from '../../src/pkcs11/keys.js';
import { DkekError, type Dkek } from '../../src/dkek/dkek.js';
import { wrapBlob, unwrapBlob, type KeyToWrap, type UnwrappedKey } from '../../src/dkek/blob.js';
import { curveByName } from '../../src/dkek/curves.js';
import { encodeWrapFile, parseWrapFile } from '../../src/dkek/wrapfile.js';
import { verifyBlob, wipeKey } from '../../src/dkek/verify.js';
import { curveOf, keyToWrapFromKeyObject, rsaPrivateExponent } from '../../src/dkek/keys.js';
import { wipe } from '../../src/secrets.js';
import { makeDirs } from '../../src/fsutil.js';
import { dkekSection, harnessDkekFromEnv, offered, randomDkek, signAndVerify, unwrapTemplate, type RoundTrip } from './common.js';
import { dkekReport, type DkekSection } from './report.js';

/** Node's name for RFC 5649 AES key wrap with padding; its default IV is the RFC's A65959A6. */
const KWP_CIPHER = 'id-aes256-wrap-pad';
const KWP_IV = Buffer.from('a65959a6', 'hex');

/** Import the AES-256 key-wrapping key (derived from the DKEK) as a secret-key object. */
function importWrapKey(token: Token, value: Buffer): Handle {
  return token.createObject([
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_EXTRACTABLE, value: false },
    { type: pkcs11.CKA_WRAP, value: true },
    { type: pkcs11.CKA_UNWRAP, value: true },
    { type: pkcs11.CKA_LABEL, value: 'hsm-harness-dkek-kwp' },
    { type: pkcs11.CKA_VALUE, value },
  ]);
}

/** C_CreateObject template for a private key restored from a SmartCard-HSM blob. */
function privateKeyTemplate(key: UnwrappedKey, label: string): Template {
  const base: Template = [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_SIGN, value: true },
    { type: pkcs11.CKA_LABEL, value: label },
  ];
  if (key.kind === 'ec') {
    return [
      ...base,
      { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_EC },
      { type: pkcs11.CKA_EC_PARAMS, value: Buffer.from(curveOf(key).ecParams, 'hex') },
      { type: pkcs11.CKA_VALUE, value: key.d },
    ];
  }
  if (key.kind === 'rsa') {
    const t: Template = [
      ...base,
      { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_RSA },
      { type: pkcs11.CKA_MODULUS, value: key.n },
      { type: pkcs11.CKA_PUBLIC_EXPONENT, value: key.e },
      { type: pkcs11.CKA_PRIVATE_EXPONENT, value: rsaPrivateExponent(key) },
    ];
    if (key.p && key.q && key.dp && key.dq && key.qInv) {
      t.push(
        { type: pkcs11.CKA_PRIME_1, value: key.p },
        { type: pkcs11.CKA_PRIME_2, value: key.q },
        { type: pkcs11.CKA_EXPONENT_1, value: key.dp },
        { type: pkcs11.CKA_EXPONENT_2, value: key.dq },
        { type: pkcs11.CKA_COEFFICIENT, value: key.qInv },
      );
    }
    return t;
  }
  throw new Error('AES blobs are not restored as signing keys');
}

/** The private components of a non-sensitive key pair, read as attributes, in the form wrapBlob takes. */
function readPrivateKey(token: Token, pair: KeyPair): KeyToWrap {
  const a = (t: number) => token.attr(pair.privateKey, t);
  const info = KEY_ALGS[pair.alg];
  if (info.family === 'ec') {
    const curve = curveByName(info.curve!);
    if (!curve) throw new Error(`no blob curve for ${pair.alg}`);
    return { kind: 'ec', curve, d: a(pkcs11.CKA_VALUE), q: readPublicKey(token, pair.publicKey).point! };
  }
  return {
    kind: 'rsa',
    n: a(pkcs11.CKA_MODULUS),
    e: a(pkcs11.CKA_PUBLIC_EXPONENT),
    d: a(pkcs11.CKA_PRIVATE_EXPONENT),
    p: a(pkcs11.CKA_PRIME_1),
    q: a(pkcs11.CKA_PRIME_2),
    dp: a(pkcs11.CKA_EXPONENT_1),
    dq: a(pkcs11.CKA_EXPONENT_2),
    qInv: a(pkcs11.CKA_COEFFICIENT),
  };
}

/** What the cases share: the section, the tokens, the DKEK and its wrap key, the imported wrap keys, each key type's wrapping. */
interface WrapState {
  section: DkekSection;
  roundTrips: RoundTrip[];
  kwpAdvertised: boolean;
  /** The driver offers the two spare tokens the software path restores into. */
  hasSpares: boolean;
  /** setup-wrap-key passed: the key cases run. */
  wrapKeyReady: boolean;
  /** A kwp-restore case ran: 'wrap' is known (under --case it may not have). */
  kwpTried: boolean;
  tokenA: Token;
  spares: Token[];
  sparesBefore: number[];
  dkek?: Dkek;
  wrapKeyValue?: Buffer;
  handles: { a?: Handle; b?: Handle };
  exportDir?: string;
  keys: Partial<Record<KeyAlg, WrappedKey>>;
}

/** One key of one type: what kwp-restore wrapped, for blob-restore to reuse. */
interface WrappedKey {
  wrapped?: Buffer;
  original?: KeyObject;
}

async function kwpRestoreCase(c: CaseHandle, ctx: SuiteContext, w: WrapState, alg: KeyAlg, k: WrappedKey): Promise<void> {
  const pair = await generateKeyPair(w.tokenA, alg, { extractable: true, sensitive: true, label: `hsm-harness-dkek-${alg}` });
  k.original = publicKeyObject(w.tokenA, pair.publicKey);
  try {
    k.wrapped = w.tokenA.lib.C_WrapKey(w.tokenA.session, { mechanism: pkcs11.CKM_AES_KEY_WRAP_PAD }, w.handles.a!, pair.privateKey, Buffer.alloc(8192));
  } catch (err) {
    const code = ckrOf(err);
    if (code !== undefined) c.ckr(code);
    const answer = code !== undefined ? ckrName(code) : (err as Error).message.split('\n')[0];
    // Not advertised and refused: the token lacks it (p11-kit's RPC, for one, drops the mechanism).
    if (!w.kwpAdvertised) c.unsupported(`${notOfferedReason(ctx.report, pkcs11.CKM_AES_KEY_WRAP_PAD)}; C_WrapKey returned ${answer}`);
    // Advertised and refused is a lie (docs/status-model.md), whatever the code.
    ctx.finding('lie', `CKM_AES_KEY_WRAP_PAD is advertised but C_WrapKey returned ${answer}`);
    throw err;
  }
  if (!w.kwpAdvertised) ctx.finding('unadvertised', 'C_WrapKey with CKM_AES_KEY_WRAP_PAD works although the mechanism list does not include it');
  c.detail('wrappedBytes', k.wrapped.length);
  const b = w.spares[0]!;
  const restored = b.unwrapKey({ mechanism: pkcs11.CKM_AES_KEY_WRAP_PAD }, w.handles.b!, k.wrapped, unwrapTemplate(alg, `hsm-harness-dkek-restored-${alg}`));
  await signAndVerify(b, restored, alg, k.original);
}

async function blobRestoreCase(c: CaseHandle, ctx: SuiteContext, w: WrapState, alg: KeyAlg, k: WrappedKey): Promise<void> {
  let toWrap: KeyToWrap;
  if (k.wrapped && k.original) {
    // The PKCS#8 inside the KWP wrapping, decrypted in software with the same DKEK-derived key.
    const d = createDecipheriv(KWP_CIPHER, w.wrapKeyValue!, KWP_IV);
    const pkcs8 = Buffer.concat([d.update(k.wrapped), d.final()]);
    toWrap = keyToWrapFromKeyObject(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
    wipe(pkcs8);
    c.detail('keySource', 'C_WrapKey output, unwrapped in software');
  } else {
    // No key wrapping here: read the private value of an extractable, non-sensitive test key instead.
    const pair = await generateKeyPair(w.tokenA, alg, { extractable: true, sensitive: false, label: `hsm-harness-dkek-plain-${alg}` });
    k.original = publicKeyObject(w.tokenA, pair.publicKey);
    toWrap = readPrivateKey(w.tokenA, pair);
    c.detail('keySource', 'attributes of a non-sensitive key');
  }
  const blob = wrapBlob(toWrap, w.dkek!);
  if (toWrap.kind === 'ec') wipe(toWrap.d);
  else if (toWrap.kind === 'rsa') wipe(toWrap.d, toWrap.p, toWrap.q, toWrap.dp, toWrap.dq, toWrap.qInv);
  const wrapFile = encodeWrapFile({ blob });
  c.detail('blobBytes', blob.length);
  if (w.exportDir) {
    await makeDirs(w.exportDir);
    await writeFile(join(w.exportDir, `${ctx.driverId}-${alg}.wrap`), wrapFile);
  }
  // Offline verification exactly as `dkek blob-verify` does it, including the token's public key.
  const { report, key } = verifyBlob(parseWrapFile(wrapFile).blob, w.dkek!, { expectedPublicKey: k.original });
  c.detail(
    'checks',
    report.checks.map((x) => `${x.ok ? 'ok' : 'FAIL'} ${x.name}`),
  );
  try {
    if (!report.restorable)
      throw new Error(
        `offline verification failed: ${report.checks
          .filter((x) => !x.ok)
          .map((x) => x.name)
          .join(', ')}`,
      );
    const tokenC = w.spares[1]!;
    const h = tokenC.createObject(privateKeyTemplate(key, `hsm-harness-dkek-blob-${alg}`));
    await signAndVerify(tokenC, h, alg, k.original!);
  } finally {
    wipeKey(key);
  }
  // Tampering must be caught: a flipped ciphertext byte fails the CMAC.
  const bad = Buffer.from(blob);
  bad[bad.length - 20]! ^= 0x01;
  let caught = false;
  try {
    wipeKey(unwrapBlob(bad, w.dkek!).key);
  } catch (err) {
    caught = err instanceof DkekError && /CMAC/.test(err.message);
  }
  if (!caught) throw new Error('a blob with a flipped byte was accepted');
}

async function setupWrapKeyCase(c: CaseHandle, ctx: SuiteContext, w: WrapState): Promise<void> {
  const pk = ctx.connections.pkcs11!;
  const d = (await harnessDkekFromEnv(ctx.env)) ?? randomDkek();
  const dkek = d.dkek;
  w.dkek = dkek;
  w.section.dkekSource = d.source;
  w.section.kcv = dkek.kcvHex;
  const wrapKeyValue = dkek.pkcs11WrapKey();
  w.wrapKeyValue = wrapKeyValue;
  for (const s of pk.spareTokens!.slice(0, 2)) {
    const t = Token.open(pk.modulePath, s.token, s.pin);
    w.spares.push(t);
    t.login();
    w.sparesBefore.push(t.countObjects());
  }
  w.handles.a = importWrapKey(w.tokenA, wrapKeyValue);
  w.handles.b = importWrapKey(w.spares[0]!, wrapKeyValue);
  c.detail('kcv', dkek.kcvHex);
}

/** The spare tokens hold what they held before; they are closed here (teardown closes them when this case did not run). */
function spareTokensCleanCase(w: WrapState): void {
  const problems: string[] = [];
  w.spares.forEach((t, i) => {
    const failures = t.objects.cleanup();
    const after = t.countObjects();
    if (failures.length) problems.push(`spare ${i + 1}: could not destroy ${failures.length} object(s)`);
    if (after !== w.sparesBefore[i]) problems.push(`spare ${i + 1} had ${w.sparesBefore[i]} objects before and ${after} after`);
  });
  for (const t of w.spares) t.close();
  w.spares = [];
  if (problems.length) throw new Error(problems.join('; '));
}

function setup(ctx: SuiteContext): WrapState | undefined {
  if (!offered(ctx, 'aes-wrap')) return undefined;
  const kwpAdvertised = ctx.token!.offeredMechanisms().has(pkcs11.CKM_AES_KEY_WRAP_PAD);
  const { section, roundTrips } = dkekSection(
    ctx,
    kwpAdvertised ? 'pkcs11 key wrapping (CKM_AES_KEY_WRAP_PAD)' : 'pkcs11 without CKM_AES_KEY_WRAP_PAD: blob restore from a non-sensitive key',
  );
  const hasSpares = (ctx.connections.pkcs11?.spareTokens?.length ?? 0) >= 2;
  if (!hasSpares) section.path = 'none: the driver offers no two spare tokens to restore into';
  return {
    section,
    roundTrips,
    kwpAdvertised,
    hasSpares,
    wrapKeyReady: false,
    kwpTried: false,
    tokenA: ctx.token!,
    spares: [],
    sparesBefore: [],
    handles: {},
    exportDir: ctx.env.HSM_HARNESS_DKEK_EXPORT_DIR,
    keys: {},
  };
}

/** The two cases of one key type: C_WrapKey/C_UnwrapKey between tokens A and B, then the key blob restored into token C. */
function keyCases(alg: KeyAlg): SuiteCase<WrapState | undefined>[] {
  const applies = (_ctx: SuiteContext, w?: WrapState) => !!w?.wrapKeyReady;
  return [
    {
      name: `kwp-restore-${alg}`,
      needs: ['setup-wrap-key'],
      applies,
      run: (c, w, ctx) => kwpRestoreCase(c, ctx, w!, alg, (w!.keys[alg] ??= {})),
      after(status, w, ctx) {
        w!.roundTrips.push({ alg, method: 'C_WrapKey/C_UnwrapKey CKM_AES_KEY_WRAP_PAD, token A → token B', status: status as RoundTrip['status'] });
        w!.kwpTried = true;
        if (status === 'pass') ctx.capability('wrap', true);
      },
    },
    {
      name: `blob-restore-${alg}`,
      needs: ['setup-wrap-key'],
      applies,
      run: (c, w, ctx) => blobRestoreCase(c, ctx, w!, alg, (w!.keys[alg] ??= {})),
      after(status, w) {
        w!.roundTrips.push({
          alg,
          method: 'SmartCard-HSM key blob from src/dkek, verified offline, C_CreateObject on token C',
          status: status as RoundTrip['status'],
        });
      },
    },
  ];
}

export const dkekAesWrapSuite: Suite<WrapState | undefined> = {
  name: 'dkek',
  report: dkekReport,
  title: 'DKEK backup → restore → sign: PKCS#11 key wrapping between tokens, and SmartCard-HSM key blobs',
  needs: 'pkcs11',
  setup,
  cases: [
    {
      name: 'kwp-restore',
      applies: (_ctx, w) => !!w && !w.hasSpares,
      run(c, w, ctx) {
        if (!w!.kwpAdvertised) ctx.capability('wrap', false);
        c.skip('the driver offers no two spare tokens to restore into');
      },
    },
    {
      name: 'setup-wrap-key',
      applies: (_ctx, w) => !!w?.hasSpares,
      run: (c, w, ctx) => setupWrapKeyCase(c, ctx, w!),
      after(status, w, ctx) {
        w!.wrapKeyReady = status === 'pass';
        if (status !== 'pass') ctx.capability('wrap', false);
      },
    },
    ...keyCases('ec-p256'),
    ...keyCases('rsa-2048'),
    {
      name: 'spare-tokens-clean',
      applies: (_ctx, w) => !!w?.hasSpares,
      run(_c, w) {
        wipeWrapKey(w!);
        spareTokensCleanCase(w!);
      },
    },
  ],
  teardown(ctx, w) {
    if (!w?.hasSpares) return;
    if (w.kwpTried && ctx.has('wrap') === undefined) ctx.capability('wrap', false);
    wipeWrapKey(w);
    for (const t of w.spares) {
      t.objects.cleanup();
      t.close();
    }
  },
};

function wipeWrapKey(w: WrapState): void {
  wipe(w.wrapKeyValue);
  w.dkek?.wipe();
  w.wrapKeyValue = undefined;
  w.dkek = undefined;
}
