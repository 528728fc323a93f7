/**
 * JUnit XML, derived from RunResults: one <testsuite> per driver. Skips and unsupported cases carry their
 * reason as <skipped message="…"> and as a skip-reason property; crashes and
 * timeouts are <error> entries, never passes. An unavailable driver is one skipped case with its reason.
 */
import junitModule from 'junit-report-builder';
import type { Builder } from 'junit-report-builder';

// The package is CommonJS: at run time the default import is the builder itself, whatever its typings say.
const junit = junitModule as unknown as Builder;
import type { RunResults } from '../results.js';
import { statusLabel, verdictLabel } from '../results.js';

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
    if (!d.available) {
      suite.testCase().className(`${d.id}.driver`).name('available').time(0).skipped().property('skip-reason', `unavailable: ${d.availabilityReason}`);
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
          if (c.expected) tc.skipped().property('skip-reason', `${statusLabel(c)}: ${c.reason ?? ''}`);
          else tc.failure(c.reason ?? 'failed', 'AssertionError');
          break;
        case 'skip':
          tc.skipped().property('skip-reason', c.reason ?? 'skipped');
          break;
        case 'unsupported':
          tc.skipped().property('skip-reason', `${statusLabel(c)}: ${c.reason ?? ''}`);
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
  return withSkipMessages(builder.build());
}

/**
 * junit-report-builder writes a bare <skipped/>; Jenkins, GitLab and the GitHub JUnit actions show the
 * message attribute. Copy each case's skip-reason (already escaped as an attribute value) into it.
 */
function withSkipMessages(xml: string): string {
  return xml.replace(/<testcase\b[^>]*>[\s\S]*?<\/testcase>/g, (block) => {
    const reason = /<property name="skip-reason" value="([^"]*)"\/>/.exec(block);
    return reason ? block.replace('<skipped/>', `<skipped message="${reason[1]}"/>`) : block;
  });
}
