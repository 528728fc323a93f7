/**
 * PKCS#11 measurements on one logged-in token. Two methods, each where it is the right tool:
 * - throughput is timed as a whole: batches of blocking C_SignInit + C_Sign in a tight loop (no promise or
 *   timer per operation), repeated, reported as the rate of each batch; signer threads (bench/threads.ts)
 *   run the harness's figure, each thread for the same window, and a bare pkcs11js loop of a fixed count
 *   runs beside it in the one-thread signer's thread as the reference;
 * - latency (p50/p99) is timed per operation with tinybench, where per-iteration timing is the point.
 * Every figure keeps a sample of the signatures it produced; a figure counts only if they verify.
 */
import { generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { Bench, type Task } from 'tinybench';
import type { pkcs11, Handle } from '../src/pkcs11/module.js';
import type { Token } from '../src/pkcs11/token.js';
import { KEY_ALGS, generateKeyPair, publicKeyObject, type KeyAlg, type KeyPair } from '../src/pkcs11/keys.js';
import { schemeForKey, type Hash, type SignScheme } from '../src/pkcs11/mechanisms.js';
import { DNSSEC_ALGORITHMS } from '../src/dnssec/dnskey.js';
import { latencyStats } from './stats.js';
import { SIGNED_DATA } from './signed-data.js';
import { SignerThreads } from './threads.js';
import type { EventLoopFigure, KeygenFigure, LatencyStats, RandomFigure, RateFigure, SignFigure } from './types.js';

/** Signing algorithms DNSSEC signers use (RFC 8624 §3.1: RSASHA256, ECDSAP256SHA256, ECDSAP384SHA384, ED25519). */
export const SIGN_ALGS: KeyAlg[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384', 'ed25519'];
/** Key generation also covers P-521, which the documented SmartCard-HSM table lists. */
export const KEYGEN_ALGS: KeyAlg[] = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384', 'ec-p521', 'ed25519'];
/** A quick pass on a physical token (a card at ~70 ms per signature) keeps to the two mainstream algorithms. */
export const PHYSICAL_QUICK_ALGS: KeyAlg[] = ['rsa-2048', 'ec-p256'];
/** Signer thread counts tried, capped by the driver's maxConcurrency and the token's free sessions. */
export const THREAD_LEVELS = [1, 2, 4, 8];

export function algorithmName(alg: KeyAlg): string {
  const info = KEY_ALGS[alg];
  if (info.family === 'rsa') return `RSA-${info.bits}`;
  if (info.family === 'ec') return `ECDSA ${info.curve}`;
  return 'Ed25519';
}

/**
 * What a DNSSEC signer hands the token for one RRSIG over SIGNED_DATA, from the one mechanism table
 * (src/pkcs11/mechanisms.ts, schemeForKey): a SHA-256 DigestInfo with CKM_RSA_PKCS, the digest with
 * CKM_ECDSA, the data itself with CKM_EDDSA.
 */
export interface SigningPath {
  scheme: SignScheme;
  mechanism: pkcs11.Mechanism;
  /** What goes to C_Sign. */
  input: Buffer;
}

export function signingPath(alg: KeyAlg, hash?: Hash): SigningPath {
  const scheme = schemeForKey(alg, hash);
  return { scheme, mechanism: scheme.mechanism, input: scheme.input(SIGNED_DATA) };
}

export function dnssecName(scheme: SignScheme): string {
  return scheme.dnssec !== undefined ? DNSSEC_ALGORITHMS[scheme.dnssec].name : scheme.name;
}

/** node:crypto's check of one signature over SIGNED_DATA by this key pair (the public key read once). */
export function signatureCheck(token: Token, publicKey: Handle, scheme: SignScheme): (signature: Buffer) => boolean {
  const key = publicKeyObject(token, publicKey);
  return (signature) => scheme.verify(key, SIGNED_DATA, signature);
}

/**
 * Verify every sampled signature; a description of what failed, or undefined when all verified. A module
 * that returns an empty or garbage signature with CKR_OK must not get a throughput figure.
 */
export function verifySamples(samples: Buffer[], check: (sig: Buffer) => boolean): string | undefined {
  if (samples.length === 0) return 'no signature was sampled';
  const bad = samples.filter((s) => {
    try {
      return !check(s);
    } catch {
      return true;
    }
  });
  if (bad.length === 0) return undefined;
  const lengths = [...new Set(bad.map((s) => s.length))].join(', ');
  return `${bad.length} of ${samples.length} sampled signatures do not verify with node:crypto (length ${lengths} bytes)`;
}

/** Why the token cannot do this algorithm (from its mechanism list), or undefined when it can. */
export function unsupportedReason(token: Token, alg: KeyAlg, mechanisms: ReadonlySet<number>, forSigning: boolean): string | undefined {
  const info = KEY_ALGS[alg];
  if (!mechanisms.has(info.mechanism)) return `the token does not list the key-pair generation mechanism for ${algorithmName(alg)}`;
  if (forSigning) {
    const sign = schemeForKey(alg).spec;
    if (!mechanisms.has(sign.code)) return `the token does not list ${sign.name}`;
  }
  if (info.family === 'rsa') {
    const mi = token.lib.C_GetMechanismInfo(token.slot, info.mechanism);
    // Some modules report sizes in bytes; accept either reading before calling the size unsupported.
    const fits = (k: number) => mi.minKeySize <= k && k <= mi.maxKeySize;
    if (mi.maxKeySize > 0 && !fits(info.bits) && !fits(info.bits / 8))
      return `RSA key size ${info.bits} is outside the token's range ${mi.minKeySize}–${mi.maxKeySize}`;
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

/** Rates of repeated batches: the median is the typical figure, the best the least disturbed one. */
export function rateFigure(rates: number[], operationsPerBatch: number): RateFigure {
  const s = latencyStats(rates);
  return { rates, median: s.p50, best: s.max, worst: s.min, rme: s.rme, operationsPerBatch };
}

/**
 * How figure a compares with figure b, from batches taken side by side: the median over rounds of a's batch
 * ÷ b's batch of the same round. Load from other processes comes and goes over seconds, so adjacent batches
 * share it and one lucky or unlucky batch does not move the median.
 */
export function pairedRatio(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  return latencyStats(Array.from({ length: n }, (_, i) => a[i]! / b[i]!)).p50;
}

/**
 * Key generation, timed per key pair. Runs at least `minIterations` and then until `budgetMs` is used.
 * Returns the keys so the caller can keep one for signing and destroy the rest.
 */
export async function benchKeygen(token: Token, alg: KeyAlg, minIterations: number, budgetMs: number): Promise<{ figure: KeygenFigure; keys: KeyPair[] }> {
  const keys: KeyPair[] = [];
  const bench = new Bench({ time: budgetMs, iterations: minIterations, warmup: false, throws: true });
  bench.add(`keygen ${alg}`, async () => {
    keys.push(await generateKeyPair(token, alg));
  });
  try {
    await bench.run();
    return { figure: { alg, algorithm: algorithmName(alg), latency: fromTinybench(bench.tasks[0]!) }, keys };
  } catch (err) {
    for (const k of keys) token.objects.destroyPair(k);
    throw err;
  }
}

/** Per-operation latency of blocking C_SignInit + C_Sign on one session (tinybench), with the last signature. */
export async function benchLatency(token: Token, path: SigningPath, key: KeyPair, budgetMs: number): Promise<{ latency: LatencyStats; signature: Buffer }> {
  const session = token.openSession(false);
  try {
    const out = Buffer.alloc(1024);
    let signature: Buffer = Buffer.alloc(0);
    const bench = new Bench({ time: budgetMs, iterations: 5, warmupTime: Math.min(100, budgetMs / 5), warmupIterations: 2, throws: true });
    bench.add('sign', () => {
      token.lib.C_SignInit(session, path.mechanism, key.privateKey);
      signature = token.lib.C_Sign(session, path.input, out);
    });
    await bench.run();
    return { latency: fromTinybench(bench.tasks[0]!), signature: Buffer.from(signature) };
  } finally {
    token.closeSession(session);
  }
}

/**
 * The event-loop path a Node application takes: `inFlight` sessions, each with one C_SignAsync outstanding
 * (pkcs11js hands the call to the libuv pool), re-issued as soon as it resolves, for `budgetMs`.
 */
export async function benchEventLoop(
  token: Token,
  path: SigningPath,
  key: KeyPair,
  inFlight: number,
  budgetMs: number,
): Promise<{ figure: EventLoopFigure; signatures: Buffer[] }> {
  const sessions = Array.from({ length: inFlight }, () => token.openSession(false));
  const lib = token.lib;
  try {
    const outs = sessions.map(() => Buffer.alloc(1024));
    const last: Buffer[] = sessions.map(() => Buffer.alloc(0));
    await Promise.all(
      sessions.map(async (s, i) => {
        for (let k = 0; k < 2; k++) {
          lib.C_SignInit(s, path.mechanism, key.privateKey);
          await lib.C_SignAsync(s, path.input, outs[i]!);
        }
      }),
    );
    const latencies: number[] = [];
    const start = performance.now();
    const deadline = start + budgetMs;
    let lastEnd = start;
    await Promise.all(
      sessions.map(async (s, i) => {
        const out = outs[i]!;
        while (performance.now() < deadline) {
          const t = performance.now();
          lib.C_SignInit(s, path.mechanism, key.privateKey);
          last[i] = await lib.C_SignAsync(s, path.input, out);
          lastEnd = performance.now();
          latencies.push(lastEnd - t);
        }
      }),
    );
    const wallSeconds = (lastEnd - start) / 1000;
    return {
      figure: { inFlight, completed: latencies.length, wallSeconds, opsPerSec: latencies.length / wallSeconds, latency: latencyStats(latencies) },
      signatures: last.map((b) => Buffer.from(b)),
    };
  } finally {
    for (const s of sessions) token.closeSession(s);
  }
}

/** C_GenerateRandom latency; also returns two outputs so the caller can check they are not constant. */
export async function benchRandom(token: Token, bytes: number, budgetMs: number): Promise<{ figure: RandomFigure; outputs: Buffer[] }> {
  const session = token.openSession(false);
  try {
    const buf = Buffer.alloc(bytes);
    const bench = new Bench({ time: budgetMs, iterations: 5, warmupTime: Math.min(50, budgetMs / 5), warmupIterations: 2, throws: true });
    bench.add(`random ${bytes}`, () => {
      token.lib.C_GenerateRandom(session, buf);
    });
    await bench.run();
    const latency = fromTinybench(bench.tasks[0]!);
    const outputs = [0, 1].map(() => Buffer.from(token.lib.C_GenerateRandom(session, Buffer.alloc(bytes))));
    return { figure: { bytes, latency, opsPerSec: 1000 / latency.mean }, outputs };
  } finally {
    token.closeSession(session);
  }
}

export interface SigningPlan {
  token: Token;
  pin: string;
  alg: KeyAlg;
  /** keys[0] signs the latency, bare-loop and shared-key figures; keys[0..T-1] the "a key per thread" figure at T threads. */
  keys: KeyPair[];
  /** Signer thread counts, ascending, starting at 1. */
  levels: number[];
  /** At most this many rounds of batches (fewer when a batch would be shorter than MIN_BATCH). */
  maxRounds: number;
  budgetMs: number;
  eventLoop: boolean;
}

type ThreadFigure = SignFigure['threads'][number];

/**
 * The machine's own speed, measured beside the token: node:crypto (OpenSSL) signing with a key of the same kind on
 * this thread for `ms`, in signatures per second. A shared virtual machine's speed moves by tens of percent from
 * second to second, invisibly from inside (its host's other guests, the clock it gives the cores); a token that
 * signs on this CPU (SoftHSM) moves with it. Taken in every round of batches, it lets `diff` tell a token that
 * changed from a machine that did (src/fleet/noise.ts).
 */
export function machineSigner(alg: KeyAlg, hash: Hash | null): { what: string; batch: (ms: number) => number } {
  const info = KEY_ALGS[alg];
  const key =
    info.family === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: info.bits }).privateKey
      : info.family === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: info.curve! }).privateKey
        : generateKeyPairSync('ed25519').privateKey;
  const data = Buffer.from(SIGNED_DATA);
  return {
    what: `node:crypto (OpenSSL ${process.versions.openssl}) signing with a ${algorithmName(alg)} key on the harness's thread`,
    batch(ms) {
      const start = performance.now();
      let n = 0;
      do {
        nodeSign(hash, data, key);
        n++;
      } while (performance.now() - start < ms);
      return n / ((performance.now() - start) / 1000);
    },
  };
}

const MIN_BATCH_MS = 50;
const MIN_BATCH_SIGNATURES = 10;

/**
 * Everything measured for one signing algorithm: latency first (tinybench), then rounds of throughput
 * batches, each round one bare-loop batch and one batch per signer-thread pool (1, 2, 4 … threads on one key,
 * and 2, 4 … threads with a key each where there are keys for them), so that load from other processes on
 * a shared machine hits every figure alike and each ratio compares batches taken side by side; then the
 * event-loop path. Returns the figures and every sampled signature, by the key that made it.
 */
export async function measureSigning(plan: SigningPlan): Promise<{
  latency: LatencyStats;
  bare: RateFigure;
  threads: ThreadFigure[];
  keyPerThread: ThreadFigure[];
  /** One thread ÷ the bare loop, paired by round. */
  vsBareLoop: number;
  /** The machine's own speed in each round (machineSigner), in the order of the figures' rates. */
  machine: RateFigure & { what: string };
  eventLoop?: EventLoopFigure;
  samples: Map<KeyPair, Buffer[]>;
}> {
  const { token, alg, keys, levels, budgetMs } = plan;
  const key = keys[0]!;
  const path = signingPath(alg);
  // Only the keys that signed appear: each one's signatures are verified against its own public key.
  const samples = new Map<KeyPair, Buffer[]>();
  const sample = (k: KeyPair, signature: Buffer): void => {
    samples.set(k, [...(samples.get(k) ?? []), signature]);
  };
  const lat = await benchLatency(token, path, key, budgetMs * 0.1);
  sample(key, lat.signature);
  const perOpMs = Math.max(lat.latency.mean, 1e-3);
  const plans = [
    ...levels.map((threads) => ({ threads, keys: [key] })),
    ...levels.filter((t) => t > 1 && t <= keys.length).map((threads) => ({ threads, keys: keys.slice(0, threads) })),
  ];
  // Many short rounds rather than a few long ones: the ratios are medians over rounds, and batches taken
  // close together share the machine's load. A batch lasts at least MIN_BATCH_MS and MIN_BATCH_SIGNATURES
  // signatures, so a slow token gets fewer, longer rounds.
  // Per round: the bare loop, each pool, and the machine's own speed (half a batch before the token's, half after).
  const roundMs = (budgetMs * (plan.eventLoop ? 0.78 : 0.88)) / (2 + plans.length);
  const batches = Math.max(3, Math.min(plan.maxRounds, Math.floor(roundMs / Math.max(MIN_BATCH_MS, MIN_BATCH_SIGNATURES * perOpMs))));
  const batchMs = roundMs / batches;
  // The bare loop's batch size: about batchMs of signatures, at least a few.
  const bareIterations = Math.min(1_000_000, Math.max(5, Math.round(batchMs / perOpMs)));
  const bareRates: number[] = [];
  const machine = machineSigner(alg, path.scheme.hash);
  const machineRates: number[] = [];
  const pools: { threads: number; keys: KeyPair[]; pool: SignerThreads; rates: number[]; signatures: number }[] = [];
  try {
    for (const p of plans) {
      // Each thread signs for the same window: one thread slowed by other load cannot stretch the batch.
      const pool = await SignerThreads.start({
        token,
        pin: plan.pin,
        keyIds: p.keys.map((k) => k.id),
        mechanism: path.mechanism.mechanism,
        input: path.input,
        threads: p.threads,
        iterations: 0,
        windowMs: batchMs,
      });
      pools.push({ ...p, pool, rates: [], signatures: 0 });
    }
    const single = pools[0]!;
    for (let b = 0; b < batches; b++) {
      const machineBefore = machine.batch(batchMs / 2);
      const bare = await single.pool.batch(bareIterations);
      bareRates.push(bare.rate);
      sample(key, bare.signatures[0]!);
      for (const p of pools) {
        const r = await p.pool.batch();
        p.rates.push(r.rate);
        p.signatures += r.signatureCount;
        r.signatures.forEach((signature, i) => {
          sample(p.keys[i % p.keys.length]!, signature);
        });
      }
      machineRates.push((machineBefore + machine.batch(batchMs / 2)) / 2);
    }
  } finally {
    for (const p of pools) await p.pool.close();
  }
  const oneThread = pools[0]!.rates;
  const figure = (p: (typeof pools)[number]): ThreadFigure => ({
    threads: p.threads,
    ...rateFigure(p.rates, Math.round(p.signatures / batches)),
    ...(p.threads > 1 ? { vsOneThread: pairedRatio(p.rates, oneThread) } : {}),
  });
  const threads = pools.filter((p) => p.keys.length === 1).map(figure);
  const keyPerThread = pools.filter((p) => p.keys.length > 1).map(figure);

  let eventLoop: EventLoopFigure | undefined;
  if (plan.eventLoop) {
    const ev = await benchEventLoop(token, path, key, levels[levels.length - 1]!, budgetMs * 0.1);
    eventLoop = ev.figure;
    for (const s of ev.signatures) sample(key, s);
  }
  const vsBareLoop = pairedRatio(oneThread, bareRates);
  return {
    latency: lat.latency,
    bare: rateFigure(bareRates, bareIterations),
    threads,
    keyPerThread,
    vsBareLoop,
    machine: { what: machine.what, ...rateFigure(machineRates, 0) },
    eventLoop,
    samples,
  };
}
