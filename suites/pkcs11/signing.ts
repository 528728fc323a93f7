/**
 * Signing: every mechanism a DNSSEC signer might use, where the token offers it, verified independently
 * with node:crypto against the public key READ FROM THE TOKEN (never a key we computed ourselves).
 * Also: tampered signatures fail, ECDSA signatures are exactly 2 × the field size (repeated, because
 * leading-zero bugs show up in a fraction of signatures, pkcs11.md §8), multi-part equals single-part,
 * and C_Verify as a separate, optional capability.
 */
import { constants, createHash, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { Suite, SuiteContext, CaseHandle } from '../../src/suite.js';
import { pkcs11, ckrOf, type Handle, type Token } from '../../src/pkcs11/token.js';
import { generateKeyPair, publicKeyObject, digestInfo, KEY_ALGS, type KeyAlg, type KeyPair } from '../../src/pkcs11/keys.js';
import { CKM_EDDSA, mechanismName } from '../../src/pkcs11/constants.js';

type Hash = 'sha256' | 'sha384' | 'sha512';

interface SignSpec {
  mechanism: number;
  key: KeyAlg;
  /** Hash computed on the host for raw mechanisms (CKM_RSA_PKCS, CKM_RSA_PKCS_PSS, CKM_ECDSA). */
  hostHash?: Hash;
  /** Hash node:crypto uses to verify (null for Ed25519). */
  verifyHash: Hash | null;
  kind: 'rsa-pkcs1' | 'rsa-pss' | 'ecdsa' | 'eddsa';
  parameter?: pkcs11.IParams;
  /** PKCS#11 allows C_SignUpdate for this mechanism (the hashing ones). */
  multipart: boolean;
  /** Same input, same key → same signature (RSA PKCS#1 v1.5). */
  deterministic: boolean;
}

const SPECS: SignSpec[] = [
  { mechanism: pkcs11.CKM_RSA_PKCS, key: 'rsa-2048', hostHash: 'sha256', verifyHash: 'sha256', kind: 'rsa-pkcs1', multipart: false, deterministic: true },
  { mechanism: pkcs11.CKM_SHA256_RSA_PKCS, key: 'rsa-2048', verifyHash: 'sha256', kind: 'rsa-pkcs1', multipart: true, deterministic: true },
  { mechanism: pkcs11.CKM_SHA512_RSA_PKCS, key: 'rsa-2048', verifyHash: 'sha512', kind: 'rsa-pkcs1', multipart: true, deterministic: true },
  {
    mechanism: pkcs11.CKM_RSA_PKCS_PSS, key: 'rsa-2048', hostHash: 'sha256', verifyHash: 'sha256', kind: 'rsa-pss', multipart: false, deterministic: false,
    parameter: { type: pkcs11.CK_PARAMS_RSA_PSS, hashAlg: pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256, saltLen: 32 } as pkcs11.RsaPSS,
  },
  { mechanism: pkcs11.CKM_ECDSA, key: 'ec-p256', hostHash: 'sha256', verifyHash: 'sha256', kind: 'ecdsa', multipart: false, deterministic: false },
  { mechanism: pkcs11.CKM_ECDSA, key: 'ec-p384', hostHash: 'sha384', verifyHash: 'sha384', kind: 'ecdsa', multipart: false, deterministic: false },
  { mechanism: pkcs11.CKM_ECDSA, key: 'ec-p521', hostHash: 'sha512', verifyHash: 'sha512', kind: 'ecdsa', multipart: false, deterministic: false },
  { mechanism: pkcs11.CKM_ECDSA_SHA256, key: 'ec-p256', verifyHash: 'sha256', kind: 'ecdsa', multipart: true, deterministic: false },
  { mechanism: pkcs11.CKM_ECDSA_SHA384, key: 'ec-p384', verifyHash: 'sha384', kind: 'ecdsa', multipart: true, deterministic: false },
  { mechanism: CKM_EDDSA, key: 'ed25519', verifyHash: null, kind: 'eddsa', multipart: false, deterministic: false },
];

/** ECDSA repetitions per curve for the length check; bounded in time for slow tokens. */
const LENGTH_REPEATS: Partial<Record<KeyAlg, number>> = { 'ec-p521': 300, 'ec-p256': 48 };
const LENGTH_BUDGET_MS = 20_000;

const caseName = (s: SignSpec) => `${mechanismName(s.mechanism)}/${s.key}`;

function fieldBytes(key: KeyAlg): number {
  return Math.ceil(KEY_ALGS[key].bits / 8);
}

/** What the token is given: the data itself, or the host-made hash (wrapped in a DigestInfo for CKM_RSA_PKCS). */
function tokenInput(spec: SignSpec, data: Buffer): Buffer {
  if (!spec.hostHash) return data;
  const digest = createHash(spec.hostHash).update(data).digest();
  return spec.kind === 'rsa-pkcs1' ? digestInfo(spec.hostHash, digest) : digest;
}

function verifySoftware(spec: SignSpec, pub: KeyObject, data: Buffer, sig: Buffer, dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): boolean {
  if (spec.kind === 'eddsa') return cryptoVerify(null, data, pub, sig);
  if (spec.kind === 'ecdsa') return cryptoVerify(spec.verifyHash, data, { key: pub, dsaEncoding }, sig);
  if (spec.kind === 'rsa-pss') return cryptoVerify(spec.verifyHash, data, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);
  return cryptoVerify(spec.verifyHash, data, pub, sig);
}

function flipped(sig: Buffer): Buffer {
  const bad = Buffer.from(sig);
  bad[bad.length >> 1]! ^= 0x01;
  return bad;
}

async function signOnce(token: Token, session: Handle, spec: SignSpec, key: Handle, input: Buffer): Promise<Buffer> {
  token.lib.C_SignInit(session, { mechanism: spec.mechanism, parameter: spec.parameter }, key);
  return token.lib.C_SignAsync(session, input, Buffer.alloc(1024));
}

/** Runs fn in a fresh session, so that an operation a failure left active cannot leak into the next case. */
async function inSession<T>(token: Token, fn: (s: Handle) => Promise<T>): Promise<T> {
  const s = token.openSession();
  try { return await fn(s); } finally { token.closeSession(s); }
}

interface Signed { spec: SignSpec; key: KeyPair; input: Buffer; signature: Buffer }

export const signing: Suite = {
  name: 'signing',
  title: 'Signing, verified with node:crypto',
  needs: 'pkcs11',
  async run(ctx: SuiteContext) {
    const token = ctx.token!;
    const offered = token.offeredMechanisms();
    const keys = new Map<KeyAlg, Promise<KeyPair>>();
    const keyFor = (alg: KeyAlg) => {
      let k = keys.get(alg);
      if (!k) {
        k = generateKeyPair(token, alg, { label: `hsm-harness-signing-${alg}` });
        keys.set(alg, k);
      }
      return k;
    };
    const publicKeys = new Map<KeyAlg, KeyObject>();
    const pubFor = (kp: KeyPair) => {
      let p = publicKeys.get(kp.alg);
      if (!p) { p = publicKeyObject(token, kp.publicKey); publicKeys.set(kp.alg, p); }
      return p;
    };
    const signed: Signed[] = [];
    let ecdsaRaw: boolean | undefined;
    const noteEcdsa = (ok: boolean) => { ecdsaRaw = (ecdsaRaw ?? true) && ok; };

    /** Explain a wrong-length ECDSA signature as a finding; returns the failure message. */
    const ecdsaDeviation = (spec: SignSpec, pub: KeyObject, data: Buffer, sig: Buffer): string => {
      const want = 2 * fieldBytes(spec.key);
      if (sig[0] === 0x30 && verifySoftware(spec, pub, data, sig, 'der')) {
        ctx.finding('deviation', `${caseName(spec)} returned a DER-encoded signature (${sig.length} bytes) instead of raw r‖s of ${want} bytes`);
        return `DER signature instead of raw r‖s (${sig.length} bytes, expected ${want})`;
      }
      if (sig.length < want) {
        ctx.finding('deviation', `${caseName(spec)} returned a ${sig.length}-byte signature where r‖s must be ${want} bytes: leading zeros of r or s dropped`);
        return `signature is ${sig.length} bytes, expected ${want} (leading zeros dropped)`;
      }
      return `signature is ${sig.length} bytes, expected ${want}`;
    };

    const needMechanisms = (c: CaseHandle, spec: SignSpec) => {
      if (!offered.has(spec.mechanism)) c.unsupported(`token does not offer ${mechanismName(spec.mechanism)}`);
      if (!offered.has(KEY_ALGS[spec.key].mechanism)) c.unsupported(`token does not offer ${mechanismName(KEY_ALGS[spec.key].mechanism)} to make a ${spec.key} key`);
    };

    try {
      const signCapability = new Map<number, boolean>();
      for (const spec of SPECS) {
        const status = await ctx.case(caseName(spec), async (c) => {
          needMechanisms(c, spec);
          const kp = await keyFor(spec.key);
          const pub = pubFor(kp);
          const data = randomBytes(100);
          const input = tokenInput(spec, data);
          const sig = await inSession(token, (s) => signOnce(token, s, spec, kp.privateKey, input));
          c.detail('signatureBytes', sig.length);
          if (spec.kind === 'ecdsa') {
            const ok = sig.length === 2 * fieldBytes(spec.key);
            noteEcdsa(ok);
            if (!ok) throw new Error(ecdsaDeviation(spec, pub, data, sig));
          }
          if (spec.kind === 'eddsa' && sig.length !== 64) throw new Error(`Ed25519 signature is ${sig.length} bytes, expected 64`);
          if (!verifySoftware(spec, pub, data, sig)) throw new Error('node:crypto does not verify the signature with the public key read from the token');
          if (verifySoftware(spec, pub, data, flipped(sig))) throw new Error('a signature with one flipped byte still verifies');
          if (spec.deterministic) {
            const again = await inSession(token, (s) => signOnce(token, s, spec, kp.privateKey, input));
            if (!again.equals(sig)) throw new Error('the same input signed twice gave different PKCS#1 v1.5 signatures');
          }
          signed.push({ spec, key: kp, input, signature: sig });
        });
        // A mechanism counts as usable when any of its cases passed.
        signCapability.set(spec.mechanism, (signCapability.get(spec.mechanism) ?? false) || status === 'pass');
      }
      for (const [mech, ok] of signCapability) ctx.capability(`sign:${mechanismName(mech)}`, ok);

      // ECDSA signature length, many times: r or s has a leading zero byte in ~1/128 of P-521 signatures.
      for (const [alg, repeats] of Object.entries(LENGTH_REPEATS) as [KeyAlg, number][]) {
        const spec = SPECS.find((s) => s.mechanism === pkcs11.CKM_ECDSA && s.key === alg)!;
        await ctx.case(`ecdsa-length/${alg}`, async (c) => {
          needMechanisms(c, spec);
          const kp = await keyFor(alg);
          const pub = pubFor(kp);
          const want = 2 * fieldBytes(alg);
          const t0 = performance.now();
          let done = 0;
          let withLeadingZeroByte = 0;
          await inSession(token, async (s) => {
            while (done < repeats && performance.now() - t0 < LENGTH_BUDGET_MS) {
              const data = randomBytes(32);
              const sig = await signOnce(token, s, spec, kp.privateKey, tokenInput(spec, data));
              done++;
              if (sig.length !== want) {
                noteEcdsa(false);
                throw new Error(`signature ${done} of ${repeats}: ${ecdsaDeviation(spec, pub, data, sig)}`);
              }
              if (!verifySoftware(spec, pub, data, sig)) throw new Error(`signature ${done} does not verify`);
              if (sig[0] === 0 || sig[want / 2] === 0) withLeadingZeroByte++;
            }
          });
          noteEcdsa(true);
          c.detail('signatures', done);
          c.detail('withLeadingZeroByte', withLeadingZeroByte);
          if (done < repeats) c.detail('stoppedAfterMs', LENGTH_BUDGET_MS);
        });
      }
      if (ecdsaRaw !== undefined) ctx.capability('ecdsa-raw-signature', ecdsaRaw);

      // Multi-part signing: C_SignUpdate in uneven chunks, then C_SignFinal.
      let multipart: boolean | undefined;
      for (const spec of SPECS.filter((s) => s.multipart)) {
        const status = await ctx.case(`multipart/${caseName(spec)}`, async (c) => {
          needMechanisms(c, spec);
          const kp = await keyFor(spec.key);
          const data = randomBytes(1000);
          const parts = [data.subarray(0, 1), data.subarray(1, 333), data.subarray(333)];
          let sig: Buffer;
          try {
            sig = await inSession(token, async (s) => {
              token.lib.C_SignInit(s, { mechanism: spec.mechanism, parameter: spec.parameter }, kp.privateKey);
              for (const p of parts) token.lib.C_SignUpdate(s, p);
              return token.lib.C_SignFinalAsync(s, Buffer.alloc(1024));
            });
          } catch (err) {
            const code = ckrOf(err);
            if (code === pkcs11.CKR_FUNCTION_NOT_SUPPORTED) c.unsupported('C_SignUpdate is not supported (CKR_FUNCTION_NOT_SUPPORTED)');
            throw err;
          }
          if (!verifySoftware(spec, pubFor(kp), data, sig)) throw new Error('multi-part signature does not verify with node:crypto');
          if (spec.deterministic) {
            const single = await inSession(token, (s) => signOnce(token, s, spec, kp.privateKey, data));
            if (!single.equals(sig)) throw new Error('multi-part and single-part PKCS#1 v1.5 signatures differ');
          }
        });
        if (status === 'pass') multipart = multipart ?? true;
        else if (status === 'fail') multipart = false;
      }
      if (multipart !== undefined) ctx.capability('multipart-sign', multipart);

      // C_Verify is optional (smartcards and the NetHSM lack it); record it, with a tampered signature too.
      const verifyStatus = await ctx.case('C_Verify', async (c) => {
        if (signed.length === 0) c.skip('no mechanism produced a signature to verify');
        const checked: string[] = [];
        for (const { spec, key, input, signature } of signed) {
          const result = (sig: Buffer) => inSession(token, async (s) => {
            token.lib.C_VerifyInit(s, { mechanism: spec.mechanism, parameter: spec.parameter }, key.publicKey);
            try {
              return token.lib.C_Verify(s, input, sig);
            } catch (err) {
              if (ckrOf(err) === pkcs11.CKR_SIGNATURE_INVALID || ckrOf(err) === pkcs11.CKR_SIGNATURE_LEN_RANGE) return false;
              throw err;
            }
          });
          let good: boolean;
          try {
            good = await result(signature);
          } catch (err) {
            const code = ckrOf(err);
            if (checked.length === 0 && (code === pkcs11.CKR_FUNCTION_NOT_SUPPORTED || code === pkcs11.CKR_MECHANISM_INVALID)) {
              c.ckr(code);
              c.unsupported('the token does not verify signatures (C_Verify); verification is done in software');
            }
            throw err;
          }
          if (!good) throw new Error(`C_Verify rejected a valid ${caseName(spec)} signature`);
          if (await result(flipped(signature))) throw new Error(`C_Verify accepted a tampered ${caseName(spec)} signature`);
          checked.push(caseName(spec));
        }
        c.detail('mechanisms', checked);
      });
      ctx.capability('verify', verifyStatus === 'pass');
    } finally {
      for (const k of keys.values()) {
        // A failed destroy stays tracked; the runner's cleanup case retries and reports it.
        token.destroyPair(await k.catch(() => undefined));
      }
    }
  },
};
