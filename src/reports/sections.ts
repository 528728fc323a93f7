/**
 * How a suite's section of DriverReport.sections appears in the reports. The code beside the suite that
 * produces a section describes it (bench/report.ts for bench and bench-kmip) and the suite carries it as
 * `Suite.report`; the report writers get them from the loaded suites (src/registry.ts), so src/reports imports no suite.
 */
import type { RunResults } from '../results.js';

export interface ReportWriter {
  file: string;
  render(results: RunResults): string | undefined;
}

export interface SectionReport {
  /** Heading of the section in each driver's part of index.html. */
  title: string;
  /** Body of one driver's section in index.html; undefined falls back to the generic rendering. */
  html?(data: unknown): string | undefined;
  /** A part of index.html across all drivers (charts), with an id for the navigation; undefined when there is nothing to show. */
  overview?(results: RunResults): { id: string; title: string; html: string } | undefined;
  /** Report files of their own that `run` writes too. */
  writers?: ReportWriter[];
}
