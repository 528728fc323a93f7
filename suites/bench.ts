/**
 * Benchmarks on a PKCS#11 token: key generation, signing throughput (bare pkcs11js loop beside the
 * harness's signer threads, 1 … maxConcurrency threads), latency, random numbers, ods-hsmspeed side by side,
 * the documented SmartCard-HSM table and the DNSSEC view. Figures go to ctx.report.sections.bench; they are
 * measurements, not test cases. The cases are only the checks that can fail: the benchmark's signatures
 * verify, its keys are usable, the random numbers are not constant, ods-hsmspeed ran. Speed is reported,
 * never asserted.
 *
 * Options (ctx.options.bench, set by `hsm-harness bench`): { quick, timeSeconds, compareOnly }. Without
 * them (`hsm-harness run`) the suite runs a quick pass on a small budget.
 */
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseHandle, Suite, SuiteCase, SuiteContext } from '../src/suite.js';
import { benchReport, signSummary } from '../bench/report.js';
import { trimPadded } from '../src/pkcs11/module.js';
import type { Token } from '../src/pkcs11/token.js';
import type { KeyAlg, KeyPair } from '../src/pkcs11/keys.js';
import { KEY_ALGS, generateKeyPair, publicKeyObject } from '../src/pkcs11/keys.js';
import { projectRoot } from '../src/paths.js';
import { which } from '../src/proc.js';
import { describeError } from '../src/errors.js';
import {
  KEYGEN_ALGS,
  PHYSICAL_QUICK_ALGS,
  SIGN_ALGS,
  THREAD_LEVELS,
  algorithmName,
  benchKeygen,
  benchRandom,
  dnssecName,
  measureSigning,
  signatureCheck,
  signingPath,
  unsupportedReason,
  verifySamples,
} from '../bench/pkcs11.js';
import { HSMSPEED_TOOL, runHsmspeed, writeHsmspeedConf } from '../bench/hsmspeed.js';
import { SignerThreads, type BatchResult } from '../bench/threads.js';
import { compareWithDocumented, loadDocumentedTable } from '../bench/documented.js';
import { dnssecViews } from '../bench/dnssec.js';
import type { BenchOptions, BenchSection, HsmspeedRow, HsmspeedSection } from '../bench/types.js';

/** The quick pass `hsm-harness run` includes, per driver. */
export const RUN_BUDGET_SECONDS = 12;
export const QUICK_BUDGET_SECONDS = 20;
export const DEFAULT_BUDGET_SECONDS = 60;
/** The harness/ods-hsmspeed and harness/bare-loop ratios the harness's own overhead must reach. */
export const TARGET_RATIO = 0.95;
/** Extra keys for the "a key each" figures only where one key pair takes less than this on average. */
const EXTRA_KEYS_BELOW_MS = 2000;

export function benchOptions(options: Record<string, unknown>): BenchOptions {
  const b = options.bench as Partial<BenchOptions> | undefined;
  if (!b) return { quick: true, timeSeconds: RUN_BUDGET_SECONDS, compareOnly: false };
  const quick = b.quick === true;
  return { quick, timeSeconds: b.timeSeconds ?? (quick ? QUICK_BUDGET_SECONDS : DEFAULT_BUDGET_SECONDS), compareOnly: b.compareOnly === true };
}

function version(v: { major: number; minor: number }): string {
  return `${v.major}.${v.minor}`;
}

function tinybenchVersion(): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(projectRoot(), 'node_modules', 'tinybench', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

function environment(token: Token, maxConcurrency: number): Record<string, unknown> {
  const info = token.lib.C_GetInfo();
  const ti = token.tokenInfo();
  return {
    module: token.module.path,
    library: `${trimPadded(info.manufacturerID)} ${trimPadded(info.libraryDescription)}`,
    libraryVersion: version(info.libraryVersion),
    cryptokiVersion: version(info.cryptokiVersion),
    token: `${trimPadded(ti.manufacturerID)} ${trimPadded(ti.model)}`,
    firmwareVersion: version(ti.firmwareVersion),
    hardwareVersion: version(ti.hardwareVersion),
    maxSessionCount: ti.maxSessionCount,
    maxConcurrency,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (libuv default)',
    node: process.version,
    tinybench: tinybenchVersion(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    loadAverage: loadAverage(),
  };
}

/** The 1-minute load average when the run started: the machine may be shared, and load only slows figures down. */
function loadAverage(): string | undefined {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return undefined;
  }
}

/** How many sessions we may open at once: ulMaxSessionCount minus the ones already open (0 = no limit). */
function sessionRoom(token: Token): number {
  const ti = token.tokenInfo();
  const max = Number(ti.maxSessionCount);
  const open = Number(ti.sessionCount);
  if (!(max > 0 && max < 2 ** 32 - 1)) return Infinity;
  return max - (open > 0 && open < 2 ** 32 - 1 ? open : 1);
}

/** What the measuring cases (keygen, sign-*, random) work with; absent in a compare-only run. */
interface MeasurePlan {
  signAlgs: KeyAlg[];
  signable: KeyAlg[];
  keygenable: KeyAlg[];
  keygenMs: number;
  signMs: number;
  maxRounds: number;
  eventLoop: boolean;
  /** A key per signer thread at the highest level, for the "a key each" figures. */
  keysPerAlg: number;
  keygenCount: number;
  /** The keygen case ran: a sign case without keys then skips; otherwise (run --case) it makes its own. */
  keygenRan: boolean;
}

/** ods-hsmspeed beside the harness, sized by the first ods-hsmspeed case's before(). */
interface SideBySide {
  hs: HsmspeedSection;
  unavailable?: string;
  key?: KeyPair;
  /** The key made for the comparison when the sign cases left none. */
  ownKey?: KeyPair;
  tmp?: { path: string; remove: () => Promise<void> };
  iterations: number;
  runTimeoutMs: number;
  perRunS: number;
}

interface BenchState {
  token: Token;
  opts: BenchOptions;
  budgetMs: number;
  mechanisms: ReadonlySet<number>;
  section: BenchSection;
  signingKeys: Map<KeyAlg, KeyPair[]>;
  plan?: MeasurePlan;
  /** ods-hsmspeed runs with 1 and 2 threads where the signer-thread levels include them. */
  threadCounts: number[];
  sideBySide?: SideBySide;
}

function setup(ctx: SuiteContext): BenchState {
  const token = ctx.token!;
  const opts = benchOptions(ctx.options);
  // One signer thread per session, each a real OS thread: never more than the driver allows at once
  // (1 for a smartcard, which executes one command at a time) or than the token has sessions for.
  // The bare loop's session and one per signer thread of every pool are open at once: each level on one
  // key, and each level above 1 again with a key per thread.
  const room = sessionRoom(token);
  const threadLevels = THREAD_LEVELS.filter((t) => t <= ctx.traits.maxConcurrency);
  while (threadLevels.length > 1 && threadLevels.reduce((n, t) => n + (t > 1 ? 2 * t : t), 1) > room) threadLevels.pop();
  const section: BenchSection = {
    mode: opts.compareOnly ? 'compare' : opts.quick ? 'quick' : 'full',
    budgetSeconds: opts.timeSeconds,
    environment: environment(token, ctx.traits.maxConcurrency),
    threadLevels,
    sign: [],
    rejected: [],
    keygen: [],
    dnssec: [],
  };
  ctx.report.sections.bench = section;
  const s: BenchState = {
    token,
    opts,
    budgetMs: opts.timeSeconds * 1000,
    mechanisms: token.offeredMechanisms(),
    section,
    signingKeys: new Map(),
    threadCounts: [1, 2].filter((t) => threadLevels.includes(t)),
  };
  if (!opts.compareOnly) s.plan = measurePlan(ctx, s);
  return s;
}

function measurePlan(ctx: SuiteContext, s: BenchState): MeasurePlan {
  const { token, opts, budgetMs, mechanisms, section } = s;
  // A quick pass on a physical token keeps to what fits in a few minutes on a smartcard.
  const narrow = opts.quick && ctx.traits.physical;
  const keygenAlgs = narrow ? PHYSICAL_QUICK_ALGS : KEYGEN_ALGS;
  const signAlgs = narrow ? PHYSICAL_QUICK_ALGS : SIGN_ALGS;
  const signable = signAlgs.filter((a) => !unsupportedReason(token, a, mechanisms, true));
  ctx.log(`bench: ${section.mode} pass, budget ${opts.timeSeconds} s, ${signable.length} signing algorithms, signer threads ${section.threadLevels.join('/')}`);
  return {
    signAlgs,
    signable,
    keygenable: keygenAlgs.filter((a) => !unsupportedReason(token, a, mechanisms, false)),
    keygenMs: (budgetMs * 0.1) / keygenAlgs.length,
    signMs: (budgetMs * 0.65) / Math.max(1, signable.length),
    maxRounds: opts.quick ? 9 : 15,
    eventLoop: !narrow,
    // Extra keys only where a key pair takes less than EXTRA_KEYS_BELOW_MS (RSA-4096 on a YubiHSM 2 takes minutes).
    keysPerAlg: Math.max(...section.threadLevels),
    keygenCount: opts.quick ? 1 : 2,
    keygenRan: false,
  };
}

/** Key generation: the figures are measurements; the check is that every generated key pair is usable. */
async function keygenCase(c: CaseHandle, s: BenchState, ctx: SuiteContext, p: MeasurePlan): Promise<void> {
  const { token, section } = s;
  p.keygenRan = true;
  if (p.keygenable.length === 0) c.unsupported('the token lists none of the key-pair generation mechanisms benchmarked');
  const problems: string[] = [];
  let checked = 0;
  for (const alg of p.keygenable) {
    const { figure, keys } = await benchKeygen(token, alg, p.keygenCount, p.keygenMs);
    section.keygen.push(figure);
    if (p.signable.includes(alg) && figure.latency.mean < EXTRA_KEYS_BELOW_MS) {
      while (keys.length < p.keysPerAlg) keys.push(await generateKeyPair(token, alg));
    }
    for (const k of keys) {
      checked++;
      const why = unusableKey(token, alg, k);
      if (why) problems.push(`${algorithmName(alg)}: ${why}`);
    }
    if (p.signable.includes(alg) && keys.length) s.signingKeys.set(alg, keys.splice(0, p.keysPerAlg));
    for (const k of keys) token.objects.destroyPair(k);
    ctx.log(`keygen ${figure.algorithm}: ${figure.latency.samples} × mean ${round(figure.latency.mean)} ms`);
  }
  c.detail('keyPairsChecked', checked);
  if (problems.length) throw new Error(`generated key pairs are not usable: ${problems.join('; ')}`);
}

function keygenTimeoutMs(ctx: SuiteContext, s: BenchState): number {
  const p = s.plan!;
  return ctx.limits.caseMs * (p.keygenCount + 1) * p.keygenable.length + EXTRA_KEYS_BELOW_MS * 2 * p.keysPerAlg * p.signable.length + s.budgetMs * 0.2;
}

/** The check: a sample of every figure's signatures verifies with node:crypto. Only then is it published. */
async function signCase(c: CaseHandle, s: BenchState, ctx: SuiteContext, p: MeasurePlan, alg: KeyAlg): Promise<void> {
  const { token, section } = s;
  const why = unsupportedReason(token, alg, s.mechanisms, true);
  if (why) c.unsupported(why);
  if (!p.keygenRan && !s.signingKeys.has(alg)) {
    const made: KeyPair[] = [];
    s.signingKeys.set(alg, made);
    while (made.length < p.keysPerAlg) made.push(await generateKeyPair(token, alg));
  }
  const keys = s.signingKeys.get(alg);
  const key = keys?.[0];
  if (!keys || !key) c.skip(`no ${algorithmName(alg)} key: key generation for it failed (case keygen)`);
  const m = await measureSigning({
    token,
    pin: ctx.connections.pkcs11!.pin,
    alg,
    keys: keys!,
    levels: section.threadLevels,
    maxRounds: p.maxRounds,
    budgetMs: p.signMs,
    eventLoop: p.eventLoop,
  });
  const path = signingPath(alg);
  const sampled = [...m.samples.values()].flat().length;
  const failures = [...m.samples].map(([k, signatures]) => verifySamples(signatures, signatureCheck(token, k.publicKey, path.scheme)));
  const failed = failures.find((f) => f !== undefined);
  c.detail('signaturesVerified', sampled);
  if (failed) {
    section.rejected.push({ alg, algorithm: algorithmName(alg), reason: failed });
    throw new Error(`benchmark figures withheld: ${failed}`);
  }
  const figure = {
    alg,
    algorithm: algorithmName(alg),
    dnssec: dnssecName(path.scheme),
    mechanism: path.scheme.spec.name,
    latency: m.latency,
    bareLoop: m.bare,
    threads: m.threads,
    ...(m.keyPerThread.length ? { keyPerThread: m.keyPerThread } : {}),
    vsBareLoop: m.vsBareLoop,
    machine: m.machine,
    verifiedSignatures: sampled,
    ...(m.eventLoop ? { eventLoop: m.eventLoop } : {}),
  };
  section.sign.push(figure);
  ctx.log(`${signSummary(figure)}; p50 ${round(m.latency.p50, 3)} ms`);
  if (figure.vsBareLoop < TARGET_RATIO) {
    ctx.finding('note', `${figure.algorithm}: the harness reached ${figure.vsBareLoop.toFixed(3)}× the bare pkcs11js loop (target ${TARGET_RATIO})`);
  }
}

async function randomCase(c: CaseHandle, s: BenchState, ctx: SuiteContext): Promise<void> {
  if (!s.mechanisms.size) c.unsupported('the token lists no mechanisms');
  const { figure, outputs } = await benchRandom(s.token, 32, Math.max(100, s.budgetMs * 0.03));
  s.section.random = figure;
  if (outputs[0]!.equals(outputs[1]!)) throw new Error('two C_GenerateRandom calls returned the same 32 bytes');
  if (outputs.some((o) => o.every((b) => b === 0))) throw new Error('C_GenerateRandom returned 32 zero bytes');
  ctx.log(`random 32 bytes: mean ${round(figure.latency.mean, 4)} ms`);
}

/**
 * Before the first ods-hsmspeed case: whether it can run, the key it signs with, and the run size, from the
 * harness's RSA-2048 rate (or, without that figure, one short batch).
 */
async function prepareSideBySide(s: BenchState, ctx: SuiteContext): Promise<void> {
  if (s.sideBySide) return;
  const { token, opts, section } = s;
  const repetitions = opts.compareOnly ? 5 : opts.quick ? 2 : 3;
  const hs: HsmspeedSection = { tool: HSMSPEED_TOOL, repetitions, rows: [] };
  section.hsmspeed = hs;
  const unavailable = !(await which(HSMSPEED_TOOL))
    ? `${HSMSPEED_TOOL} is not installed (apt-get install libhsm-bin)`
    : opts.quick && ctx.traits.physical
      ? 'not part of a quick pass on a physical token (run hsm-harness bench, or bench --compare ods-hsmspeed)'
      : unsupportedReason(token, 'rsa-2048', s.mechanisms, true);
  const side: SideBySide = { hs, unavailable, iterations: 0, runTimeoutMs: 0, perRunS: 0 };
  s.sideBySide = side;
  if (unavailable) {
    hs.skipped = unavailable;
    return;
  }
  // The PIN goes to ods-hsmspeed in conf.xml: mode 0600, in a directory the runner removes however the run
  // ends, and deleted as soon as ods-hsmspeed has read it.
  side.tmp = await ctx.tempDir('hsmspeed');
  side.key = s.signingKeys.get('rsa-2048')?.[0];
  if (!side.key) side.key = side.ownKey = await generateKeyPair(token, 'rsa-2048');
  const oneSession = section.sign.find((x) => x.alg === 'rsa-2048')?.threads[0]?.median;
  const rate = oneSession ?? (await hsmspeedMethodBatch(token, ctx.connections.pkcs11!.pin, side.key, 1, 20)).rate;
  const budgetMs = opts.compareOnly ? s.budgetMs : s.budgetMs * 0.2;
  side.perRunS = Math.max(0.25, budgetMs / 1000 / (repetitions * s.threadCounts.length * 3));
  side.iterations = Math.min(100_000, Math.max(10, Math.round(rate * side.perRunS)));
  side.runTimeoutMs = 60_000 + Math.round((side.iterations / rate) * 20_000);
}

/** The check: ods-hsmspeed ran and printed its result, and the harness's signatures verified. */
async function hsmspeedCase(c: CaseHandle, s: BenchState, ctx: SuiteContext, threads: number): Promise<void> {
  const side = s.sideBySide!;
  if (side.unavailable) c.skip(side.unavailable);
  const { token } = s;
  const { hs, iterations } = side;
  const pk = ctx.connections.pkcs11!;
  const key = side.key!;
  const repository = { name: 'hsm-harness', modulePath: pk.modulePath, tokenLabel: trimPadded(token.tokenInfo().label), pin: pk.pin };
  const row: HsmspeedRow = { threads, iterationsPerThread: iterations };
  hs.rows.push(row);
  const ods: number[] = [];
  const own: number[] = [];
  const samples: Buffer[] = [];
  let line = '';
  for (let r = 0; r < hs.repetitions; r++) {
    try {
      // ods-hsmspeed gets the token to itself, as it has in production: none of our sessions or
      // logins are open while it runs (a card behind OpenSC would otherwise lose them, or block it).
      const res = await token.handOver(async () => {
        const conf = await writeHsmspeedConf(side.tmp!.path, repository);
        return runHsmspeed(conf, repository.name, threads, iterations, process.env, side.runTimeoutMs);
      });
      if (!ods.length || res.rate > Math.max(...ods)) line = res.line;
      ods.push(res.rate);
    } catch (err) {
      row.odsError = describeError(err);
    }
    try {
      const b = await hsmspeedMethodBatch(token, pk.pin, key, threads, iterations);
      own.push(b.rate);
      samples.push(...b.signatures);
    } catch (err) {
      row.harnessError = describeError(err);
    }
  }
  const failed = own.length ? verifySamples(samples, signatureCheck(token, key.publicKey, hsmspeedPath.scheme)) : undefined;
  if (failed) {
    row.harnessError = `figures withheld: ${failed}`;
    own.length = 0;
  }
  if (ods.length) row.ods = { rates: ods, best: Math.max(...ods), line };
  if (own.length) row.harness = { rates: own, best: Math.max(...own) };
  if (row.ods && row.harness) row.ratio = row.harness.best / row.ods.best;
  const label = `${threads} ${threads === 1 ? 'thread' : 'threads'}, ${iterations} signatures per thread`;
  const fig = (f: { best: number } | undefined) => (f ? `${f.best.toFixed(2)} sig/s` : 'failed');
  ctx.log(`${label}: ods-hsmspeed ${fig(row.ods)}, harness ${fig(row.harness)}${row.ratio !== undefined ? `, ratio ${row.ratio.toFixed(3)}` : ''}`);
  if (row.odsError) throw new Error(row.odsError);
  if (row.harnessError) throw new Error(row.harnessError);
  if (row.ratio! < TARGET_RATIO) ctx.finding('note', `harness/ods-hsmspeed ratio ${row.ratio!.toFixed(3)} at ${label} is below the ${TARGET_RATIO} target`);
}

function hsmspeedTimeoutMs(ctx: SuiteContext, s: BenchState): number {
  const side = s.sideBySide!;
  return side.unavailable ? ctx.limits.caseMs : ctx.limits.caseMs + side.hs.repetitions * (side.runTimeoutMs + 3 * side.perRunS * 1000 * 10);
}

/** The views computed from the figures (documented table, DNSSEC), then every key the benchmark made goes. */
async function teardown(_ctx: SuiteContext, s: BenchState): Promise<void> {
  const { token, section } = s;
  try {
    if (s.plan) {
      const ti = token.tokenInfo();
      section.documented = compareWithDocumented(loadDocumentedTable(), section, { manufacturer: trimPadded(ti.manufacturerID), model: trimPadded(ti.model) });
      section.dnssec = dnssecViews(section.sign);
    }
  } finally {
    if (s.sideBySide?.ownKey) token.objects.destroyPair(s.sideBySide.ownKey);
    await s.sideBySide?.tmp?.remove();
    for (const k of [...s.signingKeys.values()].flat()) token.objects.destroyPair(k);
  }
}

export const benchSuite: Suite<BenchState> = {
  name: 'bench',
  report: benchReport,
  title: 'Benchmarks (throughput, signer threads, ods-hsmspeed, documented table)',
  needs: 'pkcs11',
  setup,
  cases: [
    { name: 'keygen', applies: (_ctx, s) => !!s.plan, timeoutMs: keygenTimeoutMs, run: (c, s, ctx) => keygenCase(c, s, ctx, s.plan!) },
    ...SIGN_ALGS.map(
      (alg): SuiteCase<BenchState> => ({
        name: `sign-${alg}`,
        applies: (_ctx, s) => !!s.plan?.signAlgs.includes(alg),
        timeoutMs: (ctx, s) => ctx.limits.caseMs * 2 + s.plan!.signMs * 3,
        run: (c, s, ctx) => signCase(c, s, ctx, s.plan!, alg),
      }),
    ),
    { name: 'random', applies: (_ctx, s) => !!s.plan, timeoutMs: (ctx, s) => ctx.limits.caseMs + s.budgetMs * 0.1, run: (c, s, ctx) => randomCase(c, s, ctx) },
    ...[1, 2].map(
      (threads): SuiteCase<BenchState> => ({
        name: `ods-hsmspeed-t${threads}`,
        applies: (_ctx, s) => s.threadCounts.includes(threads),
        before: prepareSideBySide,
        timeoutMs: hsmspeedTimeoutMs,
        run: (c, s, ctx) => hsmspeedCase(c, s, ctx, threads),
      }),
    ),
  ],
  teardown,
};

/** Why a generated key pair cannot be used (public key unreadable, or not the type and size asked for), or undefined. */
function unusableKey(token: Token, alg: KeyAlg, k: KeyPair): string | undefined {
  const info = KEY_ALGS[alg];
  try {
    const key = publicKeyObject(token, k.publicKey);
    const details = key.asymmetricKeyDetails ?? {};
    if (info.family === 'rsa' && (key.asymmetricKeyType !== 'rsa' || details.modulusLength !== info.bits)) {
      return `public key is ${key.asymmetricKeyType} with ${details.modulusLength} bits`;
    }
    const curve = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[info.curve ?? 'P-256'];
    if (info.family === 'ec' && (key.asymmetricKeyType !== 'ec' || details.namedCurve !== curve)) {
      return `public key is ${key.asymmetricKeyType} on ${details.namedCurve}`;
    }
    if (info.family === 'ed25519' && key.asymmetricKeyType !== 'ed25519') return `public key is ${key.asymmetricKeyType}`;
    return undefined;
  } catch (err) {
    return `public key unreadable: ${describeError(err)}`;
  }
}

/** ods-hsmspeed's signing path: RSA-2048, CKM_RSA_PKCS over a SHA-1 DigestInfo (the signer threads re-hash per signature). */
const hsmspeedPath = signingPath('rsa-2048', 'sha1');

/**
 * One batch of the ods-hsmspeed method on `threads` fresh signer threads (started after ods-hsmspeed has
 * handed the token back, closed before it gets the token again).
 */
async function hsmspeedMethodBatch(token: Token, pin: string, key: KeyPair, threads: number, iterations: number): Promise<BatchResult> {
  const pool = await SignerThreads.start({
    token,
    pin,
    keyIds: [key.id],
    mechanism: hsmspeedPath.mechanism.mechanism,
    input: hsmspeedPath.input,
    hsmspeedInput: true,
    threads,
    iterations,
  });
  try {
    return await pool.batch();
  } finally {
    await pool.close();
  }
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
