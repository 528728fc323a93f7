/**
 * How the signers section appears in index.html: per signer its version (or why it did not run), one row per
 * algorithm with the outcome and who made the keys, the PKCS#11 calls it was observed to make, and the profile
 * check. results.json carries the same data (sections.signers).
 */
import type { SectionReport } from '../../src/reports/sections.js';
import { caseAnchor } from '../../src/reports/html.js';
import { esc } from '../../src/reports/page.js';
import type { SignersSectionData } from './types.js';

function callList(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, n]) => `${esc(k)} ×${n}`)
    .join(', ');
}

export const signersReport: SectionReport = {
  title: 'DNSSEC signers on this token',
  html(raw) {
    const data = raw as SignersSectionData;
    if (!data?.signers) return undefined;
    const parts = [
      `<p>Isolation: ${esc(data.isolation.how)}${data.isolation.modulesSeen ? ` (p11-kit loads: ${esc(data.isolation.modulesSeen.join(', '))})` : ''}. Tracing: ${esc(data.tracing)}.</p>`,
    ];
    if (data.isolation.singleToken) {
      const seen = data.isolation.tokensSeen ? ` (initialised tokens seen: ${esc(data.isolation.tokensSeen.join(', ') || 'none')})` : '';
      parts.push(`<p>Tokens the signer sees: ${esc(data.isolation.singleToken)}${seen}.</p>`);
    }
    const vt = data.isolation.viewTransport;
    if (vt) {
      const hidden = vt.hidden.length
        ? `hides ${vt.hidden.join(', ')}, which the token offers (those cases are the transport's finding)`
        : 'forwards every mechanism the token offers';
      parts.push(`<p>${esc(vt.name)} of that view ${esc(hidden)}.</p>`);
    }
    for (const s of data.signers) {
      parts.push(`<h4>${esc(s.title)}: ${esc(s.version ?? `not run: ${s.missing}`)}</h4>`);
      parts.push('<table><tr><th>case</th><th>outcome</th><th>keys</th><th>seconds</th><th>RRSIGs</th></tr>');
      for (const c of s.cases) {
        const keys =
          c.keys === 'made-by-harness'
            ? `made by the harness${c.keygenFailure ? ` (signer: ${esc(c.keygenFailure)})` : ''}`
            : c.keys
              ? 'made by the signer'
              : '';
        parts.push(
          `<tr><td><a href="#${caseAnchor(data.driver, 'signers', c.case)}">${esc(c.case)}</a></td><td>${esc(c.status)}</td><td>${keys}</td><td>${c.seconds ?? ''}</td><td>${c.rrsigs ?? ''}</td></tr>`,
        );
        for (const f of c.speed ?? []) {
          const ofRaw = f.ofRawRate !== undefined ? `, ${Math.round(f.ofRawRate * 100)} % of the token's raw rate (${f.tokenRawRate} signatures/s)` : '';
          parts.push(
            `<tr><td colspan="5">zone of ${f.records} records: ${f.rrsigs} RRSIGs in ${f.seconds} s = ${f.rrsigsPerSecond} RRSIGs/s${ofRaw}</td></tr>`,
          );
        }
      }
      parts.push('</table>');
      if (s.observed) {
        parts.push(`<p>Observed PKCS#11 functions: ${callList(s.observed.functions)}</p>`);
        parts.push(`<p>Observed mechanisms: ${callList(s.observed.mechanisms) || 'none'}</p>`);
      }
      if (s.traceIncomplete?.length) parts.push(`<p>The trace is incomplete: ${esc(s.traceIncomplete.join('; '))}</p>`);
      if (s.profileCheck) {
        const p = s.profileCheck;
        const listed = p.incomplete ? `the check ${p.incomplete}` : `listed but never called: ${p.listedNotCalled.join(', ') || 'none'}`;
        parts.push(`<p>Profile check (${esc(p.source)}): ${esc(listed)}; called but not listed: ${esc(p.calledNotListed.join(', ') || 'none')}</p>`);
      }
      if (s.exposures.length) parts.push(`<p>PIN exposure by the signer: ${esc(s.exposures.join('; '))}</p>`);
    }
    return parts.join('\n');
  },
};
