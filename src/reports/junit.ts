/**
 * JUnit XML, derived from RunResults: one <testsuite> per driver. Skips and unsupported cases carry their
 * reason as <skipped message="…"> and as a skip-reason property; crashes and
 * timeouts are <error> entries, never passes. An unavailable driver is one skipped case with its reason.
 */
import junitModule from 'junit-report-builder';
import type { Builder, TestCase } from 'junit-report-builder';

// The package is CommonJS: at run time the default import is the builder itself, whatever its typings say.
const junit = junitModule as unknown as Builder;
import type { RunResults } from '../results.js';
import { securityFindings, statusLabel, verdictLabel } from '../results.js';

export function renderJUnit(results: RunResults): string {
  const builder = junit.newBuilder().name('hsm-harness');
  for (const d of results.drivers) {
    const suite = builder
      .testSuite()
      .name(d.id)
      .timestamp(new Date(d.startedAt ?? results.startedAt));
    suite
      .property('driver.title', d.title)
      .property('driver.kind', d.kind)
      .property('driver.status', d.status)
      .property('driver.availability', d.availabilityReason);
    // Signer verdicts are verdicts, not test cases: one property per signer, the same label as capabilities.md and index.html.
    for (const v of d.suitability) suite.property(`suitability: ${v.signer}`, verdictLabel(v));
    // The failed case's message says it too ("SECURITY: …"); the property puts it on the suite, where a CI shows it first.
    for (const f of securityFindings([d])) suite.property(`security: ${f.suite}`, f.text);
    if (!d.available) {
      skip(suite.testCase().className(`${d.id}.driver`).name('available').time(0), `unavailable: ${d.availabilityReason}`);
      continue;
    }
    for (const c of d.cases) {
      const tc = suite
        .testCase()
        .className(`${d.id}.${c.suite}`)
        .name(c.case)
        .time(c.durationMs / 1000);
      if (c.ckr) tc.property('ckr', `${c.ckr.name} (0x${c.ckr.code.toString(16)})`);
      if (c.unexpectedPass) tc.property('unexpected-pass', c.reason ?? 'true');
      if (c.expected) tc.property('expected', `${statusLabel(c)}; source: ${c.expected.source.kind} ${c.expected.source.ref}`);
      tc.property('status', statusLabel(c));
      switch (c.status) {
        case 'pass':
          break;
        // A fail the expectations file predicts does not fail the run; it is shown as skipped, labelled, never as a pass.
        case 'fail':
          if (c.expected) skip(tc, `${statusLabel(c)}: ${c.reason ?? ''}`);
          else tc.failure(c.reason ?? 'failed', 'AssertionError');
          break;
        case 'skip':
          skip(tc, c.reason ?? 'skipped');
          break;
        case 'unsupported':
          skip(tc, `${statusLabel(c)}: ${c.reason ?? ''}`);
          break;
        case 'crash':
          tc.error(c.reason ?? 'driver process crashed', 'DriverCrash');
          break;
        case 'timeout':
          tc.error(c.reason ?? 'timed out', 'DriverTimeout');
          break;
      }
    }
  }
  return builder.build();
}

/**
 * Mark a case skipped with its reason, as a skip-reason property and as <skipped message="…">. junit-report-builder
 * 5.1.2 has no API for the message and writes a bare <skipped/>, but Jenkins, GitLab and the GitHub JUnit actions
 * show the attribute: it is set on the element the builder makes for this case, through xmlbuilder, which escapes it.
 */
function skip(tc: TestCase, reason: string): void {
  tc.skipped().property('skip-reason', reason);
  const build = tc.build.bind(tc);
  tc.build = (parent) => {
    const element = build(parent);
    const skipped = element.children.find((n) => (n as { name?: string }).name === 'skipped') as typeof element | undefined;
    skipped?.att('message', reason);
    return element;
  };
}
