/**
 * The signers suite: every installed DNSSEC signer (one file each in this directory) signs a zone the harness
 * generated, on the token under test, for each DNSSEC algorithm; the result is verified twice (ldns-verify-zone,
 * and every RRSIG with node:crypto against a DNSKEY whose key was read from the token). One case per signer ×
 * algorithm: `<signer>/<ALGORITHM>`, e.g. `knot/ECDSAP256SHA256`.
 *
 * - pass: signed and verified; a detail says who made the keys (the signer, or the harness where the signer
 *   could not make them on this token, with the signer's own words about why).
 * - fail: the signer's exact error, exit code or signal (a SIGSEGV of a signer is its outcome, not the
 *   harness's), or a zone that does not verify.
 * - unsupported: the token does not offer the key generation or signing mechanism of the algorithm.
 * - skip: the signer is not installed (with the reason), or ldns-verify-zone / pkcs11-spy are missing.
 *
 * The suite, not the signer file, traces (pkcs11-spy), isolates (a private p11-kit registry), verifies, times
 * and removes what the signer created. docs/signers.md explains the verdicts and how to add a signer.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Suite, SuiteCase, SuiteContext, CaseHandle } from '../../src/suite.js';
import type { Token } from '../../src/pkcs11/token.js';
import type { SingleTokenView } from '../../src/driver.js';
import { type Handle, pkcs11 } from '../../src/pkcs11/module.js';
import { LABEL_PREFIX } from '../../src/pkcs11/marks.js';
import { runLabelPrefix } from '../../src/pkcs11/run-identity.js';
import { generateKeyPair, readPublicKey, KEY_ALGS, type KeyAlg, type KeyPair } from '../../src/pkcs11/keys.js';
import { toKeyObject } from '../../src/pkcs11/public-key.js';
import { algorithmName } from '../../bench/pkcs11.js';
import { dnssecScheme } from '../../src/pkcs11/mechanisms.js';
import { listWithPkcs11Tool, notOfferedReason } from '../../src/pkcs11/transport.js';
import { mechanismName } from '../../src/pkcs11/constants.js';
import { DNSSEC_ALGORITHMS as ALGORITHM_INFO } from '../../src/dnssec/dnskey.js';
import { ldnsAvailable, ldnsVerifyZone } from '../../src/dnssec/ldns.js';
import { checkSignedZone } from '../../src/dnssec/check.js';
import { generateZone } from '../../src/dnssec/generate.js';
import { redact } from '../../src/secrets.js';
import { addTraces, emptyTrace, spyAvailable, spyLog, PKCS11_SPY, type Pkcs11Trace } from '../../src/signers/trace.js';
import { isolation, visibleModules, ISOLATED_MODULE_NAME, type Isolation } from '../../src/signers/isolation.js';
import { DNSSEC_ALGORITHMS, SignerFailed, type DnssecAlgorithm, type Signer, type SignJob, type SignOutcome } from './signer.js';
import { signers as allSigners } from './all.js';
import { signersReport } from './report.js';
import type { SignerCaseRecord, SignerOptions, SignerSection, SignersSectionData } from './types.js';

export type { SignerCaseRecord, SignerOptions, SignerSection, SignersSectionData } from './types.js';

const KEY_FOR: Record<DnssecAlgorithm, KeyAlg> = { 8: 'rsa-2048', 10: 'rsa-2048', 13: 'ec-p256', 14: 'ec-p384', 15: 'ed25519' };
const ORIGIN = 'example.test.';
/** Records in the zone every case signs; the zone-size figures use larger ones (options.signers.sizes). */
const CASE_ZONE_RECORDS = 20;
/** Bound of one signer run (its processes get this; the case a little more for verification and cleanup). */
const SIGNER_TIMEOUT_MS = 90_000;

/**
 * A stable name for an object, across a C_Finalize (handles are not): class, CKA_ID and label, '-' for an attribute
 * the object does not have (OpenSC's profile object has no CKA_ID). Undefined when even the class cannot be read.
 * Never the handle: a reinitialised module (the hand-over on a card) gives every object a new one, and an object
 * that existed before must never look new, or the suite would try to destroy it.
 */
export function objectKey(read: { ulong(type: number): number; bytes(type: number): Buffer }): string | undefined {
  const optional = (type: number) => {
    try {
      return read.bytes(type).toString('hex');
    } catch {
      return '-';
    }
  };
  try {
    return `${read.ulong(pkcs11.CKA_CLASS)}|${optional(pkcs11.CKA_ID)}|${optional(pkcs11.CKA_LABEL)}`;
  } catch {
    return undefined;
  }
}

function keyOf(token: Token, h: Handle): string | undefined {
  return objectKey({ ulong: (t) => token.attrUlong(h, t), bytes: (t) => token.attr(h, t) });
}

function objectKeys(token: Token): Set<string> {
  return new Set(token.find([]).map((h) => keyOf(token, h) ?? ''));
}

/**
 * The objects that appeared on the token while the signer ran: the signer's keys. The signer ran alone on this
 * token (the harness handed it over), so anything new is its own; nothing that was there before is touched, nor
 * an object whose class cannot be read (it cannot be told apart from one that was there).
 */
function newObjects(token: Token, before: Set<string>): Handle[] {
  return token.find([]).filter((h) => {
    const key = keyOf(token, h);
    return key !== undefined && !before.has(key);
  });
}

/** Public keys of the given objects as node:crypto keys (an RSA private key carries its public half too). */
function publicKeys(token: Token, handles: Handle[]): KeyObject[] {
  const out: KeyObject[] = [];
  for (const h of handles) {
    try {
      const cls = token.attrUlong(h, pkcs11.CKA_CLASS);
      if (cls !== pkcs11.CKO_PUBLIC_KEY && cls !== pkcs11.CKO_PRIVATE_KEY) continue;
      out.push(toKeyObject(readPublicKey(token, h)));
    } catch {
      /* an EC private key has no CKA_EC_POINT: its public half is another object */
    }
  }
  return out;
}

/** The last line(s) a signer said, free of the PIN. */
function failureText(err: unknown): string {
  if (err instanceof SignerFailed) {
    const how = err.signal ? `killed by ${err.signal}` : err.exitCode !== undefined && err.exitCode !== null ? `exit ${err.exitCode}` : '';
    return redact(`${err.stage}: ${err.message}${how ? ` (${how})` : ''}`);
  }
  return redact(err instanceof Error ? err.message : String(err));
}

/** The full matrix: the suite was named (--suite signers): every signer, algorithm, workaround and zone size. */
function isFullMatrix(ctx: SuiteContext): boolean {
  return ((ctx.options.signers ?? {}) as SignerOptions).all === true;
}

/** Is the list of signers to run restricted (--suite signers runs all, the default run only the fast ones)? */
function chosenSigners(ctx: SuiteContext, list: Signer[]): Signer[] {
  const o = (ctx.options.signers ?? {}) as SignerOptions;
  // HSM_SIGNERS=knot,ldns runs only those (and the slow ones only when named).
  const only =
    o.only ??
    ctx.env.HSM_SIGNERS?.split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  if (only?.length) return list.filter((s) => only.includes(s.id));
  return list.filter((s) => !s.slow || o.all === true);
}

/** The quick run (npm start) signs with the three algorithms of issue 20's table; `--suite signers` with all five. */
const QUICK_ALGORITHMS: DnssecAlgorithm[] = [8, 13, 15];
function chosenAlgorithms(ctx: SuiteContext): readonly DnssecAlgorithm[] {
  return isFullMatrix(ctx) ? DNSSEC_ALGORITHMS : QUICK_ALGORITHMS;
}

interface CaseEnv {
  ctx: SuiteContext;
  token: Token;
  /** The signer sees the module under test as it is (the verdict run) … */
  plain: Isolation;
  /** … or wrapped in pkcs11-spy (the traced run). */
  spied: Isolation;
  /** The driver's view of the module with only the token under test (applied), or undefined: the signer sees every token. */
  alone?: SingleTokenView;
  /** The module the signer loads: the view's (p11-kit-client.so in front of a server) or the connection's. */
  signerModule: string;
  /** Where the view adds a transport the harness does not go through: the mechanisms that arrive through it. */
  viewForwards?: ReadonlySet<number>;
  physical: boolean;
}

interface Attempt {
  outcome?: SignOutcome;
  error?: unknown;
  /** Objects that appeared on the token during the attempt: the signer's. */
  created: Handle[];
  harnessKey?: KeyPair;
  /** The signer's own words where it could not make keys (then the harness made them). */
  keygenFailure?: string;
  seconds: number;
  trace?: Pkcs11Trace;
}

/** Run the signer once on its own (the token handed over on a physical device), optionally traced by pkcs11-spy. */
async function runSigner(e: CaseEnv, signer: Signer, job: Omit<SignJob, 'target' | 'workDir'>, workDir: string, traced: boolean) {
  const conn = e.ctx.connections.pkcs11!;
  const spy = traced ? await spyLog(workDir, `${signer.id}-${job.algorithm}`) : undefined;
  const info = e.token.tokenInfo();
  const iso = traced ? e.spied : e.plain;
  const target: SignJob['target'] = {
    modulePath: traced ? PKCS11_SPY : e.signerModule,
    env: { ...e.ctx.env, ...conn.env, ...e.alone?.env, ...spy?.env(e.signerModule) },
    tokenLabel: info.label.trim(),
    tokenSerial: info.serialNumber.trim(),
    pin: conn.pin,
    labelPrefix: runLabelPrefix(signer.id),
    moduleName: ISOLATED_MODULE_NAME,
    isolate: (cmd, args) => iso.wrap(cmd, args),
  };
  // Journalled before the signer runs: a run killed now leaves objects that cleanup finds by this label prefix.
  e.token.objects.expectLabelled(target.labelPrefix);
  const before = objectKeys(e.token);
  const started = performance.now();
  const run = async (): Promise<{ outcome?: SignOutcome; error?: unknown }> => {
    try {
      return { outcome: await signer.sign({ ...job, target, workDir }) };
    } catch (error) {
      return { error };
    }
  };
  const r = e.physical ? await e.token.handOver(run) : await run();
  const seconds = (performance.now() - started) / 1000;
  return { ...r, trace: await spy?.collect(), created: newObjects(e.token, before), seconds };
}

/**
 * One attempt of a signer on a job: with keys it makes itself, or, where it cannot make them on this token
 * (SignerFailed at stage 'keygen'), with a key pair the harness made under the run's marks.
 */
async function attempt(e: CaseEnv, signer: Signer, job: Omit<SignJob, 'target' | 'workDir'>, workDir: string, traced: boolean): Promise<Attempt> {
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const first = await runSigner(e, signer, job, workDir, traced);
  if (!(first.error instanceof SignerFailed && first.error.stage === 'keygen')) return first;
  removeCreated(e.token, first.created);
  const harnessKey = await generateKeyPair(e.token, KEY_FOR[job.algorithm], { label: `${LABEL_PREFIX}${signer.id}-${job.algorithm}` });
  // A fresh directory: the first attempt's database or key files must not meet the second.
  const again = join(workDir, 'harness-key');
  await mkdir(again, { mode: 0o700 });
  const second = await runSigner(e, signer, { ...job, harnessKey: { label: harnessKey.label, idHex: harnessKey.id.toString('hex') } }, again, traced);
  return { ...second, harnessKey, keygenFailure: failureText(first.error), trace: first.trace && second.trace && addTraces(first.trace, second.trace) };
}

/** Remove what an attempt left on the token: the signer's objects and the harness's key pair. */
function removeAttempt(e: CaseEnv, a: Attempt | undefined, what: string): void {
  if (!a) return;
  const left = removeCreated(e.token, a.created);
  if (left.length) e.ctx.finding('note', `${what}: objects the signer created could not be removed: ${left.join('; ')}`);
  if (a.harnessKey) e.token.objects.destroyPair(a.harnessKey);
}

/** Destroy what the signer created in this case (found by the before/after difference, never anything older). */
function removeCreated(token: Token, created: Handle[]): string[] {
  const left: string[] = [];
  for (const h of created) {
    try {
      token.lib.C_DestroyObject(token.session, h);
    } catch (err) {
      left.push(`${h.toString('hex')}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return left;
}

/** Both checks of a signed zone; throws what did not hold. */
async function verify(c: CaseHandle, e: CaseEnv, a: Attempt, alg: DnssecAlgorithm, record: SignerCaseRecord): Promise<void> {
  const signed = await readFile(a.outcome!.signedZoneFile, 'utf8');
  const tokenKeys = publicKeys(e.token, [...a.created, ...(a.harnessKey ? [a.harnessKey.publicKey, a.harnessKey.privateKey] : [])]);
  const ldns = await ldnsVerifyZone(signed);
  c.detail('ldns-verify-zone', ldns.output);
  const own = await checkSignedZone(signed, tokenKeys);
  record.rrsigs = own.rrsigs;
  c.detail('rrsigs', `${own.verified} of ${own.rrsigs} verified with node:crypto against a DNSKEY read from the token`);
  c.detail('dnskeys', own.keys.map((k) => `${k.keyTag}/${k.algorithm}${k.onToken ? '' : ' (not on the token)'}`).join(', '));
  if (!ldns.ok) throw new Error(`verification: ldns-verify-zone rejected the signed zone: ${ldns.output}`);
  if (own.problems.length) throw new Error(`verification: ${own.rrsigs - own.verified} of ${own.rrsigs} RRSIGs failed the harness's check: ${own.problems[0]}`);
  if (own.keys.some((k) => k.algorithm !== alg)) throw new Error(`the signer signed with algorithm ${own.keys.map((k) => k.algorithm).join(', ')}, not ${alg}`);
}

/** The token's own signing rate for the algorithm's key, from this run's bench (one thread, bare pkcs11js loop). */
function rawRate(ctx: SuiteContext, alg: DnssecAlgorithm): number | undefined {
  const name = algorithmName(KEY_FOR[alg]);
  const sign = ctx.report.sections.bench?.sign?.find((s) => s.algorithm === name);
  return sign?.bareLoop?.median;
}

/**
 * Zone-signing speed (options.signers.sizes; not in the quick run): the signer signs generated zones of each
 * size on the token, untraced, and the figure is RRSIGs per second of wall clock (process start and key
 * generation included, as an operator sees it), beside the token's raw rate from the bench when it ran.
 */
async function zoneSpeed(e: CaseEnv, signer: Signer, alg: DnssecAlgorithm, dir: string, record: SignerCaseRecord): Promise<void> {
  const sizes = ((e.ctx.options.signers ?? {}) as SignerOptions).sizes ?? [];
  const raw = rawRate(e.ctx, alg);
  for (const records of sizes) {
    const work = join(dir, `speed-${records}`);
    await mkdir(work, { mode: 0o700 });
    const zoneFile = join(work, 'zone.unsigned');
    await writeFile(zoneFile, generateZone(ORIGIN, records).text);
    const job = { algorithm: alg, origin: ORIGIN, zoneFile, timeoutMs: zoneBoundMs(records), workaround: record.workaround };
    const a = await attempt(e, signer, job, join(work, 'run'), false);
    try {
      if (!a.outcome) {
        e.ctx.finding('note', `${record.case}: the ${records}-record zone did not sign: ${failureText(a.error)}`);
        break;
      }
      // Counted and checked by the harness's own parser (an NSEC's type bitmap also names RRSIG): a figure counts
      // only RRSIGs that verify with a key read from the token, so a signer that signed in software gets no figure.
      const tokenKeys = publicKeys(e.token, [...a.created, ...(a.harnessKey ? [a.harnessKey.publicKey, a.harnessKey.privateKey] : [])]);
      const own = await checkSignedZone(await readFile(a.outcome.signedZoneFile, 'utf8'), tokenKeys);
      if (own.problems.length || own.rrsigs === 0) {
        e.ctx.finding('note', `${record.case}: the ${records}-record zone did not verify: ${own.problems[0] ?? 'no RRSIG'}`);
        break;
      }
      const rrsigs = own.rrsigs;
      const rrsigsPerSecond = Math.round((rrsigs / a.seconds) * 10) / 10;
      (record.speed ??= []).push({
        records,
        rrsigs,
        seconds: Math.round(a.seconds * 100) / 100,
        rrsigsPerSecond,
        ...(raw ? { tokenRawRate: Math.round(raw), ofRawRate: Math.round((rrsigsPerSecond / raw) * 1000) / 1000 } : {}),
      });
    } finally {
      removeAttempt(e, a, `${record.case} (${records} records)`);
    }
  }
}

/**
 * The bound of one signer run on a zone of `records` records: the signer limit per 1,000 records (BIND RSA took
 * 123 s for 10,000 on SoftHSM, over a flat 90 s), so a large zone gives a speed figure instead of a timeout.
 */
function zoneBoundMs(records: number): number {
  return SIGNER_TIMEOUT_MS * Math.max(1, records / 1000);
}

/**
 * Whether this case also makes the traced run. The full matrix traces every case. The quick run traces each
 * signer's first case the token offers, which is enough for the profile check and halves its time; it is RSASHA256,
 * which every signer here signs with (under the spy BIND does not abort, so its calls are recorded too).
 */
function traceThisCase(s: SignersState, signer: Signer): boolean {
  return isFullMatrix(s.e.ctx) || !s.traced.has(signer.id);
}

/**
 * One signer × algorithm. The verdict comes from a run on the module as it is; a second, traced run records the
 * PKCS#11 calls, because pkcs11-spy can change the outcome (BIND's provider deep-binds the module it loads, which
 * is then the spy, not the module).
 */
async function signerCase(s: SignersState, signer: Signer, alg: DnssecAlgorithm, c: CaseHandle, record: SignerCaseRecord): Promise<void> {
  const { e } = s;
  const { ctx, token } = e;
  const section = s.sections.get(signer.id)!;
  const offered = token.offeredMechanisms();
  for (const m of [KEY_ALGS[KEY_FOR[alg]].mechanism, dnssecScheme(alg).spec.code]) {
    if (!offered.has(m)) c.unsupported(notOfferedReason(ctx.report, m));
    if (e.viewForwards && !e.viewForwards.has(m)) c.skip(viewHidesReason(e, m));
  }
  c.detail('claimed', signer.claims.algorithms.includes(alg));
  const dir = await ctx.tempDir(`signer-${signer.id}-${alg}`);
  // Journalled before the signer runs: after a kill, cleanup reads from this directory which keys the signer made.
  if (signer.keysMadeIn) token.objects.expectSignerKeys(signer.id, dir.path);
  const what = `${signer.id}/${ALGORITHM_INFO[alg].name}`;
  let verdict: Attempt | undefined;
  let failure: Error | undefined;
  try {
    const zoneFile = join(dir.path, 'zone.unsigned');
    await writeFile(zoneFile, generateZone(ORIGIN, CASE_ZONE_RECORDS).text);
    const job = { algorithm: alg, origin: ORIGIN, zoneFile, timeoutMs: SIGNER_TIMEOUT_MS, workaround: record.workaround };
    try {
      verdict = await attempt(e, signer, job, join(dir.path, 'run'), false);
      record.seconds = Math.round(verdict.seconds * 100) / 100;
      if (verdict.keygenFailure) c.detail('signer keygen', (record.keygenFailure = verdict.keygenFailure));
      if (!verdict.outcome) {
        const with_ = verdict.keygenFailure ? `with a key made by the harness: ${failureText(verdict.error)}; before that, ${verdict.keygenFailure}` : '';
        throw new Error(with_ || failureText(verdict.error));
      }
      record.keys = verdict.outcome.keys;
      c.detail('keys', record.keys === 'made-by-harness' ? 'signed with a key made by the harness' : 'made by the signer on the token');
      for (const x of verdict.outcome.exposures) if (!section.exposures.includes(x)) section.exposures.push(x);
      await verify(c, e, verdict, alg, record);
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    removeAttempt(e, verdict, what);
    verdict = undefined;
    if (!failure) await zoneSpeed(e, signer, alg, dir.path, record);
    if (traceThisCase(s, signer)) {
      s.traced.add(signer.id);
      // The traced run never decides the case: its failure (the spy crashing PowerDNS) only makes the trace incomplete.
      let traced: Attempt | undefined;
      let tracedFailure: string | undefined;
      try {
        traced = await attempt(e, signer, job, join(dir.path, 'traced'), true);
        if (traced.trace) addTraces((section.observed ??= emptyTrace()), traced.trace);
        if (!traced.outcome) tracedFailure = failureText(traced.error);
      } catch (err) {
        tracedFailure = failureText(err);
      } finally {
        removeAttempt(e, traced, `${what} (traced)`);
      }
      const trace = traceCompleteness(!failure, tracedFailure);
      if (!trace.complete) (section.traceIncomplete ??= []).push(`${what}: ${trace.why}`);
      c.detail('traced run', tracedFailure === undefined ? 'signed' : trace.complete ? tracedFailure : trace.why);
    } else {
      c.detail('traced run', 'none in this case: the quick run traces one case per signer (the first that signs), the full matrix every case');
    }
  } finally {
    removeAttempt(e, verdict, what);
    // Kept where the signer's keys could not be proven gone: the journal still names it, and cleanup tries again.
    if (await forgetSignerKeys(e, signer, dir.path, what)) await dir.remove();
    try {
      token.objects.labelledGone(runLabelPrefix(signer.id));
    } catch (err) {
      ctx.finding('note', `${what}: ${err instanceof Error ? err.message : String(err)}; the journal keeps the label prefix for cleanup`);
    }
  }
  if (failure) throw failure;
}

/**
 * Destroy whatever the signer's own record in the case's directory still names on the token (nothing, normally: the
 * case removed what appeared), then let the journal forget the directory. False when that could not be done.
 */
async function forgetSignerKeys(e: CaseEnv, signer: Signer, dir: string, what: string): Promise<boolean> {
  if (!signer.keysMadeIn) return true;
  try {
    const left = e.token.objects.removeSignerKeys(await signer.keysMadeIn(dir, e.ctx.env));
    if (left) e.ctx.finding('note', `${what}: ${left} key object(s) the signer recorded were still on the token after the case; removed`);
    e.token.objects.signerKeysGone(signer.id, dir);
    return true;
  } catch (err) {
    e.ctx.finding('note', `${what}: the keys the signer made could not be proven gone (${failureText(err)}); its directory ${dir} is kept for cleanup`);
    return false;
  }
}

/**
 * A mechanism the token offers that the single-token view's transport does not forward. The view is the harness's
 * own means (the module shows several tokens), so the case is not tried: a skip, never the token's or the signer's gap.
 */
function viewHidesReason(e: CaseEnv, code: number): string {
  return (
    `not tried: ${mechanismName(code)} is hidden by ${e.alone!.transport}, which the harness puts between the signer and a module ` +
    'showing several tokens (the token offers it); give the module only the token under test to try this case'
  );
}

/**
 * What a traced run's outcome means for the trace (the case's verdict is always the untraced run's). A signer that
 * signed untraced but failed traced was stopped by the tracer (pkcs11-spy dies on PowerDNS's C_DigestInit): its
 * trace misses calls. A signer that failed both ways left a complete trace of a failing run, evidence too.
 */
export function traceCompleteness(verdictSigned: boolean, tracedFailure: string | undefined): { complete: true } | { complete: false; why: string } {
  if (verdictSigned && tracedFailure !== undefined) return { complete: false, why: `the tracer failed: ${tracedFailure}` };
  return { complete: true };
}

/**
 * Every PKCS#11 application makes these to find its token and hold a session; a profile need not list them, so
 * their absence from a profile is not reported (listing one that is never called still is).
 */
const HOUSEKEEPING = new Set([
  'C_GetFunctionList',
  'C_GetInterface',
  'C_Initialize',
  'C_Finalize',
  'C_GetInfo',
  'C_GetSlotList',
  'C_GetSlotInfo',
  'C_GetTokenInfo',
  'C_OpenSession',
  'C_CloseSession',
  'C_CloseAllSessions',
  'C_GetSessionInfo',
  'C_Logout',
]);

/**
 * The profile against the trace: function and mechanism names listed but never called, or called but not listed.
 * With an incomplete trace, "never called" cannot be known: the check says it could not be completed, and only
 * what was called but not listed is reported.
 */
export function checkProfile(profile: Signer['profile'], observed: Pkcs11Trace, incomplete?: string[]): SignerSection['profileCheck'] {
  const calledFns = Object.keys(observed.functions).filter((f) => !HOUSEKEEPING.has(f) || profile.functions.includes(f));
  const calledMechs = [...new Set(Object.keys(observed.mechanisms).map((k) => k.split(' ')[1]!))];
  const listed = [...profile.functions, ...profile.mechanisms];
  const called = [...calledFns, ...calledMechs];
  return {
    source: profile.source,
    listedNotCalled: incomplete?.length ? [] : listed.filter((x) => !called.includes(x)).sort(),
    calledNotListed: called.filter((x) => !listed.includes(x)).sort(),
    ...(incomplete?.length ? { incomplete: `could not be completed: ${incomplete.join('; ')}` } : {}),
  };
}

/** What every case of the suite shares: built once in setup. */
interface SignersState {
  e: CaseEnv;
  data: SignersSectionData;
  /** The signers this run chose, by id (the others' cases do not apply). */
  sections: Map<string, SignerSection>;
  /** Each case's record, by case name (a workaround case reads its as-packaged case's status here). */
  records: Map<string, SignerCaseRecord>;
  ldns: Awaited<ReturnType<typeof ldnsAvailable>>;
  /** Signers already traced in this run (the quick run traces one case per signer). */
  traced: Set<string>;
  dir: { path: string; remove: () => Promise<void> };
}

const CASE_TIMEOUT_MS = SIGNER_TIMEOUT_MS * 2 + 30_000;

/** A case's bound: its own two runs, plus each zone size's run (twice where the harness's key is needed). */
function caseTimeoutMs(ctx: SuiteContext): number {
  const sizes = ((ctx.options.signers ?? {}) as SignerOptions).sizes ?? [];
  return CASE_TIMEOUT_MS + sizes.reduce((sum, records) => sum + 2 * zoneBoundMs(records), 0);
}

/** The record of one case, in its signer's section (created when the case runs). */
function caseRecord(s: SignersState, signer: Signer, name: string, alg: DnssecAlgorithm, workaround?: string): SignerCaseRecord {
  const record: SignerCaseRecord = { case: name, algorithm: alg, status: 'skip', ...(workaround ? { workaround } : {}) };
  s.records.set(name, record);
  s.sections.get(signer.id)!.cases.push(record);
  return record;
}

/** Skips that do not depend on the token: the signer, ldns-verify-zone or pkcs11-spy missing. */
function skipIfCannotRun(c: CaseHandle, s: SignersState, signer: Signer): void {
  const section = s.sections.get(signer.id)!;
  if (section.missing) c.skip(`${signer.title} cannot be tried here: ${section.missing}`);
  if (!s.ldns.ok) c.skip(s.ldns.reason);
  if (!spyAvailable()) c.skip(`pkcs11-spy not found at ${PKCS11_SPY} (apt-get install opensc-pkcs11)`);
}

/**
 * The table: every signer × every algorithm, and each workaround after its as-packaged case. The quick run selects
 * the fast signers with algorithms 8, 13 and 15 as packaged (the other cases do not apply: not recorded);
 * `--suite signers` all of them. The table is the same in every run, so an expectation entry can name any of its
 * cases, and one that did not run in this run is not stale (src/expectations.ts).
 */
function signerCases(): SuiteCase<SignersState>[] {
  const out: SuiteCase<SignersState>[] = [];
  for (const signer of allSigners) {
    for (const alg of DNSSEC_ALGORITHMS) {
      const name = `${signer.id}/${ALGORITHM_INFO[alg].name}`;
      out.push({
        name,
        timeoutMs: caseTimeoutMs,
        applies: (ctx, s) => s.sections.has(signer.id) && chosenAlgorithms(ctx).includes(alg),
        async run(c, s) {
          const record = caseRecord(s, signer, name, alg);
          skipIfCannotRun(c, s, signer);
          await signerCase(s, signer, alg, c, record);
        },
        // No record when the case did not run (blocked after a lost session): nothing to update.
        after: (status, s) => {
          const record = s.records.get(name);
          if (record) record.status = status;
        },
      });
      // A known workaround is tried only where the signer fails as packaged; both outcomes are reported.
      // Workarounds run in the full matrix (--suite signers); the quick run reports the signers as packaged.
      for (const w of signer.workarounds ?? []) {
        const wname = `${name}/workaround-${w.id}`;
        out.push({
          name: wname,
          reads: [name],
          timeoutMs: caseTimeoutMs,
          applies: (ctx, s) => s.sections.has(signer.id) && chosenAlgorithms(ctx).includes(alg) && isFullMatrix(ctx),
          async run(c, s) {
            const record = caseRecord(s, signer, wname, alg, w.id);
            const packaged = s.records.get(name);
            if (packaged?.status !== 'fail') c.skip(`not needed: ${name} ${packaged ? `ended ${packaged.status}` : 'did not run'} as packaged`);
            c.detail('workaround', `${w.description} (${w.source})`);
            await signerCase(s, signer, alg, c, record);
          },
          // No record when the case did not run (blocked after a lost session): nothing to update.
          after: (status, s) => {
            const record = s.records.get(wname);
            if (record) record.status = status;
          },
        });
      }
    }
  }
  return out;
}

/**
 * The mechanisms that arrive through a view whose transport the harness does not go through (pkcs11-tool -M, a child
 * process, on the view's module), and the ones the token offers that it hides: recorded, and one finding for them all.
 */
async function forwardedByView(ctx: SuiteContext, token: Token, view: SingleTokenView, data: SignersSectionData): Promise<ReadonlySet<number>> {
  const env = { ...ctx.env, ...ctx.connections.pkcs11!.env, ...view.env };
  const label = token.tokenInfo().label.trim();
  const list = () => listWithPkcs11Tool('pkcs11-tool', ['--module', view.modulePath!, '--token-label', label], env);
  // A physical token is handed over, as to a signer: a device one process opens at a time (yhusb://) is free for the server.
  const through = new Set(ctx.traits.physical ? await token.handOver(list) : await list());
  const hidden = [...token.offeredMechanisms()].filter((m) => !through.has(m)).map(mechanismName);
  data.isolation.viewTransport = { name: view.transport!, hidden };
  if (hidden.length)
    ctx.finding('transport', `${view.transport} of the single-token view hides from the signers: ${hidden.join(', ')} (the token offers them)`);
  return through;
}

export const signersSuite: Suite<SignersState> = {
  name: 'signers',
  title: 'Real DNSSEC signers (Knot, ldns, BIND, PowerDNS, OpenDNSSEC) sign a zone on the token',
  needs: 'pkcs11',
  report: signersReport,
  async setup(ctx) {
    const token = ctx.token!;
    const conn = ctx.connections.pkcs11!;
    const dir = await ctx.tempDir('signers');
    const view = conn.singleTokenView;
    const signerModule = view?.modulePath ?? conn.modulePath;
    const plain = await isolation(dir.path, signerModule, view?.binds);
    const iso = await isolation(dir.path, PKCS11_SPY, view?.binds);
    // The view's binds need the namespace: without it the view's configuration would show no token at all.
    const alone = view && (iso.isolated || view.binds.length === 0) ? view : undefined;
    const data: SignersSectionData = {
      driver: ctx.driverId,
      isolation: {
        how: iso.how,
        isolated: iso.isolated,
        singleToken: alone
          ? alone.how
          : view
            ? 'not applied (no mount namespace): the signer sees every token of the module'
            : `the driver has no way to hide the module's other tokens${conn.noSingleTokenView ? ` (${conn.noSingleTokenView})` : ''}: the signer sees every token of the module`,
      },
      tracing: `pkcs11-spy (${PKCS11_SPY})`,
      signers: [],
    };
    ctx.report.sections.signers = data;
    if (iso.isolated) {
      // Measured, not assumed: what p11-kit loads inside the isolation (the spy around the module under test only).
      const spy = await spyLog(dir.path, 'isolation');
      const seen = await visibleModules(iso, { ...ctx.env, ...conn.env, ...alone?.env, ...spy.env(signerModule) });
      data.isolation.modulesSeen = seen.modules;
      data.isolation.tokensSeen = seen.tokens;
      data.isolation.slotsSeen = (await spy.collect()).slots;
    }
    const sections = new Map<string, SignerSection>();
    for (const signer of chosenSigners(ctx, allSigners)) {
      const section: SignerSection = { id: signer.id, title: signer.title, claims: signer.claims, cases: [], exposures: [] };
      const installed = await signer.installed({ ...ctx.env, ...conn.env }).catch((err: Error) => ({ missing: err.message }));
      if ('version' in installed) section.version = installed.version;
      else section.missing = installed.missing;
      data.signers.push(section);
      sections.set(signer.id, section);
    }
    const viewForwards = alone?.transport ? await forwardedByView(ctx, token, alone, data) : undefined;
    const e: CaseEnv = { ctx, token, plain, spied: iso, alone, signerModule, viewForwards, physical: ctx.traits.physical };
    return { e, data, sections, records: new Map(), ldns: await ldnsAvailable(), traced: new Set(), dir };
  },
  cases: signerCases(),
  async teardown(ctx, s) {
    for (const signer of allSigners) {
      const section = s.sections.get(signer.id);
      if (!section) continue;
      if (section.version && section.cases.length) section.ranAt = new Date().toISOString();
      if (section.observed) {
        const p = (section.profileCheck = checkProfile(signer.profile, section.observed, section.traceIncomplete)!);
        if (p.incomplete) ctx.finding('note', `${signer.title}: the profile check ${p.incomplete}`);
        if (p.listedNotCalled.length) ctx.finding('note', `${signer.title}: its profile lists ${p.listedNotCalled.join(', ')}, never called in this run`);
        if (p.calledNotListed.length) ctx.finding('note', `${signer.title}: called ${p.calledNotListed.join(', ')}, which its profile does not list`);
        // The length is left out of the text: it is whatever the uninitialised memory held (results.json keeps it).
        for (const call of Object.keys(section.observed.parameterNotExpected ?? {})) {
          ctx.finding(
            'deviation',
            `${signer.title} (the signer, not the token): ${call} with a mechanism parameter where PKCS #11 defines none ` +
              '(an uninitialised CK_MECHANISM; a module that reads it, or pkcs11-spy, may crash)',
          );
        }
      }
      for (const x of section.exposures) ctx.finding('note', `${signer.title}: ${x}`);
    }
    await s.dir.remove();
  },
};
