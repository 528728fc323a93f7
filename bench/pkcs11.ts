/**
 * PKCS#11 measurements on one logged-in token: signing latency, key generation and random numbers through
 * tinybench, and the concurrency sweep with its own loop, because tinybench's per-task throughput is per
 * operation and would hide what c operations in flight achieve together (bench.md §3).
 */
import { createHash, verify, constants as cryptoConstants } from 'node:crypto';
import { Bench, type Task } from 'tinybench';
import { pkcs11, type Handle, type Token } from '../src/pkcs11/token.js';
import { KEY_ALGS, digestInfo, generateKeyPair, publicKeyObject, type KeyAlg, type KeyPair } from '../src/pkcs11/keys.js';
import { CKM_EDDSA } from '../src/pkcs11/constants.js';
import { latencyStats } from './stats.js';
import { SIGNED_DATA } from './signed-data.js';
import type { KeygenFigure, LatencyStats, RandomFigure, ScalingPoint, SignFigure } from './types.js';

/** Signing algorithms DNSSEC signers use (pkcs11.md §6). */
export const SIGN_ALGS: KeyAlg[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384', 'ed25519'];
/** Key generation also covers P-521, which the documented table lists. */
export const KEYGEN_ALGS: KeyAlg[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384', 'ec-p521', 'ed25519'];
export const CONCURRENCY_LEVELS = [1, 2, 4, 8];

export function algorithmName(alg: KeyAlg): string {
  const info = KEY_ALGS[alg];
  if (info.family === 'rsa') return `RSA-${info.bits}`;
  if (info.family === 'ec') return `ECDSA ${info.curve}`;
  return 'Ed25519';
}

/**
 * What a DNSSEC signer hands the token for one RRSIG: a SHA-256 DigestInfo for RSASHA256 (CKM_RSA_PKCS),
 * the bare digest for ECDSA (CKM_ECDSA), the whole signed data for Ed25519 (CKM_EDDSA).
 */
export interface SigningPath {
  dnssec: string;
  mechanism: pkcs11.Mechanism;
  mechanismName: string;
  /** Stand-in for RRSIG RDATA plus a canonical RRset: what the signer hashes. */
  signedData: Buffer;
  /** What goes to C_Sign. */
  input: Buffer;
  /** Independent check of one signature with node:crypto. */
  check(token: Token, publicKey: Handle, signature: Buffer): boolean;
}


export function signingPath(alg: KeyAlg): SigningPath {
  const info = KEY_ALGS[alg];
  if (info.family === 'rsa') {
    return {
      dnssec: 'RSASHA256', mechanism: { mechanism: pkcs11.CKM_RSA_PKCS }, mechanismName: 'CKM_RSA_PKCS',
      signedData: SIGNED_DATA, input: digestInfo('sha256', createHash('sha256').update(SIGNED_DATA).digest()),
      check: (t, pub, sig) => verify('sha256', SIGNED_DATA, { key: publicKeyObject(t, pub), padding: cryptoConstants.RSA_PKCS1_PADDING }, sig),
    };
  }
  if (info.family === 'ec') {
    const hash = info.curve === 'P-384' ? 'sha384' : info.curve === 'P-521' ? 'sha512' : 'sha256';
    return {
      dnssec: info.curve === 'P-384' ? 'ECDSAP384SHA384' : 'ECDSAP256SHA256', mechanism: { mechanism: pkcs11.CKM_ECDSA }, mechanismName: 'CKM_ECDSA',
      signedData: SIGNED_DATA, input: createHash(hash).update(SIGNED_DATA).digest(),
      check: (t, pub, sig) => verify(hash, SIGNED_DATA, { key: publicKeyObject(t, pub), dsaEncoding: 'ieee-p1363' }, sig),
    };
  }
  return {
    dnssec: 'ED25519', mechanism: { mechanism: CKM_EDDSA }, mechanismName: 'CKM_EDDSA',
    signedData: SIGNED_DATA, input: SIGNED_DATA,
    check: (t, pub, sig) => verify(null, SIGNED_DATA, publicKeyObject(t, pub), sig),
  };
}

/** Why the token cannot do this algorithm (from its mechanism list), or undefined when it can. */
export function unsupportedReason(token: Token, alg: KeyAlg, mechanisms: ReadonlySet<number>, forSigning: boolean): string | undefined {
  const info = KEY_ALGS[alg];
  if (!mechanisms.has(info.mechanism)) return `the token does not list the key-pair generation mechanism for ${algorithmName(alg)}`;
  if (forSigning) {
    const sign = signingPath(alg).mechanism.mechanism;
    if (!mechanisms.has(sign)) return `the token does not list ${signingPath(alg).mechanismName}`;
  }
  if (info.family === 'rsa') {
    const mi = token.lib.C_GetMechanismInfo(token.slot, info.mechanism);
    // Some modules report sizes in bytes; accept either reading before calling the size unsupported.
    const fits = (k: number) => (mi.minKeySize <= k && k <= mi.maxKeySize);
    if (mi.maxKeySize > 0 && !fits(info.bits) && !fits(info.bits / 8)) return `RSA key size ${info.bits} is outside the token's range ${mi.minKeySize}–${mi.maxKeySize}`;
  }
  return undefined;
}

function fromTinybench(task: Task): LatencyStats {
  const r = task.result;
  if (r.state === 'errored') throw r.error;
  if (r.state !== 'completed') throw new Error(`benchmark ended in state ${r.state}`);
  const l = r.latency;
  return { samples: l.samplesCount, mean: l.mean, p50: l.p50, p99: l.p99, min: l.min, max: l.max, sd: l.sd, rme: l.rme };
}

/**
 * Key generation, timed per key pair. Runs at least `minIterations` and then until `budgetMs` is used.
 * Returns the keys so the caller can keep one for signing and destroy the rest.
 */
export async function benchKeygen(token: Token, alg: KeyAlg, minIterations: number, budgetMs: number): Promise<{ figure: KeygenFigure; keys: KeyPair[] }> {
  const keys: KeyPair[] = [];
  const bench = new Bench({ time: budgetMs, iterations: minIterations, warmup: false, throws: true });
  bench.add(`keygen ${alg}`, async () => { keys.push(await generateKeyPair(token, alg)); });
  try {
    await bench.run();
    return { figure: { alg, algorithm: algorithmName(alg), latency: fromTinybench(bench.tasks[0]!) }, keys };
  } catch (err) {
    for (const k of keys) destroyPair(token, k);
    throw err;
  }
}

/** Destroy a key pair now; what fails stays tracked for the token's cleanup, which reports it. */
export function destroyPair(token: Token, k: KeyPair): void {
  token.destroyPair(k);
}

/**
 * Sequential signing latency on one session with blocking C_SignInit + C_Sign: what one signer thread
 * sees, without the event loop's hand-off to the libuv pool.
 */
export async function benchSign(token: Token, alg: KeyAlg, key: KeyPair, budgetMs: number): Promise<SignFigure> {
  const path = signingPath(alg);
  const session = token.openSession(false);
  try {
    const out = Buffer.alloc(1024);
    token.lib.C_SignInit(session, path.mechanism, key.privateKey);
    const sig = Buffer.from(token.lib.C_Sign(session, path.input, out));
    if (!path.check(token, key.publicKey, sig)) throw new Error(`the ${algorithmName(alg)} signature does not verify with node:crypto`);
    const bench = new Bench({ time: budgetMs, iterations: 5, warmupTime: Math.min(100, budgetMs / 5), warmupIterations: 2, throws: true });
    bench.add(`sign ${alg}`, () => {
      token.lib.C_SignInit(session, path.mechanism, key.privateKey);
      token.lib.C_Sign(session, path.input, out);
    });
    await bench.run();
    const latency = fromTinybench(bench.tasks[0]!);
    return { alg, algorithm: algorithmName(alg), dnssec: path.dnssec, mechanism: path.mechanismName, latency, opsPerSec: 1000 / latency.mean };
  } finally {
    token.closeSession(session);
  }
}

export async function benchRandom(token: Token, bytes: number, budgetMs: number): Promise<RandomFigure> {
  const session = token.openSession(false);
  try {
    const buf = Buffer.alloc(bytes);
    const bench = new Bench({ time: budgetMs, iterations: 5, warmupTime: Math.min(50, budgetMs / 5), warmupIterations: 2, throws: true });
    bench.add(`random ${bytes}`, () => { token.lib.C_GenerateRandom(session, buf); });
    await bench.run();
    const latency = fromTinybench(bench.tasks[0]!);
    return { bytes, latency, opsPerSec: 1000 / latency.mean };
  } finally {
    token.closeSession(session);
  }
}

/**
 * c sessions, one C_SignInit + C_SignAsync in flight on each, re-issued as soon as it resolves, for
 * `budgetMs`. Aggregate rate = completed / wall time from the first issue to the last completion.
 */
export async function benchConcurrency(token: Token, alg: KeyAlg, key: KeyPair, concurrency: number, budgetMs: number): Promise<ScalingPoint> {
  const path = signingPath(alg);
  const sessions = Array.from({ length: concurrency }, () => token.openSession(false));
  const lib = token.lib;
  try {
    const outs = sessions.map(() => Buffer.alloc(1024));
    // Warm-up outside the window: a couple of signatures per session.
    await Promise.all(sessions.map(async (s, i) => {
      for (let k = 0; k < 2; k++) { lib.C_SignInit(s, path.mechanism, key.privateKey); await lib.C_SignAsync(s, path.input, outs[i]!); }
    }));
    const latencies: number[] = [];
    const start = performance.now();
    const deadline = start + budgetMs;
    let lastEnd = start;
    await Promise.all(sessions.map(async (s, i) => {
      const out = outs[i]!;
      while (performance.now() < deadline) {
        const t = performance.now();
        lib.C_SignInit(s, path.mechanism, key.privateKey);
        await lib.C_SignAsync(s, path.input, out);
        lastEnd = performance.now();
        latencies.push(lastEnd - t);
      }
    }));
    const wallSeconds = (lastEnd - start) / 1000;
    return {
      alg, algorithm: algorithmName(alg), concurrency, completed: latencies.length, wallSeconds,
      opsPerSec: latencies.length / wallSeconds, latency: latencyStats(latencies),
    };
  } finally {
    for (const s of sessions) token.closeSession(s);
  }
}
