/**
 * DNSSEC signer suitability: reads the capabilities every earlier suite recorded and applies the signer
 * profiles in fixtures/pkcs11/signer-profiles.json. Runs last. A capability no suite tried is "not tested",
 * which is different from "the token cannot": the verdict says which. The verdicts are not test cases (an
 * evaluation cannot fail): they go to report.suitability, which every report shows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Suite, SuiteContext } from '../src/suite.js';
import type { SuitabilityVerdict, TransportReport } from '../src/results.js';
import { markHiddenCapabilities } from '../src/pkcs11/transport.js';
import type { SignerCaseRecord, SignerSection } from './signers/types.js';
import { projectRoot } from '../src/paths.js';
import { isCapability, type Capability } from '../src/capabilities.js';

export interface Requirement {
  need: string;
  /** Every one of these capabilities. */
  all?: Capability[];
  /** Alternatives: every capability of at least one of these lists. */
  any?: Capability[][];
  /** Only a caveat when missing. */
  soft?: boolean;
  source: string;
}
export interface SignerProfile {
  id: string;
  signer: string;
  source: string;
  /** The signer file (suites/signers/<id>.ts) whose run proves or refutes this profile. */
  signerRun?: string;
  requirements: Requirement[];
  notes?: string[];
}

export type State = 'yes' | 'no' | 'not tested';

/** Every capability a requirement names. */
export function namedCapabilities(r: Requirement): Capability[] {
  return [...(r.all ?? []), ...(r.any ?? []).flat()];
}

/** The profiles, checked: every capability they name must be one the suites can record (src/capabilities.ts). */
export function loadProfiles(path = join(projectRoot(), 'fixtures', 'pkcs11', 'signer-profiles.json')): SignerProfile[] {
  const signers = (JSON.parse(readFileSync(path, 'utf8')) as { signers: SignerProfile[] }).signers;
  for (const p of signers) {
    if (!p.source) throw new Error(`signer profile ${p.id} names no source`);
    for (const r of p.requirements) {
      const unknown = namedCapabilities(r).filter((c) => !isCapability(c));
      if (unknown.length)
        throw new Error(`signer profile ${p.id}, requirement "${r.need}": unknown capability ${unknown.join(', ')} (see src/capabilities.ts)`);
      if (namedCapabilities(r).length === 0) throw new Error(`signer profile ${p.id}, requirement "${r.need}" names no capability`);
      if (!r.source) throw new Error(`signer profile ${p.id}, requirement "${r.need}" names no source`);
    }
  }
  return signers;
}

/** One requirement against the capabilities; `blocking` names what was false or never tried. */
export function evaluate(req: Requirement, caps: Record<string, boolean>): { state: State; blocking: string[] } {
  const alternatives = req.any ?? [req.all ?? []];
  const results = alternatives.map((alt) => {
    const no = alt.filter((c) => caps[c] === false);
    const untested = alt.filter((c) => caps[c] === undefined);
    const state: State = no.length ? 'no' : untested.length ? 'not tested' : 'yes';
    return { state, blocking: no.length ? no : untested };
  });
  if (results.some((r) => r.state === 'yes')) return { state: 'yes', blocking: [] };
  const untested = results.filter((r) => r.state === 'not tested');
  if (untested.length) return { state: 'not tested', blocking: [...new Set(untested.flatMap((r) => r.blocking))] };
  return { state: 'no', blocking: [...new Set(results.flatMap((r) => r.blocking))] };
}

/**
 * One signer's verdict. With a transport that hides mechanisms (report.transport), a requirement missing only because
 * of them names the transport ("not suitable through p11-kit 0.24 RPC: hides CKM_EDDSA"), not the token.
 */
export function verdictFor(
  p: SignerProfile,
  caps: Record<string, boolean>,
  transport?: TransportReport,
): { verdict: SuitabilityVerdict; rows: { need: string; state: State; soft: boolean; source: string }[] } {
  const reasons: string[] = [];
  const rows = p.requirements.map((r) => {
    const { state, blocking } = evaluate(r, caps);
    const hidden = transport && blocking.length > 0 && blocking.every((b) => transport.hiddenCapabilities[b]);
    if (state === 'no' && hidden) {
      const mechanisms = [...new Set(blocking.flatMap((b) => transport.hiddenCapabilities[b]!))].join(', ');
      reasons.push(`${r.soft ? 'caveat' : 'not suitable'} through ${transport.name}: hides ${mechanisms} (${r.need}; the token behind it offers it)`);
    } else if (state === 'no') reasons.push(`${r.soft ? 'caveat' : 'missing'}: ${r.need} (${blocking.map((b) => `${b} = false`).join(', ')})`);
    if (state === 'not tested') reasons.push(`not tested${r.soft ? ' (caveat)' : ''}: ${r.need} (no suite recorded ${blocking.join(', ')})`);
    return { need: r.need, state, soft: r.soft === true, source: r.source };
  });
  const suitable = rows.every((r) => r.soft || r.state === 'yes');
  for (const n of p.notes ?? []) reasons.push(`note: ${n}`);
  return { verdict: { signer: p.signer, suitable, reasons }, rows };
}

/**
 * A verdict from the signers suite's run of one signer on this token: suitable when at least one algorithm signed
 * and verified as packaged. Each algorithm's outcome is a reason; those that do not decide are notes.
 */
export function verdictFromRun(signer: string, run: SignerSection, ranAt: string): SuitabilityVerdict | undefined {
  const decided = run.cases.filter((c) => c.status !== 'skip');
  if (!run.version || decided.length === 0) return undefined;
  const name = (c: SignerCaseRecord) => c.case.split('/').slice(1).join('/');
  const asPackaged = decided.filter((c) => !c.workaround);
  const signs = asPackaged.filter((c) => c.status === 'pass');
  const reasons: string[] = [];
  for (const c of signs) {
    reasons.push(
      `note: ${name(c)} signs${c.keys === 'made-by-harness' ? ` with a key made by the harness${c.keygenFailure ? ` (the signer's own key generation: ${c.keygenFailure})` : ''}` : ''}`,
    );
  }
  for (const c of decided.filter((x) => x.workaround && x.status === 'pass')) reasons.push(`note: ${name(c)} signs only with this workaround`);
  for (const c of asPackaged.filter((x) => x.status === 'unsupported')) reasons.push(`note: ${name(c)} not offered by the token`);
  for (const c of asPackaged.filter((x) => x.status !== 'pass' && x.status !== 'unsupported')) {
    reasons.push(`${signs.length ? 'note: ' : ''}${name(c)} ${c.status} as packaged`);
  }
  return {
    signer,
    suitable: signs.length > 0,
    reasons,
    basis: { kind: 'run', version: run.version, date: ranAt, cases: decided.map((c) => c.case) },
  };
}

/** The verdict of every profile and of every signer the signers suite ran, into report.suitability and the section. */
function recordVerdicts(ctx: SuiteContext): void {
  const table: Record<string, unknown> = {};
  ctx.report.suitability = [];
  const ran = ctx.report.sections.signers?.signers ?? [];
  const covered = new Set<string>();
  markHiddenCapabilities(ctx.report);
  for (const p of loadProfiles()) {
    const { verdict, rows } = verdictFor(p, ctx.report.capabilities, ctx.report.transport);
    const run = ran.find((s) => s.id === p.signerRun);
    const proven = run?.ranAt ? verdictFromRun(p.signer, run, run.ranAt) : undefined;
    if (run) covered.add(run.id);
    ctx.report.suitability.push(proven ?? { ...verdict, basis: { kind: 'profile' } });
    table[p.id] = {
      signer: p.signer,
      source: p.source,
      requirements: rows,
      ...(proven ? { profileVerdict: verdict.suitable ? 'suitable' : 'not suitable' } : {}),
    };
  }
  // Signers the suite ran that have no written profile (ldns-signzone) get their verdict from the run alone.
  for (const run of ran.filter((s) => !covered.has(s.id) && s.ranAt)) {
    const proven = verdictFromRun(run.title, run, run.ranAt!);
    if (proven) ctx.report.suitability.push(proven);
  }
  ctx.report.sections.suitability = table;
}

export const suitabilitySuite: Suite<void> = {
  name: 'suitability',
  report: { title: 'Suitability requirements' },
  title: 'DNSSEC signer suitability: proven by the signers suite where it ran them, else from the signer profiles and the recorded capabilities',
  needs: 'pkcs11',
  // An evaluation, not a test: it has no cases (it cannot fail), so `run --case` never selects it; setup records the verdicts.
  setup: recordVerdicts,
  cases: [],
};
