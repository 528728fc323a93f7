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
import type { Suite, SuiteContext } from '../src/suite.js';
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

export const benchSuite: Suite = {
  name: 'bench',
  report: benchReport,
  title: 'Benchmarks (throughput, signer threads, ods-hsmspeed, documented table)',
  needs: 'pkcs11',
  async run(ctx) {
    const token = ctx.token;
    if (!token) return;
    const opts = benchOptions(ctx.options);
    const budgetMs = opts.timeSeconds * 1000;
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
    const mechanisms = token.offeredMechanisms();
    const signingKeys = new Map<KeyAlg, KeyPair[]>();
    try {
      if (!opts.compareOnly) await measureToken(ctx, token, opts, budgetMs, mechanisms, section, signingKeys);
      await sideBySide(ctx, token, opts, opts.compareOnly ? budgetMs : budgetMs * 0.2, mechanisms, section, signingKeys);
      if (!opts.compareOnly) {
        const ti = token.tokenInfo();
        const identity = { manufacturer: trimPadded(ti.manufacturerID), model: trimPadded(ti.model) };
        section.documented = compareWithDocumented(loadDocumentedTable(), section, identity);
        section.dnssec = dnssecViews(section.sign);
      }
    } finally {
      for (const k of [...signingKeys.values()].flat()) token.destroyPair(k);
    }
  },
};

async function measureToken(
  ctx: SuiteContext,
  token: Token,
  opts: BenchOptions,
  budgetMs: number,
  mechanisms: ReadonlySet<number>,
  section: BenchSection,
  signingKeys: Map<KeyAlg, KeyPair[]>,
): Promise<void> {
  // A quick pass on a physical token keeps to what fits in a few minutes on a smartcard.
  const narrow = opts.quick && ctx.traits.physical;
  const keygenAlgs = narrow ? PHYSICAL_QUICK_ALGS : KEYGEN_ALGS;
  const signAlgs = narrow ? PHYSICAL_QUICK_ALGS : SIGN_ALGS;
  const signable = signAlgs.filter((a) => !unsupportedReason(token, a, mechanisms, true));
  const keygenable = keygenAlgs.filter((a) => !unsupportedReason(token, a, mechanisms, false));
  const keygenMs = (budgetMs * 0.1) / keygenAlgs.length;
  const signMs = (budgetMs * 0.65) / Math.max(1, signable.length);
  const maxRounds = opts.quick ? 9 : 15;
  const slowCase = ctx.limits.caseMs;
  const eventLoop = !narrow;
  // A key per signer thread at the highest level, for the "a key each" figures, where a key pair takes
  // less than EXTRA_KEYS_BELOW_MS to make (RSA-4096 on a YubiHSM 2 takes minutes: one key is enough there).
  const keysPerAlg = Math.max(...section.threadLevels);
  const keygenCount = opts.quick ? 1 : 2;
  ctx.log(`bench: ${section.mode} pass, budget ${opts.timeSeconds} s, ${signable.length} signing algorithms, signer threads ${section.threadLevels.join('/')}`);

  // Key generation: the figures are measurements; the check is that every generated key pair is usable.
  await ctx.case(
    'keygen',
    async (c) => {
      if (keygenable.length === 0) c.unsupported('the token lists none of the key-pair generation mechanisms benchmarked');
      const problems: string[] = [];
      let checked = 0;
      for (const alg of keygenable) {
        const { figure, keys } = await benchKeygen(token, alg, keygenCount, keygenMs);
        section.keygen.push(figure);
        if (signable.includes(alg) && figure.latency.mean < EXTRA_KEYS_BELOW_MS) {
          while (keys.length < keysPerAlg) keys.push(await generateKeyPair(token, alg));
        }
        for (const k of keys) {
          checked++;
          const why = unusableKey(token, alg, k);
          if (why) problems.push(`${algorithmName(alg)}: ${why}`);
        }
        if (signable.includes(alg) && keys.length) signingKeys.set(alg, keys.splice(0, keysPerAlg));
        for (const k of keys) token.destroyPair(k);
        ctx.log(`keygen ${figure.algorithm}: ${figure.latency.samples} × mean ${round(figure.latency.mean)} ms`);
      }
      c.detail('keyPairsChecked', checked);
      if (problems.length) throw new Error(`generated key pairs are not usable: ${problems.join('; ')}`);
    },
    {
      timeoutMs: slowCase * (keygenCount + 1) * keygenable.length + EXTRA_KEYS_BELOW_MS * 2 * keysPerAlg * signable.length + budgetMs * 0.2,
    },
  );

  for (const alg of signAlgs) {
    // The check: a sample of every figure's signatures verifies with node:crypto. Only then is it published.
    await ctx.case(
      `sign-${alg}`,
      async (c) => {
        const why = unsupportedReason(token, alg, mechanisms, true);
        if (why) c.unsupported(why);
        const keys = signingKeys.get(alg);
        const key = keys?.[0];
        if (!keys || !key) c.skip(`no ${algorithmName(alg)} key: key generation for it failed (case keygen)`);
        const m = await measureSigning({
          token,
          pin: ctx.connections.pkcs11!.pin,
          alg,
          keys: keys!,
          levels: section.threadLevels,
          maxRounds,
          budgetMs: signMs,
          eventLoop,
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
          verifiedSignatures: sampled,
          ...(m.eventLoop ? { eventLoop: m.eventLoop } : {}),
        };
        section.sign.push(figure);
        ctx.log(`${signSummary(figure)}; p50 ${round(m.latency.p50, 3)} ms`);
        if (figure.vsBareLoop < TARGET_RATIO) {
          ctx.finding('note', `${figure.algorithm}: the harness reached ${figure.vsBareLoop.toFixed(3)}× the bare pkcs11js loop (target ${TARGET_RATIO})`);
        }
      },
      { timeoutMs: slowCase * 2 + signMs * 3 },
    );
  }

  await ctx.case(
    'random',
    async (c) => {
      if (!mechanisms.size) c.unsupported('the token lists no mechanisms');
      const { figure, outputs } = await benchRandom(token, 32, Math.max(100, budgetMs * 0.03));
      section.random = figure;
      if (outputs[0]!.equals(outputs[1]!)) throw new Error('two C_GenerateRandom calls returned the same 32 bytes');
      if (outputs.some((o) => o.every((b) => b === 0))) throw new Error('C_GenerateRandom returned 32 zero bytes');
      ctx.log(`random 32 bytes: mean ${round(figure.latency.mean, 4)} ms`);
    },
    { timeoutMs: slowCase + budgetMs * 0.1 },
  );
}

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

/** ods-hsmspeed and the harness with the same method, interleaved per repetition so that load changes hit both. */
async function sideBySide(
  ctx: SuiteContext,
  token: Token,
  opts: BenchOptions,
  budgetMs: number,
  mechanisms: ReadonlySet<number>,
  section: BenchSection,
  signingKeys: Map<KeyAlg, KeyPair[]>,
): Promise<void> {
  const pk = ctx.connections.pkcs11!;
  const repetitions = opts.compareOnly ? 5 : opts.quick ? 2 : 3;
  const threadCounts = [1, 2].filter((t) => section.threadLevels.includes(t));
  const hs: HsmspeedSection = { tool: HSMSPEED_TOOL, repetitions, rows: [] };
  section.hsmspeed = hs;
  const unavailable = !(await which(HSMSPEED_TOOL))
    ? `${HSMSPEED_TOOL} is not installed (apt-get install libhsm-bin)`
    : opts.quick && ctx.traits.physical
      ? 'not part of a quick pass on a physical token (run hsm-harness bench, or bench --compare ods-hsmspeed)'
      : unsupportedReason(token, 'rsa-2048', mechanisms, true);
  if (unavailable) {
    hs.skipped = unavailable;
    for (const threads of threadCounts) await ctx.case(`ods-hsmspeed-t${threads}`, (c) => c.skip(unavailable));
    return;
  }
  let key = signingKeys.get('rsa-2048')?.[0];
  let ownKey: KeyPair | undefined;
  // The PIN goes to ods-hsmspeed in conf.xml: mode 0600, in a directory the runner removes however the run
  // ends, and deleted as soon as ods-hsmspeed has read it.
  const tmp = await ctx.tempDir('hsmspeed');
  try {
    if (!key) key = ownKey = await generateKeyPair(token, 'rsa-2048');
    const oneSession = section.sign.find((s) => s.alg === 'rsa-2048')?.threads[0]?.median;
    // Without an RSA-2048 figure yet, one short batch sizes the runs.
    const rate = oneSession ?? (await hsmspeedMethodBatch(token, pk.pin, key, 1, 20)).rate;
    const perRunS = Math.max(0.25, budgetMs / 1000 / (repetitions * threadCounts.length * 3));
    const iterations = Math.min(100_000, Math.max(10, Math.round(rate * perRunS)));
    const runTimeoutMs = 60_000 + Math.round((iterations / rate) * 20_000);
    const repository = { name: 'hsm-harness', modulePath: pk.modulePath, tokenLabel: trimPadded(token.tokenInfo().label), pin: pk.pin };

    for (const threads of threadCounts) {
      // The check: ods-hsmspeed ran and printed its result, and the harness's signatures verified.
      await ctx.case(
        `ods-hsmspeed-t${threads}`,
        async () => {
          const row: HsmspeedRow = { threads, iterationsPerThread: iterations };
          hs.rows.push(row);
          const ods: number[] = [];
          const own: number[] = [];
          const samples: Buffer[] = [];
          let line = '';
          for (let r = 0; r < repetitions; r++) {
            try {
              // ods-hsmspeed gets the token to itself, as it has in production: none of our sessions or
              // logins are open while it runs (a card behind OpenSC would otherwise lose them, or block it).
              const res = await token.handOver(async () => {
                const conf = await writeHsmspeedConf(tmp.path, repository);
                return runHsmspeed(conf, repository.name, threads, iterations, process.env, runTimeoutMs);
              });
              if (!ods.length || res.rate > Math.max(...ods)) line = res.line;
              ods.push(res.rate);
            } catch (err) {
              row.odsError = describeError(err);
            }
            try {
              const b = await hsmspeedMethodBatch(token, pk.pin, key!, threads, iterations);
              own.push(b.rate);
              samples.push(...b.signatures);
            } catch (err) {
              row.harnessError = describeError(err);
            }
          }
          const failed = own.length ? verifySamples(samples, signatureCheck(token, key!.publicKey, hsmspeedPath.scheme)) : undefined;
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
          if (row.ratio! < TARGET_RATIO) {
            ctx.finding('note', `harness/ods-hsmspeed ratio ${row.ratio!.toFixed(3)} at ${label} is below the ${TARGET_RATIO} target`);
          }
        },
        { timeoutMs: ctx.limits.caseMs + repetitions * (runTimeoutMs + 3 * perRunS * 1000 * 10) },
      );
    }
  } finally {
    if (ownKey) token.destroyPair(ownKey);
    await tmp.remove();
  }
}

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
