/**
 * DKEK backup → restore → sign round trips (issue 4). The path is chosen from what the token offers, never
 * from the driver's name:
 * - PKCS#11 key wrapping (SoftHSM and any token with spare tokens and CKM_AES_KEY_WRAP_PAD): the same
 *   DKEK-derived AES-256 key on tokens A and B; a key generated on A is wrapped, unwrapped on B, signs there
 *   and verifies with A's public key. The same key is also exported as a SmartCard-HSM key blob by
 *   src/dkek, verified offline, restored from the blob into a third token and used to sign. Where the
 *   mechanism is missing (p11-kit's RPC drops it) the blob round trip still runs, from a non-sensitive key.
 * - SmartCard-HSM (traits.family 'smartcard-hsm', SCHSM_DKEK_SHARES set): wrap with sc-hsm-tool, verify
 *   offline, unwrap into a new key reference, sign, verify, clean up. Never re-initialises the card unless
 *   SCHSM_ALLOW_INITIALIZE=1.
 * - YubiHSM 2 (traits.family 'yubihsm2', YUBIHSM_WRAP_ROUNDTRIP=1): export under a wrap key, delete, import,
 *   sign, verify.
 */
import { createDecipheriv, createHash, createPrivateKey, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Suite, SuiteContext, CaseHandle } from '../src/suite.js';
import { pkcs11, Token, ckrOf, type Handle, type Template } from '../src/pkcs11/token.js';
import { ckrName } from '../src/pkcs11/constants.js';
import { generateKeyPair, publicKeyObject, readPublicKey, signAsync, KEY_ALGS, type KeyAlg, type KeyPair } from '../src/pkcs11/keys.js';
import { Dkek, DkekError } from '../src/dkek/dkek.js';
import { decryptShareFile } from '../src/dkek/share.js';
import { wrapBlob, unwrapBlob, type KeyToWrap, type UnwrappedKey } from '../src/dkek/blob.js';
import { curveByName } from '../src/dkek/curves.js';
import { encodeWrapFile, parseWrapFile } from '../src/dkek/wrapfile.js';
import { verifyBlob, wipeKey } from '../src/dkek/verify.js';
import { curveOf, keyToWrapFromKeyObject, rsaPrivateExponent } from '../src/dkek/keys.js';
import { registerSecret, wipe } from '../src/secrets.js';
import { runTool, which } from '../src/proc.js';
import { makeDirs, makeTempDir } from '../src/fsutil.js';

/** Node's name for RFC 5649 AES key wrap with padding; its default IV is the RFC's A65959A6. */
const KWP_CIPHER = 'id-aes256-wrap-pad';
const KWP_IV = Buffer.from('a65959a6', 'hex');

/** Vendor mechanism and key type of yubihsm_pkcs11 (Yubico pkcs11y.h: vendor base 0x59554200). */
const CKM_YUBICO_AES_CCM_WRAP = 0x80000000 + 0x59554200 + 0x04;
const CKK_YUBICO_AES256_CCM_WRAP = 0x80000000 + 0x59554200 + 42;

interface RoundTrip { alg: KeyAlg; method: string; status: 'pass' | 'fail' | 'skip' | 'unsupported' }

/**
 * The DKEK for a run: from share files named in env (`<PREFIX>_DKEK_SHARES`, comma-separated, passwords in
 * `<PREFIX>_DKEK_<n>_PASSWORD` or one `<PREFIX>_DKEK_PASSWORD`), or two random in-memory shares.
 */
async function dkekFromEnv(env: NodeJS.ProcessEnv, prefix: string): Promise<{ dkek: Dkek; source: string } | undefined> {
  const list = env[`${prefix}_DKEK_SHARES`];
  if (!list) return undefined;
  const files = list.split(',').map((s) => s.trim()).filter(Boolean);
  const shares: Buffer[] = [];
  try {
    for (let i = 0; i < files.length; i++) {
      const pw = env[`${prefix}_DKEK_${i + 1}_PASSWORD`] ?? env[`${prefix}_DKEK_PASSWORD`];
      if (!pw) throw new DkekError(`${prefix}_DKEK_${i + 1}_PASSWORD (or ${prefix}_DKEK_PASSWORD) is not set for ${files[i]}`);
      registerSecret(pw);
      shares.push(decryptShareFile(await readFile(files[i]!), pw, files[i]));
    }
    return { dkek: Dkek.fromShares(shares), source: `${files.length} share file(s) from ${prefix}_DKEK_SHARES` };
  } finally {
    wipe(...shares);
  }
}

function randomDkek(): { dkek: Dkek; source: string } {
  const shares = [randomBytes(32), randomBytes(32)];
  const dkek = Dkek.fromShares(shares);
  wipe(...shares);
  return { dkek, source: 'two random in-memory shares' };
}

/** Import the AES-256 key-wrapping key (derived from the DKEK) as a secret-key object. */
function importWrapKey(token: Token, value: Buffer): Handle {
  const h = token.lib.C_CreateObject(token.session, [
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
  token.track(h);
  return h;
}

const MESSAGE = Buffer.from('hsm-harness dkek round trip: sign with the restored key');

/** Sign MESSAGE on a token and check the signature with the original public key in node:crypto. */
async function signAndVerify(token: Token, key: Handle, alg: KeyAlg, original: KeyObject): Promise<void> {
  if (alg.startsWith('ec-')) {
    const digest = createHash('sha256').update(MESSAGE).digest();
    const sig = await signAsync(token, token.session, { mechanism: pkcs11.CKM_ECDSA }, key, digest);
    if (!cryptoVerify('sha256', MESSAGE, { key: original, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('the restored key\'s ECDSA signature does not verify with the original public key');
  } else {
    const sig = await signAsync(token, token.session, { mechanism: pkcs11.CKM_SHA256_RSA_PKCS }, key, MESSAGE);
    if (!cryptoVerify('sha256', MESSAGE, original, sig)) throw new Error('the restored key\'s RSA signature does not verify with the original public key');
  }
}

function unwrapTemplate(alg: KeyAlg, label: string): Template {
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
    return [...base, { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_EC },
      { type: pkcs11.CKA_EC_PARAMS, value: Buffer.from(curveOf(key).ecParams, 'hex') }, { type: pkcs11.CKA_VALUE, value: key.d }];
  }
  if (key.kind === 'rsa') {
    const t: Template = [...base, { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_RSA },
      { type: pkcs11.CKA_MODULUS, value: key.n }, { type: pkcs11.CKA_PUBLIC_EXPONENT, value: key.e },
      { type: pkcs11.CKA_PRIVATE_EXPONENT, value: rsaPrivateExponent(key) }];
    if (key.p && key.q && key.dp && key.dq && key.qInv) {
      t.push({ type: pkcs11.CKA_PRIME_1, value: key.p }, { type: pkcs11.CKA_PRIME_2, value: key.q },
        { type: pkcs11.CKA_EXPONENT_1, value: key.dp }, { type: pkcs11.CKA_EXPONENT_2, value: key.dq }, { type: pkcs11.CKA_COEFFICIENT, value: key.qInv });
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
  return { kind: 'rsa', n: a(pkcs11.CKA_MODULUS), e: a(pkcs11.CKA_PUBLIC_EXPONENT), d: a(pkcs11.CKA_PRIVATE_EXPONENT), p: a(pkcs11.CKA_PRIME_1),
    q: a(pkcs11.CKA_PRIME_2), dp: a(pkcs11.CKA_EXPONENT_1), dq: a(pkcs11.CKA_EXPONENT_2), qInv: a(pkcs11.CKA_COEFFICIENT) };
}

async function softwarePath(ctx: SuiteContext, section: Record<string, unknown>, roundTrips: RoundTrip[], kwpAdvertised: boolean): Promise<void> {
  const pk = ctx.connections.pkcs11!;
  const tokenA = ctx.token!;
  const spares: Token[] = [];
  const sparesBefore: number[] = [];
  let dkek: Dkek | undefined;
  let wrapKeyValue: Buffer | undefined;
  const handles: { a?: Handle; b?: Handle } = {};
  const exportDir = ctx.env.HSM_HARNESS_DKEK_EXPORT_DIR;
  try {
    const ok = await ctx.case('setup-wrap-key', async (c) => {
      const d = (await dkekFromEnv(ctx.env, 'HSM_HARNESS')) ?? randomDkek();
      dkek = d.dkek;
      section.dkekSource = d.source;
      section.kcv = dkek.kcvHex;
      wrapKeyValue = dkek.pkcs11WrapKey();
      for (const s of pk.spareTokens!.slice(0, 2)) {
        const t = Token.open(pk.modulePath, s.token, s.pin);
        spares.push(t);
        t.login();
        sparesBefore.push(t.countObjects());
      }
      handles.a = importWrapKey(tokenA, wrapKeyValue);
      handles.b = importWrapKey(spares[0]!, wrapKeyValue);
      c.detail('kcv', dkek.kcvHex);
    });
    if (ok !== 'pass') { ctx.capability('wrap', false); return; }

    for (const alg of ['ec-p256', 'rsa-2048'] as KeyAlg[]) {
      let wrapped: Buffer | undefined;
      let original: KeyObject | undefined;
      const kwp = await ctx.case(`kwp-restore-${alg}`, async (c) => {
        const pair = await generateKeyPair(tokenA, alg, { extractable: true, sensitive: true, label: `hsm-harness-dkek-${alg}` });
        original = publicKeyObject(tokenA, pair.publicKey);
        try {
          wrapped = tokenA.lib.C_WrapKey(tokenA.session, { mechanism: pkcs11.CKM_AES_KEY_WRAP_PAD }, handles.a!, pair.privateKey, Buffer.alloc(8192));
        } catch (err) {
          const code = ckrOf(err);
          if (code !== undefined) c.ckr(code);
          // Not advertised and refused: the token lacks it (p11-kit's RPC, for one, drops the mechanism).
          if (!kwpAdvertised || code === pkcs11.CKR_MECHANISM_INVALID || code === pkcs11.CKR_FUNCTION_NOT_SUPPORTED) {
            c.unsupported(`CKM_AES_KEY_WRAP_PAD ${kwpAdvertised ? 'is advertised but' : 'is not in the mechanism list and'} C_WrapKey returned ${code !== undefined ? ckrName(code) : (err as Error).message.split('\n')[0]}`);
          }
          throw err;
        }
        if (!kwpAdvertised) ctx.finding('unadvertised', 'C_WrapKey with CKM_AES_KEY_WRAP_PAD works although the mechanism list does not include it');
        c.detail('wrappedBytes', wrapped.length);
        const b = spares[0]!;
        const restored = b.lib.C_UnwrapKey(b.session, { mechanism: pkcs11.CKM_AES_KEY_WRAP_PAD }, handles.b!, wrapped, unwrapTemplate(alg, `hsm-harness-dkek-restored-${alg}`));
        b.track(restored);
        await signAndVerify(b, restored, alg, original);
      });
      roundTrips.push({ alg, method: 'C_WrapKey/C_UnwrapKey CKM_AES_KEY_WRAP_PAD, token A → token B', status: kwp as RoundTrip['status'] });
      if (kwp === 'pass') ctx.capability('wrap', true);

      const blobCase = await ctx.case(`blob-restore-${alg}`, async (c) => {
        let toWrap: KeyToWrap;
        if (wrapped && original) {
          // The PKCS#8 inside the KWP wrapping, decrypted in software with the same DKEK-derived key.
          const d = createDecipheriv(KWP_CIPHER, wrapKeyValue!, KWP_IV);
          const pkcs8 = Buffer.concat([d.update(wrapped), d.final()]);
          toWrap = keyToWrapFromKeyObject(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
          wipe(pkcs8);
          c.detail('keySource', 'C_WrapKey output, unwrapped in software');
        } else {
          // No key wrapping here: read the private value of an extractable, non-sensitive test key instead.
          const pair = await generateKeyPair(tokenA, alg, { extractable: true, sensitive: false, label: `hsm-harness-dkek-plain-${alg}` });
          original = publicKeyObject(tokenA, pair.publicKey);
          toWrap = readPrivateKey(tokenA, pair);
          c.detail('keySource', 'attributes of a non-sensitive key');
        }
        const blob = wrapBlob(toWrap, dkek!);
        if (toWrap.kind === 'ec') wipe(toWrap.d);
        else if (toWrap.kind === 'rsa') wipe(toWrap.d, toWrap.p, toWrap.q, toWrap.dp, toWrap.dq, toWrap.qInv);
        const wrapFile = encodeWrapFile({ blob });
        c.detail('blobBytes', blob.length);
        if (exportDir) {
          await makeDirs(exportDir);
          await writeFile(join(exportDir, `${ctx.driverId}-${alg}.wrap`), wrapFile);
        }
        // Offline verification exactly as `dkek blob-verify` does it, including the token's public key.
        const { report, key } = verifyBlob(parseWrapFile(wrapFile).blob, dkek!, { expectedPublicKey: original });
        c.detail('checks', report.checks.map((x) => `${x.ok ? 'ok' : 'FAIL'} ${x.name}`));
        try {
          if (!report.restorable) throw new Error(`offline verification failed: ${report.checks.filter((x) => !x.ok).map((x) => x.name).join(', ')}`);
          const tokenC = spares[1]!;
          const h = tokenC.lib.C_CreateObject(tokenC.session, privateKeyTemplate(key, `hsm-harness-dkek-blob-${alg}`));
          tokenC.track(h);
          await signAndVerify(tokenC, h, alg, original!);
        } finally {
          wipeKey(key);
        }
        // Tampering must be caught: a flipped ciphertext byte fails the CMAC.
        const bad = Buffer.from(blob);
        bad[bad.length - 20]! ^= 0x01;
        let caught = false;
        try { wipeKey(unwrapBlob(bad, dkek!).key); } catch (err) { caught = err instanceof DkekError && /CMAC/.test(err.message); }
        if (!caught) throw new Error('a blob with a flipped byte was accepted');
      });
      roundTrips.push({ alg, method: 'SmartCard-HSM key blob from src/dkek, verified offline, C_CreateObject on token C', status: blobCase as RoundTrip['status'] });
    }
    if (ctx.has('wrap') === undefined) ctx.capability('wrap', false);
  } finally {
    wipe(wrapKeyValue);
    dkek?.wipe();
    await ctx.case('spare-tokens-clean', () => {
      const problems: string[] = [];
      spares.forEach((t, i) => {
        const failures = t.cleanup();
        const after = t.countObjects();
        if (failures.length) problems.push(`spare ${i + 1}: could not destroy ${failures.length} object(s)`);
        if (after !== sparesBefore[i]) problems.push(`spare ${i + 1} had ${sparesBefore[i]} objects before and ${after} after`);
      });
      for (const t of spares) t.close();
      if (problems.length) throw new Error(problems.join('; '));
    });
  }
}

/** `pkcs15-tool --list-keys` blocks: key reference and ID of every private key on the card. */
async function listCardKeys(env: NodeJS.ProcessEnv): Promise<{ keyRef: number; id: string }[]> {
  const r = await runTool('pkcs15-tool', ['--list-keys', ...(env.SCHSM_READER ? ['--reader', env.SCHSM_READER] : [])], { env, timeoutMs: 60_000 });
  const keys: { keyRef: number; id: string }[] = [];
  let id: string | undefined;
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*ID\s*:\s*([0-9a-fA-F]+)/.exec(line);
    if (m) id = m[1]!.toLowerCase();
    const k = /^\s*Key ref\s*:\s*(\d+)/.exec(line);
    if (k && id) { keys.push({ keyRef: Number(k[1]), id }); id = undefined; }
  }
  return keys;
}

/** KCV of the DKEK loaded on the card, from sc-hsm-tool's status output. */
async function cardKcv(env: NodeJS.ProcessEnv, readerArgs: string[]): Promise<string | undefined> {
  const r = await runTool('sc-hsm-tool', readerArgs, { env, timeoutMs: 60_000 });
  return /DKEK key check value\s*:\s*([0-9A-Fa-f]{16})/.exec(r.stdout)?.[1]?.toUpperCase();
}

async function smartcardPath(ctx: SuiteContext, section: Record<string, unknown>, roundTrips: RoundTrip[]): Promise<void> {
  const env = ctx.env;
  const readerArgs = env.SCHSM_READER ? ['--reader', env.SCHSM_READER] : [];
  const pinEnv = { ...env } as NodeJS.ProcessEnv;
  const status = await ctx.case('smartcard-hsm-wrap-unwrap-ec-p256', async (c: CaseHandle) => {
    if (!env.SCHSM_DKEK_SHARES) c.skip('SCHSM_DKEK_SHARES is not set (list the card\'s DKEK share files and export SCHSM_DKEK_PASSWORD or SCHSM_DKEK_<n>_PASSWORD)');
    if (!(await which('sc-hsm-tool')) || !(await which('pkcs15-tool'))) c.skip('sc-hsm-tool / pkcs15-tool not on PATH (apt-get install opensc)');
    const loaded = (await dkekFromEnv(env, 'SCHSM'))!;
    const dkek = loaded.dkek;
    section.kcv = dkek.kcvHex;
    try {
      let onCard = await cardKcv(env, readerArgs);
      c.detail('cardKcv', onCard ?? 'none');
      if (onCard !== dkek.kcvHex) {
        if (env.SCHSM_ALLOW_INITIALIZE !== '1') c.skip(`the card's DKEK KCV is ${onCard ?? 'not set'}, the shares give ${dkek.kcvHex}; re-initialising would erase the card, so it is done only with SCHSM_ALLOW_INITIALIZE=1 (and SCHSM_SO_PIN)`);
        if (!env.SCHSM_SO_PIN) c.skip('SCHSM_ALLOW_INITIALIZE=1 needs SCHSM_SO_PIN');
        const files = env.SCHSM_DKEK_SHARES!.split(',').map((s) => s.trim()).filter(Boolean);
        await runToolOrThrow('sc-hsm-tool', [...readerArgs, '--initialize', '--so-pin', 'env:SCHSM_SO_PIN', '--pin', 'env:SCHSM_PIN', '--dkek-shares', String(files.length)], pinEnv, 120_000);
        for (let i = 0; i < files.length; i++) {
          const pwVar = env[`SCHSM_DKEK_${i + 1}_PASSWORD`] ? `SCHSM_DKEK_${i + 1}_PASSWORD` : 'SCHSM_DKEK_PASSWORD';
          await runToolOrThrow('sc-hsm-tool', [...readerArgs, '--import-dkek-share', files[i]!, '--password', `env:${pwVar}`], pinEnv, 180_000);
        }
        onCard = await cardKcv(env, readerArgs);
        if (onCard !== dkek.kcvHex) throw new Error(`after importing the shares the card reports KCV ${onCard}, the shares give ${dkek.kcvHex}`);
      }
      // 1. Generate a key through PKCS#11 (EC: card RSA generation takes tens of seconds).
      const token = ctx.token!;
      const pair = await generateKeyPair(token, 'ec-p256', { label: 'hsm-harness-dkek-card' });
      const original = publicKeyObject(token, pair.publicKey);
      const id = pair.id.toString('hex');
      const keys = await listCardKeys(env);
      const mine = keys.find((k) => k.id === id);
      if (!mine) throw new Error('the generated key does not appear in pkcs15-tool --list-keys');
      const tmp = await makeTempDir('dkek-card');
      try {
        // 2. Wrap with sc-hsm-tool.
        const wrapPath = join(tmp.path, 'key.wrap');
        await runToolOrThrow('sc-hsm-tool', [...readerArgs, '--wrap-key', wrapPath, '--key-reference', String(mine.keyRef), '--pin', 'env:SCHSM_PIN'], pinEnv, 120_000);
        const wf = parseWrapFile(await readFile(wrapPath));
        // 3. Verify offline against the token's public key.
        const { report, key } = verifyBlob(wf.blob, dkek, { expectedPublicKey: original });
        wipeKey(key);
        c.detail('checks', report.checks.map((x) => `${x.ok ? 'ok' : 'FAIL'} ${x.name}`));
        if (!report.restorable) throw new Error('the card\'s backup of the key does not verify offline');
        // 4. A real restore: the original goes (through this session, so OpenSC's view stays consistent),
        //    then the backup is unwrapped into a new key reference. The restored key carries the original
        //    PRKD and so the original CKA_ID.
        const used = new Set(keys.map((k) => k.keyRef));
        let newRef = 1;
        while (used.has(newRef)) newRef++;
        token.destroy(pair.privateKey);
        try { token.destroy(pair.publicKey); } catch { /* OpenSC derives the public key from the key's files */ }
        await runToolOrThrow('sc-hsm-tool', [...readerArgs, '--unwrap-key', wrapPath, '--key-reference', String(newRef), '--pin', 'env:SCHSM_PIN', '--force'], pinEnv, 120_000);
        try {
          // 5. Sign with the restored key in a fresh process (this process's OpenSC view predates the unwrap).
          const data = join(tmp.path, 'digest.bin');
          const sigPath = join(tmp.path, 'sig.bin');
          await writeFile(data, createHash('sha256').update(MESSAGE).digest());
          const after = await listCardKeys(env);
          if (!after.some((k) => k.keyRef === newRef && k.id === id)) throw new Error(`no key with the original ID at reference ${newRef} after unwrapping`);
          await runToolOrThrow('pkcs11-tool', ['--module', ctx.connections.pkcs11!.modulePath, '--login', '--pin', 'env:SCHSM_PIN', '--sign', '--mechanism', 'ECDSA', '--id', id, '--input-file', data, '--output-file', sigPath], pinEnv, 60_000);
          const sig = await readFile(sigPath);
          if (!cryptoVerify('sha256', MESSAGE, { key: original, dsaEncoding: 'ieee-p1363' }, sig)) throw new Error('the restored key\'s signature does not verify with the original public key');
        } finally {
          // 6. Clean up the restored key and whatever else carries the test key's ID (PRKD, CV request).
          for (const type of ['privkey', 'pubkey', 'cert']) {
            await runTool('pkcs11-tool', ['--module', ctx.connections.pkcs11!.modulePath, '--login', '--pin', 'env:SCHSM_PIN', '--delete-object', '--type', type, '--id', id], { env: pinEnv, timeoutMs: 60_000 });
          }
        }
      } finally {
        await tmp.remove();
      }
    } finally {
      dkek.wipe();
    }
  }, { timeoutMs: 900_000 });
  roundTrips.push({ alg: 'ec-p256', method: 'sc-hsm-tool --wrap-key / --unwrap-key', status: status as RoundTrip['status'] });
  if (status === 'pass' || status === 'fail') ctx.capability('wrap', status === 'pass');
}

async function runToolOrThrow(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<void> {
  const r = await runTool(cmd, args, { env, timeoutMs });
  if (r.code !== 0) {
    const last = (r.stderr.trim().split('\n').pop() || r.stdout.trim().split('\n').pop() || '').slice(0, 200);
    throw new Error(`${cmd} ${args.find((a) => a.startsWith('--') && !['--reader', '--pin', '--module', '--login'].includes(a)) ?? ''} failed (${r.signal ?? `exit ${r.code}`}): ${last}`);
  }
}

async function yubihsmPath(ctx: SuiteContext, roundTrips: RoundTrip[]): Promise<void> {
  const status = await ctx.case('yubihsm-export-import-ec-p256', async (c) => {
    if (ctx.env.YUBIHSM_WRAP_ROUNDTRIP !== '1') c.skip('set YUBIHSM_WRAP_ROUNDTRIP=1 to create a temporary wrap key on the YubiHSM 2 and run export → delete → import → sign');
    const token = ctx.token!;
    if (!token.offeredMechanisms().has(CKM_YUBICO_AES_CCM_WRAP)) c.unsupported('CKM_YUBICO_AES_CCM_WRAP is not in the mechanism list');
    const wrapKey = token.lib.C_GenerateKey(token.session, { mechanism: pkcs11.CKM_GENERIC_SECRET_KEY_GEN }, [
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY }, { type: pkcs11.CKA_KEY_TYPE, value: CKK_YUBICO_AES256_CCM_WRAP },
      { type: pkcs11.CKA_VALUE_LEN, value: 32 }, { type: pkcs11.CKA_TOKEN, value: true }, { type: pkcs11.CKA_SENSITIVE, value: true },
      { type: pkcs11.CKA_EXTRACTABLE, value: false }, { type: pkcs11.CKA_WRAP, value: true }, { type: pkcs11.CKA_UNWRAP, value: true },
      { type: pkcs11.CKA_LABEL, value: 'hsm-harness-dkek-wrap' },
    ]);
    token.track(wrapKey);
    const pair = await generateKeyPair(token, 'ec-p256', { extractable: true, label: 'hsm-harness-dkek-yubihsm' });
    const original = publicKeyObject(token, pair.publicKey);
    const wrapped = token.lib.C_WrapKey(token.session, { mechanism: CKM_YUBICO_AES_CCM_WRAP }, wrapKey, pair.privateKey, Buffer.alloc(8192));
    c.detail('wrappedBytes', wrapped.length);
    // The YubiHSM restores an object under its original ID, so the original goes first: a real restore.
    token.destroy(pair.privateKey);
    const restored = token.lib.C_UnwrapKey(token.session, { mechanism: CKM_YUBICO_AES_CCM_WRAP }, wrapKey, wrapped, unwrapTemplate('ec-p256', 'hsm-harness-dkek-yubihsm'));
    token.track(restored);
    await signAndVerify(token, restored, 'ec-p256', original);
  });
  roundTrips.push({ alg: 'ec-p256', method: 'YubiHSM 2 export/import under a wrap key (CKM_YUBICO_AES_CCM_WRAP)', status: status as RoundTrip['status'] });
  if (status === 'pass' || status === 'fail') ctx.capability('wrap', status === 'pass');
}

export const dkekSuite: Suite = {
  name: 'dkek',
  title: 'DKEK backup → restore → sign round trips',
  needs: 'pkcs11',
  async run(ctx) {
    const roundTrips: RoundTrip[] = [];
    const section: Record<string, unknown> = { roundTrips };
    ctx.report.sections.dkek = section;
    if (!ctx.token) return;
    if (ctx.traits.family === 'smartcard-hsm') {
      section.path = 'smartcard-hsm (sc-hsm-tool)';
      await smartcardPath(ctx, section, roundTrips);
      return;
    }
    if (ctx.traits.family === 'yubihsm2') {
      section.path = 'yubihsm2 (wrap key)';
      await yubihsmPath(ctx, roundTrips);
      return;
    }
    const spareCount = ctx.connections.pkcs11?.spareTokens?.length ?? 0;
    const kwpAdvertised = ctx.token.offeredMechanisms().has(pkcs11.CKM_AES_KEY_WRAP_PAD);
    section.path = kwpAdvertised ? 'pkcs11 key wrapping (CKM_AES_KEY_WRAP_PAD)' : 'pkcs11 without CKM_AES_KEY_WRAP_PAD: blob restore from a non-sensitive key';
    if (spareCount < 2) {
      section.path = 'none: the driver offers no two spare tokens to restore into';
      if (!kwpAdvertised) ctx.capability('wrap', false);
      await ctx.case('kwp-restore', (c) => c.skip('the driver offers no two spare tokens to restore into'));
      return;
    }
    await softwarePath(ctx, section, roundTrips, kwpAdvertised);
  },
};
